//! The SP registry through the operator CLI (a contract for scripts): add from a file or a URL,
//! settings, list/show/remove, refresh (a failed fetch keeps the last good copy), and signed
//! federation aggregates (signature checked against the configured certificate, expiry honoured).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::keys;
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{events, pem, TestSp};

dual!(
    operators_manage_sps_from_files_and_urls,
    signed_aggregates_are_verified_and_refreshed,
    administrators_manage_sps_on_pages_and_over_rest
);

/// A tiny HTTP server answering every request with the current `body` (status 200, or 500
/// when the body is empty). Returns its base URL.
fn serve(body: Arc<Mutex<String>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let b = body.lock().unwrap().clone();
            let status = if b.is_empty() {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/samlmetadata+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                b.len()
            );
        }
    });
    format!("http://127.0.0.1:{}", addr.port())
}

async fn operators_manage_sps_from_files_and_urls(b: Backend) {
    let app = TestApp::start(b).await;
    let file_sp = TestSp::new("file");
    file_sp.register(
        &app,
        &[
            "--require-signed-requests",
            "--attributes",
            "givenName,mail",
            "--name-id-format",
            "transient",
        ],
    );
    // Registered twice: refused.
    let path = app.db.dir().join("again.xml");
    std::fs::write(&path, file_sp.metadata(None)).unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("already registered"),
        "{v}"
    );
    // Bad input: not metadata, unknown attribute, encryption without a key, XXE, http URL.
    std::fs::write(&path, "<html/>").unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{v}");
    let other = TestSp::new("other");
    std::fs::write(&path, other.metadata(None)).unwrap();
    let (code, v) = app.cli_json(&[
        "sp",
        "add",
        "--metadata",
        path.to_str().unwrap(),
        "--attributes",
        "password",
        "--json",
    ]);
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("unknown attribute"),
        "{v}"
    );
    std::fs::write(
        &path,
        format!(
            r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>{}"#,
            other.metadata(None).replace("<?xml version=\"1.0\"?>", "")
        ),
    )
    .unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap().contains("DOCTYPE"), "{v}");
    let (code, v) = app.cli_json(&[
        "sp",
        "add",
        "--metadata",
        "http://sp.example/metadata",
        "--json",
    ]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap().contains("only https"), "{v}");

    // From a URL; refreshed from there.
    let url_sp = TestSp::new("url");
    let body = Arc::new(Mutex::new(url_sp.metadata(None)));
    let base = serve(body.clone());
    let md_url = format!("{base}/metadata.xml");
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", &md_url, "--json"]);
    assert_eq!(
        (code, v["entity_id"].as_str()),
        (0, Some(url_sp.entity_id.as_str())),
        "{v}"
    );

    let (code, list) = app.cli_json(&["sp", "list", "--json"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let (code, show) = app.cli_json(&["sp", "show", &file_sp.entity_id, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(show["require_signed_requests"], true);
    assert_eq!(show["attributes"], serde_json::json!(["givenName", "mail"]));
    assert_eq!(
        show["name_id_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    );
    assert_eq!(
        show["assertion_consumer_services"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(show["signing_certificates"], 1);

    // Refresh: the SP's new metadata (another ACS) replaces the old.
    *body.lock().unwrap() = url_sp
        .metadata(None)
        .replace(&url_sp.acs, "https://url.sp.test/new-acs");
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["refreshed"], serde_json::json!([url_sp.entity_id]));
    let (_, show) = app.cli_json(&["sp", "show", &url_sp.entity_id, "--json"]);
    assert_eq!(
        show["assertion_consumer_services"][0]["location"],
        "https://url.sp.test/new-acs"
    );
    // A failing source keeps the last good copy and says so (exit code 1).
    body.lock().unwrap().clear();
    let (code, v) = app.cli_json(&["sp", "refresh", &url_sp.entity_id, "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["failed"][0][0], url_sp.entity_id.as_str());
    let (_, show) = app.cli_json(&["sp", "show", &url_sp.entity_id, "--json"]);
    assert_eq!(
        show["assertion_consumer_services"][0]["location"],
        "https://url.sp.test/new-acs"
    );
    // Metadata for another entity is not taken as a refresh.
    *body.lock().unwrap() = other.metadata(None);
    let (code, v) = app.cli_json(&["sp", "refresh", &url_sp.entity_id, "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(v["failed"][0][1].as_str().unwrap().contains("not"), "{v}");

    // Settings; disable stops answering; remove.
    let (code, v) = app.cli_json(&["sp", "set", &url_sp.entity_id, "--disable", "--json"]);
    assert_eq!((code, &v["enabled"]), (0, &serde_json::json!(false)), "{v}");
    let (code, v) = app.cli_json(&[
        "sp",
        "set",
        &url_sp.entity_id,
        "--name-id-format",
        "bogus",
        "--json",
    ]);
    assert_eq!(code, 1, "{v}");
    let (code, _) = app.cli_json(&["sp", "remove", &url_sp.entity_id, "--json"]);
    assert_eq!(code, 0);
    let (code, v) = app.cli_json(&["sp", "remove", &url_sp.entity_id, "--json"]);
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("not registered"),
        "{v}"
    );

    // Every change is in the audit log.
    assert_eq!(events(&app, "saml.sp_added").await.len(), 2);
    assert_eq!(events(&app, "saml.sp_refreshed").await.len(), 1);
    assert_eq!(events(&app, "saml.sp_configured").await.len(), 1);
    assert_eq!(events(&app, "saml.sp_removed").await.len(), 1);
}

/// A federation aggregate of `sps`, signed by `key`, valid until `until`.
fn aggregate(sps: &[&TestSp], key: &keys::SamlSigner, until: &str) -> String {
    let entities: String = sps
        .iter()
        .map(|s| {
            let md = s.metadata(None).replace("<?xml version=\"1.0\"?>\n", "");
            md.replace(" xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"", "")
                .replace(" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"", "")
        })
        .collect();
    let id = format!("_agg{}", uuid::Uuid::new_v4().simple());
    let xml = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="{id}" Name="kuntafederaatio" validUntil="{until}">{}<md:EntitiesDescriptor Name="nested">{entities}</md:EntitiesDescriptor></md:EntitiesDescriptor>"#,
        sign::template(&id, &STANDARD.encode(&key.cert_der))
    );
    sign::sign_enveloped(&xml, key).unwrap()
}

async fn signed_aggregates_are_verified_and_refreshed(b: Backend) {
    let app = TestApp::start(b).await;
    let operator = keys::generate("federation.test", kuntalaistili_schema::now_utc())
        .unwrap()
        .0;
    let cert = app.db.dir().join("federation.pem");
    std::fs::write(&cert, pem("CERTIFICATE", &operator.cert_der)).unwrap();
    let later = saml_time(kuntalaistili_schema::now_utc() + chrono::Duration::days(7));
    let (one, two) = (TestSp::new("fed1"), TestSp::new("fed2"));
    let body = Arc::new(Mutex::new(aggregate(&[&one, &two], &operator, &later)));
    let url = format!("{}/aggregate.xml", serve(body.clone()));

    let (code, v) = app.cli_json(&[
        "sp",
        "add-aggregate",
        "--url",
        &url,
        "--cert",
        cert.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["entity_ids"],
        serde_json::json!([one.entity_id, two.entity_id])
    );
    let (_, show) = app.cli_json(&["sp", "show", &one.entity_id, "--json"]);
    assert_eq!(show["aggregate_url"], url.as_str());
    assert!(show["valid_until"].as_str().is_some());

    // SSO works for an SP from the aggregate.
    let browser = app.browser();
    let r = one.req(&app);
    let resp = browser
        .get(one.unsigned_redirect_url(&app, &one.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // Signed by another key, or altered after signing: refused; the registry keeps its copy.
    let impostor = keys::generate("evil.test", kuntalaistili_schema::now_utc())
        .unwrap()
        .0;
    *body.lock().unwrap() = aggregate(&[&one], &impostor, &later);
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 1, "{v}");
    let altered =
        aggregate(&[&one, &two], &operator, &later).replace(&one.acs, "https://evil.example/acs");
    *body.lock().unwrap() = altered;
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 1, "{v}");
    let (_, show) = app.cli_json(&["sp", "show", &one.entity_id, "--json"]);
    assert_eq!(
        show["assertion_consumer_services"][0]["location"],
        one.acs.as_str()
    );
    assert_eq!(show["enabled"], true);
    // An expired aggregate is refused too.
    let past = saml_time(kuntalaistili_schema::now_utc() - chrono::Duration::hours(1));
    *body.lock().unwrap() = aggregate(&[&one, &two], &operator, &past);
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["failed"][0][1].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // A good refresh in which an SP left the federation: that SP is disabled.
    *body.lock().unwrap() = aggregate(&[&one], &operator, &later);
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 0, "{v}");
    let (_, show) = app.cli_json(&["sp", "show", &two.entity_id, "--json"]);
    assert_eq!(show["enabled"], false);
    // An operator disables the first one themselves; then both are back in the aggregate: the
    // one that had left is enabled again, the operator's decision stands.
    let (code, v) = app.cli_json(&["sp", "set", &one.entity_id, "--disable", "--json"]);
    assert_eq!(code, 0, "{v}");
    *body.lock().unwrap() = aggregate(&[&one, &two], &operator, &later);
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 0, "{v}");
    let (_, show) = app.cli_json(&["sp", "show", &two.entity_id, "--json"]);
    assert_eq!(
        show["enabled"], true,
        "back in the aggregate: enabled again"
    );
    let (_, show) = app.cli_json(&["sp", "show", &one.entity_id, "--json"]);
    assert_eq!(show["enabled"], false, "the operator's own disable stands");
    let rejoined = super::events(&app, "saml.sp_rejoined").await;
    assert_eq!(rejoined.len(), 1, "{rejoined:?}");

    // An aggregate from a local file could never be refreshed: refused with the reason.
    let local = app.db.dir().join("local-aggregate.xml");
    std::fs::write(&local, body.lock().unwrap().clone()).unwrap();
    let (code, v) = app.cli_json(&[
        "sp",
        "add-aggregate",
        "--url",
        local.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{v}");
    assert!(v["error"].as_str().unwrap().contains("https URL"), "{v}");
    // Errors say their cause once.
    *body.lock().unwrap() = aggregate(&[&one, &two], &operator, &past);
    let (code, v) = app.cli_json(&["sp", "refresh", "--json"]);
    assert_eq!(code, 1, "{v}");
    let (code, v) = app.cli_json(&[
        "sp",
        "add-aggregate",
        "--url",
        &url,
        "--cert",
        cert.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{v}");
    let e = v["error"].as_str().unwrap();
    assert_eq!(e.matches("expired").count(), 1, "{e}");
    *body.lock().unwrap() = aggregate(&[&one, &two], &operator, &later);

    // An aggregate given to `sp add` (no certificate to check it with) is refused.
    let path = app.db.dir().join("agg.xml");
    std::fs::write(&path, body.lock().unwrap().clone()).unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("add-aggregate"),
        "{v}"
    );
}

async fn administrators_manage_sps_on_pages_and_over_rest(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "paakayttaja".into(),
                password: Some(super::PASSWORD.into()),
                role: "admin".into(),
                ..Default::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    app.add_user("tavallinen", super::PASSWORD).await;

    // A resident is refused the page and the form.
    let resident = app.browser();
    app.login(&resident, "tavallinen", super::PASSWORD).await;
    assert_eq!(
        resident
            .get(app.url("/admin/sps"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // The administrator registers an SP by pasting its metadata (CSRF-protected form).
    let admin = app.browser();
    app.login(&admin, "paakayttaja", super::PASSWORD).await;
    let page = admin.get(app.url("/admin/sps")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = kuntalaistili_tests::csrf_from(&page.text().await.unwrap()).unwrap();
    let sp = TestSp::new("ui");
    let md = sp.metadata(None);
    let r = admin
        .post(app.url("/admin/sps"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("metadata", md.as_str()),
            ("attributes", "givenName,mail"),
            ("name_id_format", "transient"),
            ("require_signed_requests", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let without = admin
        .post(app.url("/admin/sps"))
        .form(&[("metadata", md.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 403, "no CSRF token");
    let page = admin
        .get(app.url("/admin/sps"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = page.replace("&#x2F;", "/");
    assert!(
        page.contains(&sp.entity_id) && page.contains(&sp.acs),
        "{page}"
    );
    // Settings: encrypt assertions, take it out of use.
    let r = admin
        .post(app.url("/admin/sps/settings"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("entity_id", sp.entity_id.as_str()),
            ("attributes", "givenName,mail,cn"),
            ("name_id_format", "persistent"),
            ("encrypt_assertions", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, show) = app.cli_json(&["sp", "show", &sp.entity_id, "--json"]);
    assert_eq!(show["encrypt_assertions"], true);
    assert_eq!(show["enabled"], false);
    assert_eq!(show["require_signed_requests"], false);
    assert_eq!(
        show["attributes"],
        serde_json::json!(["givenName", "mail", "cn"])
    );
    // Bad metadata: the page says nothing was changed.
    let r = admin
        .post(app.url("/admin/sps"))
        .form(&[("csrf", csrf.as_str()), ("metadata", "<x/>")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin
        .post(app.url("/admin/sps/remove"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("entity_id", sp.entity_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let added = events(&app, "saml.sp_added").await;
    assert_eq!(added.len(), 1);

    // The same over REST with an admin token.
    let token = app.client_token("admin").await;
    let api =
        |m: reqwest::Method, path: &str| app.client.request(m, app.url(path)).bearer_auth(&token);
    let rest = TestSp::new("rest");
    let r = api(reqwest::Method::POST, "/api/v1/saml/sps")
        .json(&serde_json::json!({ "metadata": rest.metadata(None), "attributes": ["mail"], "encrypt_assertions": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["entity_id"], rest.entity_id.as_str());
    let path = format!("/api/v1/saml/sps/{}", super::enc(&rest.entity_id));
    let r = api(reqwest::Method::POST, "/api/v1/saml/sps")
        .json(&serde_json::json!({ "metadata": rest.metadata(None) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = api(reqwest::Method::POST, "/api/v1/saml/sps")
        .json(&serde_json::json!({ "metadata": "<x/>", "metadata_url": "https://a.example/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api(reqwest::Method::PATCH, &path)
        .json(&serde_json::json!({ "allow_national_id": true, "attributes": ["mail", "nationalIdentificationNumber"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["attributes"],
        serde_json::json!(["mail", "nationalIdentificationNumber"])
    );
    let r = api(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = api(reqwest::Method::GET, "/api/v1/saml/sps")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["service_providers"].as_array().unwrap().len(), 1);
    let r = api(reqwest::Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Another scope is refused.
    let other = app.client_token("authz:check").await;
    let r = app
        .client
        .get(app.url("/api/v1/saml/sps"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

//! Web SSO and Single Logout as an SP sees them: what the response says and how it is protected,
//! NameID formats, passive and forced login, authentication context, IdP-initiated SSO, attribute
//! release (the national id only when allowed; permissions while granted), the signed metadata and
//! its key rotation, and logout propagated to every SP of the session.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml::{self, Element, NS_SAML, NS_SAMLP};
use kuntalaistili_tests::{dual, Backend, TestApp};

mod logout;

use super::{attributes, enc, events, log_in_via, posted_response, status_of, TestSp, PASSWORD};

dual!(
    sso_answers_what_the_request_asks,
    attributes_follow_the_sp_settings_and_rights,
    metadata_is_signed_and_rotation_publishes_both_keys
);

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// The IdP's signing certificates from its metadata.
async fn idp_certs(app: &TestApp) -> Vec<Vec<u8>> {
    let md = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap();
    let root = xml::parse(&md.text().await.unwrap(), xml::METADATA).unwrap();
    root.child(xml::NS_MD, "IDPSSODescriptor")
        .unwrap()
        .children_named(xml::NS_MD, "KeyDescriptor")
        .map(|k| {
            let c = k
                .child(xml::NS_DS, "KeyInfo")
                .unwrap()
                .child(xml::NS_DS, "X509Data")
                .unwrap()
                .child(xml::NS_DS, "X509Certificate")
                .unwrap();
            STANDARD.decode(c.text.trim()).unwrap()
        })
        .collect()
}

/// The Assertion of a response XML as its own document.
fn assertion_xml(xml: &str) -> &str {
    let start = xml.find("<saml:Assertion").unwrap();
    let end = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    &xml[start..end]
}

async fn sso_answers_what_the_request_asks(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("maija", PASSWORD).await;
    let sp = TestSp::new("flow");
    sp.register(&app, &[]);
    let certs = idp_certs(&app).await;
    let browser = app.browser();

    // Passive without a session: a signed NoPassive status at the ACS, nothing else.
    let mut r = sp.req(&app);
    r.passive = true;
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let (action, resp, raw) = posted_response(&page.text().await.unwrap());
    assert_eq!(action, sp.acs);
    assert_eq!(resp.attr("InResponseTo"), Some(r.id.as_str()));
    assert_eq!(
        status_of(&resp).1.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:NoPassive")
    );
    assert!(resp.child(NS_SAML, "Assertion").is_none());
    sign::verify_enveloped(&raw, &certs, xml::MESSAGE).unwrap();

    // Login through the login page, then the response.
    let r = sp.req(&app);
    let url = sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)) + "&RelayState=%2Fback";
    let to_login = browser.get(&url).send().await.unwrap();
    assert_eq!(to_login.status(), 303);
    let login = to_login.headers()["location"].to_str().unwrap().to_owned();
    let page = log_in_via(&app, &browser, &login, "maija").await;
    assert!(
        page.contains(r#"name="RelayState" value="&#x2F;back""#),
        "{page}"
    );
    let (_, resp, raw) = posted_response(&page);
    let now = kuntalaistili_schema::now_utc();
    assert_eq!(status_of(&resp).0, SUCCESS);
    assert_eq!(resp.attr("Destination"), Some(sp.acs.as_str()));
    assert_eq!(resp.attr("InResponseTo"), Some(r.id.as_str()));
    let a = resp.child(NS_SAML, "Assertion").unwrap();
    assert_eq!(
        a.child(NS_SAML, "Issuer").unwrap().text,
        app.url("/saml/metadata")
    );
    let subject = a.child(NS_SAML, "Subject").unwrap();
    let nid = subject.child(NS_SAML, "NameID").unwrap();
    assert_eq!(
        nid.text,
        app.state.keys.pairwise_subject(&sp.entity_id, &user.id)
    );
    let conf = subject
        .child(NS_SAML, "SubjectConfirmation")
        .unwrap()
        .child(NS_SAML, "SubjectConfirmationData")
        .unwrap();
    assert_eq!(conf.attr("Recipient"), Some(sp.acs.as_str()));
    assert_eq!(conf.attr("InResponseTo"), Some(r.id.as_str()));
    let until =
        kuntalaistili_metadata::saml::metadata::parse_time(conf.attr("NotOnOrAfter").unwrap())
            .unwrap();
    assert!(until > now && until <= now + chrono::Duration::minutes(6));
    let cond = a.child(NS_SAML, "Conditions").unwrap();
    assert_eq!(
        cond.child(NS_SAML, "AudienceRestriction")
            .unwrap()
            .child(NS_SAML, "Audience")
            .unwrap()
            .text,
        sp.entity_id
    );
    let authn = a.child(NS_SAML, "AuthnStatement").unwrap();
    assert!(authn.attr("SessionIndex").is_some_and(|s| s.len() >= 16));
    assert_eq!(
        authn
            .child(NS_SAML, "AuthnContext")
            .unwrap()
            .child(NS_SAML, "AuthnContextClassRef")
            .unwrap()
            .text,
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    );
    // The assertion is signed (the default); the response is not.
    assert!(a.child(xml::NS_DS, "Signature").is_some());
    assert!(resp.child(xml::NS_DS, "Signature").is_none());
    sign::verify_enveloped(assertion_xml(&raw), &certs, xml::MESSAGE).unwrap();

    // The same session: a second request is answered at once; transient and email NameIDs.
    let mut r = sp.req(&app);
    r.format = Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into());
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = posted_response(&page.text().await.unwrap());
    let t1 = name_id(&resp);
    let mut r = sp.req(&app);
    r.format = Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into());
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = posted_response(&page.text().await.unwrap());
    assert_ne!(
        name_id(&resp),
        t1,
        "transient identifiers are fresh each time"
    );
    let mut r = sp.req(&app);
    r.format = Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = posted_response(&page.text().await.unwrap());
    assert_eq!(name_id(&resp), "maija@example.fi");
    // A format we do not give: InvalidNameIDPolicy.
    let mut r = sp.req(&app);
    r.format = Some("urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName".into());
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = posted_response(&page.text().await.unwrap());
    assert_eq!(
        status_of(&resp).1.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy")
    );
    // An authentication context we cannot give: NoAuthnContext.
    let mut r = sp.req(&app);
    r.extra = r#"<samlp:RequestedAuthnContext Comparison="exact"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#.into();
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = posted_response(&page.text().await.unwrap());
    assert_eq!(
        status_of(&resp).1.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext")
    );
    // The ACS by index from the metadata.
    let mut r = sp.req(&app);
    r.acs = None;
    r.extra = String::new();
    let x = sp.authn_request(&r, false).replace(
        " ProtocolBinding",
        r#" AssertionConsumerServiceIndex="1" ProtocolBinding"#,
    );
    let page = browser
        .get(sp.unsigned_redirect_url(&app, &x))
        .send()
        .await
        .unwrap();
    let (action, _, _) = posted_response(&page.text().await.unwrap());
    assert_eq!(action, format!("{}2", sp.acs));

    // ForceAuthn: the login page again, although a session exists; then an answer.
    let mut r = sp.req(&app);
    r.force = true;
    let forced = browser
        .get(sp.unsigned_redirect_url(&app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 303);
    let login = forced.headers()["location"].to_str().unwrap().to_owned();
    assert!(login.starts_with("/login?next="));
    let page = log_in_via(&app, &browser, &login, "maija").await;
    let (_, resp, _) = posted_response(&page);
    assert_eq!(status_of(&resp).0, SUCCESS);

    // IdP-initiated: no InResponseTo; the default ACS; RelayState passed on.
    let page = browser
        .get(app.url(&format!(
            "/saml/sso/init?sp={}&RelayState=deep",
            enc(&sp.entity_id)
        )))
        .send()
        .await
        .unwrap();
    let headers = page.headers().clone();
    let page = page.text().await.unwrap();
    let (action, resp, _) = posted_response(&page);
    assert_eq!(action, sp.acs);
    assert!(resp.attr("InResponseTo").is_none());
    assert!(page.contains(r#"name="RelayState" value="deep""#));
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action https://flow.sp.test") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    let unknown = browser
        .get(app.url("/saml/sso/init?sp=https%3A%2F%2Fnobody.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    // Audit: assertions and status answers were recorded.
    let issued = events(&app, "saml.assertion_issued").await;
    assert!(issued.len() >= 6, "{issued:?}");
    let statuses = events(&app, "saml.status_sent").await;
    let codes: Vec<&str> = statuses
        .iter()
        .map(|(_, d)| d["status"].as_str().unwrap())
        .collect();
    assert!(codes.iter().any(|c| c.ends_with("NoPassive")));
    assert!(codes.iter().any(|c| c.ends_with("InvalidNameIDPolicy")));
    assert!(codes.iter().any(|c| c.ends_with("NoAuthnContext")));
}

fn name_id(resp: &Element) -> String {
    resp.child(NS_SAML, "Assertion")
        .unwrap()
        .child(NS_SAML, "Subject")
        .unwrap()
        .child(NS_SAML, "NameID")
        .unwrap()
        .text
        .clone()
}

/// One SSO round for a logged-in browser; the parsed response.
async fn sso(app: &TestApp, browser: &reqwest::Client, sp: &TestSp) -> Element {
    let r = sp.req(app);
    let page = browser
        .get(sp.unsigned_redirect_url(app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    posted_response(&page.text().await.unwrap()).1
}

async fn attributes_follow_the_sp_settings_and_rights(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    let sp = TestSp::new("attrs");
    sp.register(
        &app,
        &[
            "--attributes",
            "givenName,sn,mail,nationalIdentificationNumber,permissions",
            "--release-permissions",
            "library",
            "--sign-response",
        ],
    );
    // Maija has a national id in the register.
    let st = app.state.clone();
    app.with_conn(move |c| {
        let mut u = kuntalaistili_schema::users::find_by_username(c, "maija")
            .unwrap()
            .unwrap();
        u.national_id_enc = Some(st.keys.encrypt_national_id("010190-123A"));
        kuntalaistili_schema::users::replace(c, &u).unwrap();
    })
    .await;
    let browser = app.browser();
    app.login(&browser, "maija", PASSWORD).await;

    // Not allowed the national id: not released although listed; response and assertion signed.
    let resp = sso(&app, &browser, &sp).await;
    let attrs = attributes(&resp);
    let names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["givenName", "sn", "mail"], "{attrs:?}");
    assert!(resp.child(xml::NS_DS, "Signature").is_some());
    assert!(resp
        .child(NS_SAML, "Assertion")
        .unwrap()
        .child(xml::NS_DS, "Signature")
        .is_some());

    // A permission granted to Maija appears in the assertion, and goes when revoked.
    let (code, _) = app.cli_json(&[
        "authz",
        "role",
        "lainaaja",
        "--permissions",
        "library:borrow",
    ]);
    assert_eq!(code, 0);
    let (code, g) = app.cli_json(&[
        "authz", "grant", "--user", "maija", "--role", "lainaaja", "--json",
    ]);
    assert_eq!(code, 0, "{g}");
    let (code, other) = app.cli_json(&[
        "authz",
        "grant",
        "--user",
        "maija",
        "--permission",
        "sports:book",
        "--json",
    ]);
    assert_eq!(code, 0, "{other}");
    let resp = sso(&app, &browser, &sp).await;
    let perms = attributes(&resp)
        .into_iter()
        .find(|(n, _)| n == "permissions");
    assert_eq!(
        perms.map(|p| p.1),
        Some(vec!["library:borrow".to_owned()]),
        "only the released service"
    );
    let (code, _) = app.cli_json(&["authz", "revoke", g["id"].as_str().unwrap()]);
    assert_eq!(code, 0);
    let resp = sso(&app, &browser, &sp).await;
    assert!(attributes(&resp).iter().all(|(n, _)| n != "permissions"));

    // Allowed the national id: released as urn:oid:1.2.246.21, and the release is audited.
    let (code, v) = app.cli_json(&["sp", "set", &sp.entity_id, "--allow-national-id", "--json"]);
    assert_eq!(
        (code, &v["allow_national_id"]),
        (0, &serde_json::json!(true)),
        "{v}"
    );
    app.state.saml.forget_sp(&sp.entity_id);
    let resp = sso(&app, &browser, &sp).await;
    let a = resp.child(NS_SAML, "Assertion").unwrap();
    let hetu = a
        .child(NS_SAML, "AttributeStatement")
        .unwrap()
        .children_named(NS_SAML, "Attribute")
        .find(|at| at.attr("Name") == Some("urn:oid:1.2.246.21"))
        .unwrap();
    assert_eq!(
        hetu.child(NS_SAML, "AttributeValue").unwrap().text,
        "010190-123A"
    );
    let released = events(&app, "saml.national_id_released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].1["sp"], sp.entity_id.as_str());
}

async fn metadata_is_signed_and_rotation_publishes_both_keys(b: Backend) {
    let app = TestApp::start(b).await;
    let md = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    assert_eq!(md.headers()["content-type"], "application/samlmetadata+xml");
    let text = md.text().await.unwrap();
    let root = xml::parse(&text, xml::METADATA).unwrap();
    assert_eq!(
        root.attr("entityID"),
        Some(app.url("/saml/metadata").as_str())
    );
    let until =
        kuntalaistili_metadata::saml::metadata::parse_time(root.attr("validUntil").unwrap())
            .unwrap();
    assert!(until > kuntalaistili_schema::now_utc() + chrono::Duration::days(6));
    assert!(root.attr("cacheDuration").is_some());
    let idp = root.child(xml::NS_MD, "IDPSSODescriptor").unwrap();
    let sso: Vec<(&str, &str)> = idp
        .children_named(xml::NS_MD, "SingleSignOnService")
        .map(|e| (e.attr("Binding").unwrap(), e.attr("Location").unwrap()))
        .collect();
    assert_eq!(sso.len(), 2);
    assert!(sso.iter().all(|(_, l)| *l == app.url("/saml/sso")));
    assert_eq!(
        idp.children_named(xml::NS_MD, "SingleLogoutService")
            .count(),
        2
    );
    let formats: Vec<&str> = idp
        .children_named(xml::NS_MD, "NameIDFormat")
        .map(|f| f.text.as_str())
        .collect();
    assert!(formats.contains(&"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"));
    let certs = idp_certs(&app).await;
    assert_eq!(certs.len(), 1);
    // Signed by the key it publishes (an SP can pin the metadata signer).
    sign::verify_enveloped(&text, &certs, xml::METADATA).unwrap();

    // Rotation pre-publishes the successor: both certificates are in the metadata, and the old
    // key keeps signing until the successor activates.
    let (code, v) = app.cli_json(&[
        "keys",
        "rotate",
        "--alg",
        "SAML",
        "--prepublish-seconds",
        "3600",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    app.state.saml.forget_keys();
    let after = idp_certs(&app).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], certs[0], "the signing key comes first");
    let text = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sign::verify_enveloped(&text, &certs, xml::METADATA).unwrap();
}

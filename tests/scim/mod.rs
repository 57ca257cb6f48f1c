//! The customer register over SCIM 2.0 (RFC 7644), raw HTTP as in the RFC's examples: discovery,
//! create, filters, pagination, PATCH, PUT, ETags, groups feeding access rights, soft delete, and
//! errors in the SCIM error format. (tests/interop/scim drives the same API with a SCIM client
//! library from PyPI.)

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

mod partial;

dual!(
    scim_users_and_groups_round_trip,
    a_scim_client_library_from_pypi_round_trips
);

/// The same API driven by python-scim's `scim2-client` (tests/interop/scim/roundtrip.py): it
/// reads our discovery documents to build its models, so they are checked too.
async fn a_scim_client_library_from_pypi_round_trips(b: Backend) {
    let app = TestApp::start(b).await;
    let token = app.client_token("scim").await;
    let seen =
        kuntalaistili_tests::run_python("scim/roundtrip.py", vec![app.base.clone(), token]).await;
    assert_eq!(seen["created"], 2, "{seen}");
    assert_eq!(seen["filters"], json!([1, 2, 1, 2]));
    assert_eq!(seen["patched"], true);
    assert_eq!(seen["stale_if_match"], 412);
    assert_eq!(seen["replaced"], true);
    assert_eq!(seen["group_members"], 2);
    assert_eq!(seen["deleted"], true);
}

const EXT: &str = "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User";

struct Scim<'a> {
    app: &'a TestApp,
    token: String,
}

impl Scim<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut rq = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        if let Some(b) = body {
            rq = rq
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = rq.send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        if status != 204 && status != 304 {
            assert_eq!(
                h["content-type"], "application/scim+json",
                "{path} {status}"
            );
        }
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        if status >= 400 {
            assert_eq!(
                v["schemas"],
                json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
                "{v}"
            );
            assert_eq!(v["status"], status.to_string());
        }
        (status, v, h)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.call(reqwest::Method::GET, path, None, &[]).await;
        (s, v)
    }

    async fn total(&self, filter: &str) -> u64 {
        let q: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let (s, v) = self.get(&format!("/Users?filter={q}")).await;
        assert_eq!(s, 200, "{filter}: {v}");
        v["totalResults"].as_u64().unwrap()
    }
}

/// A provisioning client allowed to handle national ids (the register's own HR/population feed).
async fn national_id_client(app: &TestApp) -> String {
    use kuntalaistili_federation::clients::{self, NewClient};
    let (id, secret) = app
        .with_conn(|c| {
            let (cl, secret) = clients::add(
                c,
                NewClient {
                    name: "Väestötietojen syöttö".into(),
                    grant_types: vec!["client_credentials".into()],
                    scopes: "scim".into(),
                    allow_national_id: true,
                    ..NewClient::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap();
            (cl.client_id, secret.unwrap())
        })
        .await;
    let r: Value = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

async fn scim_users_and_groups_round_trip(b: Backend) {
    let app = TestApp::start(b).await;
    let scim = Scim {
        app: &app,
        token: national_id_client(&app).await,
    };
    let post = reqwest::Method::POST;

    // Discovery.
    let (s, spc) = scim.get("/ServiceProviderConfig").await;
    assert_eq!((s, &spc["patch"]["supported"]), (200, &json!(true)));
    assert_eq!(spc["etag"]["supported"], true);
    let (_, types) = scim.get("/ResourceTypes").await;
    assert_eq!(types["totalResults"], 2);
    let (_, schemas) = scim.get("/Schemas").await;
    assert_eq!(schemas["Resources"].as_array().unwrap().len(), 3);
    let (s, _) = scim
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(s, 200);

    // Create (RFC 7644 §3.3), with the municipal extension and a write-only national id.
    let (s, maija, h) = scim
        .call(
            post.clone(),
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
                "userName": "scim-maija",
                "name": { "givenName": "Maija", "familyName": "Meikäläinen" },
                "emails": [{ "value": "maija@example.fi", "type": "work", "primary": true }],
                "password": "scim-salasana-1",
                "preferredLanguage": "sv-FI",
                EXT: { "homeMunicipality": "091", "nationalId": "131052-308T" },
            })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{maija}");
    let id = maija["id"].as_str().unwrap().to_owned();
    assert_eq!(h["etag"], maija["meta"]["version"].as_str().unwrap());
    assert!(h["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{id}")));
    assert_eq!(maija["preferredLanguage"], "sv");
    assert_eq!(maija[EXT]["homeMunicipality"], "091");
    assert_eq!(maija[EXT]["hasNationalId"], true);
    assert!(!maija.to_string().contains("308T") && maija.get("password").is_none());
    assert_eq!(
        app.login(&app.browser(), "scim-maija", "scim-salasana-1")
            .await
            .status(),
        303
    );
    let (s, v, _) = scim
        .call(
            post.clone(),
            "/Users",
            Some(json!({ "userName": "SCIM-Maija" })),
            &[],
        )
        .await;
    assert_eq!((s, &v["scimType"]), (409, &json!("uniqueness")));
    let (s, matti, _) = scim
        .call(
            post.clone(),
            "/Users",
            Some(json!({ "userName": "scim-matti", "name": { "familyName": "Virtanen" } })),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    let matti_id = matti["id"].as_str().unwrap().to_owned();

    // Filters and pages.
    assert_eq!(scim.total(r#"userName eq "scim-maija""#).await, 1);
    assert_eq!(scim.total(r#"userName sw "scim-""#).await, 2);
    assert_eq!(scim.total(r#"name.familyName co "käläi""#).await, 1);
    assert_eq!(
        scim.total(r#"userName sw "scim-" and active eq true"#)
            .await,
        2
    );
    assert_eq!(scim.total(r#"emails.value ew "@example.fi""#).await, 1);
    let (s, v) = scim.get("/Users?filter=userName%20zz%20%22x%22").await;
    assert_eq!((s, &v["scimType"]), (400, &json!("invalidFilter")));
    let (_, page) = scim
        .get("/Users?filter=userName%20sw%20%22scim-%22&startIndex=2&count=1")
        .await;
    assert_eq!(
        (page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(page["startIndex"], 2);

    // PATCH (RFC 7644 §3.5.2), guarded by If-Match.
    let version = maija["meta"]["version"].as_str().unwrap().to_owned();
    let ops = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            { "op": "replace", "path": "name.givenName", "value": "Maija-Liisa" },
            { "op": "replace", "value": { "active": false } },
        ],
    });
    let (s, patched, _) = scim
        .call(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(ops.clone()),
            &[("if-match", &version)],
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["name"]["givenName"], "Maija-Liisa");
    assert_eq!(patched["active"], false);
    assert_eq!(
        patched[EXT]["hasNationalId"], true,
        "kept though not sent back"
    );
    assert_eq!(
        app.login(&app.browser(), "scim-maija", "scim-salasana-1")
            .await
            .status(),
        401
    );
    let (s, _, _) = scim
        .call(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(ops),
            &[("if-match", &version)],
        )
        .await;
    assert_eq!(s, 412, "stale version");
    let new_version = patched["meta"]["version"].as_str().unwrap().to_owned();
    let (s, _, _) = scim
        .call(
            reqwest::Method::GET,
            &format!("/Users/{id}"),
            None,
            &[("if-none-match", &new_version)],
        )
        .await;
    assert_eq!(s, 304);
    let (s, v, _) = scim
        .call(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(
                json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "path": "emails[type eq", "value": "x" }] }),
            ),
            &[],
        )
        .await;
    assert_eq!((s, &v["scimType"]), (400, &json!("invalidPath")));

    // PUT replaces.
    let mut replaced = matti.clone();
    replaced["emails"] = json!([{ "value": "matti@example.fi", "primary": true }]);
    let (s, v, _) = scim
        .call(
            reqwest::Method::PUT,
            &format!("/Users/{matti_id}"),
            Some(replaced),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["emails"][0]["value"], "matti@example.fi");
    let (s, v, _) = scim
        .call(
            reqwest::Method::PUT,
            &format!("/Users/{matti_id}"),
            Some(json!({ "userName": "scim-matti", "emails": [{ "value": "ei-osoite" }] })),
            &[],
        )
        .await;
    assert_eq!((s, &v["scimType"]), (400, &json!("invalidValue")));

    // Groups are the access-rights groups: a role granted to the group reaches its members.
    let (s, g, _) = scim
        .call(
            post.clone(),
            "/Groups",
            Some(
                json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Kirjaston henkilökunta", "members": [{ "value": matti_id }] }),
            ),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["id"], "kirjaston-henkilokunta");
    assert_eq!(g["members"][0]["display"], "scim-matti");
    let admin = app.client_token("admin").await;
    let checker = app.client_token("authz:check").await;
    let r = app
        .client
        .post(app.url("/api/v1/authz/grants"))
        .bearer_auth(&admin)
        .json(&json!({ "group": "kirjaston-henkilokunta", "permission": "library:lend" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let allowed = |sub: String| {
        let (app, checker) = (&app, checker.clone());
        async move {
            let v: Value = app
                .client
                .post(app.url("/api/v1/authz/check"))
                .bearer_auth(&checker)
                .json(&json!({ "sub": sub, "service": "library", "permission": "lend" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["allowed"].as_bool().unwrap()
        }
    };
    assert!(allowed(matti_id.clone()).await);
    let (s, g, _) = scim
        .call(
            reqwest::Method::PATCH,
            "/Groups/kirjaston-henkilokunta",
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "remove", "path": format!("members[value eq \"{matti_id}\"]") }] })),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["members"], json!([]));
    assert!(!allowed(matti_id.clone()).await);
    let (s, v, _) = scim
        .call(
            post.clone(),
            "/Groups",
            Some(json!({ "displayName": "kirjaston HENKILÖKUNTA" })),
            &[],
        )
        .await;
    assert_eq!((s, &v["scimType"]), (409, &json!("uniqueness")));

    // What provisioning may not do: make someone an administrator, touch an administrator's
    // account, send national ids without the right to them; a PUT without `active` keeps the
    // state; a new password ends the person's sessions.
    let (s, v, _) = scim
        .call(
            reqwest::Method::PATCH,
            &format!("/Users/{matti_id}"),
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "path": format!("{EXT}:role"), "value": "admin" }] })),
            &[],
        )
        .await;
    assert_eq!((s, &v[EXT]["role"]), (200, &json!("resident")), "{v}");
    let st = app.state.clone();
    let boss = tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "scim-paakayttaja".into(),
                password: Some("paakayttajan-salasana".into()),
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
    for (m, body) in [
        (
            reqwest::Method::PUT,
            Some(json!({ "userName": "scim-paakayttaja", "password": "kaapattu-salasana" })),
        ),
        (reqwest::Method::DELETE, None),
    ] {
        let (s, _, _) = scim
            .call(m, &format!("/Users/{}", boss.id), body, &[])
            .await;
        assert_eq!(s, 403);
    }
    assert_eq!(
        app.login(&app.browser(), "scim-paakayttaja", "paakayttajan-salasana")
            .await
            .status(),
        303
    );
    let plain = Scim {
        app: &app,
        token: app.client_token("scim").await,
    };
    let (s, _, _) = plain
        .call(
            post.clone(),
            "/Users",
            Some(json!({ "userName": "scim-hetu", EXT: { "nationalId": "010101-123N" } })),
            &[],
        )
        .await;
    assert_eq!(s, 403, "national ids only from clients allowed them");
    let (_, v, _) = scim
        .call(
            reqwest::Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({ "userName": "scim-maija" })),
            &[],
        )
        .await;
    assert_eq!(
        v["active"], false,
        "a PUT without active keeps the account closed"
    );
    let (s, _, _) = scim
        .call(
            reqwest::Method::PATCH,
            &format!("/Users/{matti_id}"),
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "path": "password", "value": "matin-uusi-salasana" }] })),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    let updated = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("user.updated"), None, 1).unwrap()
        })
        .await;
    assert!(
        updated[0].details.contains("\"password_changed\":true"),
        "{}",
        updated[0].details
    );

    // Delete is the register's soft delete: gone from SCIM, closed, erased later.
    let (s, _, _) = scim
        .call(reqwest::Method::DELETE, &format!("/Users/{id}"), None, &[])
        .await;
    assert_eq!(s, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.0, 404);
    assert_eq!(
        scim.total(r#"userName sw "scim-""#).await,
        2,
        "scim-matti and scim-paakayttaja"
    );
    let requested = app
        .with_conn({
            let id = id.clone();
            move |c| {
                kuntalaistili_schema::users::find_by_id(c, &id)
                    .unwrap()
                    .unwrap()
                    .erasure_requested_at
            }
        })
        .await;
    assert!(requested.is_some());

    // Errors: no token, wrong scope, bad JSON.
    let r = app
        .client
        .get(app.url("/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let other = Scim {
        app: &app,
        token: app.client_token("residents:read").await,
    };
    assert_eq!(other.get("/Users").await.0, 403);
    let r = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&scim.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let created = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("user.created"), None, 10).unwrap()
        })
        .await;
    // Everyone but the administrator made by the test itself came through SCIM.
    assert!(created
        .iter()
        .filter(|e| e.subject.as_deref() != Some(boss.id.as_str()))
        .all(|e| e
            .actor
            .as_deref()
            .unwrap_or_default()
            .starts_with("client:")));
}

//! The customer register over SCIM 2.0 (RFC 7644), raw HTTP as in the RFC's examples: discovery,
//! create, filters, pagination, PATCH, PUT, ETags, groups feeding access rights, soft delete, and
//! errors in the SCIM error format. (tests/interop/scim drives the same API with a SCIM client
//! library from PyPI.)

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(
    scim_users_and_groups_round_trip,
    a_scim_client_library_from_pypi_round_trips,
    scim_external_ids_partial_representations_and_search
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

/// `externalId` kept and filtered on (case-exact), `attributes` / `excludedAttributes`
/// (RFC 7644 §3.9), `POST …/.search` (§3.4.3), a GET after PATCH showing what was patched, and
/// SCIM errors for unsupported methods and unknown paths.
async fn scim_external_ids_partial_representations_and_search(b: Backend) {
    let app = TestApp::start(b).await;
    let scim = Scim {
        app: &app,
        token: app.client_token("scim").await,
    };
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    let (s, u, _) = scim
        .call(
            post.clone(),
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "scim-ext",
                "externalId": "HR-0042",
                "name": { "givenName": "Eila", "familyName": "Ext" },
                "emails": [{ "value": "eila@example.fi", "primary": true }],
            })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["externalId"], "HR-0042");
    assert_eq!(u["emails"], json!([{ "value": "eila@example.fi" }]));
    assert!(u["name"].get("formatted").is_none(), "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(scim.total(r#"externalId eq "HR-0042""#).await, 1);
    assert_eq!(scim.total(r#"externalId eq "hr-0042""#).await, 0);
    assert_eq!(
        scim.total(r#"externalId sw "HR" and userName eq "SCIM-EXT""#)
            .await,
        1
    );

    // Partial representations: id, schemas and meta always come along.
    let (s, v) = scim
        .get(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(s, 200);
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "meta", "name", "schemas", "userName"], "{v}");
    assert_eq!(v["name"], json!({ "givenName": "Eila" }));
    let (_, v) = scim
        .get(&format!(
            "/Users/{id}?excludedAttributes=emails,externalId,id"
        ))
        .await;
    assert!(v.get("emails").is_none() && v.get("externalId").is_none());
    assert_eq!(v["id"], id.as_str());
    let (_, v) = scim
        .get("/Users?filter=userName%20eq%20%22scim-ext%22&attributes=emails.value")
        .await;
    assert_eq!(
        v["Resources"][0]["emails"],
        json!([{ "value": "eila@example.fi" }])
    );
    assert!(v["Resources"][0].get("userName").is_none());

    // PATCH: an added email replaces the one kept; removed channels stay removed; the external
    // id can be replaced and removed.
    let ops = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });
    let (s, v, _) = scim
        .call(
            patch.clone(),
            &format!("/Users/{id}"),
            Some(ops(json!([
                { "op": "add", "path": "emails", "value": [{ "value": "eila.ext@example.fi" }] },
                { "op": "remove", "path": format!("{EXT}:messageChannels") },
                { "op": "replace", "path": "externalId", "value": "HR-0043" },
            ]))),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["emails"], json!([{ "value": "eila.ext@example.fi" }]));
    assert!(v[EXT].get("messageChannels").is_none(), "{v}");
    assert_eq!(v["externalId"], "HR-0043");
    let (_, v, _) = scim
        .call(
            patch.clone(),
            &format!("/Users/{id}"),
            Some(ops(
                json!([{ "op": "remove", "path": "externalId" }, { "op": "replace", "path": "name.familyName", "value": "Ulkoinen" }]),
            )),
            &[],
        )
        .await;
    assert!(v.get("externalId").is_none(), "{v}");
    assert!(v[EXT].get("messageChannels").is_none(), "{v}");
    let (_, got) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(
        got["name"],
        json!({ "givenName": "Eila", "familyName": "Ulkoinen" })
    );

    // Groups keep an external id too.
    let (s, g, _) = scim
        .call(
            post.clone(),
            "/Groups",
            Some(json!({ "displayName": "Ulkoiset", "externalId": "AD-G-7",
                "members": [{ "value": id }] })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["externalId"], "AD-G-7");
    let (_, v) = scim
        .get("/Groups?filter=externalId%20eq%20%22AD-G-7%22&excludedAttributes=members")
        .await;
    assert_eq!(v["totalResults"], 1);
    assert!(v["Resources"][0].get("members").is_none());

    // Searches (RFC 7644 §3.4.3).
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"scim-ext\"",
        "attributes": ["userName"],
    });
    let (s, v, _) = scim
        .call(post.clone(), "/Users/.search", Some(search.clone()), &[])
        .await;
    assert_eq!((s, &v["totalResults"]), (200, &json!(1)), "{v}");
    assert_eq!(v["Resources"][0]["userName"], "scim-ext");
    assert!(v["Resources"][0].get("name").is_none());
    let (_, v, _) = scim
        .call(post.clone(), "/.search", Some(json!({ "count": 50 })), &[])
        .await;
    let types: Vec<_> = v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"User".to_owned()) && types.contains(&"Group".to_owned()));
    let (_, v, _) = scim
        .call(
            post.clone(),
            "/Groups/.search",
            Some(json!({ "filter": "displayName eq \"Ulkoiset\"", "startIndex": 1, "count": 1 })),
            &[],
        )
        .await;
    assert_eq!(v["totalResults"], 1);
    // Sorting (RFC 7644 §3.4.2.3), here the people by userName, descending.
    for name in ["scim-aino", "scim-zyy"] {
        let (s, _, _) = scim
            .call(
                post.clone(),
                "/Users",
                Some(json!({ "userName": name })),
                &[],
            )
            .await;
        assert_eq!(s, 201);
    }
    let (s, v) = scim
        .get("/Users?sortBy=userName&sortOrder=descending&attributes=userName")
        .await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scim-zyy", "scim-ext", "scim-aino"]);
    let (s, _) = scim.get("/Users?sortBy=userName&sortOrder=sideways").await;
    assert_eq!(s, 400);
    // Writes answer with the representation asked for too.
    let (s, v, _) = scim
        .call(
            post.clone(),
            "/Users?attributes=userName",
            Some(json!({ "userName": "scim-osittain", "externalId": "X-1" })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "meta", "schemas", "userName"], "{v}");
    let (s, v, _) = scim
        .call(
            patch.clone(),
            &format!(
                "/Users/{}?excludedAttributes=externalId",
                v["id"].as_str().unwrap()
            ),
            Some(ops(
                json!([{ "op": "replace", "path": "externalId", "value": "X-2" }]),
            )),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("externalId").is_none() && v["userName"] == "scim-osittain");
    for (bad, scim_type) in [
        (json!({ "filter": "userName zz 1" }), "invalidFilter"),
        (json!({ "filter": 7 }), "invalidFilter"),
        (json!({ "schemas": ["urn:x"] }), "invalidSyntax"),
        (json!({ "attributes": [{}] }), "invalidValue"),
        (json!({ "count": "many" }), "invalidValue"),
    ] {
        let (s, v, _) = scim.call(post.clone(), "/.search", Some(bad), &[]).await;
        assert_eq!((s, &v["scimType"]), (400, &json!(scim_type)), "{v}");
    }

    // Unsupported methods are 405, unknown paths 404, both as SCIM errors.
    for (method, path) in [
        (reqwest::Method::DELETE, "/ServiceProviderConfig"),
        (post.clone(), "/Schemas"),
        (reqwest::Method::PUT, "/ResourceTypes/User"),
        (reqwest::Method::GET, "/.search"),
        (reqwest::Method::DELETE, "/Users"),
        (post.clone(), &*format!("/Users/{id}")),
    ] {
        let (s, _, h) = scim.call(method.clone(), path, None, &[]).await;
        assert_eq!(s, 405, "{method} {path}");
        assert!(h.contains_key("allow"));
    }
    let (s, _) = scim.get("/Nothing/here").await;
    assert_eq!(s, 404);
    let (s, _) = scim.get(&format!("/Users/{id}?count=x")).await;
    assert_eq!(s, 400);
}

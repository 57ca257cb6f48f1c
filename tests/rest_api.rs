//! The REST API as documented: the OpenAPI document describes exactly the routes that answer
//! (every documented operation exists and demands a token; a token without the operation's scope
//! gets 403 problem JSON), and administrators' tools manage people and relying parties with it.

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(
    the_openapi_document_matches_the_routes,
    administrators_manage_people_and_clients_over_rest
);

async fn the_openapi_document_matches_the_routes(b: Backend) {
    let app = TestApp::start(b).await;
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    for must in [
        "/api/v1/users",
        "/api/v1/clients/{id}/secret",
        "/api/v1/authz/check",
        "/api/v1/authz/grants",
        "/api/v1/residents/lookup",
        "/api/v1/audit/events",
        "/api/v1/messages",
    ] {
        assert!(paths.contains_key(must), "{must} is not documented");
    }
    let wrong_scope = app.client_token("notices:write").await;
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let scopes: Vec<&str> = op["security"][0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} names no scope"))
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert!(!scopes.is_empty());
            let url = app.url(
                &path
                    .replace("{id}", "x")
                    .replace("{sub}", "x")
                    .replace("{name}", "x"),
            );
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Without a token: 401 (the route exists and is guarded)…
            let r = app.client.request(m.clone(), &url).send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path}");
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            // …with a token of another scope: 403.
            let r = app
                .client
                .request(m, &url)
                .bearer_auth(&wrong_scope)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
        }
    }
    assert!(operations >= 28, "{operations}");
}

async fn administrators_manage_people_and_clients_over_rest(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = app.client_token("admin").await;
    let call = |m: reqwest::Method, path: &str, body: Option<Value>| {
        let (app, admin, path) = (&app, admin.clone(), path.to_owned());
        async move {
            let mut rq = app.client.request(m, app.url(&path)).bearer_auth(admin);
            if let Some(b) = body {
                rq = rq.json(&b);
            }
            let r = rq.send().await.unwrap();
            let s = r.status().as_u16();
            if s >= 400 {
                assert_eq!(
                    r.headers()["content-type"],
                    "application/problem+json",
                    "{path}"
                );
            }
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    // People.
    let (s, p) = call(
        Method::POST,
        "/api/v1/users",
        Some(json!({ "username": "rest-maija", "password": "rest-salasana-1", "email": "maija@example.fi",
            "national_id": "131052-308T", "preferred_language": "sv" })),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert!(
        !p.to_string().contains("308T"),
        "the national id is never returned"
    );
    for (body, want) in [
        (json!({ "username": "rest-maija" }), 409),
        (json!({ "username": "x", "email": "ei-osoite" }), 400),
        (
            json!({ "username": "y", "national_id": "131052-308X" }),
            400,
        ),
        (json!({ "username": "z", "unknown": 1 }), 400),
        (json!({ "username": "w", "role": "superuser" }), 400),
    ] {
        assert_eq!(
            call(Method::POST, "/api/v1/users", Some(body.clone()))
                .await
                .0,
            want,
            "{body}"
        );
    }
    call(
        Method::POST,
        "/api/v1/users",
        Some(json!({ "username": "rest-matti" })),
    )
    .await;
    let (s, page) = call(Method::GET, "/api/v1/users?q=rest-&limit=1", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (page["total"].as_u64(), page["next_offset"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        call(Method::GET, "/api/v1/users?limit=0", None).await.0,
        400
    );
    let (s, got) = call(Method::GET, &format!("/api/v1/users/{id}"), None).await;
    assert_eq!((s, &got["username"]), (200, &json!("rest-maija")));
    assert_eq!(call(Method::GET, "/api/v1/users/nobody", None).await.0, 404);
    assert_eq!(
        app.login(&app.browser(), "rest-maija", "rest-salasana-1")
            .await
            .status(),
        303
    );
    assert_eq!(
        call(Method::POST, &format!("/api/v1/users/{id}/disable"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.login(&app.browser(), "rest-maija", "rest-salasana-1")
            .await
            .status(),
        401
    );
    assert_eq!(
        call(Method::DELETE, &format!("/api/v1/users/{id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(Method::DELETE, &format!("/api/v1/users/{id}"), None)
            .await
            .0,
        404
    );

    // Relying parties.
    let (s, c) = call(
        Method::POST,
        "/api/v1/clients",
        Some(
            json!({ "client_name": "Varausjärjestelmä", "grant_types": ["client_credentials"],
            "scope": "notices:write" }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let token = |secret: String| {
        let (app, cid) = (&app, cid.clone());
        async move {
            app.client
                .post(app.url("/oauth2/token"))
                .basic_auth(&cid, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(token(secret.clone()).await, 200);
    let (s, rotated) = call(Method::POST, &format!("/api/v1/clients/{cid}/secret"), None).await;
    assert_eq!(s, 200);
    assert_eq!(token(secret).await, 401);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token(new_secret.clone()).await, 200);
    let (s, shown) = call(Method::GET, &format!("/api/v1/clients/{cid}"), None).await;
    assert_eq!(s, 200);
    assert!(shown.get("client_secret").is_none());
    // Edited: out of use (no tokens), back in use, renamed; bad input is a problem JSON 400.
    let (s, patched) = call(
        Method::PATCH,
        &format!("/api/v1/clients/{cid}"),
        Some(json!({ "disabled": true, "name": "Uusi nimi" })),
    )
    .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(token(new_secret.clone()).await, 401);
    let (s, _) = call(
        Method::PATCH,
        &format!("/api/v1/clients/{cid}"),
        Some(json!({ "disabled": false })),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(token(new_secret.clone()).await, 200);
    let (s, shown) = call(Method::GET, &format!("/api/v1/clients/{cid}"), None).await;
    assert_eq!(
        (s, shown["client_name"].as_str()),
        (200, Some("Uusi nimi")),
        "{shown}"
    );
    let (s, _) = call(
        Method::PATCH,
        &format!("/api/v1/clients/{cid}"),
        Some(json!({ "redirect_uris": ["http://rp.example.fi/cb"] })),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        Method::PATCH,
        "/api/v1/clients/nobody",
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(s, 404);
    let (_, list) = call(Method::GET, "/api/v1/clients", None).await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_id"] == cid.as_str()));
    assert_eq!(
        call(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "client_name": "Rikki", "redirect_uris": ["http://rp.example.fi/cb"] }))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(Method::DELETE, &format!("/api/v1/clients/{cid}"), None)
            .await
            .0,
        204
    );
    assert_eq!(token(new_secret).await, 401);
    assert_eq!(
        call(Method::DELETE, &format!("/api/v1/clients/{cid}"), None)
            .await
            .0,
        404
    );

    // Audited under the calling client.
    let events = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("user.erasure_requested"), None, 5).unwrap()
        })
        .await;
    assert_eq!(events.len(), 1);
    assert!(events[0].actor.as_deref().unwrap().starts_with("client:"));
}

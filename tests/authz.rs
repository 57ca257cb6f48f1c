//! Access rights: a permission granted to one person reaches their ID token, userinfo and the
//! check API, and leaves all three when revoked; roles, groups, validity periods and disabled
//! accounts; the operator CLI changes what a running server answers at its next check; bad input
//! is problem JSON.

use crate::oidc::{add_rp, code_for, exchange, logged_in, userinfo};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(
    a_grant_to_one_person_reaches_tokens_and_checks_until_revoked,
    roles_groups_and_periods_take_effect_at_the_next_check,
    operator_cli_changes_what_the_server_answers,
    bad_requests_get_problem_json,
);

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rq = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    if status >= 400 {
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path} → {status}"
        );
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn check(app: &TestApp, token: &str, sub: &str, service: &str, perm: &str) -> (u16, Value) {
    call(
        app,
        reqwest::Method::POST,
        "/api/v1/authz/check",
        token,
        Some(json!({ "sub": sub, "service": service, "permission": perm })),
    )
    .await
}

async fn allowed(app: &TestApp, token: &str, sub: &str, service: &str, perm: &str) -> bool {
    let (s, v) = check(app, token, sub, service, perm).await;
    assert_eq!(s, 200, "{v}");
    v["allowed"].as_bool().unwrap()
}

fn payload(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

async fn audit_count(app: &TestApp, kind: &'static str) -> usize {
    app.with_conn(move |c| {
        kuntalaistili_schema::audit::recent(c, Some(kind), None, 500)
            .unwrap()
            .len()
    })
    .await
}

async fn a_grant_to_one_person_reaches_tokens_and_checks_until_revoked(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |c| c.release_permissions = vec!["directory".into()]).await;
    let browser = logged_in(&app, "liisa").await;
    let liisa = app
        .with_conn(|c| {
            kuntalaistili_schema::users::find_by_username(c, "liisa")
                .unwrap()
                .unwrap()
        })
        .await;
    let pekka = app.add_user("pekka", "pekan-salasana-1").await;
    let admin = app.client_token("admin").await;
    let checker = app.client_token("authz:check").await;

    let (s, g) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/authz/grants",
        &admin,
        Some(json!({ "user": liisa.id, "permission": "directory:edit" })),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["permission"], "directory:edit");
    assert_eq!(
        g["granted_by"].as_str().unwrap().split(':').next(),
        Some("client")
    );
    // Pekka's right in another service is not the relying party's business.
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/authz/grants",
        &admin,
        Some(json!({ "user": pekka.id, "permission": "forms:handle" })),
    )
    .await;
    assert_eq!(s, 201);

    assert!(allowed(&app, &checker, &liisa.id, "directory", "edit").await);
    assert!(allowed(&app, &checker, &liisa.id, "directory", "directory:edit").await);
    assert!(!allowed(&app, &checker, &liisa.id, "directory", "publish").await);
    assert!(!allowed(&app, &checker, &pekka.id, "directory", "edit").await);
    assert!(allowed(&app, &checker, &pekka.id, "forms", "handle").await);
    assert_eq!(audit_count(&app, "authz.denied").await, 2);
    let (s, v) = check(&app, &checker, "ei-ketaan", "directory", "edit").await;
    assert_eq!((s, v["status"].as_u64()), (404, Some(404)));

    // The ID token and userinfo carry it for a relying party configured for the directory.
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (s, t) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["permissions"],
        json!(["directory:edit"])
    );
    let (s, ui) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!((s, &ui["permissions"]), (200, &json!(["directory:edit"])));
    // A relying party not configured for it learns nothing.
    let plain = add_rp(&app, |_| {}).await;
    let (code, verifier) = code_for(&app, &browser, &plain).await;
    let (_, t2) = exchange(&app, &plain, &code, &verifier).await;
    assert!(payload(t2["id_token"].as_str().unwrap())
        .get("permissions")
        .is_none());

    // The admin API lists it, with how it was granted.
    let (s, p) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/authz/people/{}", liisa.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["entitlements"][0]["permission"], "directory:edit");
    assert_eq!(p["entitlements"][0]["in_force"], true);

    // Revoked: gone from the check at once and from the next token.
    let (s, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/authz/grants/{}", g["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(!allowed(&app, &checker, &liisa.id, "directory", "edit").await);
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["permissions"],
        json!([])
    );
    let (s, ui) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!((s, &ui["permissions"]), (200, &json!([])));
    assert_eq!(audit_count(&app, "authz.granted").await, 2);
    assert_eq!(audit_count(&app, "authz.revoked").await, 1);

    // Only the admin scope manages rights; only authz:check asks.
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/authz/grants",
        &checker,
        Some(json!({ "user": liisa.id, "permission": "directory:edit" })),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = check(&app, &admin, &liisa.id, "directory", "edit").await;
    assert_eq!(s, 403);
    let (s, _) = check(&app, "not-a-token", &liisa.id, "directory", "edit").await;
    assert_eq!(s, 401);
}

async fn roles_groups_and_periods_take_effect_at_the_next_check(b: Backend) {
    let app = TestApp::start(b).await;
    let anna = app.add_user("anna", "annan-salasana-1").await;
    let admin = app.client_token("admin").await;
    let checker = app.client_token("authz:check").await;
    let put = |path: String, body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move { call(app, reqwest::Method::PUT, &path, &admin, Some(body)).await }
    };

    let (s, _) = put(
        "/api/v1/authz/roles/kirjastovirkailija".into(),
        json!({ "description": "Lainaus ja palautus", "permissions": ["library:lend", "library:return"] }),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = put("/api/v1/authz/groups/kirjasto".into(), json!({})).await;
    assert_eq!(s, 201);
    let (s, _) = put(
        format!("/api/v1/authz/groups/kirjasto/members/{}", anna.id),
        Value::Null,
    )
    .await;
    assert_eq!(s, 204);
    let (s, g) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/authz/grants",
        &admin,
        Some(json!({ "group": "kirjasto", "role": "kirjastovirkailija" })),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    assert!(allowed(&app, &checker, &anna.id, "library", "lend").await);
    assert!(!allowed(&app, &checker, &anna.id, "library", "purchase").await);

    // The role changes: the next check follows.
    let (s, _) = put(
        "/api/v1/authz/roles/kirjastovirkailija".into(),
        json!({ "permissions": ["library:*"] }),
    )
    .await;
    assert_eq!(s, 200);
    assert!(allowed(&app, &checker, &anna.id, "library", "purchase").await);

    // Out of the group: out of the role.
    let (s, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/authz/groups/kirjasto/members/{}", anna.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(!allowed(&app, &checker, &anna.id, "library", "lend").await);

    // Validity periods: not yet, no longer, and now.
    let now = chrono::Utc::now();
    for (perm, from, until) in [
        ("sports:future", Some(now + chrono::Duration::days(1)), None),
        (
            "sports:past",
            None,
            Some(now - chrono::Duration::minutes(1)),
        ),
        (
            "sports:current",
            Some(now - chrono::Duration::minutes(1)),
            Some(now + chrono::Duration::days(1)),
        ),
    ] {
        let (s, v) = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/authz/grants",
            &admin,
            Some(json!({ "user": anna.id, "permission": perm, "valid_from": from, "valid_until": until })),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    assert!(!allowed(&app, &checker, &anna.id, "sports", "future").await);
    assert!(!allowed(&app, &checker, &anna.id, "sports", "past").await);
    assert!(allowed(&app, &checker, &anna.id, "sports", "current").await);

    // Pagination of the grant list (three of Anna's own, newest first).
    let (s, page) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/authz/grants?user={}&limit=2", anna.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2);
    let (_, rest) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/authz/grants?user={}&limit=2&offset=2", anna.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_offset"], Value::Null);

    // A disabled account holds nothing.
    app.with_conn(|c| {
        kuntalaistili_idp::customers::disable(c, "anna", "test", kuntalaistili_schema::now_utc())
            .unwrap()
    })
    .await;
    assert!(!allowed(&app, &checker, &anna.id, "sports", "current").await);
}

async fn operator_cli_changes_what_the_server_answers(b: Backend) {
    let app = TestApp::start(b).await;
    let ville = app.add_user("ville", "villen-salasana-1").await;
    let checker = app.client_token("authz:check").await;
    // The server's index is warm before the CLI (another process) changes anything.
    assert!(!allowed(&app, &checker, &ville.id, "feedback", "answer").await);
    let (code, v) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "role",
            "palauteasiantuntija",
            "--permissions",
            "feedback:answer,feedback:read",
        ])
    });
    assert_eq!((code, &v["created"]), (0, &json!(true)), "{v}");
    let (code, g) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "ville",
            "--role",
            "palauteasiantuntija",
        ])
    });
    assert_eq!(code, 0, "{g}");
    assert!(allowed(&app, &checker, &ville.id, "feedback", "answer").await);
    let (code, v) =
        tokio::task::block_in_place(|| app.cli_json(&["authz", "check", "ville", "feedback:read"]));
    assert_eq!((code, &v["allowed"]), (0, &json!(true)));
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&["authz", "revoke", g["id"].as_str().unwrap()])
    });
    assert_eq!(code, 0);
    assert!(!allowed(&app, &checker, &ville.id, "feedback", "answer").await);
    let (code, v) =
        tokio::task::block_in_place(|| app.cli_json(&["authz", "check", "ville", "feedback:read"]));
    assert_eq!((code, &v["allowed"]), (3, &json!(false)));
    // Bad input is an error, not a change.
    let (code, v) = tokio::task::block_in_place(|| {
        app.cli_json(&["authz", "role", "Bad Name", "--permissions", "x:y"])
    });
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap().contains("role name"), "{v}");
    let (code, v) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "ville",
            "--permission",
            "noservice",
        ])
    });
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("service:function"),
        "{v}"
    );
}

async fn bad_requests_get_problem_json(b: Backend) {
    let app = TestApp::start(b).await;
    let u = app.add_user("sanna", "sannan-salasana-1").await;
    let admin = app.client_token("admin").await;
    let checker = app.client_token("authz:check").await;
    let post = |path: &'static str, token: String, body: Value| {
        let app = &app;
        async move { call(app, reqwest::Method::POST, path, &token, Some(body)).await }
    };
    for body in [
        json!({ "user": u.id, "group": "x", "permission": "a:b" }),
        json!({ "user": u.id }),
        json!({ "user": u.id, "role": "r", "permission": "a:b" }),
        json!({ "user": u.id, "permission": "a:b:c" }),
        json!({ "user": u.id, "permission": "a:b", "extra": 1 }),
        json!({ "user": u.id, "permission": "a:b", "valid_from": "yesterday" }),
        json!({ "user": u.id, "permission": "a:b", "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z" }),
        json!([1, 2]),
    ] {
        let (s, v) = post("/api/v1/authz/grants", admin.clone(), body.clone()).await;
        assert_eq!(s, 400, "{body} → {v}");
    }
    for body in [
        json!({ "user": "nobody", "permission": "a:b" }),
        json!({ "user": u.id, "role": "no-such-role" }),
        json!({ "group": "no-such-group", "permission": "a:b" }),
    ] {
        let (s, v) = post("/api/v1/authz/grants", admin.clone(), body.clone()).await;
        assert_eq!(s, 404, "{body} → {v}");
    }
    for body in [
        json!({ "sub": u.id, "service": "Directory", "permission": "edit" }),
        json!({ "sub": u.id, "service": "directory", "permission": "forms:edit" }),
        json!({ "sub": u.id, "service": "directory", "permission": "*" }),
        json!({ "sub": u.id, "service": "directory" }),
    ] {
        let (s, v) = post("/api/v1/authz/check", checker.clone(), body.clone()).await;
        assert_eq!(s, 400, "{body} → {v}");
    }
    let big = "x".repeat(20_000);
    let (s, _) = post(
        "/api/v1/authz/check",
        checker.clone(),
        json!({ "sub": big, "service": "a", "permission": "b" }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &app,
        reqwest::Method::PUT,
        "/api/v1/authz/roles/r",
        &admin,
        Some(json!({ "permissions": [] })),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/authz/roles/none",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/authz/grants?limit=0",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 400);
}

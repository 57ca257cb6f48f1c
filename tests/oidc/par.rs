//! Authorization answered with `form_post`, and pushed authorization requests (PAR).

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::*;

dual!(
    form_post_answers_with_a_self_submitting_form,
    pushed_authorization_requests_work_once,
);

async fn form_post_answers_with_a_self_submitting_form(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "form").await;
    let (verifier, challenge) = pkce();
    let r = authorize(
        &app,
        &browser,
        &auth_query(
            &rp,
            &challenge,
            &[("response_mode", "form_post"), ("state", "<b>\"x\"</b>")],
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action https://rp.example.fi") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("action=\"{}\"", REDIRECT.replace('/', "&#x2F;"))),
        "{html}"
    );
    assert!(!html.contains("<b>\"x\"</b>"), "state is escaped");
    assert!(html.contains("name=\"iss\""));
    let code = kuntalaistili_tests::field_from(&html, "code").unwrap();
    assert_eq!(exchange(&app, &rp, &code, &verifier).await.0, 200);
    // The script the CSP allows is exactly the one on the page.
    let hash = STANDARD.encode(Sha256::digest(
        kuntalaistili_idp::render::FORM_POST_SCRIPT.as_bytes(),
    ));
    assert!(csp.contains(&hash) && html.contains(kuntalaistili_idp::render::FORM_POST_SCRIPT));
}

async fn pushed_authorization_requests_work_once(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "par").await;
    let (verifier, challenge) = pkce();
    let q = auth_query(&rp, &challenge, &[]);
    let r = app
        .client
        .post(app.url("/oauth2/par"))
        .header("authorization", rp.basic())
        .form(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);
    let q2 = vec![
        ("client_id".to_owned(), rp.id.clone()),
        ("request_uri".to_owned(), uri.clone()),
    ];
    let r = authorize(&app, &browser, &q2).await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "state"), Some("tila-123"));
    assert_eq!(
        exchange(&app, &rp, param(&p, "code").unwrap(), &verifier)
            .await
            .0,
        200
    );
    // Single use.
    let r = authorize(&app, &browser, &q2).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Unauthenticated, or a bad request: JSON errors.
    let r = app
        .client
        .post(app.url("/oauth2/par"))
        .form(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let bad = auth_query(&rp, &challenge, &[("code_challenge_method", "plain")]);
    let r = app
        .client
        .post(app.url("/oauth2/par"))
        .header("authorization", rp.basic())
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
}

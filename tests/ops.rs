//! Operations endpoints and behaviour when the database goes away.

use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(
    health_readiness_and_metrics,
    database_down_fails_readiness_and_shows_clear_login_error
);

async fn health_readiness_and_metrics(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("reija", "oikea-salasana").await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    assert_eq!(
        app.login(&app.client, "reija", "oikea-salasana")
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login(&kuntalaistili_tests::new_client(), "reija", "väärin")
            .await
            .status(),
        401
    );
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("kuntalaistili_logins_total{result=\"success\"} 1"),
        "{text}"
    );
    assert!(text.contains("kuntalaistili_logins_total{result=\"failure\"} 1"));
    assert!(text.contains("kuntalaistili_sessions_active 1"));
    assert!(text.contains("kuntalaistili_db_up 1"));
    assert!(text.contains("process_resident_memory_bytes"));
}

async fn database_down_fails_readiness_and_shows_clear_login_error(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("dora", "oikea-salasana").await;
    let csrf = app.csrf_token(&app.client, "/login").await;
    app.db.take_down();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "database"
    );
    let r = app
        .post_form(
            &app.client,
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("username", "dora"),
                ("password", "oikea-salasana"),
            ],
        )
        .await;
    assert_eq!(r.status(), 503);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Palvelu ei ole juuri nyt käytettävissä"),
        "{html}"
    );
    // The process is still there and healthy.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("kuntalaistili_db_up 0"));
}

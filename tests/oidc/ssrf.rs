//! Blind SSRF through dynamic registration (issue 22, item 9): a registered client's back-channel
//! logout URI must be https on a public address (loopback only in development), checked when it
//! registers and again when the IdP calls it — where nothing is sent to a refused address and the
//! refusal is audited.

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(
    registered_back_channel_uris_reach_only_public_addresses,
    development_allows_a_loopback_relying_party,
);

async fn register(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/oauth2/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

fn client(redirect: &str, bc: &str) -> Value {
    json!({
        "client_name": "Ulkoinen",
        "redirect_uris": [redirect],
        "scope": "openid",
        "backchannel_logout_uri": bc,
    })
}

async fn registered_back_channel_uris_reach_only_public_addresses(b: Backend) {
    // A production server (https public URL): no development exceptions.
    let app = TestApp::start_with(b, |c| {
        c.oidc.registration = "open".into();
        c.public_url = Some("https://kirjaudu.example.fi".into());
    })
    .await;
    for (redirect, bc) in [
        ("https://127.0.0.1/cb", "https://127.0.0.1:8080/admin/users"),
        ("https://localhost/cb", "https://localhost/bc"),
        ("https://[::1]/cb", "https://[::1]/bc"),
        (
            "https://169.254.169.254/cb",
            "https://169.254.169.254/latest/meta-data",
        ),
        ("https://10.1.2.3/cb", "https://10.1.2.3/bc"),
        ("https://rp.example.fi/cb", "http://rp.example.fi/bc"),
        ("https://rp.example.fi/cb", "https://other.example.fi/bc"),
    ] {
        let (s, e) = register(&app, client(redirect, bc)).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{bc}: {e}"
        );
    }
    let (s, ok) = register(
        &app,
        client("https://rp.example.fi/cb", "https://rp.example.fi/bc"),
    )
    .await;
    assert_eq!(s, 201, "{ok}");

    // A client whose address was stored before the rule (or by a looser node) is refused at
    // call time: nothing reaches the address, and the audit log says why.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let user = app.add_user("ssrf", "ssrf-salasana-pitka").await;
    let uid = user.id.clone();
    app.with_conn(move |c| {
        use kuntalaistili_federation::clients::{self, NewClient};
        let now = kuntalaistili_schema::now_utc();
        let (old, _) = clients::add(
            c,
            NewClient {
                name: "Vanha".into(),
                redirect_uris: vec![format!("https://localhost:{port}/cb")],
                grant_types: vec!["authorization_code".into()],
                scopes: "openid".into(),
                backchannel_logout_uri: Some(format!("https://localhost:{port}/bc")),
                registration_token_hash: Some("0".repeat(64)),
                ..NewClient::default()
            },
            "test",
            now,
        )
        .unwrap();
        kuntalaistili_schema::oidc_flows::insert_grant(
            c,
            &kuntalaistili_schema::oidc_flows::Grant {
                id: uuid::Uuid::new_v4().to_string(),
                client_id: old.client_id,
                user_id: uid,
                session_id: Some("s-1".into()),
                scope: "openid".into(),
                nonce: None,
                acr: "password".into(),
                auth_time: now,
                created_at: now,
                expires_at: now + chrono::Duration::hours(1),
                revoked_at: None,
            },
        )
        .unwrap();
    })
    .await;
    let admin = app.client_token("admin").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/users/{}/disable", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let contacted =
        tokio::time::timeout(std::time::Duration::from_secs(1), listener.accept()).await;
    assert!(
        contacted.is_err(),
        "the IdP connected to a loopback address"
    );
    let refused = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("oidc.backchannel_logout"), None, 10)
                .unwrap()
        })
        .await;
    assert!(
        refused
            .iter()
            .any(|e| e.outcome == "failure" && e.details.contains("refused")),
        "{refused:?}"
    );
}

async fn development_allows_a_loopback_relying_party(b: Backend) {
    // The test servers run on http://127.0.0.1: development.
    let app = TestApp::start_with(b, |c| c.oidc.registration = "open".into()).await;
    let (s, v) = register(
        &app,
        client("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000/bc"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    for (redirect, bc) in [
        ("http://10.1.2.3/cb", "http://10.1.2.3/bc"),
        ("https://169.254.169.254/cb", "https://169.254.169.254/bc"),
        ("http://rp.example.fi/cb", "http://rp.example.fi/bc"),
    ] {
        let (s, e) = register(&app, client(redirect, bc)).await;
        assert_eq!(s, 400, "{bc}: {e}");
    }
}

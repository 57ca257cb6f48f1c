//! mod_auth_openidc 2.4 (Debian) as two relying parties in one private Apache: RP "a" gets RS256
//! ID tokens, RP "b" ES256. A login at "a" (code flow, PKCE) gives "b" a silent single sign-on;
//! RP-initiated logout at "a" goes through our `/oauth2/logout` and ends the IdP session, and
//! our back-channel logout token to "b" (`OIDCRedirectURI?logout=backchannel`) ends its session.

use std::time::Duration;

use kuntalaistili_federation::clients::{self, NewClient};
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{free_port, run_bounded, script, state_dir};

dual!(mod_auth_openidc_logs_in_with_sso_and_logs_out_on_both_channels);

const PASSWORD: &str = "apache-salasana-pitka";

/// Registers a confidential client for the RP on `port`: redirect, post-logout and back-channel
/// URIs on loopback http; returns (client_id, secret).
async fn register(app: &TestApp, name: &str, port: u16, alg: Option<&str>) -> (String, String) {
    let base = format!("http://127.0.0.1:{port}");
    let (name, alg) = (name.to_owned(), alg.map(str::to_owned));
    app.with_conn(move |c| {
        let (client, secret) = clients::add(
            c,
            NewClient {
                name,
                redirect_uris: vec![format!("{base}/protected/redirect_uri")],
                scopes: "openid profile email".into(),
                grant_types: vec!["authorization_code".into()],
                post_logout_redirect_uris: vec![format!("{base}/loggedout.html")],
                backchannel_logout_uri: Some(format!(
                    "{base}/protected/redirect_uri?logout=backchannel"
                )),
                skip_consent: true,
                id_token_alg: alg,
                ..NewClient::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap();
        (client.client_id, secret.unwrap())
    })
    .await
}

async fn mod_auth_openidc_logs_in_with_sso_and_logs_out_on_both_channels(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("apache-user", PASSWORD).await;
    let (port_a, port_b) = (free_port(), free_port());
    let (id_a, secret_a) = register(&app, "mod_auth_openidc a", port_a, None).await;
    let (id_b, secret_b) = register(&app, "mod_auth_openidc b", port_b, Some("ES256")).await;
    let rp = state_dir(
        "openidc",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/interop/oidc/mod_auth_openidc/stop.sh"
        ),
    );
    let setup = run_bounded(
        Duration::from_secs(60),
        "bash",
        vec![
            script("oidc/mod_auth_openidc/setup.sh"),
            app.base.clone(),
            rp.state.to_string_lossy().into_owned(),
            port_a.to_string(),
            id_a.clone(),
            secret_a,
            port_b.to_string(),
            id_b.clone(),
            secret_b,
        ],
    )
    .await;
    let seen = run_bounded(
        Duration::from_secs(120),
        "/usr/bin/python3",
        vec![
            script("oidc/mod_auth_openidc/login.py"),
            app.base.clone(),
            setup["rp_a"].as_str().unwrap().to_owned(),
            setup["rp_b"].as_str().unwrap().to_owned(),
            "apache-user".into(),
            PASSWORD.into(),
        ],
    )
    .await;
    assert_eq!(seen["ok"], true, "{seen}");
    for check in [
        "a_login",
        "b_login",
        "b_silent_sso",
        "same_user",
        "logout_via_idp",
        "logout_returned",
        "idp_session_gone",
        "a_session_gone",
        "b_session_gone",
    ] {
        assert_eq!(seen["checks"][check], true, "{check}: {seen}");
    }
    assert_eq!(seen["a"]["id_token_alg"], "RS256");
    assert_eq!(seen["b"]["id_token_alg"], "ES256");
    assert_eq!(seen["a"]["id_token_iss"], app.base.as_str());
    assert_eq!(seen["a"]["remote_user"], user.id.as_str());
    assert_eq!(seen["a"]["email"], "apache-user@example.fi");

    // The IdP delivered a logout token to "b" and mod_auth_openidc accepted it (HTTP 200).
    let bc = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("oidc.backchannel_logout"), None, 50)
                .unwrap()
        })
        .await;
    let to_b: Vec<_> = bc
        .iter()
        .filter(|e| e.actor.as_deref() == Some(id_b.as_str()))
        .collect();
    assert_eq!(to_b.len(), 1, "{bc:?}");
    assert_eq!(to_b[0].outcome, "success", "{:?}", to_b[0]);
    assert!(to_b[0].details.contains("\"200\""), "{:?}", to_b[0]);
}

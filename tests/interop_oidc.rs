//! Interop with a real relying party: panva's `openid-client` (node, `tests/interop/oidc/rp.mjs`)
//! runs discovery, PAR with PKCE, the login in a cookie-keeping fetch "browser", the code grant
//! with ID token and RFC 9207 `iss` checks, userinfo, refresh and RP-initiated logout.

use kuntalaistili_federation::clients::{self, NewClient};
use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(openid_client_completes_par_code_flow_refresh_and_logout);

async fn openid_client_completes_par_code_flow_refresh_and_logout(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("rp-user", "rp-salasana-pitka").await;
    // The RP's URIs are only ever matched, never fetched.
    let redirect_uri = "http://127.0.0.1:9/cb".to_owned();
    let post_logout = "http://127.0.0.1:9/logged-out".to_owned();
    let (id, secret) = {
        let (redirect_uri, post_logout) = (redirect_uri.clone(), post_logout.clone());
        app.with_conn(move |c| {
            let (client, secret) = clients::add(
                c,
                NewClient {
                    name: "openid-client interop".into(),
                    redirect_uris: vec![redirect_uri],
                    scopes: "openid profile email offline_access".into(),
                    grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                    post_logout_redirect_uris: vec![post_logout],
                    skip_consent: true,
                    ..NewClient::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap();
            (client.client_id, secret.unwrap())
        })
        .await
    };

    let seen = kuntalaistili_tests::run_node(
        "oidc/rp.mjs",
        vec![
            app.base.clone(),
            id,
            secret,
            redirect_uri,
            "rp-user".to_owned(),
            "rp-salasana-pitka".to_owned(),
            post_logout.clone(),
        ],
    )
    .await;
    assert_eq!(seen["ok"], true);
    assert_eq!(seen["id_token_alg"], "RS256");
    assert_eq!(seen["userinfo"]["sub"], seen["sub"]);
    assert_eq!(seen["userinfo"]["email"], "rp-user@example.fi");
    assert_eq!(seen["refreshed"], true);
    let logout = seen["logout"].as_str().unwrap();
    assert!(
        logout.starts_with(&format!("{post_logout}?state=")),
        "{logout}"
    );
    assert_eq!(seen["after_logout"], "/login");

    // Both grants (code and refresh) are in the audit log.
    let issued = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("oidc.token_issued"), None, 50)
                .unwrap()
                .len()
        })
        .await;
    assert!(issued >= 2, "token_issued events: {issued}");
}

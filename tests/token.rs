//! The token endpoint's `client_credentials` grant: ES256 JWT access tokens verifiable with the
//! JWKS, client authentication by Basic and by form, and the exact OAuth errors.

use base64::Engine;
use kuntalaistili_federation::clients::{self, NewClient};
use kuntalaistili_metadata::keys;
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::Value;

dual!(
    client_credentials_issues_verifiable_access_tokens,
    token_endpoint_errors_are_exact_oauth_json,
    introspection_reports_only_our_live_access_tokens,
);

async fn add_client(app: &TestApp, grants: &[&str], scopes: &str) -> (String, String) {
    let (g, s) = (
        grants.iter().map(|g| g.to_string()).collect(),
        scopes.to_owned(),
    );
    let redirect = if grants.contains(&"authorization_code") {
        vec!["https://rp.example.fi/cb".to_owned()]
    } else {
        vec![]
    };
    app.with_conn(move |c| {
        let (client, secret) = clients::add(
            c,
            NewClient {
                name: "Testi".into(),
                grant_types: g,
                scopes: s,
                redirect_uris: redirect,
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

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn token(
    app: &TestApp,
    auth: Option<String>,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rq = app.client.post(app.url("/oauth2/token")).form(form);
    if let Some(a) = auth {
        rq = rq.header("authorization", a);
    }
    let r = rq.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    (status, r.json().await.unwrap(), headers)
}

async fn client_credentials_issues_verifiable_access_tokens(b: Backend) {
    let app = TestApp::start(b).await;
    let (id, secret) = add_client(&app, &["client_credentials"], "admin scim").await;
    let (status, body, headers) = token(
        &app,
        Some(basic(&id, &secret)),
        &[("grant_type", "client_credentials"), ("scope", "scim")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "scim");
    // Counted per client in /metrics (the statistics' "tokens per client").
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "kuntalaistili_tokens_issued_total{{client=\"{id}\"}} 1"
        )),
        "{metrics}"
    );
    assert_eq!(body["expires_in"], 900);
    let jwks: Value = app
        .client
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = keys::verify_jwt(&jwks, body["access_token"].as_str().unwrap())
        .expect("signed by a published key");
    assert_eq!(claims["iss"], app.state.settings.public_url.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "scim");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(
                body["access_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("ES256"), Some("at+jwt"))
    );

    // client_secret_post, and all of the client's scopes when none is asked for.
    let (status, body, _) = token(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "admin scim");
}

async fn token_endpoint_errors_are_exact_oauth_json(b: Backend) {
    let app = TestApp::start(b).await;
    let (id, secret) = add_client(&app, &["client_credentials"], "admin").await;
    let (code_id, code_secret) = add_client(&app, &["authorization_code"], "openid").await;
    let cc = ("grant_type", "client_credentials");
    // (Authorization header, form, expected status, expected error)
    type Case<'a> = (Option<String>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (Some(basic(&id, "väärä")), vec![cc], 401, "invalid_client"),
        (
            Some(basic("ei-ole", &secret)),
            vec![cc],
            401,
            "invalid_client",
        ),
        (Some("Basic !!!".into()), vec![cc], 401, "invalid_client"),
        (None, vec![cc], 401, "invalid_client"),
        (Some(basic(&id, &secret)), vec![], 400, "invalid_request"),
        (
            Some(basic(&id, &secret)),
            vec![cc, ("client_secret", &secret)],
            400,
            "invalid_request",
        ),
        (
            Some(basic(&id, &secret)),
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            Some(basic(&id, &secret)),
            vec![cc, ("scope", "admin root")],
            400,
            "invalid_scope",
        ),
        (
            Some(basic(&code_id, &code_secret)),
            vec![cc],
            400,
            "unauthorized_client",
        ),
    ];
    for (auth, form, status, error) in cases {
        let basic_used = auth.as_deref().is_some_and(|a| a.starts_with("Basic"));
        let (s, body, headers) = token(&app, auth, &form).await;
        assert_eq!(
            (s, body["error"].as_str().unwrap()),
            (status, error),
            "{form:?}: {body}"
        );
        if s == 401 {
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert_eq!(challenge.starts_with("Basic"), basic_used, "{challenge}");
        }
    }
    // Malformed and oversized bodies: JSON errors, never an HTML page or a 500.
    let long = "x".repeat(3000);
    let (s, body, _) = token(
        &app,
        Some(basic(&id, &secret)),
        &[cc, ("scope", long.as_str())],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    let r = app
        .client
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = app
        .client
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

async fn introspect(app: &TestApp, auth: Option<String>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut rq = app.client.post(app.url("/oauth2/introspect")).form(form);
    if let Some(a) = auth {
        rq = rq.header("authorization", a);
    }
    let r = rq.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn introspection_reports_only_our_live_access_tokens(b: Backend) {
    let app = TestApp::start(b).await;
    let (api, api_secret) = add_client(&app, &["client_credentials"], "scim").await;
    let (rs, rs_secret) = add_client(&app, &["client_credentials"], "authz:check").await;
    let (_, body, _) = token(
        &app,
        Some(basic(&api, &api_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = body["access_token"].as_str().unwrap().to_owned();

    // A resource server (another client) asks.
    let (s, v) = introspect(&app, Some(basic(&rs, &rs_secret)), &[("token", &at)]).await;
    assert_eq!(s, 200);
    assert_eq!(v["active"], true);
    assert_eq!(
        (v["client_id"].as_str(), v["scope"].as_str()),
        (Some(api.as_str()), Some("scim"))
    );
    assert_eq!(v["token_type"], "Bearer");

    // Tampered, foreign, expired and garbage tokens are simply inactive.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"iss":"x","client_id":"a","scope":"admin","exp":9999999999}"#);
    let st = app.state.clone();
    let expired = app
        .with_conn(move |c| {
            let signer = keys::signer(c, &st.keys, keys::Alg::Es256, kuntalaistili_schema::now_utc()).unwrap();
            signer.sign_jwt(&serde_json::json!({ "iss": st.settings.public_url, "client_id": "a", "scope": "scim", "exp": 1 }))
        })
        .await;
    for t in [
        parts.join("."),
        expired,
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "x".repeat(9000),
    ] {
        let (s, v) = introspect(&app, Some(basic(&rs, &rs_secret)), &[("token", &t)]).await;
        assert_eq!((s, v), (200, serde_json::json!({ "active": false })));
    }

    // The endpoint itself needs an authenticated client and a token parameter.
    let (s, v) = introspect(&app, None, &[("token", &at)]).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    let (s, v) = introspect(&app, Some(basic(&rs, "väärä")), &[("token", &at)]).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    let (s, v) = introspect(&app, Some(basic(&rs, &rs_secret)), &[]).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")));
}

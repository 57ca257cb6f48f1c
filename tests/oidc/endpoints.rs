//! Logout (RP-initiated and back-channel), dynamic registration, discovery, and the
//! `openidconnect` crate as a relying party.

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::*;

dual!(
    rp_initiated_logout_and_back_channel_logout,
    dynamic_registration_and_management,
    discovery_describes_what_is_served,
    openidconnect_crate_completes_the_code_flow,
);

/// A one-request HTTP server that captures a back-channel logout POST body.
async fn logout_receiver() -> (String, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(h) = text.find("\r\n\r\n") {
                let len = text[..h]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= h + 4 + len {
                    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tx.send(text[h + 4..].to_owned());
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

async fn rp_initiated_logout_and_back_channel_logout(b: Backend) {
    let app = TestApp::start(b).await;
    let (bc_url, received) = logout_receiver().await;
    let rp = add_rp(&app, move |n| {
        n.post_logout_redirect_uris = vec!["https://rp.example.fi/logged-out".into()];
        n.backchannel_logout_uri = Some(bc_url);
    })
    .await;
    let browser = logged_in(&app, "ulos").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let id_token = t["id_token"].as_str().unwrap().to_owned();
    let keys = jwks(&app).await;
    let idc = kuntalaistili_metadata::keys::verify_jwt(&keys, &id_token).unwrap();

    let end = |q: Vec<(&'static str, String)>| {
        let app = &app;
        let browser = &browser;
        async move {
            browser
                .get(app.url("/oauth2/logout"))
                .query(&q)
                .send()
                .await
                .unwrap()
        }
    };
    // An unregistered target, or a tampered hint (alg=none): an error page, no redirect.
    let r = end(vec![
        ("id_token_hint", id_token.clone()),
        ("post_logout_redirect_uri", "https://evil.example/".into()),
    ])
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let mut parts: Vec<&str> = id_token.split('.').collect();
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    parts[0] = &none;
    parts[2] = "";
    let r = end(vec![
        ("id_token_hint", parts.join(".")),
        (
            "post_logout_redirect_uri",
            "https://rp.example.fi/logged-out".into(),
        ),
    ])
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // An access token is not an ID token hint, even though we signed it.
    let r = end(vec![
        (
            "id_token_hint",
            t["access_token"].as_str().unwrap().to_owned(),
        ),
        (
            "post_logout_redirect_uri",
            "https://rp.example.fi/logged-out".into(),
        ),
    ])
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Without a hint the resident is asked first.
    let r = end(vec![
        ("client_id", rp.id.clone()),
        (
            "post_logout_redirect_uri",
            "https://rp.example.fi/logged-out".into(),
        ),
    ])
    .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("action=\"&#x2F;oauth2&#x2F;logout\""));
    // With the session's own hint: logged out at once, sent back with state.
    let r = end(vec![
        ("id_token_hint", id_token.clone()),
        (
            "post_logout_redirect_uri",
            "https://rp.example.fi/logged-out".into(),
        ),
        ("state", "s1".into()),
    ])
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "https://rp.example.fi/logged-out?state=s1"
    );
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303, "the session has ended");
    assert_eq!(
        userinfo(&app, t["access_token"].as_str().unwrap()).await.0,
        401
    );

    // The RP got a logout token for the session.
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(header_of(&token)["typ"], "logout+jwt");
    let lc = kuntalaistili_metadata::keys::verify_jwt(&keys, &token).unwrap();
    assert_eq!(lc["aud"], rp.id.as_str());
    assert_eq!(lc["sid"], idc["sid"]);
    assert_eq!(lc["sub"], idc["sub"]);
    assert!(lc["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(lc.get("nonce").is_none());
    // Audited (written right after the delivery).
    let mut n = 0;
    for _ in 0..50 {
        n = audit_count(&app, "oidc.backchannel_logout").await;
        if n > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(n, 1);
}

async fn dynamic_registration_and_management(b: Backend) {
    let app = TestApp::start_with(b, |c| c.oidc.registration = "open".into()).await;
    let register = |body: Value| {
        let app = &app;
        async move {
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
    };
    let (s, reg) = register(json!({
        "client_name": "Liikuntapalvelu",
        "redirect_uris": ["https://liikunta.example.fi/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access",
        "id_token_signed_response_alg": "ES256",
    }))
    .await;
    assert_eq!(s, 201, "{reg}");
    let id = reg["client_id"].as_str().unwrap().to_owned();
    assert!(reg["client_secret"].as_str().unwrap().len() >= 40);
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, app.url(&format!("/oauth2/register/{id}")));
    // Read, update, delete with the registration access token only.
    let r = app.client.get(&uri).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app.client.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["client_name"], "Liikuntapalvelu");
    assert!(got.get("client_secret").is_none());
    let r = app.client.put(&uri).bearer_auth(&rat).json(&json!({
        "client_id": id, "client_name": "Liikunta", "redirect_uris": ["https://liikunta.example.fi/cb2"],
    })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        got["redirect_uris"],
        json!(["https://liikunta.example.fi/cb2"])
    );
    // A registered client asks for consent and never gets the national id.
    let stored = app
        .with_conn({
            let id = id.clone();
            move |c| {
                kuntalaistili_schema::oidc_clients::find(c, &id)
                    .unwrap()
                    .unwrap()
            }
        })
        .await;
    assert!(stored.require_consent && !stored.allow_national_id);
    let r = app
        .client
        .delete(&uri)
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.client
            .get(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    for (body, code) in [
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["http://x.example.fi/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "id_token_signed_response_alg": "none" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "jwks_uri": "http://169.254.169.254/" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "backchannel_logout_uri": "https://internal.example.local/bcl" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "sector_identifier_uri": "https://x.example.fi/s.json" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://x.example.fi/cb"], "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": "not-a-list" }),
            "invalid_client_metadata",
        ),
    ] {
        let (s, v) = register(body.clone()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(code)), "{body}");
    }
    let r = app
        .client
        .post(app.url("/oauth2/register"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    drop(app);

    // Disabled by default; token-protected when configured.
    let app = TestApp::start(b).await;
    let r = app
        .client
        .post(app.url("/oauth2/register"))
        .json(&json!({"redirect_uris": ["https://x.example.fi/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    drop(app);
    let token = "t".repeat(40);
    let tk = token.clone();
    let app = TestApp::start_with(b, move |c| {
        c.oidc.registration = "token".into();
        c.oidc.registration_token = Some(tk);
    })
    .await;
    let body = json!({"redirect_uris": ["https://x.example.fi/cb"]});
    let r = app
        .client
        .post(app.url("/oauth2/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url("/oauth2/register"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn discovery_describes_what_is_served(b: Backend) {
    let app = TestApp::start(b).await;
    let d: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], app.base.as_str());
    assert!(
        d.get("registration_endpoint").is_none(),
        "registration is disabled by default"
    );
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for list in [
        "id_token_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    ] {
        assert!(!d[list]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "none" || a.as_str().unwrap().starts_with("HS")));
    }
    // Every advertised endpoint exists on this server and answers its method.
    let get = |k: &str| d[k].as_str().unwrap().to_owned();
    assert!(get("jwks_uri").starts_with(&app.base));
    let jwks: Value = app
        .client
        .get(get("jwks_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"].as_array().unwrap().len() >= 2);
    for k in ["authorization_endpoint", "end_session_endpoint"] {
        let s = app
            .client
            .get(get(k))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(s == 400 || s == 303, "{k}: {s}");
    }
    for k in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "pushed_authorization_request_endpoint",
    ] {
        let r = app
            .client
            .post(get(k))
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 401),
            "{k}: {}",
            r.status()
        );
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{k}"
        );
    }
    assert_eq!(
        app.client
            .get(get("userinfo_endpoint"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Every scope the OP lists can be registered and every grant type is accepted.
    for g in d["grant_types_supported"].as_array().unwrap() {
        assert!(kuntalaistili_federation::clients::GRANT_TYPES.contains(&g.as_str().unwrap()));
    }
    let app2 = TestApp::start_with(b, |c| c.oidc.registration = "open".into()).await;
    let d2: Value = app2
        .client
        .get(app2.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d2["registration_endpoint"],
        app2.url("/oauth2/register").as_str()
    );
}

/// The `openidconnect` crate as the relying party: discovery, authorization URL with PKCE and
/// nonce, code exchange, ID-token validation (signature with the discovered JWKS, issuer,
/// audience, nonce) and userinfo.
async fn openidconnect_crate_completes_the_code_flow(b: Backend) {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
    };
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
        OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    };
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "crate").await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(rp.id.clone()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let r = browser.get(url.as_str()).send().await.unwrap();
    let p = redirect_params(&r);
    assert_eq!(param(&p, "state"), Some(state.secret().as_str()));
    assert_eq!(param(&p, "iss"), Some(app.base.as_str()));
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&p, "code").unwrap().into()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.extra_fields().id_token().unwrap();
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.issuer().as_str(), app.base);
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("crate@example.fi"));
    // A token whose nonce differs fails validation in the library.
    assert!(id_token
        .claims(&client.id_token_verifier(), &Nonce::new("other".into()))
        .is_err());
}

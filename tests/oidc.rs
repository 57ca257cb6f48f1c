//! The OpenID Connect provider end to end over real HTTP: the code flow with PKCE, login and
//! consent round trips, form_post, PAR, refresh rotation, revocation, userinfo, private_key_jwt,
//! RP-initiated and back-channel logout, dynamic registration and discovery — and, for every
//! negative case in SECURITY_CASES.md section D/E that applies, the exact OAuth error.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use kuntalaistili_federation::clients::{self, NewClient};
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

dual!(
    code_flow_with_pkce_issues_verifiable_tokens_and_userinfo,
    authorize_never_redirects_to_unregistered_uris,
    authorize_errors_go_back_to_the_client_with_state_and_iss,
    pkce_and_code_misuse_get_invalid_grant,
    code_replay_revokes_what_the_first_use_issued,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    login_and_consent_round_trip,
    form_post_answers_with_a_self_submitting_form,
    pushed_authorization_requests_work_once,
    private_key_jwt_authenticates_and_refuses_bad_assertions,
    revocation_ends_tokens,
    rp_initiated_logout_and_back_channel_logout,
    dynamic_registration_and_management,
    discovery_describes_what_is_served,
);

pub const PASSWORD: &str = "oidc-salasana-pitka";
pub const REDIRECT: &str = "https://rp.example.fi/cb";

/// A registered relying party.
pub struct Rp {
    pub id: String,
    pub secret: Option<String>,
}

impl Rp {
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                self.id,
                self.secret.as_deref().unwrap_or("")
            ))
        )
    }
}

pub async fn add_rp(app: &TestApp, tweak: impl FnOnce(&mut NewClient) + Send + 'static) -> Rp {
    app.with_conn(move |c| {
        let mut n = NewClient {
            name: "Kirjasto".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: "openid profile email offline_access".into(),
            skip_consent: true,
            ..NewClient::default()
        };
        tweak(&mut n);
        let (client, secret) = clients::add(c, n, "test", kuntalaistili_schema::now_utc()).unwrap();
        Rp {
            id: client.client_id,
            secret,
        }
    })
    .await
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query of an authorization request for `rp` with PKCE, state and nonce.
pub fn auth_query(rp: &Rp, challenge: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email offline_access"),
        ("state", "tila-123"),
        ("nonce", "nonssi-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        q.retain(|(x, _)| x != k);
        if !v.is_empty() {
            q.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    q
}

pub async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    q: &[(String, String)],
) -> reqwest::Response {
    browser
        .get(app.url("/oauth2/authorize"))
        .query(q)
        .send()
        .await
        .unwrap()
}

/// The parameters of a redirect to the RP.
pub fn redirect_params(r: &reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(r.status(), 303, "expected a redirect to the RP");
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT), "redirected to {loc}");
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

/// Logged-in browser for a new user `name`.
pub async fn logged_in(app: &TestApp, name: &str) -> reqwest::Client {
    app.add_user(name, PASSWORD).await;
    let b = app.browser();
    assert_eq!(app.login(&b, name, PASSWORD).await.status(), 303);
    b
}

/// A code for `rp` from a logged-in browser, with its PKCE verifier.
pub async fn code_for(app: &TestApp, b: &reqwest::Client, rp: &Rp) -> (String, String) {
    let (verifier, challenge) = pkce();
    let r = authorize(app, b, &auth_query(rp, &challenge, &[])).await;
    let p = redirect_params(&r);
    (param(&p, "code").unwrap().to_owned(), verifier)
}

pub async fn token(app: &TestApp, auth: Option<String>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut rq = app.client.post(app.url("/oauth2/token")).form(form);
    if let Some(a) = auth {
        rq = rq.header("authorization", a);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    (status, r.json().await.unwrap())
}

pub async fn exchange(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> (u16, Value) {
    token(
        app,
        Some(rp.basic()),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn jwks(app: &TestApp) -> Value {
    app.client
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn header_of(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

pub async fn userinfo(app: &TestApp, at: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn audit_count(app: &TestApp, kind: &'static str) -> usize {
    app.with_conn(move |c| {
        kuntalaistili_schema::audit::recent(c, Some(kind), None, 500)
            .unwrap()
            .len()
    })
    .await
}

async fn code_flow_with_pkce_issues_verifiable_tokens_and_userinfo(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "maija").await;
    let (verifier, challenge) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[])).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let p = redirect_params(&r);
    assert_eq!(param(&p, "state"), Some("tila-123"));
    assert_eq!(param(&p, "iss"), Some(app.base.as_str()), "RFC 9207 iss");
    let code = param(&p, "code").unwrap().to_owned();

    let (status, body) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    let at = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    // The ID token: RS256 by default, verifiable with the published keys, all claims right.
    assert_eq!(header_of(id_token)["alg"], "RS256");
    let keys = jwks(&app).await;
    let claims = kuntalaistili_metadata::keys::verify_jwt(&keys, id_token).unwrap();
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["azp"], rp.id.as_str());
    assert_eq!(claims["nonce"], "nonssi-456");
    assert_eq!(claims["acr"], "password");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["sid"].is_string());
    let expected_at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], expected_at_hash.as_str());
    let user_id = claims["sub"].as_str().unwrap().to_owned();

    // The access token is an RFC 9068 JWT (ES256) bound to the grant.
    let at_header = header_of(at);
    assert_eq!(
        (at_header["alg"].as_str(), at_header["typ"].as_str()),
        (Some("ES256"), Some("at+jwt"))
    );
    let at_claims = kuntalaistili_metadata::keys::verify_jwt(&keys, at).unwrap();
    assert_eq!(at_claims["client_id"], rp.id.as_str());
    assert_eq!(at_claims["sub"], user_id.as_str());

    let (s, info) = userinfo(&app, at).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "maija@example.fi");
    assert_eq!(info["given_name"], "Testi");
    assert_eq!(info["preferred_username"], "maija");
    assert!(info.get("national_id").is_none());
    // POST works too; a token in the query does not (RFC 9700 §4.3.2).
    let r = app
        .client
        .post(app.url("/oauth2/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url(&format!("/oauth2/userinfo?access_token={at}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The ID token is not an access token.
    assert_eq!(userinfo(&app, id_token).await.0, 401);

    assert_eq!(audit_count(&app, "oidc.authorized").await, 1);
    assert_eq!(audit_count(&app, "oidc.token_issued").await, 1);

    // Authorization by POST (OIDC Core 3.1.2.1) works the same; pages that carry codes or
    // states leak nothing through Referer (RFC 9700 §4.2).
    let (_, challenge) = pkce();
    let r = browser
        .post(app.url("/oauth2/authorize"))
        .form(&auth_query(&rp, &challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(param(&redirect_params(&r), "code").is_some());
    let r = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // What was stored: the code as a hash, used once.
    let (stored, used) = app
        .with_conn(move |c| {
            use diesel::prelude::*;
            use kuntalaistili_schema::schema::oidc_codes::dsl::*;
            let rows: Vec<(String, Option<chrono::NaiveDateTime>)> =
                oidc_codes.select((code_hash, used_at)).load(c).unwrap();
            (rows[0].0.clone(), rows[0].1.is_some())
        })
        .await;
    assert_eq!(stored, kuntalaistili_metadata::crypto::sha256_hex(&code));
    assert!(used);
}

async fn authorize_never_redirects_to_unregistered_uris(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "ville").await;
    let (_, challenge) = pkce();
    let variants = [
        "https://rp.example.fi/cb/",
        "https://RP.example.fi/cb",
        "https://rp.example.fi/cb?x=1",
        "https://rp.example.fi/cb/../evil",
        "https://rp.example.fi/%2e%2e/cb",
        "https://user@rp.example.fi/cb",
        "https://rp.example.fi:8443/cb",
        "http://rp.example.fi/cb",
        "https://evil.example/cb",
        "",
    ];
    for v in variants {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("redirect_uri", v)]),
        )
        .await;
        assert_eq!(r.status(), 400, "{v:?}");
        assert!(
            r.headers().get("location").is_none(),
            "{v:?} must not redirect"
        );
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        // Even with other errors in the request (A17).
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("redirect_uri", v), ("scope", "bogus")]),
        )
        .await;
        assert!(r.headers().get("location").is_none());
    }
    // Unknown and missing clients: an error page.
    for c in ["no-such-client", ""] {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("client_id", c)]),
        )
        .await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // Repeated parameters are malformed: an error page.
    let mut q = auth_query(&rp, &challenge, &[]);
    q.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let r = authorize(&app, &browser, &q).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

/// A client, the parameters to change, the error expected.
type Case<'a> = (&'a Rp, Vec<(&'a str, &'a str)>, &'a str);

async fn authorize_errors_go_back_to_the_client_with_state_and_iss(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let public = add_rp(&app, |n| n.public = true).await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let long_state = "s".repeat(128);
    let cases: Vec<Case<'_>> = vec![
        (&rp, vec![("response_type", "")], "invalid_request"),
        (
            &rp,
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            &rp,
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (
            &rp,
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (&rp, vec![("code_challenge_method", "")], "invalid_request"),
        (
            &rp,
            vec![("code_challenge", "too-short")],
            "invalid_request",
        ),
        (
            &public,
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&rp, vec![("scope", "profile email")], "invalid_scope"),
        (&rp, vec![("scope", "openid admin")], "invalid_scope"),
        (&rp, vec![("prompt", "none")], "login_required"),
        (&rp, vec![("prompt", "none login")], "invalid_request"),
        (&rp, vec![("max_age", "-1")], "invalid_request"),
        (
            &rp,
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (&rp, vec![("response_mode", "fragment")], "invalid_request"),
    ];
    for (client, extra, expected) in cases {
        let mut extra = extra.clone();
        if expected == "login_required" {
            extra.push(("state", &long_state));
        }
        let r = authorize(&app, &browser, &auth_query(client, &challenge, &extra)).await;
        let p = redirect_params(&r);
        assert_eq!(param(&p, "error"), Some(expected), "{extra:?}");
        assert_eq!(param(&p, "iss"), Some(app.base.as_str()));
        let want_state = if expected == "login_required" {
            long_state.as_str()
        } else {
            "tila-123"
        };
        assert_eq!(
            param(&p, "state"),
            Some(want_state),
            "state echoed unchanged"
        );
        assert!(param(&p, "code").is_none());
    }
    // A request too large to travel through the login page is refused (use PAR), and nothing
    // is stored for it.
    let big = "s".repeat(1900);
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("state", &big)]),
    )
    .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
    let stored = app
        .with_conn(|c| {
            use diesel::prelude::*;
            kuntalaistili_schema::schema::oidc_auth_requests::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(stored, 0);
    // An oversized parameter: a 400 answer with a JSON-shaped error, never a 500.
    let huge = "x".repeat(5000);
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("nonce", &huge)]),
    )
    .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
}

async fn pkce_and_code_misuse_get_invalid_grant(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "pekka").await;

    // Wrong verifier, missing verifier.
    let (code, _) = code_for(&app, &browser, &rp).await;
    let (wrong, _) = pkce();
    let (s, body) = exchange(&app, &rp, &code, &wrong).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (code, _) = code_for(&app, &browser, &rp).await;
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // A verifier with no challenge in the request (PKCE downgrade, A03).
    let r = authorize(
        &app,
        &browser,
        &auth_query(
            &rp,
            "",
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
    )
    .await;
    let p = redirect_params(&r);
    let code = param(&p, "code").unwrap().to_owned();
    let (v, _) = pkce();
    let (s, body) = exchange(&app, &rp, &code, &v).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Another client's code fails and does not burn the code (A06).
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (s, body) = exchange(&app, &other, &code, &verifier).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // redirect_uri differing from the request (A05) — this attempt uses the code up.
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example.fi/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // An expired code.
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let h = kuntalaistili_metadata::crypto::sha256_hex(&code);
    app.with_conn(move |c| {
        use diesel::prelude::*;
        use kuntalaistili_schema::schema::oidc_codes::dsl::*;
        diesel::update(oidc_codes.find(h))
            .set(expires_at.eq(kuntalaistili_schema::now_utc() - chrono::Duration::seconds(1)))
            .execute(c)
            .unwrap();
    })
    .await;
    let (s, body) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Wrong secret; unknown grant types; implicit/password refused.
    let bad = Rp {
        id: rp.id.clone(),
        secret: Some("wrong".into()),
    };
    let (s, body) = exchange(&app, &bad, "x", "y").await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

async fn code_replay_revokes_what_the_first_use_issued(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "liisa").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (s, first) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(s, 200);
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, at).await.0, 200);
    let (s, again) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!((s, again["error"].as_str()), (400, Some("invalid_grant")));
    // The first access token and refresh token are dead now.
    assert_eq!(userinfo(&app, at).await.0, 401);
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(audit_count(&app, "oidc.token_replay").await, 1);
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "ritva").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t1) = exchange(&app, &rp, &code, &verifier).await;
    let rt1 = t1["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String, who: String| {
        let app = &app;
        async move {
            token(
                app,
                Some(who),
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    // Another client cannot use it (and does not burn it).
    let (s, body) = refresh(rt1.clone(), other.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, t2) = refresh(rt1.clone(), rp.basic()).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // The refreshed ID token keeps the original nonce and auth_time.
    let keys = jwks(&app).await;
    let c1 =
        kuntalaistili_metadata::keys::verify_jwt(&keys, t1["id_token"].as_str().unwrap()).unwrap();
    let c2 =
        kuntalaistili_metadata::keys::verify_jwt(&keys, t2["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(c2["nonce"], "nonssi-456");
    assert_eq!(c1["auth_time"], c2["auth_time"]);
    // Narrowing the scope works; widening does not.
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
    // (that attempt used rt2 up; the family is still fine because it was a first use)
    // Reuse of rt1: the whole family dies, rt2's successor and access tokens included.
    let (s, body) = refresh(rt1.clone(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(&app, t2["access_token"].as_str().unwrap()).await.0,
        401
    );

    // A new grant: logout ends its refresh tokens (A12).
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let csrf = app.csrf_token(&browser, "/logout").await;
    assert_eq!(
        app.post_form(&browser, "/logout", &[("csrf", &csrf)])
            .await
            .status(),
        303
    );
    let (s, body) = refresh(t["refresh_token"].as_str().unwrap().to_owned(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // And a password change ends them too.
    assert_eq!(app.login(&browser, "ritva", PASSWORD).await.status(), 303);
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let st = app.state.clone();
    app.with_conn(move |c| {
        kuntalaistili_idp::customers::set_password(
            c,
            &st.hasher,
            "ritva",
            "uusi-salasana-pitka",
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap();
    })
    .await;
    let (s, body) = refresh(t["refresh_token"].as_str().unwrap().to_owned(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

async fn login_and_consent_round_trip(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |n| n.skip_consent = false).await;
    app.add_user("kaija", PASSWORD).await;
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let q = auth_query(
        &rp,
        &challenge,
        &[("login_hint", "kaija"), ("ui_locales", "sv en")],
    );
    let r = authorize(&app, &browser, &q).await;
    assert_eq!(r.status(), 303);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        login.starts_with("/login?next=%2Foauth2%2Fauthorize%2Fresume%3Fr%3D"),
        "{login}"
    );
    assert!(login.contains("username=kaija") && login.contains("lang=sv"));
    // The login page: Swedish, username prefilled; log in with the `next` it carries.
    let page = browser
        .get(app.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("lang=\"sv\"") && page.contains("value=\"kaija\""));
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let next = kuntalaistili_tests::field_from(&page, "next").unwrap();
    let r = app
        .post_form(
            &browser,
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "kaija"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let resume = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        resume.starts_with("/oauth2/authorize/resume?r="),
        "{resume}"
    );
    // Nothing was stored for the anonymous request: it travelled signed through the login page,
    // and a tampered copy is refused.
    let stored = app
        .with_conn(|c| {
            use diesel::prelude::*;
            kuntalaistili_schema::schema::oidc_auth_requests::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(stored, 0);
    let tampered = resume.replacen("&m=", "&m=x", 1);
    let r = browser.get(app.url(&tampered)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Consent is asked (the client is not first-party).
    let r = browser.get(app.url(&resume)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Kirjasto") && page.contains("name=\"decision\""),
        "{page}"
    );
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
    // Another browser (session) cannot answer it (W02).
    let intruder = app.browser();
    app.add_user("intruder", PASSWORD).await;
    app.login(&intruder, "intruder", PASSWORD).await;
    let icsrf = app.csrf_token(&intruder, "/logout").await;
    let r = app
        .post_form(
            &intruder,
            "/consent",
            &[("csrf", &icsrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status(), 403);
    // Without the CSRF token: refused.
    let r = app
        .post_form(&browser, "/consent", &[("id", &id), ("decision", "allow")])
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    let p = redirect_params(&r);
    let code = param(&p, "code").unwrap().to_owned();
    assert_eq!(exchange(&app, &rp, &code, &verifier).await.0, 200);
    // Answered once only.
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status(), 400);

    // Remembered: the next request goes straight through; prompt=consent asks again; a denial
    // is access_denied; prompt=none without consent is consent_required.
    let (_, challenge) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[])).await;
    assert!(param(&redirect_params(&r), "code").is_some());
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("prompt", "consent")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "deny")],
        )
        .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("tila-123"));
    let r = authorize(
        &app,
        &browser,
        &auth_query(
            &rp,
            &challenge,
            &[
                ("scope", "openid profile email offline_access"),
                ("prompt", "none"),
            ],
        ),
    )
    .await;
    assert!(
        param(&redirect_params(&r), "code").is_some(),
        "remembered consent covers it"
    );
    app.with_conn(|c| {
        use diesel::prelude::*;
        diesel::delete(kuntalaistili_schema::schema::oidc_consents::table)
            .execute(c)
            .unwrap();
    })
    .await;
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("prompt", "none")]),
    )
    .await;
    assert_eq!(
        param(&redirect_params(&r), "error"),
        Some("consent_required")
    );

    // prompt=login and max_age=0 send the resident to the login page again.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[extra])).await;
        assert_eq!(r.status(), 303);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next="),
            "{extra:?}"
        );
    }
    // A login hint naming someone else also asks for login.
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("login_hint", "joku-muu")]),
    )
    .await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    assert_eq!(audit_count(&app, "oidc.denied").await, 1);

    // The account page lists the service; withdrawing ends its tokens at once.
    // Allow again (the last answer was a denial), then use the service.
    {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("prompt", "consent")]),
        )
        .await;
        let page = r.text().await.unwrap();
        let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
        let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
        let r = app
            .post_form(
                &browser,
                "/consent",
                &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
            )
            .await;
        assert!(param(&redirect_params(&r), "code").is_some());
    }
    let (v2, c2) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &c2, &[])).await;
    let (_, t) = exchange(&app, &rp, param(&redirect_params(&r), "code").unwrap(), &v2).await;
    let account = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("Kirjasto"), "{account}");
    let action = format!("/account/consents/{}/withdraw", rp.id);
    assert!(account.contains(&action), "{account}");
    let csrf = kuntalaistili_tests::csrf_from(&account).unwrap();
    let r = app.post_form(&browser, &action, &[("csrf", &csrf)]).await;
    assert_eq!(r.headers()["location"], "/account?withdrawn=1");
    assert_eq!(
        userinfo(&app, t["access_token"].as_str().unwrap()).await.0,
        401
    );
    let r = authorize(&app, &browser, &auth_query(&rp, &c2, &[("prompt", "none")])).await;
    assert_eq!(
        param(&redirect_params(&r), "error"),
        Some("consent_required")
    );
    assert_eq!(audit_count(&app, "oidc.consent_withdrawn").await, 1);
    // Withdrawing what does not exist: 404.
    let r = app.post_form(&browser, &action, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 404);
}

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

/// An ES256 key pair for a client: (PKCS#8 signing key, public JWKS).
fn client_key() -> (ring::signature::EcdsaKeyPair, Value) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = kp.public_key().as_ref();
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "kid": "rp-key-1",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    }]});
    (kp, jwks)
}

fn sign_es256(kp: &ring::signature::EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = kp
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

async fn private_key_jwt_authenticates_and_refuses_bad_assertions(b: Backend) {
    let app = TestApp::start(b).await;
    let (kp, keys) = client_key();
    let rp = add_rp(&app, move |n| n.jwks = Some(keys.to_string())).await;
    assert!(
        rp.secret.is_none(),
        "key-authenticated clients get no secret"
    );
    let browser = logged_in(&app, "jwt").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64, jti: &str| json!({ "iss": rp.id, "sub": rp.id, "aud": aud, "exp": exp, "iat": now, "jti": jti });
    let es = json!({ "alg": "ES256", "kid": "rp-key-1" });
    let token_url = app.url("/oauth2/token");
    let ok = sign_es256(&kp, &es, &claims(&token_url, now + 60, "j1"));
    let use_assertion = |assertion: String| {
        let app = &app;
        let browser = &browser;
        let rp = &rp;
        async move {
            let (code, verifier) = code_for(app, browser, rp).await;
            token(
                app,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let (s, body) = use_assertion(ok.clone()).await;
    assert_eq!(s, 200, "{body}");
    // Replayed jti.
    let (s, body) = use_assertion(ok).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    // Issuer as audience is fine too.
    assert_eq!(
        use_assertion(sign_es256(&kp, &es, &claims(&app.base, now + 60, "j2")))
            .await
            .0,
        200
    );
    let bad = [
        sign_es256(
            &kp,
            &es,
            &claims("https://elsewhere.example/token", now + 60, "j3"),
        ),
        sign_es256(&kp, &es, &claims(&token_url, now + 3600, "j4")),
        sign_es256(&kp, &es, &claims(&token_url, now - 10, "j5")),
        // alg=none
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims(&token_url, now + 60, "j6").to_string())
        ),
        // HS256 keyed with the public key (algorithm confusion).
        {
            use hmac::{Hmac, Mac};
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"rp-key-1"}"#),
                URL_SAFE_NO_PAD.encode(claims(&token_url, now + 60, "j7").to_string())
            );
            let mut mac =
                Hmac::<Sha256>::new_from_slice(json!({"kty":"EC"}).to_string().as_bytes()).unwrap();
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        },
        // Signed by another key.
        sign_es256(&client_key().0, &es, &claims(&token_url, now + 60, "j8")),
    ];
    for a in bad {
        let (s, body) = use_assertion(a.clone()).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{a}"
        );
    }
}

async fn revocation_ends_tokens(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let introspector = add_rp(&app, |n| n.grant_types = vec!["client_credentials".into()]).await;
    let browser = logged_in(&app, "revo").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let introspect = |tok: String| {
        let app = &app;
        let who = introspector.basic();
        async move {
            let r = app
                .client
                .post(app.url("/oauth2/introspect"))
                .header("authorization", who)
                .form(&[("token", tok)])
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(introspect(at.to_owned()).await["active"], true);
    let rt_info = introspect(rt.to_owned()).await;
    assert_eq!(
        (rt_info["active"].as_bool(), rt_info["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    let revoke = |tok: String, who: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth2/revoke"))
                .header("authorization", who)
                .form(&[("token", tok)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Another client's revocation is a no-op (200, token still live).
    assert_eq!(revoke(at.to_owned(), other.basic()).await, 200);
    assert_eq!(userinfo(&app, at).await.0, 200);
    assert_eq!(revoke(at.to_owned(), rp.basic()).await, 200);
    assert_eq!(userinfo(&app, at).await.0, 401);
    assert_eq!(introspect(at.to_owned()).await["active"], false);
    // The refresh token still works until revoked; then the grant is gone.
    let (s, t2) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(s, 200);
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(revoke(rt2.to_owned(), rp.basic()).await, 200);
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", rt2)],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(&app, t2["access_token"].as_str().unwrap()).await.0,
        401
    );
    // Unknown tokens: 200 all the same; no authentication: 401.
    assert_eq!(revoke("nonsense".into(), rp.basic()).await, 200);
    let r = app
        .client
        .post(app.url("/oauth2/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(audit_count(&app, "oidc.token_revoked").await >= 2);
}

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

dual!(openidconnect_crate_completes_the_code_flow);

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

dual!(claims_follow_scopes_pairwise_subjects_and_national_id_rules);

/// What an RP learns: claims by scope (address, phone, municipality), the national id only to a
/// client allowed it (and audited), and pairwise subjects that differ per sector.
async fn claims_follow_scopes_pairwise_subjects_and_national_id_rules(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let user = app
        .with_conn(move |c| {
            kuntalaistili_idp::customers::add(
                c,
                &st.keys,
                &st.hasher,
                kuntalaistili_idp::customers::NewPerson {
                    username: "henna".into(),
                    password: Some(PASSWORD.into()),
                    given_name: Some("Henna".into()),
                    family_name: Some("Hämäläinen".into()),
                    phone: Some("+358401234567".into()),
                    street_address: Some("Kirkkokatu 1".into()),
                    postal_code: Some("90100".into()),
                    locality: Some("Oulu".into()),
                    home_municipality: Some("564".into()),
                    national_id: Some("010190-123M".into()),
                    ..Default::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap()
        })
        .await;
    let browser = app.browser();
    assert_eq!(app.login(&browser, "henna", PASSWORD).await.status(), 303);
    let scope = "openid profile phone address municipality national_id";
    let allowed = add_rp(&app, move |n| {
        n.scopes = scope.into();
        n.allow_national_id = true;
    })
    .await;
    let not_allowed = add_rp(&app, move |n| n.scopes = scope.into()).await;
    let pair_a = add_rp(&app, |n| n.pairwise = true).await;
    let pair_b = add_rp(&app, |n| {
        n.pairwise = true;
        n.sector_identifier = Some("other-sector.example.fi".into());
    })
    .await;

    let tokens_for = |rp: &Rp, scope: &'static str| {
        let (app, browser) = (&app, &browser);
        let rp = Rp {
            id: rp.id.clone(),
            secret: rp.secret.clone(),
        };
        async move {
            let (verifier, challenge) = pkce();
            let r = authorize(
                app,
                browser,
                &auth_query(&rp, &challenge, &[("scope", scope)]),
            )
            .await;
            let p = redirect_params(&r);
            let (s, t) = exchange(app, &rp, param(&p, "code").unwrap(), &verifier).await;
            assert_eq!(s, 200, "{t}");
            t
        }
    };
    let t = tokens_for(&allowed, scope).await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], user.id.as_str());
    assert_eq!(info["national_id"], "010190-123M");
    assert_eq!(info["home_municipality"], "564");
    assert_eq!(info["phone_number"], "+358401234567");
    assert_eq!(info["address"]["locality"], "Oulu");
    assert_eq!(info["address"]["formatted"], "Kirkkokatu 1\n90100 Oulu");
    assert_eq!(info["name"], "Henna Hämäläinen");
    assert!(info.get("email").is_none(), "email was not asked for");
    assert_eq!(audit_count(&app, "oidc.national_id_released").await, 1);

    let t = tokens_for(&not_allowed, scope).await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert!(info.get("national_id").is_none());
    assert_eq!(audit_count(&app, "oidc.national_id_released").await, 1);

    let keys = jwks(&app).await;
    let sub_of = |t: &Value| {
        kuntalaistili_metadata::keys::verify_jwt(&keys, t["id_token"].as_str().unwrap()).unwrap()
            ["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a1 = sub_of(&tokens_for(&pair_a, "openid").await);
    let a2 = sub_of(&tokens_for(&pair_a, "openid").await);
    let b1 = sub_of(&tokens_for(&pair_b, "openid").await);
    assert_eq!(a1, a2, "stable per sector");
    assert_ne!(a1, user.id);
    assert_ne!(a1, b1, "unlinkable across sectors");
    let t = tokens_for(&pair_a, "openid").await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], a1.as_str(), "userinfo and ID token agree");
}

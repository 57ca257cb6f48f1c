//! The OpenID Connect provider end to end over real HTTP: the code flow with PKCE, login and
//! consent round trips, form_post, PAR, refresh rotation, revocation, userinfo, private_key_jwt,
//! RP-initiated and back-channel logout, dynamic registration and discovery — and, for every
//! negative case in SECURITY_CASES.md section D/E that applies, the exact OAuth error. This module
//! holds the relying-party helpers; the tests are in `authorize`, `tokens` and `endpoints`.

mod authorize;
mod endpoints;
mod par;
mod privileged;
mod ssrf;
mod tokens;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use kuntalaistili_federation::clients::{self, NewClient};
use kuntalaistili_tests::TestApp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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

/// How many authorization requests are stored (anonymous ones must not be).
pub async fn stored_auth_requests(app: &TestApp) -> i64 {
    app.with_conn(|c| {
        use diesel::prelude::*;
        kuntalaistili_schema::schema::oidc_auth_requests::table
            .count()
            .get_result::<i64>(c)
            .unwrap()
    })
    .await
}

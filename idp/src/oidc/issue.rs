//! Minting tokens: access tokens (RFC 9068 JWTs, ES256), ID tokens (the client's algorithm,
//! RS256 by default) and the token endpoint's JSON answer.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::HttpResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kuntalaistili_metadata::keys::{Alg, Signer};
use kuntalaistili_schema::oidc_clients::OidcClient;
use kuntalaistili_schema::oidc_flows::Grant;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cache::fresh_or_load;
use super::error::OAuthError;
use crate::IdpState;

/// The signer for `alg`, from memory when fresh. Async (may read the database).
pub async fn signer(
    state: &actix_web::web::Data<IdpState>,
    alg: Alg,
) -> Result<Arc<Signer>, OAuthError> {
    let st = state.clone();
    fresh_or_load(
        state.oidc_cache.signer_if_fresh(alg),
        move || st.oidc_cache.signer(&st.db, &st.keys, alg),
        "signing key",
    )
    .await
}

/// The ID-token algorithm registered for the client.
pub fn id_token_alg(client: &OidcClient) -> Alg {
    Alg::parse(&client.id_token_alg).unwrap_or(Alg::Rs256)
}

/// What an access token says about whom.
pub struct AccessToken<'a> {
    pub sub: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    /// The grant a user's token belongs to (absent for client_credentials).
    pub grant_id: Option<&'a str>,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
}

/// Signs an access token; returns it with its lifetime in seconds.
pub fn access_token(state: &IdpState, signer: &Signer, t: &AccessToken<'_>) -> (String, i64) {
    let now = chrono::Utc::now().timestamp();
    let lifetime = state.settings.access_token_seconds;
    let mut claims = json!({
        "iss": state.settings.public_url,
        "sub": t.sub,
        "aud": state.settings.public_url,
        "client_id": t.client_id,
        "scope": t.scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(g) = t.grant_id {
        claims["gid"] = json!(g);
    }
    if let Some(a) = t.auth_time {
        claims["auth_time"] = json!(a);
    }
    if let Some(a) = t.acr {
        claims["acr"] = json!(a);
    }
    (signer.sign_jwt_typed(&claims, "at+jwt"), lifetime)
}

/// `at_hash`: the left half of the SHA-256 of the access token (all our algorithms use SHA-256).
pub fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

/// Signs an ID token for a grant.
pub fn id_token(
    state: &IdpState,
    signer: &Signer,
    client: &OidcClient,
    grant: &Grant,
    sub: &str,
    access_token: &str,
    permissions: Option<&[String]>,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": state.settings.public_url,
        "sub": sub,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + state.settings.access_token_seconds.max(300),
        "auth_time": grant.auth_time.and_utc().timestamp(),
        "acr": grant.acr,
        "amr": ["pwd"],
        "at_hash": at_hash(access_token),
    });
    if let Some(n) = &grant.nonce {
        claims["nonce"] = json!(n);
    }
    if let Some(s) = &grant.session_id {
        claims["sid"] = json!(s);
    }
    if let Some(p) = permissions {
        claims["permissions"] = json!(p);
    }
    signer.sign_jwt(&claims)
}

/// The token endpoint's success answer (never cached).
pub fn token_response(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

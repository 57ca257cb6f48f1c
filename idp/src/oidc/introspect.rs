//! `POST /oauth2/introspect` (RFC 7662) for authenticated clients: is this access token one of
//! ours, validly signed, unexpired? Tokens are self-contained JWTs, so the answer comes from the
//! signature and the claims. Revocation of access tokens does not exist yet, so nothing is
//! reported revoked.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::cache::fresh_or_load;
use super::client_auth::{authenticate, MAX_PARAM};
use super::error::OAuthError;
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct IntrospectForm {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Longest token we look at (ours are well under 1 KiB).
const MAX_TOKEN: usize = 8192;

pub async fn oidc_introspect_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    if [&form.client_id, &form.client_secret]
        .into_iter()
        .flatten()
        .any(|v| v.len() > MAX_PARAM)
    {
        return Err(OAuthError::invalid_request("parameter too long"));
    }
    authenticate(&state, &req, form.client_id, form.client_secret).await?;
    let token = form
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;

    let st = state.clone();
    let jwks = fresh_or_load(
        state.oidc_cache.jwks_if_fresh(),
        move || st.oidc_cache.jwks(&st.db),
        "JWKS",
    )
    .await?;
    let answer = if token.len() > MAX_TOKEN {
        None
    } else {
        active_claims(&state, &jwks, &token)
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer.unwrap_or_else(|| json!({ "active": false }))))
}

fn active_claims(state: &IdpState, jwks: &str, token: &str) -> Option<serde_json::Value> {
    let jwks: serde_json::Value = serde_json::from_str(jwks).ok()?;
    let claims = kuntalaistili_metadata::keys::verify_jwt(&jwks, token)?;
    let now = chrono::Utc::now().timestamp();
    let ours = claims["iss"].as_str() == Some(state.settings.public_url.as_str());
    let live = claims["exp"].as_i64().is_some_and(|exp| exp > now);
    // Only access tokens (they carry client_id and scope); ID tokens are not bearer credentials.
    let access = claims.get("client_id").is_some() && claims.get("scope").is_some();
    if !(ours && live && access) {
        return None;
    }
    Some(json!({
        "active": true,
        "token_type": "Bearer",
        "scope": claims["scope"],
        "client_id": claims["client_id"],
        "sub": claims["sub"],
        "aud": claims["aud"],
        "iss": claims["iss"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
    }))
}

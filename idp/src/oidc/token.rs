//! `POST /oauth2/token`. Implemented so far: the `client_credentials` grant with
//! `client_secret_basic` and `client_secret_post`; access tokens are ES256-signed JWTs
//! (RFC 9068 profile). Other grants answer `unsupported_grant_type` until the OIDC issue adds
//! them.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_metadata::keys::Alg;
use kuntalaistili_schema::oidc_clients::OidcClient;
use serde::Deserialize;

use super::cache::fresh_or_load;
use super::client_auth::{authenticate, MAX_PARAM};
use super::error::OAuthError;
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn oidc_token_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    for v in [
        &form.grant_type,
        &form.scope,
        &form.client_id,
        &form.client_secret,
    ]
    .into_iter()
    .flatten()
    {
        if v.len() > MAX_PARAM {
            return Err(OAuthError::invalid_request("parameter too long"));
        }
    }
    let grant = form
        .grant_type
        .clone()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate(&state, &req, form.client_id, form.client_secret).await?;

    match grant.as_str() {
        "client_credentials" => client_credentials(&state, &client, form.scope.as_deref()).await,
        "authorization_code" | "refresh_token" => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("{grant} is not available on this server yet"),
        )),
        _ => Err(OAuthError::new(
            "unsupported_grant_type",
            "unknown grant_type",
        )),
    }
}

async fn client_credentials(
    state: &web::Data<IdpState>,
    client: &OidcClient,
    scope: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    let grants: Vec<String> = serde_json::from_str(&client.grant_types).unwrap_or_default();
    if !grants.iter().any(|g| g == "client_credentials") {
        return Err(OAuthError::new(
            "unauthorized_client",
            "the client may not use client_credentials",
        ));
    }
    let allowed: Vec<&str> = client.scopes.split_whitespace().collect();
    let granted: Vec<&str> = match scope {
        Some(s) if !s.trim().is_empty() => {
            let asked: Vec<&str> = s.split_whitespace().collect();
            if let Some(bad) = asked.iter().find(|a| !allowed.contains(a)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("scope {bad:?} is not allowed for this client"),
                ));
            }
            asked
        }
        _ => allowed,
    };
    let st = state.clone();
    let signer = fresh_or_load(
        state.oidc_cache.signer_if_fresh(Alg::Es256),
        move || st.oidc_cache.signer(&st.db, &st.keys, Alg::Es256),
        "signing key",
    )
    .await?;
    let now = chrono::Utc::now().timestamp();
    let lifetime = state.settings.access_token_seconds;
    let scope = granted.join(" ");
    let claims = serde_json::json!({
        "iss": state.settings.public_url,
        "sub": client.client_id,
        "aud": state.settings.public_url,
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let token = signer.sign_jwt_typed(&claims, "at+jwt");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        })))
}

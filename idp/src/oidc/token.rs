//! `POST /oauth2/token`. Implemented so far: the `client_credentials` grant with
//! `client_secret_basic` and `client_secret_post`; access tokens are ES256-signed JWTs
//! (RFC 9068 profile). Other grants answer `unsupported_grant_type` until the OIDC issue adds
//! them.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::keys::Alg;
use kuntalaistili_schema::oidc_clients::OidcClient;
use serde::Deserialize;

use super::error::OAuthError;
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Largest accepted parameter value (anything longer is malformed, not a credential).
const MAX_PARAM: usize = 2048;

fn percent_decode(s: &str) -> Option<String> {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Client credentials from the Basic header, if present.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client(true))?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(OAuthError::invalid_client(true));
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client(true))?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    match (percent_decode(id), percent_decode(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err(OAuthError::invalid_client(true)),
    }
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
    let basic = basic_credentials(&req)?;
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form.client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if form.client_id.as_ref().is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => match form.client_id {
            Some(id) => (id, secret),
            None => return Err(OAuthError::invalid_client(false)),
        },
        (None, None) => return Err(OAuthError::invalid_client(false)),
    };
    let grant = form
        .grant_type
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;

    let client = match state.oidc_cache.client_if_fresh(&client_id) {
        Some(c) => c,
        None => {
            let st = state.clone();
            let cid = client_id.clone();
            web::block(move || st.oidc_cache.client(&st.db, &cid))
                .await
                .map_err(|_| OAuthError::unavailable())?
                .map_err(|e| {
                    tracing::error!(error = %e, "client look-up failed");
                    OAuthError::unavailable()
                })?
        }
    };
    let client = match client {
        Some(c)
            if !c.disabled && kuntalaistili_federation::clients::secret_matches(&c, &secret) =>
        {
            c
        }
        _ => {
            tracing::info!(client = %client_id, "client authentication failed");
            return Err(OAuthError::invalid_client(used_basic));
        }
    };

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
    let signer = match state.oidc_cache.signer_if_fresh(Alg::Es256) {
        Some(s) => s,
        None => {
            let st = state.clone();
            web::block(move || st.oidc_cache.signer(&st.db, &st.keys, Alg::Es256))
                .await
                .map_err(|_| OAuthError::unavailable())?
                .map_err(|e| {
                    tracing::error!(error = %e, "no signing key");
                    OAuthError::unavailable()
                })?
        }
    };
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

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(percent_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}

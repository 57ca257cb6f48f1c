//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic` and `client_secret_post` (never both in one request).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_schema::oidc_clients::OidcClient;

use super::cache::fresh_or_load;
use super::error::OAuthError;
use crate::IdpState;

/// Largest accepted parameter value (anything longer is malformed, not a credential).
pub const MAX_PARAM: usize = 2048;

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
pub fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
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

/// The authenticated client, or `invalid_client` (401, with a Basic challenge when Basic was
/// tried). Fresh cached clients are checked without leaving the async worker.
pub async fn authenticate(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    form_client_id: Option<String>,
    form_secret: Option<String>,
) -> Result<Arc<OidcClient>, OAuthError> {
    let basic = basic_credentials(req)?;
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if form_client_id.as_ref().is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => match form_client_id {
            Some(id) => (id, secret),
            None => return Err(OAuthError::invalid_client(false)),
        },
        (None, None) => return Err(OAuthError::invalid_client(false)),
    };
    let (st, cid) = (state.clone(), client_id.clone());
    let client = fresh_or_load(
        state.oidc_cache.client_if_fresh(&client_id),
        move || st.oidc_cache.client(&st.db, &cid),
        "client",
    )
    .await?;
    match client {
        Some(c)
            if !c.disabled && kuntalaistili_federation::clients::secret_matches(&c, &secret) =>
        {
            Ok(c)
        }
        _ => {
            tracing::info!(client = %client_id, "client authentication failed");
            Err(OAuthError::invalid_client(used_basic))
        }
    }
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

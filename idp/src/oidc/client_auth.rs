//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` and `none` (public clients).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
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

/// The client-authentication parameters of a form body.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ClientParams {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

impl ClientParams {
    fn too_long(&self) -> bool {
        [
            &self.client_id,
            &self.client_secret,
            &self.client_assertion_type,
        ]
        .into_iter()
        .flatten()
        .any(|v| v.len() > MAX_PARAM)
            || self
                .client_assertion
                .as_ref()
                .is_some_and(|a| a.len() > 8192)
    }
}

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The authenticated client, or `invalid_client` (401, with a Basic challenge when Basic was
/// tried). Methods: `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523),
/// and `none` for public clients when `allow_public`. Exactly one method per request.
pub async fn authenticate(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    p: ClientParams,
    allow_public: bool,
) -> Result<Arc<OidcClient>, OAuthError> {
    if p.too_long() {
        return Err(OAuthError::invalid_request("parameter too long"));
    }
    let basic = basic_credentials(req)?;
    let used_basic = basic.is_some();
    let methods = usize::from(basic.is_some())
        + usize::from(p.client_secret.is_some())
        + usize::from(p.client_assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    if let Some(assertion) = p.client_assertion {
        return private_key_jwt(state, p.client_id, p.client_assertion_type, assertion).await;
    }
    let (client_id, secret) = match (basic, p.client_secret) {
        (Some((id, secret)), None) => {
            if p.client_id.as_ref().is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(secret))
        }
        (None, Some(secret)) => match p.client_id {
            Some(id) => (id, Some(secret)),
            None => return Err(OAuthError::invalid_client(false)),
        },
        (None, None) => match p.client_id {
            Some(id) if allow_public => (id, None),
            _ => return Err(OAuthError::invalid_client(false)),
        },
        (Some(_), Some(_)) => return Err(OAuthError::invalid_client(true)),
    };
    if client_id.len() > MAX_PARAM {
        return Err(OAuthError::invalid_client(used_basic));
    }
    let client = load(state, &client_id).await?;
    let ok = match (&client, &secret) {
        (Some(c), Some(s)) => {
            !c.disabled && kuntalaistili_federation::clients::secret_matches(c, s)
        }
        (Some(c), None) => !c.disabled && c.public_client,
        (None, _) => false,
    };
    match client {
        Some(c) if ok => Ok(c),
        _ => {
            tracing::info!(client = %client_id, "client authentication failed");
            Err(OAuthError::invalid_client(used_basic))
        }
    }
}

/// A client from the cache (or the database).
pub async fn load(
    state: &web::Data<IdpState>,
    client_id: &str,
) -> Result<Option<Arc<OidcClient>>, OAuthError> {
    let (st, cid) = (state.clone(), client_id.to_owned());
    fresh_or_load(
        state.oidc_cache.client_if_fresh(client_id),
        move || st.oidc_cache.client(&st.db, &cid),
        "client",
    )
    .await
}

/// RFC 7523 client authentication: a JWT signed with a key from the client's registered JWKS
/// (asymmetric algorithms only), `iss` = `sub` = client id, `aud` naming us, a short `exp` and a
/// `jti` never seen before.
async fn private_key_jwt(
    state: &web::Data<IdpState>,
    form_client_id: Option<String>,
    assertion_type: Option<String>,
    assertion: String,
) -> Result<Arc<OidcClient>, OAuthError> {
    if assertion_type.as_deref() != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_request(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let unverified = assertion
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    let client_id = unverified["iss"]
        .as_str()
        .filter(|i| i.len() <= MAX_PARAM)
        .ok_or_else(|| OAuthError::invalid_client(false))?
        .to_owned();
    if form_client_id.as_ref().is_some_and(|f| *f != client_id) {
        return Err(OAuthError::invalid_client(false));
    }
    let fail = |why: &str| {
        tracing::info!(client = %client_id, why, "client assertion refused");
        OAuthError::invalid_client(false)
    };
    let client = load(state, &client_id)
        .await?
        .filter(|c| !c.disabled && c.token_endpoint_auth_method == "private_key_jwt")
        .ok_or_else(|| fail("no such private_key_jwt client"))?;
    let jwks: serde_json::Value = client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| fail("client has no keys"))?;
    let claims = kuntalaistili_metadata::keys::verify_jwt(&jwks, &assertion)
        .ok_or_else(|| fail("signature"))?;
    let issuer = &state.settings.public_url;
    let token_url = format!("{issuer}{}", crate::paths::TOKEN);
    let aud_ok = |a: &serde_json::Value| a == issuer.as_str() || a == token_url.as_str();
    let aud = match &claims["aud"] {
        serde_json::Value::Array(a) => a.iter().any(aud_ok),
        a => aud_ok(a),
    };
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if claims["iss"] != client_id.as_str() || claims["sub"] != client_id.as_str() {
        return Err(fail("iss/sub"));
    }
    if !aud {
        return Err(fail("aud"));
    }
    if exp <= now || exp > now + 300 {
        return Err(fail("exp missing, past, or more than 5 minutes ahead"));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| fail("jti"))?;
    let key = format!("{client_id}:{jti}");
    let expires = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_else(kuntalaistili_schema::now_utc);
    let st = state.clone();
    let fresh = web::block(move || -> Result<bool, kuntalaistili_schema::DbError> {
        kuntalaistili_schema::oidc_flows::record_assertion(&mut *st.db.conn()?, &key, expires)
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "recording a client assertion failed");
        OAuthError::unavailable()
    })?;
    if !fresh {
        return Err(fail("jti replayed"));
    }
    Ok(client)
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

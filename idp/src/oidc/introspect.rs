//! `POST /oauth2/introspect` (RFC 7662) for authenticated confidential clients: is this access or
//! refresh token one of ours and live (signature, expiry, not revoked, its grant not revoked)?

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_metadata::crypto::sha256_hex;
use kuntalaistili_schema::oidc_flows as flows;
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client_auth::{authenticate, ClientParams};
use super::error::OAuthError;
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct IntrospectForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: ClientParams,
}

/// Longest token we look at (ours are well under 1 KiB).
pub const MAX_TOKEN: usize = 8192;

pub async fn oidc_introspect_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<IntrospectForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let _ = form.token_type_hint;
    authenticate(&state, &req, form.client, false).await?;
    let token = form
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = if token.len() > MAX_TOKEN {
        None
    } else {
        active(&state, token).await?
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer.unwrap_or_else(|| json!({ "active": false }))))
}

async fn active(state: &web::Data<IdpState>, token: String) -> Result<Option<Value>, OAuthError> {
    let jwks = super::cache::jwks_doc(state).await?;
    let claims = verified_access_token(state, &jwks, &token);
    let st = state.clone();
    let now = kuntalaistili_schema::now_utc();
    web::block(move || -> Result<Option<Value>, DbError> {
        let mut conn = st.db.conn()?;
        if let Some(c) = claims {
            let Some(grant) = still_live(&mut conn, &c)? else {
                return Ok(None);
            };
            // A person's token shows only the scopes the person may hold now (a demoted
            // administrator's token no longer says `admin`; service scopes never show).
            let mut scope = c["scope"].as_str().unwrap_or_default().to_owned();
            if let Some(g) = grant {
                let person = kuntalaistili_schema::users::find_by_id(&mut conn, &g.user_id)?;
                let Some(person) = person.filter(|p| !p.disabled) else {
                    return Ok(None);
                };
                scope = scope
                    .split_whitespace()
                    .filter(|s| super::privileged::person_may_hold(s, &person))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            return Ok(Some(json!({
                "active": true,
                "token_type": "Bearer",
                "scope": scope,
                "client_id": c["client_id"],
                "sub": c["sub"],
                "aud": c["aud"],
                "iss": c["iss"],
                "exp": c["exp"],
                "iat": c["iat"],
                "jti": c["jti"],
            })));
        }
        // Not a JWT of ours: perhaps a refresh token.
        let Some((rt, grant)) = flows::find_refresh(&mut conn, &sha256_hex(&token))? else {
            return Ok(None);
        };
        if rt.used_at.is_some() || rt.expires_at <= now || grant.revoked_at.is_some() {
            return Ok(None);
        }
        let client = st.oidc_cache.client(&st.db, &grant.client_id)?;
        let sub = client.map_or_else(
            || grant.user_id.clone(),
            |c| super::claims::subject(&c, &st.keys, &grant.user_id),
        );
        Ok(Some(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": sub,
            "iss": st.settings.public_url,
            "exp": rt.expires_at.and_utc().timestamp(),
            "iat": rt.created_at.and_utc().timestamp(),
        })))
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "introspection storage error");
        OAuthError::unavailable()
    })
}

/// Whether an access token whose claims [`verified_access_token`] accepted is still live: its
/// `jti` not revoked and, for a resident's token, its grant not revoked. `Some` carries that
/// grant (`None` inside for client-credentials tokens). Blocking.
pub fn still_live(
    conn: &mut kuntalaistili_schema::AnyConnection,
    claims: &Value,
) -> Result<Option<Option<flows::Grant>>, DbError> {
    if let Some(jti) = claims["jti"].as_str() {
        if flows::is_jti_revoked(conn, jti)? {
            return Ok(None);
        }
    }
    match claims["gid"].as_str() {
        None => Ok(Some(None)),
        Some(gid) => Ok(flows::find_grant(conn, gid)?
            .filter(|g| g.revoked_at.is_none())
            .map(Some)),
    }
}

/// The claims of a validly signed, unexpired access token of ours (not an ID or logout token).
/// Revocation is the caller's to check.
pub fn verified_access_token(state: &IdpState, jwks: &str, token: &str) -> Option<Value> {
    if token.len() > MAX_TOKEN || token.matches('.').count() != 2 {
        return None;
    }
    // Only access tokens (RFC 9068 `at+jwt`); ID and logout tokens are not bearer credentials.
    if kuntalaistili_metadata::keys::jwt_typ(token).as_deref() != Some("at+jwt") {
        return None;
    }
    let jwks: Value = serde_json::from_str(jwks).ok()?;
    let claims = kuntalaistili_metadata::keys::verify_jwt(&jwks, token)?;
    let now = chrono::Utc::now().timestamp();
    let ours = claims["iss"].as_str() == Some(state.settings.public_url.as_str());
    let live = claims["exp"].as_i64().is_some_and(|exp| exp > now);
    // Only access tokens carry client_id and scope; ID tokens are not bearer credentials.
    let access = claims.get("client_id").is_some() && claims.get("scope").is_some();
    (ours && live && access).then_some(claims)
}

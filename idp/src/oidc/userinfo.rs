//! `GET|POST /oauth2/userinfo` (OIDC Core 5.3): the claims of the access token's scopes. The
//! token comes in the `Authorization: Bearer` header only (RFC 9700 §4.3.2: never the query).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::oidc_flows as flows;
use kuntalaistili_schema::{audit, users, DbError};
use serde_json::json;

use super::claims;
use super::error::OAuthError;
use crate::audit::{kind, Event};
use crate::IdpState;

/// A bearer-token failure (RFC 6750 §3.1).
fn bearer_error(status: StatusCode, code: &'static str, d: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!("Bearer error=\"{code}\", error_description=\"{d}\""),
        ))
        .json(json!({ "error": code, "error_description": d }))
}

/// The bearer token of the request, if one was sent in the header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?
        .trim();
    (!t.is_empty() && t.len() <= 8192).then_some(t)
}

/// The verified claims of one of our live access tokens for a user grant: signature, issuer,
/// expiry, not revoked, grant live. `Ok(None)` when the token is not (or no longer) valid.
pub async fn user_access_token(
    state: &web::Data<IdpState>,
    token: &str,
) -> Result<Option<(serde_json::Value, flows::Grant)>, OAuthError> {
    let jwks = super::cache::jwks_doc(state).await?;
    let Some(claims) = super::introspect::verified_access_token(state, &jwks, token) else {
        return Ok(None);
    };
    if claims.get("gid").is_none() || claims.get("jti").is_none() {
        return Ok(None);
    }
    let (st, c) = (state.clone(), claims.clone());
    let grant = web::block(move || -> Result<Option<flows::Grant>, DbError> {
        Ok(super::introspect::still_live(&mut *st.db.conn()?, &c)?.flatten())
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "userinfo storage error");
        OAuthError::unavailable()
    })?;
    Ok(grant.map(|g| (claims, g)))
}

pub async fn oidc_userinfo(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, OAuthError> {
    if req
        .uri()
        .query()
        .is_some_and(|q| q.contains("access_token"))
    {
        return Ok(bearer_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the access token in the Authorization header",
        ));
    }
    let Some(token) = bearer(&req) else {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": "invalid_token", "error_description": "no bearer token" })));
    };
    let Some((at, grant)) = user_access_token(&state, token).await? else {
        return Ok(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid, expired or revoked",
        ));
    };
    let scope = at["scope"].as_str().unwrap_or_default().to_owned();
    if !scope.split_whitespace().any(|s| s == "openid") {
        return Ok(bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the openid scope",
        ));
    }
    let Some(client) = super::client_auth::load(&state, &grant.client_id).await? else {
        return Ok(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "unknown client",
        ));
    };
    let st = state.clone();
    let released = web::block(
        move || -> Result<Option<serde_json::Map<String, serde_json::Value>>, DbError> {
            let mut conn = st.db.conn()?;
            let Some(user) = users::find_by_id(&mut conn, &grant.user_id)?.filter(|u| !u.disabled)
            else {
                return Ok(None);
            };
            let scopes: Vec<&str> = scope.split_whitespace().collect();
            let (mut claims, national_id) = claims::user_claims(&user, &scopes, &client, &st.keys);
            if let Some(release) = &client.release_permissions {
                let rights = st.authz.rights(&mut conn, &user.id)?;
                claims.insert(
                    "permissions".into(),
                    json!(rights.released(release, kuntalaistili_schema::now_utc())),
                );
            }
            if national_id {
                audit::append(
                    &mut conn,
                    Event::success(kind::NATIONAL_ID_RELEASED)
                        .actor(client.client_id.clone())
                        .subject(user.id.clone())
                        .details(json!({ "grant": grant.id, "via": "userinfo" }))
                        .into_new(),
                    kuntalaistili_schema::now_utc(),
                )?;
            }
            Ok(Some(claims))
        },
    )
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "userinfo storage error");
        OAuthError::unavailable()
    })?;
    match released {
        Some(c) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(c)),
        None => Ok(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the user is no longer active",
        )),
    }
}

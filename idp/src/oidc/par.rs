//! Pushed authorization requests (RFC 9126): `POST /oauth2/par`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::crypto::random_token;
use kuntalaistili_schema::oidc_flows::{self as flows, AuthRequest};
use kuntalaistili_schema::DbError;
use serde_json::json;

use super::authorize::check;
use super::request::{AuthParams, Invalid, REQUEST_URI_PREFIX};
use crate::error::WebError;
use crate::IdpState;

/// `POST /oauth2/par` (RFC 9126): the client authenticates and pushes its request; it is fully
/// validated now (errors as JSON) and stored for 60 seconds under a one-time `request_uri`.
pub async fn oidc_par_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, super::error::OAuthError> {
    use super::error::OAuthError;
    let params: AuthParams = serde_urlencoded::from_bytes(&body)
        .map_err(|_| OAuthError::invalid_request("malformed or repeated parameters"))?;
    let client_params: super::client_auth::ClientParams = serde_urlencoded::from_bytes(&body)
        .map_err(|_| OAuthError::invalid_request("malformed or repeated parameters"))?;
    let client = super::client_auth::authenticate(&state, &req, client_params, true).await?;
    if params.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_request(
            "client_id must name the authenticated client",
        ));
    }
    if params.request_uri.is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed"));
    }
    match check(&state, &req, &params).await {
        Ok(_) => {}
        Err(Invalid::Page(WebError::Unavailable)) => return Err(OAuthError::unavailable()),
        Err(Invalid::Page(_)) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is missing or not registered",
            ))
        }
        Err(Invalid::Redirect(_, code, d)) => return Err(OAuthError::new(code, d)),
    }
    let body = serde_json::to_string(&params).map_err(|_| OAuthError::unavailable())?;
    let (st, cid) = (state.clone(), client.client_id.clone());
    let id = web::block(move || -> Result<String, DbError> {
        let now = kuntalaistili_schema::now_utc();
        let id = random_token();
        flows::insert_auth_request(
            &mut *st.db.conn()?,
            &AuthRequest {
                id: id.clone(),
                client_id: cid,
                params: body,
                pushed: true,
                session_id: None,
                created_at: now,
                expires_at: now + Duration::seconds(PAR_SECONDS),
            },
        )?;
        Ok(id)
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "PAR storage error");
        OAuthError::unavailable()
    })?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{id}"),
            "expires_in": PAR_SECONDS,
        })))
}

/// Lifetime of a pushed request.
pub const PAR_SECONDS: i64 = 60;

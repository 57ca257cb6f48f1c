//! `POST /oauth2/revoke` (RFC 7009). A refresh token revokes its whole grant (and with it the
//! grant's access tokens); an access token is put on the revoked list until it expires. The
//! answer is 200 whether or not the token was known, so it tells nothing to a guesser.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_metadata::crypto::sha256_hex;
use kuntalaistili_schema::oidc_flows as flows;
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{audit, DbError};
use serde::Deserialize;
use serde_json::json;

use super::client_auth::{authenticate, ClientParams};
use super::error::OAuthError;
use super::introspect::{verified_access_token, MAX_TOKEN};
use crate::audit::{kind, Event};
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: ClientParams,
}

pub async fn oidc_revoke_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let client = authenticate(&state, &req, form.client, true).await?;
    let token = form
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if let Some(h) = form.token_type_hint.as_deref() {
        if !matches!(h, "access_token" | "refresh_token") {
            return Err(OAuthError::new(
                "unsupported_token_type",
                "token_type_hint must be access_token or refresh_token",
            ));
        }
    }
    if token.len() <= MAX_TOKEN {
        let jwks = super::cache::jwks_doc(&state).await?;
        let access = verified_access_token(&state, &jwks, &token);
        let st = state.clone();
        let cid = client.client_id.clone();
        web::block(move || -> Result<(), DbError> {
            let mut conn = st.db.conn()?;
            let now = kuntalaistili_schema::now_utc();
            if let Some(c) = access {
                let (Some(jti), Some(exp)) = (c["jti"].as_str(), c["exp"].as_i64()) else {
                    return Ok(());
                };
                if c["client_id"].as_str() != Some(cid.as_str()) {
                    return Ok(());
                }
                let until = chrono::DateTime::from_timestamp(exp, 0).map_or(now, |t| t.naive_utc());
                write_tx(&mut conn, |conn| -> Result<(), DbError> {
                    flows::revoke_jti(conn, jti, until)?;
                    audit::append_in_tx(
                        conn,
                        Event::success(kind::TOKEN_REVOKED)
                            .actor(cid.clone())
                            .details(json!({ "jti": jti, "type": "access_token" }))
                            .into_new(),
                        now,
                    )?;
                    Ok(())
                })?;
                return Ok(());
            }
            if let Some((_, grant)) = flows::find_refresh(&mut conn, &sha256_hex(&token))? {
                if grant.client_id == cid {
                    write_tx(&mut conn, |conn| -> Result<(), DbError> {
                        if flows::revoke_grant(conn, &grant.id, now)? {
                            audit::append_in_tx(
                                conn,
                                Event::success(kind::TOKEN_REVOKED)
                                    .actor(cid.clone())
                                    .subject(grant.user_id.clone())
                                    .details(json!({ "grant": grant.id, "type": "refresh_token" }))
                                    .into_new(),
                                now,
                            )?;
                        }
                        Ok(())
                    })?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| OAuthError::unavailable())?
        .map_err(|e| {
            tracing::error!(error = %e, "revocation storage error");
            OAuthError::unavailable()
        })?;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

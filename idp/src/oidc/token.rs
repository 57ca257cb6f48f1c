//! `POST /oauth2/token`: the `authorization_code` (with PKCE), `refresh_token` (rotated, reuse
//! revokes the whole grant) and `client_credentials` grants. Access tokens are ES256-signed JWTs
//! (RFC 9068); ID tokens use the client's registered algorithm.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::crypto::{random_token, sha256_hex};
use kuntalaistili_metadata::keys::{Alg, Signer};
use kuntalaistili_schema::oidc_clients::OidcClient;
use kuntalaistili_schema::oidc_flows::{self as flows, Grant, Redeemed, RefreshToken};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{audit, users, AnyConnection, DbError};
use serde::Deserialize;
use serde_json::json;

use super::client_auth::{authenticate, ClientParams, MAX_PARAM};
use super::error::OAuthError;
use super::issue::{self, AccessToken};
use super::pkce;
use crate::audit::{kind, Event};
use crate::IdpState;

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    #[serde(flatten)]
    client: ClientParams,
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
        &form.code,
        &form.redirect_uri,
        &form.code_verifier,
        &form.refresh_token,
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
    let client = authenticate(&state, &req, form.client.clone(), true).await?;
    if !matches!(
        grant.as_str(),
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, client_credentials",
        ));
    }
    if !client_may(&client, &grant) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("the client may not use {grant}"),
        ));
    }
    match grant.as_str() {
        "client_credentials" => client_credentials(&state, &client, form.scope.as_deref()).await,
        "authorization_code" => authorization_code(&state, client, form).await,
        _ => refresh(&state, client, form).await,
    }
}

fn client_may(client: &OidcClient, grant: &str) -> bool {
    let grants: Vec<String> = serde_json::from_str(&client.grant_types).unwrap_or_default();
    grants.iter().any(|g| g == grant)
}

async fn client_credentials(
    state: &web::Data<IdpState>,
    client: &OidcClient,
    scope: Option<&str>,
) -> Result<HttpResponse, OAuthError> {
    if client.public_client {
        return Err(OAuthError::new(
            "unauthorized_client",
            "a public client cannot use client_credentials",
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
    let signer = issue::signer(state, Alg::Es256).await?;
    let scope = granted.join(" ");
    let (token, lifetime) = issue::access_token(
        state,
        &signer,
        &AccessToken {
            sub: &client.client_id,
            client_id: &client.client_id,
            scope: &scope,
            grant_id: None,
            auth_time: None,
            acr: None,
        },
    );
    state.metrics.token_issued(&client.client_id);
    Ok(issue::token_response(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    })))
}

fn invalid_grant(d: &str) -> OAuthError {
    OAuthError::new("invalid_grant", d)
}

/// Revokes a grant whose code or refresh token was presented twice, with its audit row.
fn revoke_replayed(
    conn: &mut AnyConnection,
    grant: &Grant,
    what: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    write_tx(conn, |conn| -> Result<(), DbError> {
        flows::revoke_grant(conn, &grant.id, now)?;
        audit::append_in_tx(
            conn,
            Event::failure(kind::TOKEN_REPLAY)
                .actor(grant.client_id.clone())
                .subject(grant.user_id.clone())
                .details(json!({ "grant": grant.id, "replayed": what }))
                .into_new(),
            now,
        )?;
        Ok(())
    })
}

/// What the blocking part hands back for signing.
struct Minted {
    grant: Grant,
    refresh: Option<String>,
}

async fn authorization_code(
    state: &web::Data<IdpState>,
    client: Arc<OidcClient>,
    form: TokenForm,
) -> Result<HttpResponse, OAuthError> {
    let code = form
        .code
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = form
        .redirect_uri
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = form.code_verifier;
    let st = state.clone();
    let cl = client.clone();
    let minted = web::block(move || -> Result<Minted, OAuthError> {
        let mut conn = st.db.conn().map_err(db_err)?;
        let now = kuntalaistili_schema::now_utc();
        let hash = sha256_hex(&code);
        match flows::find_code(&mut conn, &hash).map_err(db_err)? {
            Some((_, grant)) if grant.client_id == cl.client_id => {}
            _ => return Err(invalid_grant("unknown code")),
        }
        let (code, grant) = match flows::redeem_code(&mut conn, &hash, now).map_err(db_err)? {
            Redeemed::Fresh(c, g) => (c, g),
            Redeemed::Reused(g) => {
                // RFC 6749 §4.1.2: a replayed code revokes what the first use issued.
                revoke_replayed(&mut conn, &g, "code", now).map_err(db_err)?;
                return Err(invalid_grant("code already used"));
            }
            Redeemed::Unknown => return Err(invalid_grant("unknown code")),
        };
        if code.expires_at <= now {
            return Err(invalid_grant("code expired"));
        }
        if code.redirect_uri != redirect_uri {
            return Err(invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        match (&code.code_challenge, &verifier) {
            (Some(ch), Some(v)) if pkce::verify(ch, v) => {}
            (Some(_), Some(_)) => return Err(invalid_grant("code_verifier does not match")),
            (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
            (None, Some(_)) => {
                return Err(invalid_grant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ))
            }
            (None, None) => {}
        }
        if grant.revoked_at.is_some() {
            return Err(invalid_grant("the authorization was revoked"));
        }
        live_user(&mut conn, &grant)?;
        let refresh = issue_refresh(&st, &mut conn, &cl, &grant, now, "authorization_code")?;
        Ok(Minted { grant, refresh })
    })
    .await
    .map_err(|_| OAuthError::unavailable())??;
    respond(state, &client, minted).await
}

async fn refresh(
    state: &web::Data<IdpState>,
    client: Arc<OidcClient>,
    form: TokenForm,
) -> Result<HttpResponse, OAuthError> {
    let token = form
        .refresh_token
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let narrowed = form.scope;
    let st = state.clone();
    let cl = client.clone();
    let minted = web::block(move || -> Result<Minted, OAuthError> {
        let mut conn = st.db.conn().map_err(db_err)?;
        let now = kuntalaistili_schema::now_utc();
        let hash = sha256_hex(&token);
        match flows::find_refresh(&mut conn, &hash).map_err(db_err)? {
            Some((_, grant)) if grant.client_id == cl.client_id => {}
            _ => return Err(invalid_grant("unknown refresh token")),
        }
        let (rt, mut grant): (RefreshToken, Grant) =
            match flows::redeem_refresh(&mut conn, &hash, now).map_err(db_err)? {
                Redeemed::Fresh(r, g) => (r, g),
                Redeemed::Reused(g) => {
                    // RFC 9700 §4.14.2: reuse of a rotated token revokes the whole family.
                    revoke_replayed(&mut conn, &g, "refresh_token", now).map_err(db_err)?;
                    return Err(invalid_grant("refresh token already used"));
                }
                Redeemed::Unknown => return Err(invalid_grant("unknown refresh token")),
            };
        if rt.expires_at <= now || grant.revoked_at.is_some() || grant.expires_at <= now {
            return Err(invalid_grant("refresh token expired or revoked"));
        }
        live_user(&mut conn, &grant)?;
        if let Some(s) = narrowed.filter(|s| !s.trim().is_empty()) {
            let held: Vec<&str> = grant.scope.split_whitespace().collect();
            if let Some(bad) = s.split_whitespace().find(|x| !held.contains(x)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("scope {bad:?} was not granted"),
                ));
            }
            grant.scope = s.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        let refresh = issue_refresh(&st, &mut conn, &cl, &grant, now, "refresh_token")?;
        Ok(Minted { grant, refresh })
    })
    .await
    .map_err(|_| OAuthError::unavailable())??;
    respond(state, &client, minted).await
}

fn db_err(e: DbError) -> OAuthError {
    tracing::error!(error = %e, "token endpoint storage error");
    OAuthError::unavailable()
}

/// The grant's user must still exist and be enabled, and still hold the role every privileged
/// scope of the grant needs (a demoted administrator's refresh token stops opening the register).
fn live_user(conn: &mut AnyConnection, grant: &Grant) -> Result<(), OAuthError> {
    match users::find_by_id(conn, &grant.user_id).map_err(db_err)? {
        Some(u) if !u.disabled => {
            match super::privileged::first_refused(grant.scope.split_whitespace(), &u) {
                None => Ok(()),
                Some(s) => Err(invalid_grant(&format!(
                    "the person no longer holds what the scope {s} needs"
                ))),
            }
        }
        _ => Err(invalid_grant("the user is no longer active")),
    }
}

/// Stores a new refresh token when the grant holds `offline_access` and the client may refresh,
/// and audits the issuance in the same transaction.
fn issue_refresh(
    st: &IdpState,
    conn: &mut AnyConnection,
    client: &OidcClient,
    grant: &Grant,
    now: chrono::NaiveDateTime,
    via: &str,
) -> Result<Option<String>, OAuthError> {
    let wants = grant
        .scope
        .split_whitespace()
        .any(|s| s == "offline_access")
        && client_may(client, "refresh_token");
    let token = wants.then(random_token);
    write_tx(conn, |conn| -> Result<(), DbError> {
        if let Some(t) = &token {
            flows::insert_refresh(
                conn,
                &RefreshToken {
                    token_hash: sha256_hex(t),
                    grant_id: grant.id.clone(),
                    created_at: now,
                    expires_at: (now + Duration::days(st.settings.refresh_token_days))
                        .min(grant.expires_at),
                    used_at: None,
                },
            )?;
        }
        audit::append_in_tx(
            conn,
            Event::success(kind::TOKEN_ISSUED)
                .actor(client.client_id.clone())
                .subject(grant.user_id.clone())
                .details(json!({
                    "grant": grant.id,
                    "via": via,
                    "scope": grant.scope,
                    "refresh_token": token.is_some(),
                }))
                .into_new(),
            now,
        )?;
        Ok(())
    })
    .map_err(db_err)?;
    Ok(token)
}

async fn respond(
    state: &web::Data<IdpState>,
    client: &OidcClient,
    m: Minted,
) -> Result<HttpResponse, OAuthError> {
    let at_signer = issue::signer(state, Alg::Es256).await?;
    let openid = m.grant.scope.split_whitespace().any(|s| s == "openid");
    let id_signer: Option<Arc<Signer>> = if openid {
        Some(issue::signer(state, issue::id_token_alg(client)).await?)
    } else {
        None
    };
    let sub = super::claims::subject(client, &state.keys, &m.grant.user_id);
    let (access, lifetime) = issue::access_token(
        state,
        &at_signer,
        &AccessToken {
            sub: &sub,
            client_id: &client.client_id,
            scope: &m.grant.scope,
            grant_id: Some(&m.grant.id),
            auth_time: Some(m.grant.auth_time.and_utc().timestamp()),
            acr: Some(&m.grant.acr),
        },
    );
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": m.grant.scope,
    });
    if let Some(s) = id_signer {
        let permissions = match &client.release_permissions {
            Some(release) => Some(released_permissions(state, &m.grant.user_id, release).await?),
            None => None,
        };
        body["id_token"] = json!(issue::id_token(
            state,
            &s,
            client,
            &m.grant,
            &sub,
            &access,
            permissions.as_deref()
        ));
    }
    if let Some(r) = m.refresh {
        body["refresh_token"] = json!(r);
    }
    state.metrics.token_issued(&client.client_id);
    Ok(issue::token_response(body))
}

/// The `permissions` claim: the person's rights in force in the services the client is
/// configured to learn about.
pub async fn released_permissions(
    state: &web::Data<IdpState>,
    user_id: &str,
    release: &str,
) -> Result<Vec<String>, OAuthError> {
    let (st, user, release) = (state.clone(), user_id.to_owned(), release.to_owned());
    web::block(move || -> Result<Vec<String>, DbError> {
        let rights = st.authz.rights(&mut *st.db.conn()?, &user)?;
        Ok(rights.released(&release, kuntalaistili_schema::now_utc()))
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(db_err)
}

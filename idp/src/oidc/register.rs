//! Dynamic client registration (RFC 7591) at `POST /oauth2/register` and its management
//! protocol (RFC 7592) at `/oauth2/register/{client_id}`, governed by configuration: disabled
//! (the default), open, or protected by an initial access token. Clients registered here always
//! ask residents for consent and never receive national ids; nothing is fetched from URLs they
//! give (no `jwks_uri`, no `sector_identifier_uri`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_federation::clients::{self, ClientError, NewClient};
use kuntalaistili_metadata::crypto::{ct_eq, random_token, sha256_hex};
use kuntalaistili_schema::oidc_clients::{self, OidcClient};
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::claims::SCOPES;
use super::error::OAuthError;
use super::userinfo::bearer;
use crate::settings::Registration;
use crate::IdpState;

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    client_id: Option<String>,
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    scope: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    backchannel_logout_uri: Option<String>,
    subject_type: Option<String>,
    sector_identifier_uri: Option<String>,
    id_token_signed_response_alg: Option<String>,
}

fn meta_err(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", d)
}

fn parse(body: &[u8]) -> Result<Metadata, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|e| meta_err(format!("not valid client metadata JSON: {e}")))
}

/// Turns registration metadata into a client description (RFC 7591 §2 defaults).
fn describe(m: Metadata) -> Result<NewClient, OAuthError> {
    if m.jwks_uri.is_some() {
        return Err(meta_err("jwks_uri is not supported; send the keys as jwks"));
    }
    if m.sector_identifier_uri.is_some() {
        return Err(meta_err("sector_identifier_uri is not supported"));
    }
    if let Some(rt) = &m.response_types {
        if rt.iter().any(|t| t != "code") {
            return Err(meta_err("only the response type code is supported"));
        }
    }
    let method = m
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    let public = match method.as_str() {
        "none" => true,
        "client_secret_basic" | "client_secret_post" => false,
        "private_key_jwt" if m.jwks.is_some() => false,
        "private_key_jwt" => return Err(meta_err("private_key_jwt needs jwks")),
        other => {
            return Err(meta_err(format!(
                "token_endpoint_auth_method {other:?} is not supported"
            )))
        }
    };
    let pairwise = match m.subject_type.as_deref() {
        None | Some("public") => false,
        Some("pairwise") => true,
        Some(other) => return Err(meta_err(format!("subject_type {other:?} is not supported"))),
    };
    // The IdP POSTs to the back-channel URI on every logout: only to a host the client already
    // controls (one of its redirect URIs' hosts), never somewhere inside our network.
    if let Some(bc) = &m.backchannel_logout_uri {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        };
        let redirect_hosts: Vec<String> = m
            .redirect_uris
            .iter()
            .flatten()
            .filter_map(|u| host(u))
            .collect();
        if !host(bc).is_some_and(|h| redirect_hosts.contains(&h)) {
            return Err(meta_err(
                "backchannel_logout_uri must be on the host of one of the redirect URIs",
            ));
        }
    }
    let scope = m
        .scope
        .unwrap_or_else(|| "openid profile email phone address municipality".into());
    if let Some(bad) = scope.split_whitespace().find(|s| !SCOPES.contains(s)) {
        return Err(meta_err(format!("scope {bad:?} is not offered")));
    }
    Ok(NewClient {
        name: m
            .client_name
            .unwrap_or_else(|| "Dynamically registered client".into()),
        redirect_uris: m.redirect_uris.unwrap_or_default(),
        public,
        grant_types: m
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into()]),
        scopes: scope,
        allow_national_id: false,
        post_logout_redirect_uris: m.post_logout_redirect_uris.unwrap_or_default(),
        backchannel_logout_uri: m.backchannel_logout_uri,
        pairwise,
        sector_identifier: None,
        jwks: if method == "private_key_jwt" {
            m.jwks.map(|j| j.to_string())
        } else {
            None
        },
        skip_consent: false,
        id_token_alg: Some(
            m.id_token_signed_response_alg
                .unwrap_or_else(|| "RS256".into()),
        ),
        registration_token_hash: None,
        release_permissions: Vec::new(),
    })
}

fn client_error(e: ClientError) -> OAuthError {
    match e {
        ClientError::Invalid { field, reason } if field.contains("redirect_uri") => {
            OAuthError::new("invalid_redirect_uri", reason)
        }
        ClientError::Invalid { field, reason } => meta_err(format!("{field}: {reason}")),
        ClientError::Db(DbError::NotFound(_)) => OAuthError {
            code: "invalid_token",
            description: "unknown client".into(),
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: false,
        },
        ClientError::Db(e) => {
            tracing::error!(error = %e, "registration storage error");
            OAuthError::unavailable()
        }
    }
}

fn response(state: &IdpState, c: &OidcClient, secret: Option<&str>, token: Option<&str>) -> Value {
    let list = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!([]));
    let mut v = json!({
        "client_id": c.client_id,
        "client_id_issued_at": c.created_at.and_utc().timestamp(),
        "client_name": c.name,
        "redirect_uris": list(&c.redirect_uris),
        "grant_types": list(&c.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "scope": c.scopes,
        "post_logout_redirect_uris": list(&c.post_logout_redirect_uris),
        "subject_type": c.subject_type,
        "id_token_signed_response_alg": c.id_token_alg,
        "registration_client_uri": format!("{}{}/{}", state.settings.public_url, crate::paths::REGISTER, c.client_id),
    });
    if let Some(b) = &c.backchannel_logout_uri {
        v["backchannel_logout_uri"] = json!(b);
    }
    if let Some(j) = c
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
    {
        v["jwks"] = j;
    }
    if let Some(s) = secret {
        v["client_secret"] = json!(s);
        v["client_secret_expires_at"] = json!(0);
    }
    if let Some(t) = token {
        v["registration_access_token"] = json!(t);
    }
    v
}

fn json_reply(status: StatusCode, v: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(v)
}

fn invalid_token() -> OAuthError {
    OAuthError {
        code: "invalid_token",
        description: "missing or wrong access token".into(),
        status: StatusCode::UNAUTHORIZED,
        basic_challenge: false,
    }
}

/// The URIs the IdP itself will call for a registered client (back-channel logout) must lead to
/// the public internet over https (loopback in development), never into our own network.
fn callable(state: &IdpState, new: &NewClient) -> Result<(), OAuthError> {
    if let Some(bc) = &new.backchannel_logout_uri {
        state
            .outbound
            .check_uri(bc)
            .map_err(|why| meta_err(format!("backchannel_logout_uri {why}")))?;
    }
    Ok(())
}

/// `POST /oauth2/register`.
pub async fn oidc_register_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    match &state.settings.registration {
        Registration::Disabled => {
            return Err(OAuthError {
                code: "access_denied",
                description: "dynamic client registration is disabled on this server".into(),
                status: StatusCode::FORBIDDEN,
                basic_challenge: false,
            })
        }
        Registration::Open => {}
        Registration::Token(t) => {
            if !bearer(&req).is_some_and(|b| ct_eq(b, t)) {
                return Err(invalid_token());
            }
        }
    }
    let mut new = describe(parse(&body)?)?;
    callable(&state, &new)?;
    let token = random_token();
    new.registration_token_hash = Some(sha256_hex(&token));
    let st = state.clone();
    let (client, secret) = web::block(
        move || -> Result<(OidcClient, Option<String>), ClientError> {
            let mut conn = st.db.conn()?;
            clients::add(
                &mut conn,
                new,
                "registration",
                kuntalaistili_schema::now_utc(),
            )
        },
    )
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(client_error)?;
    Ok(json_reply(
        StatusCode::CREATED,
        response(&state, &client, secret.as_deref(), Some(&token)),
    ))
}

/// The client a registration access token manages (RFC 7592 §2).
async fn managed(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    client_id: &str,
) -> Result<OidcClient, OAuthError> {
    let token = bearer(req).ok_or_else(invalid_token)?.to_owned();
    let (st, cid) = (state.clone(), client_id.to_owned());
    let found = web::block(move || -> Result<Option<OidcClient>, DbError> {
        oidc_clients::find(&mut *st.db.conn()?, &cid)
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(|e| client_error(ClientError::Db(e)))?;
    match found {
        Some(c)
            if c.registration_token_hash
                .as_deref()
                .is_some_and(|h| ct_eq(h, &sha256_hex(&token))) =>
        {
            Ok(c)
        }
        _ => Err(invalid_token()),
    }
}

/// `GET /oauth2/register/{client_id}`.
pub async fn oidc_register_read(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let c = managed(&state, &req, &path).await?;
    Ok(json_reply(StatusCode::OK, response(&state, &c, None, None)))
}

/// `PUT /oauth2/register/{client_id}`: replaces the metadata.
pub async fn oidc_register_update(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let c = managed(&state, &req, &path).await?;
    let m = parse(&body)?;
    if m.client_id.as_deref().is_some_and(|id| id != c.client_id) {
        return Err(OAuthError::invalid_request("client_id does not match"));
    }
    let new = describe(m)?;
    callable(&state, &new)?;
    let (st, cid) = (state.clone(), c.client_id.clone());
    let updated = web::block(move || -> Result<OidcClient, ClientError> {
        clients::update(
            &mut *st.db.conn()?,
            &cid,
            new,
            "registration",
            kuntalaistili_schema::now_utc(),
        )
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(client_error)?;
    state.oidc_cache.forget_client(&c.client_id);
    Ok(json_reply(
        StatusCode::OK,
        response(&state, &updated, None, None),
    ))
}

/// `DELETE /oauth2/register/{client_id}`.
pub async fn oidc_register_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let c = managed(&state, &req, &path).await?;
    let cid = c.client_id.clone();
    let st = state.clone();
    web::block(move || -> Result<(), ClientError> {
        clients::remove(
            &mut *st.db.conn()?,
            &c.client_id,
            "registration",
            kuntalaistili_schema::now_utc(),
        )
    })
    .await
    .map_err(|_| OAuthError::unavailable())?
    .map_err(client_error)?;
    state.oidc_cache.forget_client(&cid);
    Ok(HttpResponse::NoContent().finish())
}

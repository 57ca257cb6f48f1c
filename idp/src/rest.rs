//! The administrators' REST API for people and relying parties under `/api/v1` (`admin` scope):
//! what the admin pages do, for scripts and other tools. RFC 7807 errors, offset pagination.
//! Every change is audited with the calling client as actor (`client:<id>`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::{problem, read_limited};
use kuntalaistili_federation::clients::{self, ClientError, NewClient};
use kuntalaistili_schema::{oidc_clients, users, DbError};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::api::caller;
use crate::authz::api::ADMIN_SCOPE;
use crate::customers::{self, CustomerError, NewPerson};
use crate::IdpState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/users", web::get().to(users_list))
        .route("/api/v1/users", web::post().to(users_create))
        .route("/api/v1/users/{id}", web::get().to(user_get))
        .route("/api/v1/users/{id}", web::delete().to(user_delete))
        .route("/api/v1/users/{id}/disable", web::post().to(user_disable))
        .route("/api/v1/clients", web::get().to(clients_list))
        .route("/api/v1/clients", web::post().to(clients_create))
        .route("/api/v1/clients/{id}", web::get().to(client_get))
        .route("/api/v1/clients/{id}", web::delete().to(client_delete))
        .route("/api/v1/clients/{id}", web::patch().to(client_patch))
        .route("/api/v1/clients/{id}/secret", web::post().to(client_rotate));
}

/// A JSON answer that caches nowhere.
pub(crate) fn json_ok(status: StatusCode, v: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(v)
}

pub(crate) fn unavailable() -> HttpResponse {
    problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
}

/// The calling client (as an audit actor, `client:<id>`) when its token has the `admin` scope.
pub(crate) async fn admin(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<String, HttpResponse> {
    caller(state, req, ADMIN_SCOPE)
        .await
        .map(|c| format!("client:{}", c.client_id))
}

async fn body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, HttpResponse> {
    body_limited(payload, 32 * 1024).await
}

/// A JSON body of at most `limit` bytes; 413 or 400 problem JSON otherwise.
pub(crate) async fn body_limited<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    limit: usize,
) -> Result<T, HttpResponse> {
    let bytes = read_limited(payload, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, &format!("malformed body: {e}")))
}

fn customer_error(e: CustomerError) -> HttpResponse {
    match e {
        CustomerError::Db(DbError::Conflict(what)) => {
            problem(StatusCode::CONFLICT, &format!("{what} already exists"))
        }
        CustomerError::Db(DbError::NotFound(_)) => problem(StatusCode::NOT_FOUND, "no such user"),
        CustomerError::Db(e) => {
            tracing::error!(error = %e, "register storage error");
            unavailable()
        }
        other => problem(StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

fn client_error(e: ClientError) -> HttpResponse {
    match e {
        ClientError::Db(DbError::NotFound(_)) => problem(StatusCode::NOT_FOUND, "no such client"),
        ClientError::Db(DbError::Conflict(w)) => {
            problem(StatusCode::CONFLICT, &format!("{w} already exists"))
        }
        ClientError::Db(e) => {
            tracing::error!(error = %e, "client storage error");
            unavailable()
        }
        other => problem(StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

/// A page of a list: `limit` 1-500 (default 100), `offset` from 0.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Text to look for in username, names and email (users only).
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The query's search text and page; why not, as a problem's detail.
fn page_of(req: &HttpRequest) -> Result<(Option<String>, usize, usize), String> {
    let q = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|e| e.to_string())?
        .into_inner();
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err("limit must be 1-500 and offset not negative".into());
    }
    Ok((q.q, limit as usize, offset as usize))
}

fn paged(items: Vec<Value>, limit: usize, offset: usize) -> Value {
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({
        "items": page,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": (offset + limit < total).then_some(offset + limit),
    })
}

/// List people, optionally searched.
#[utoipa::path(get, path = "/api/v1/users", tag = "register", params(PageQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of people"), (status = 400, description = "Bad query"),
        (status = 401, description = "No valid token"), (status = 403, description = "Token lacks the admin scope")))]
pub async fn users_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = admin(&state, &req).await {
        return r;
    }
    let (q, limit, offset) = match page_of(&req) {
        Ok(p) => p,
        Err(d) => return problem(StatusCode::BAD_REQUEST, &d),
    };
    let needle = q.unwrap_or_default().trim().to_lowercase();
    let st = state.clone();
    let r = web::block(move || -> Result<Vec<Value>, DbError> {
        Ok(users::list(&mut *st.db.conn()?)?
            .iter()
            .filter(|u| {
                needle.is_empty()
                    || [
                        Some(&u.username),
                        u.given_name.as_ref(),
                        u.family_name.as_ref(),
                        u.email.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .map(customers::public_json)
            .collect())
    })
    .await;
    match r {
        Ok(Ok(items)) => json_ok(StatusCode::OK, &paged(items, limit, offset)),
        _ => unavailable(),
    }
}

/// A person to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    pub username: String,
    pub password: Option<String>,
    /// resident (default), staff or admin.
    #[serde(default)]
    pub role: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    /// Three-digit municipality code.
    pub home_municipality: Option<String>,
    /// fi, sv or en.
    pub preferred_language: Option<String>,
    /// Finnish personal identity code (stored encrypted, never returned).
    pub national_id: Option<String>,
    /// Space-separated: email, sms, notice.
    pub message_channels: Option<String>,
}

/// Register a person.
#[utoipa::path(post, path = "/api/v1/users", tag = "register", request_body = PersonBody,
    security(("bearer" = ["admin"])),
    responses((status = 201, description = "Registered"), (status = 400, description = "Invalid"),
        (status = 409, description = "Username or national id taken")))]
pub async fn users_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: PersonBody = match body(payload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p = NewPerson {
        username: b.username,
        password: b.password,
        role: b.role,
        given_name: b.given_name,
        family_name: b.family_name,
        email: b.email,
        phone: b.phone,
        street_address: b.street_address,
        postal_code: b.postal_code,
        locality: b.locality,
        country: b.country,
        home_municipality: b.home_municipality,
        preferred_language: b.preferred_language,
        national_id: b.national_id,
        message_channels: b.message_channels,
    };
    let st = state.clone();
    let r = web::block(move || {
        customers::add(
            &mut *st.db.conn()?,
            &st.keys,
            &st.hasher,
            p,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    match r {
        Ok(Ok(u)) => {
            let mut resp = json_ok(StatusCode::CREATED, &customers::public_json(&u));
            if let Ok(h) = header::HeaderValue::from_str(&format!("/api/v1/users/{}", u.id)) {
                resp.headers_mut().insert(header::LOCATION, h);
            }
            resp
        }
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

/// One person.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "register",
    params(("id" = String, Path, description = "The person's id (sub)")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The person"), (status = 404, description = "No such person")))]
pub async fn user_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = admin(&state, &req).await {
        return r;
    }
    let st = state.clone();
    match web::block(move || users::find_by_id(&mut *st.db.conn()?, &id)).await {
        Ok(Ok(Some(u))) => json_ok(StatusCode::OK, &customers::public_json(&u)),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such user"),
        _ => unavailable(),
    }
}

/// Disable an account (its sessions end, its grants are revoked).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "register",
    params(("id" = String, Path, description = "The person's id")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Disabled"), (status = 404, description = "No such person")))]
pub async fn user_disable(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let st = state.clone();
    let r = web::block(move || -> Result<_, CustomerError> {
        let mut conn = st.db.conn()?;
        let u = users::find_by_id(&mut conn, &id)?.ok_or(DbError::NotFound("user"))?;
        let done = customers::disable(
            &mut conn,
            &u.username,
            &actor,
            kuntalaistili_schema::now_utc(),
        )?;
        Ok((u.id, done.grants))
    })
    .await;
    match r {
        Ok(Ok((uid, grants))) => {
            // The services the person was logged in to end their sessions too.
            crate::session::logout::grants_revoked(&state, &uid, grants).await;
            HttpResponse::NoContent().finish()
        }
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

/// Erase a person: the account closes now, the data is overwritten after the retention period.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "register",
    params(("id" = String, Path, description = "The person's id")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Erasure requested"), (status = 404, description = "No such person")))]
pub async fn user_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let st = state.clone();
    let uid = id.into_inner();
    let u2 = uid.clone();
    let r = web::block(move || -> Result<Option<_>, DbError> {
        let mut conn = st.db.conn()?;
        if users::find_by_id(&mut conn, &u2)?
            .filter(|u| u.erasure_requested_at.is_none())
            .is_none()
        {
            return Ok(None);
        }
        Ok(Some(customers::gdpr::request_erasure(
            &mut conn,
            &u2,
            &actor,
            None,
            st.settings.erasure_retention_days,
            kuntalaistili_schema::now_utc(),
        )?))
    })
    .await;
    match r {
        Ok(Ok(Some(grants))) => {
            crate::session::logout::grants_revoked(&state, &uid, grants).await;
            HttpResponse::NoContent().finish()
        }
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such user"),
        _ => unavailable(),
    }
}

/// List relying parties (OIDC clients).
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(PageQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of clients")))]
pub async fn clients_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = admin(&state, &req).await {
        return r;
    }
    let (_, limit, offset) = match page_of(&req) {
        Ok(p) => p,
        Err(d) => return problem(StatusCode::BAD_REQUEST, &d),
    };
    let st = state.clone();
    match web::block(move || oidc_clients::list(&mut *st.db.conn()?)).await {
        Ok(Ok(all)) => json_ok(
            StatusCode::OK,
            &paged(
                all.iter().map(clients::public_json).collect(),
                limit,
                offset,
            ),
        ),
        _ => unavailable(),
    }
}

/// A relying party to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// authorization_code, refresh_token, client_credentials.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Space-separated.
    #[serde(default)]
    pub scope: String,
    /// A public client (no secret, PKCE).
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// A first-party service: residents are not asked for consent.
    #[serde(default)]
    pub skip_consent: bool,
    /// Pairwise subject identifiers.
    #[serde(default)]
    pub pairwise: bool,
    /// Services whose permissions the client receives in the `permissions` claim.
    #[serde(default)]
    pub release_permissions: Vec<String>,
    /// RS256 (default) or ES256.
    pub id_token_signed_response_alg: Option<String>,
}

/// Register a relying party; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = ClientBody,
    security(("bearer" = ["admin"])),
    responses((status = 201, description = "Registered, with client_secret for confidential clients"),
        (status = 400, description = "Invalid")))]
pub async fn clients_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: ClientBody = match body(payload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let n = NewClient {
        name: b.client_name,
        redirect_uris: b.redirect_uris,
        public: b.public,
        grant_types: b.grant_types,
        scopes: b.scope,
        post_logout_redirect_uris: b.post_logout_redirect_uris,
        backchannel_logout_uri: b.backchannel_logout_uri,
        skip_consent: b.skip_consent,
        pairwise: b.pairwise,
        release_permissions: b.release_permissions,
        id_token_alg: b.id_token_signed_response_alg,
        ..NewClient::default()
    };
    let st = state.clone();
    let r = web::block(move || {
        clients::add(
            &mut *st.db.conn()?,
            n,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    match r {
        Ok(Ok((c, secret))) => {
            let mut v = clients::public_json(&c);
            if let Some(s) = secret {
                v["client_secret"] = json!(s);
            }
            json_ok(StatusCode::CREATED, &v)
        }
        Ok(Err(e)) => client_error(e),
        Err(_) => unavailable(),
    }
}

/// One relying party.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "client_id")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The client"), (status = 404, description = "No such client")))]
pub async fn client_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = admin(&state, &req).await {
        return r;
    }
    let st = state.clone();
    match web::block(move || oidc_clients::find(&mut *st.db.conn()?, &id)).await {
        Ok(Ok(Some(c))) => json_ok(StatusCode::OK, &clients::public_json(&c)),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such client"),
        _ => unavailable(),
    }
}

/// Changes to a relying party; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    /// Space-separated.
    scopes: Option<String>,
    /// Services whose permissions the client receives (`*` = all).
    release_permissions: Option<Vec<String>>,
    /// A first-party service: residents are not asked for consent.
    skip_consent: Option<bool>,
    /// Out of use: no logins, tokens or API calls.
    disabled: Option<bool>,
}

/// Edit a relying party (name, redirect URIs, scopes, released permissions, consent, in use).
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", request_body = ClientPatch,
    params(("id" = String, Path, description = "client_id")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The client as changed"), (status = 400, description = "Invalid"),
        (status = 404, description = "No such client")))]
pub async fn client_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p: ClientPatch = match body(payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (st, cid) = (state.clone(), id.into_inner());
    let cid2 = cid.clone();
    let r = web::block(move || -> Result<Option<OidcClientResult>, DbError> {
        let mut conn = st.db.conn()?;
        let Some(c) = oidc_clients::find(&mut conn, &cid2)? else {
            return Ok(None);
        };
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        let e = clients::ClientEdit {
            name: p.name.unwrap_or(c.name.clone()),
            redirect_uris: p.redirect_uris.unwrap_or_else(|| list(&c.redirect_uris)),
            scopes: p.scopes.unwrap_or(c.scopes.clone()),
            release_permissions: p.release_permissions.unwrap_or_else(|| {
                c.release_permissions
                    .as_deref()
                    .unwrap_or_default()
                    .split([' ', ','])
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            skip_consent: p.skip_consent.unwrap_or(!c.require_consent),
            disabled: p.disabled.unwrap_or(c.disabled),
        };
        Ok(Some(clients::edit(
            &mut conn,
            &cid2,
            e,
            &actor,
            kuntalaistili_schema::now_utc(),
        )))
    })
    .await;
    state.oidc_cache.forget_client(&cid);
    match r {
        Ok(Ok(Some(Ok(c)))) => json_ok(StatusCode::OK, &clients::public_json(&c)),
        Ok(Ok(Some(Err(e)))) => client_error(e),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such client"),
        _ => unavailable(),
    }
}

type OidcClientResult = Result<oidc_clients::OidcClient, ClientError>;

/// Replace a confidential client's secret; the new one is in this answer only.
#[utoipa::path(post, path = "/api/v1/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path, description = "client_id")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The new client_secret"), (status = 400, description = "A public client"),
        (status = 404, description = "No such client")))]
pub async fn client_rotate(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let st = state.clone();
    let cid = id.clone();
    let r = web::block(move || {
        clients::rotate_secret(
            &mut *st.db.conn()?,
            &cid,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    state.oidc_cache.forget_client(&id);
    match r {
        Ok(Ok(secret)) => json_ok(
            StatusCode::OK,
            &json!({ "client_id": *id, "client_secret": secret }),
        ),
        Ok(Err(e)) => client_error(e),
        Err(_) => unavailable(),
    }
}

/// Remove a relying party.
#[utoipa::path(delete, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "client_id")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such client")))]
pub async fn client_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match admin(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let st = state.clone();
    let cid = id.clone();
    let r = web::block(move || {
        clients::remove(
            &mut *st.db.conn()?,
            &cid,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    state.oidc_cache.forget_client(&id);
    match r {
        Ok(Ok(())) => HttpResponse::NoContent().finish(),
        Ok(Err(e)) => client_error(e),
        Err(_) => unavailable(),
    }
}

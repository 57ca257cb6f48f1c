//! Relying parties (OIDC clients) over the administrators' REST API: list, register, read,
//! edit, rotate the secret, remove. This node's copy of a changed client is forgotten at once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_federation::clients::{self, ClientError, NewClient};
use kuntalaistili_schema::{oidc_clients, DbError};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::call::{json_ok, respond, unavailable, Problem};
use super::{admin, bad_query, body, page_of, paged, PageQuery};
use crate::IdpState;

impl Problem for ClientError {
    fn answer(self) -> HttpResponse {
        match self {
            ClientError::Db(DbError::NotFound(_)) => {
                problem(StatusCode::NOT_FOUND, "no such client")
            }
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
}

/// List relying parties (OIDC clients).
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(PageQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of clients")))]
pub async fn clients_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let (_, limit, offset) = page_of(&req).map_err(bad_query)?;
            let all = call
                .run(|st| oidc_clients::list(&mut *st.db.conn()?))
                .await?;
            Ok(json_ok(
                StatusCode::OK,
                &paged(
                    all.iter().map(clients::public_json).collect(),
                    limit,
                    offset,
                ),
            ))
        }
        .await,
    )
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
    respond(
        async {
            let call = admin(&state, &req).await?;
            let b: ClientBody = body(payload).await?;
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
            let actor = call.actor();
            let (c, secret) = call
                .run(move |st| {
                    clients::add(
                        &mut *st.db.conn()?,
                        n,
                        &actor,
                        kuntalaistili_schema::now_utc(),
                    )
                })
                .await?;
            let mut v = clients::public_json(&c);
            if let Some(s) = secret {
                v["client_secret"] = json!(s);
            }
            Ok(json_ok(StatusCode::CREATED, &v))
        }
        .await,
    )
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
    respond(
        async {
            let call = admin(&state, &req).await?;
            let c = call
                .run(move |st| oidc_clients::find(&mut *st.db.conn()?, &id))
                .await?
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such client"))?;
            Ok(json_ok(StatusCode::OK, &clients::public_json(&c)))
        }
        .await,
    )
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
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let p: ClientPatch = body(payload).await?;
            let cid = id.into_inner();
            let cid2 = cid.clone();
            let r = call
                .run(move |st| -> Result<Option<OidcClientResult>, DbError> {
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
            let c = r?
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such client"))?
                .map_err(Problem::answer)?;
            Ok(json_ok(StatusCode::OK, &clients::public_json(&c)))
        }
        .await,
    )
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
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let cid = id.clone();
            let r = call
                .run(move |st| {
                    clients::rotate_secret(
                        &mut *st.db.conn()?,
                        &cid,
                        &actor,
                        kuntalaistili_schema::now_utc(),
                    )
                })
                .await;
            state.oidc_cache.forget_client(&id);
            let secret = r?;
            Ok(json_ok(
                StatusCode::OK,
                &json!({ "client_id": *id, "client_secret": secret }),
            ))
        }
        .await,
    )
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
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let cid = id.clone();
            let r = call
                .run(move |st| {
                    clients::remove(
                        &mut *st.db.conn()?,
                        &cid,
                        &actor,
                        kuntalaistili_schema::now_utc(),
                    )
                })
                .await;
            state.oidc_cache.forget_client(&id);
            r?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

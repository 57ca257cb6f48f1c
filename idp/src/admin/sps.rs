//! Managing SAML SPs: the admin pages (`/admin/sps`) and the REST API (`/api/v1/saml/sps`, `admin`
//! scope). Both add an SP from its metadata (pasted, uploaded as text, or fetched from an https
//! URL), change its settings, show what it receives, and remove it — audited with the admin (or
//! calling client) as actor, and this node's copy of the SP forgotten at once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_federation::saml::{self as registry, RegistryError, Settings, Sp, ATTRIBUTES};
use kuntalaistili_metadata::saml::metadata::{NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{context, require_admin, require_admin_form};
use crate::error::WebError;
use crate::rest::admin;
use crate::rest::call::{body_limited, json_ok, respond, unavailable, Problem};
use crate::session::logout::redirect;
use crate::IdpState;

/// Largest metadata document accepted from a form or a request body.
pub const MAX_BODY: usize = 256 * 1024;

fn now() -> chrono::NaiveDateTime {
    kuntalaistili_schema::now_utc()
}

/// The metadata text: given inline, or fetched from `url`.
async fn metadata_text(
    inline: Option<String>,
    url: Option<String>,
    ca: Option<&[u8]>,
) -> Result<(String, Option<String>), RegistryError> {
    match (
        inline.filter(|m| !m.trim().is_empty()),
        url.filter(|u| !u.trim().is_empty()),
    ) {
        (Some(m), None) => Ok((m, None)),
        (None, Some(u)) => {
            let u = u.trim().to_owned();
            Ok((registry::fetch(&u, ca).await?, Some(u)))
        }
        _ => Err(RegistryError::Invalid(
            "give the metadata either as text or as an https URL".into(),
        )),
    }
}

fn format_uri(short: &str) -> String {
    match short {
        "persistent" => NAMEID_PERSISTENT.to_owned(),
        "transient" => NAMEID_TRANSIENT.to_owned(),
        "email" => NAMEID_EMAIL.to_owned(),
        other => other.to_owned(),
    }
}

fn row_json(sp: &Sp) -> Value {
    let mut v = sp.to_json();
    v["trusted"] = json!(sp.trusted_at(now()));
    v
}

// ---------------------------------------------------------------- admin pages

#[derive(Debug, Deserialize)]
pub struct SpForm {
    csrf: Option<String>,
    entity_id: Option<String>,
    metadata: Option<String>,
    metadata_url: Option<String>,
    /// Comma-separated friendly names.
    attributes: Option<String>,
    name_id_format: Option<String>,
    require_signed_requests: Option<String>,
    encrypt_assertions: Option<String>,
    sign_response: Option<String>,
    allow_national_id: Option<String>,
    release_permissions: Option<String>,
    enabled: Option<String>,
}

impl SpForm {
    /// Checkboxes are absent when unticked: a settings form states every flag.
    fn settings(&self) -> Settings {
        Settings {
            require_signed_requests: Some(self.require_signed_requests.is_some()),
            sign_response: Some(self.sign_response.is_some()),
            sign_assertion: None,
            encrypt_assertions: Some(self.encrypt_assertions.is_some()),
            name_id_format: self.name_id_format.as_deref().map(format_uri),
            attributes: self
                .attributes
                .as_ref()
                .map(|a| a.split([',', ' ', '\n']).map(str::to_owned).collect()),
            allow_national_id: Some(self.allow_national_id.is_some()),
            release_permissions: self
                .release_permissions
                .as_ref()
                .map(|p| p.replace(',', " ")),
            enabled: None,
        }
    }
}

/// `GET /admin/sps`.
pub async fn admin_sps_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let all = web::block(move || registry::list(&mut *st.db.conn()?))
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "listing SPs");
            WebError::Unavailable
        })?;
    let rows: Vec<Value> = all.iter().map(row_json).collect();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert("sps", &rows);
    let names: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
    ctx.insert("known_attributes", &names.join(", "));
    ctx.insert("metadata_url", &crate::saml::urls(&state).entity_id);
    Ok(state.form_page(&req, StatusCode::OK, "admin/sps.html", ctx))
}

fn refused(
    state: &IdpState,
    req: &HttpRequest,
    e: &RegistryError,
) -> Result<HttpResponse, WebError> {
    match e {
        RegistryError::Db(kuntalaistili_schema::DbError::NotFound(_))
        | RegistryError::NotFound(_) => Err(WebError::NotFound),
        RegistryError::Db(_) => Err(WebError::Unavailable),
        other => Ok(super::refused(
            state,
            req,
            "admin.sp_refused",
            &other.to_string(),
        )),
    }
}

/// `POST /admin/sps`: register an SP.
pub async fn admin_sps_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<SpForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let (xml, url) = match metadata_text(
        f.metadata.clone(),
        f.metadata_url.clone(),
        state.settings.saml_metadata_ca.as_deref(),
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return refused(&state, &req, &e),
    };
    let settings = f.settings();
    let st = state.clone();
    let r = web::block(move || {
        registry::add(
            &mut *st.db.conn()?,
            &xml,
            url.as_deref(),
            &settings,
            &admin.id,
            now(),
        )
    })
    .await?;
    match r {
        Ok(sp) => {
            state.saml.forget_sp(&sp.row.entity_id);
            Ok(redirect("/admin/sps"))
        }
        Err(e) => refused(&state, &req, &e),
    }
}

/// `POST /admin/sps/settings`: change an SP's settings (`entity_id` in the form).
pub async fn admin_sps_settings_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<SpForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let entity = f.entity_id.clone().ok_or(WebError::NotFound)?;
    let mut settings = f.settings();
    settings.enabled = Some(f.enabled.is_some());
    let (st, e2) = (state.clone(), entity.clone());
    let r = web::block(move || {
        registry::configure(&mut *st.db.conn()?, &e2, &settings, &admin.id, now())
    })
    .await?;
    state.saml.forget_sp(&entity);
    match r {
        Ok(_) => Ok(redirect("/admin/sps")),
        Err(e) => refused(&state, &req, &e),
    }
}

/// `POST /admin/sps/remove` (`entity_id` in the form).
pub async fn admin_sps_remove_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<SpForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let entity = f.entity_id.clone().ok_or(WebError::NotFound)?;
    let (st, e2) = (state.clone(), entity.clone());
    let r =
        web::block(move || registry::remove(&mut *st.db.conn()?, &e2, &admin.id, now())).await?;
    state.saml.forget_sp(&entity);
    match r {
        Ok(()) => Ok(redirect("/admin/sps")),
        Err(e) => refused(&state, &req, &e),
    }
}

// ---------------------------------------------------------------- REST

/// A new SP: its metadata (`metadata` text or `metadata_url`) and settings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpBody {
    /// The SP's `EntityDescriptor` as text.
    metadata: Option<String>,
    /// An https URL to fetch it from (and refresh it from later).
    metadata_url: Option<String>,
    require_signed_requests: Option<bool>,
    sign_response: Option<bool>,
    sign_assertion: Option<bool>,
    encrypt_assertions: Option<bool>,
    /// persistent, transient or email (or the format URI).
    name_id_format: Option<String>,
    /// Friendly names of released attributes.
    attributes: Option<Vec<String>>,
    allow_national_id: Option<bool>,
    /// Services whose permissions are released (`*` = all).
    release_permissions: Option<Vec<String>>,
    enabled: Option<bool>,
}

impl SpBody {
    fn settings(&self) -> Settings {
        Settings {
            require_signed_requests: self.require_signed_requests,
            sign_response: self.sign_response,
            sign_assertion: self.sign_assertion,
            encrypt_assertions: self.encrypt_assertions,
            name_id_format: self.name_id_format.as_deref().map(format_uri),
            attributes: self.attributes.clone(),
            allow_national_id: self.allow_national_id,
            release_permissions: self.release_permissions.as_ref().map(|p| p.join(" ")),
            enabled: self.enabled,
        }
    }
}

impl Problem for RegistryError {
    fn answer(self) -> HttpResponse {
        match self {
            RegistryError::Exists(_) => problem(StatusCode::CONFLICT, &self.to_string()),
            RegistryError::NotFound(_) => problem(StatusCode::NOT_FOUND, &self.to_string()),
            RegistryError::Db(kuntalaistili_schema::DbError::NotFound(_)) => {
                problem(StatusCode::NOT_FOUND, "no such service provider")
            }
            RegistryError::Db(err) => {
                tracing::error!(error = %err, "SP registry");
                unavailable()
            }
            RegistryError::Fetch(_) => problem(StatusCode::BAD_GATEWAY, &self.to_string()),
            other => problem(StatusCode::BAD_REQUEST, &other.to_string()),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/saml/sps", tag = "saml",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Every SP with its settings, endpoints and what it receives"),
        (status = 401, description = "No valid token"), (status = 403, description = "Token lacks the admin scope")))]
pub async fn api_sps_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let all = call.run(|st| registry::list(&mut *st.db.conn()?)).await?;
            Ok(json_ok(
                StatusCode::OK,
                &json!({ "service_providers": all.iter().map(row_json).collect::<Vec<_>>() }),
            ))
        }
        .await,
    )
}

#[utoipa::path(post, path = "/api/v1/saml/sps", tag = "saml", request_body = SpBody,
    security(("bearer" = ["admin"])),
    responses((status = 201, description = "Registered"), (status = 400, description = "Invalid metadata or settings"),
        (status = 409, description = "Already registered"), (status = 502, description = "The metadata URL could not be fetched")))]
pub async fn api_sps_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let b: SpBody = body_limited(payload, MAX_BODY).await?;
            let (xml, url) = metadata_text(
                b.metadata.clone(),
                b.metadata_url.clone(),
                state.settings.saml_metadata_ca.as_deref(),
            )
            .await
            .map_err(Problem::answer)?;
            let settings = b.settings();
            let sp = call
                .run(move |st| {
                    registry::add(
                        &mut *st.db.conn()?,
                        &xml,
                        url.as_deref(),
                        &settings,
                        &actor,
                        now(),
                    )
                })
                .await?;
            state.saml.forget_sp(&sp.row.entity_id);
            Ok(json_ok(StatusCode::CREATED, &row_json(&sp)))
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/v1/saml/sps/{entity_id}", tag = "saml",
    params(("entity_id" = String, Path, description = "The SP's entity ID, percent-encoded")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The SP"), (status = 404, description = "Not registered")))]
pub async fn api_sp_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let id = id.into_inner();
            let sp = call
                .run(move |st| registry::load(&mut *st.db.conn()?, &id))
                .await?
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such service provider"))?;
            Ok(json_ok(StatusCode::OK, &row_json(&sp)))
        }
        .await,
    )
}

#[utoipa::path(patch, path = "/api/v1/saml/sps/{entity_id}", tag = "saml", request_body = SpBody,
    params(("entity_id" = String, Path, description = "The SP's entity ID, percent-encoded")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Settings changed"), (status = 400, description = "Invalid settings"),
        (status = 404, description = "Not registered")))]
pub async fn api_sp_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let b: SpBody = body_limited(payload, 32 * 1024).await?;
            if b.metadata.is_some() || b.metadata_url.is_some() {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "metadata is replaced by a refresh (kuntalaistili sp refresh), not by PATCH",
                ));
            }
            let settings = b.settings();
            let id = id.into_inner();
            let id2 = id.clone();
            let r = call
                .run(move |st| {
                    registry::configure(&mut *st.db.conn()?, &id2, &settings, &actor, now())
                })
                .await;
            state.saml.forget_sp(&id);
            Ok(json_ok(StatusCode::OK, &row_json(&r?)))
        }
        .await,
    )
}

#[utoipa::path(delete, path = "/api/v1/saml/sps/{entity_id}", tag = "saml",
    params(("entity_id" = String, Path, description = "The SP's entity ID, percent-encoded")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not registered")))]
pub async fn api_sp_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let id = id.into_inner();
            let id2 = id.clone();
            let r = call
                .run(move |st| registry::remove(&mut *st.db.conn()?, &id2, &actor, now()))
                .await;
            state.saml.forget_sp(&id);
            r?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

/// Mounts the admin pages and the REST API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let form = || {
        web::FormConfig::default()
            .limit(MAX_BODY)
            .error_handler(crate::error::form_error)
    };
    cfg.service(
        web::resource("/admin/sps")
            .app_data(form())
            .route(web::get().to(admin_sps_get))
            .route(web::post().to(admin_sps_post)),
    )
    .route(
        "/admin/sps/settings",
        web::post().to(admin_sps_settings_post),
    )
    .route("/admin/sps/remove", web::post().to(admin_sps_remove_post))
    .route("/api/v1/saml/sps", web::get().to(api_sps_list))
    .route("/api/v1/saml/sps", web::post().to(api_sps_create))
    .route("/api/v1/saml/sps/{entity_id}", web::get().to(api_sp_get))
    .route(
        "/api/v1/saml/sps/{entity_id}",
        web::patch().to(api_sp_patch),
    )
    .route(
        "/api/v1/saml/sps/{entity_id}",
        web::delete().to(api_sp_delete),
    );
}

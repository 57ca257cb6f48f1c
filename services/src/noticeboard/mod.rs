//! The personal notice board: other systems post notices about a resident's e-service processes
//! (`POST /services/noticeboard/api/notices`, client-credentials access token of the IdP with the
//! `notices:write` scope, idempotent on the poster's key); the resident reads them at
//! `/services/noticeboard/` (and the first ones on the front page), marks them read, archives and
//! filters them by service. Residents read their notices as JSON with their own session or an IdP
//! access token carrying the `notices` scope.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_schema::notices::{self as store, Filter, Notice};
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::json;

use crate::kit::{self, problem, see_other, Kit, KitError, Lookup, RpError};

pub const BASE: &str = "/services/noticeboard";
pub const API: &str = "/services/noticeboard/api/notices";
/// Scope a client needs to post.
pub const WRITE_SCOPE: &str = "notices:write";
/// Scope a resident's access token needs to read.
pub const READ_SCOPE: &str = "notices";
/// Statuses a notice may have.
pub const STATUSES: [&str; 5] = ["received", "in_progress", "waiting", "decided", "info"];
/// Largest accepted API body.
pub const MAX_BODY: usize = 16 * 1024;

/// Mounts the notice board (its pages, API and kit routes).
pub fn configure(cfg: &mut web::ServiceConfig, kit: web::Data<Kit>) {
    kit::configure(cfg, kit.clone());
    let (k1, k2, k3, k4) = (kit.clone(), kit.clone(), kit.clone(), kit);
    cfg.route(
        &format!("{BASE}/"),
        web::get().to(move |req: HttpRequest, q: web::Query<ListQuery>| {
            let kit = k1.clone();
            async move { list_page(kit, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{BASE}/notices/{{id}}/{{action}}"),
        web::post().to(
            move |req: HttpRequest, path: web::Path<(String, String)>, f: web::Form<ActionForm>| {
                let kit = k2.clone();
                async move { action_post(kit, req, path.into_inner(), f.into_inner()).await }
            },
        ),
    )
    .service(
        web::resource(API)
            .route(web::post().to(move |req: HttpRequest, body: web::Payload| {
                let kit = k3.clone();
                async move {
                    match kit::read_limited(body, MAX_BODY).await {
                        Ok(b) => api_post(kit, req, b).await,
                        Err(resp) => resp,
                    }
                }
            }))
            .route(web::get().to(move |req: HttpRequest| {
                let kit = k4.clone();
                async move { api_get(kit, req).await }
            })),
    );
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    service: Option<String>,
    archived: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    back: Option<String>,
}

/// A notice as the resident's pages and JSON see it.
pub fn notice_json(n: &Notice) -> serde_json::Value {
    json!({
        "id": n.id,
        "service": n.service,
        "title": n.title,
        "body": n.body,
        "link": n.link,
        "status": n.status,
        "created_at": kuntalaistili_schema::iso_utc(n.created_at),
        "created": n.created_at.format("%-d.%-m.%Y %H.%M").to_string(),
        "read": n.read_at.is_some(),
        "archived": n.archived_at.is_some(),
    })
}

async fn list_page(
    kit: web::Data<Kit>,
    req: HttpRequest,
    q: ListQuery,
) -> Result<HttpResponse, KitError> {
    let return_to = match req.uri().query() {
        Some(qs) => format!("{BASE}/?{qs}"),
        None => format!("{BASE}/"),
    };
    let resident = match kit.require(&req, &return_to).await? {
        Ok(r) => r,
        Err(redirect) => return Ok(redirect),
    };
    let service = q
        .service
        .filter(|s| !s.is_empty() && s.chars().count() <= 100);
    let archived = q.archived.is_some();
    let (db, sub, svc) = (kit.db.clone(), resident.sub.clone(), service.clone());
    let (list, services, unread) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let f = Filter {
            archived,
            unread_only: false,
            service: svc,
            limit: 200,
        };
        Ok((
            store::list(&mut conn, &sub, &f)?,
            store::services_of(&mut conn, &sub)?,
            store::unread_count(&mut conn, &sub)?,
        ))
    })
    .await??;
    let mut ctx = tera::Context::new();
    ctx.insert("notices", &list.iter().map(notice_json).collect::<Vec<_>>());
    ctx.insert("services", &services);
    ctx.insert("selected", &service);
    ctx.insert("archived", &archived);
    ctx.insert("unread", &unread);
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("back", &return_to);
    Ok(kit.page(
        &req,
        StatusCode::OK,
        "services/noticeboard.html",
        Some(&resident),
        ctx,
    ))
}

async fn action_post(
    kit: web::Data<Kit>,
    req: HttpRequest,
    (id, action): (String, String),
    form: ActionForm,
) -> Result<HttpResponse, KitError> {
    let Some(resident) = kit.resident(&req).await? else {
        return Ok(HttpResponse::Forbidden().finish());
    };
    if !Kit::csrf_ok(&resident, form.csrf.as_deref()) {
        return Ok(HttpResponse::Forbidden().finish());
    }
    if id.len() > 64 || !matches!(action.as_str(), "read" | "archive" | "restore") {
        return Ok(HttpResponse::NotFound().finish());
    }
    // Where to go back to is checked before acting: a refused path changes nothing.
    let Some(back) = kit.form_return(form.back.as_deref(), format!("{BASE}/")) else {
        return Ok(HttpResponse::BadRequest().finish());
    };
    let (db, sub) = (kit.db.clone(), resident.sub.clone());
    let done = web::block(move || -> Result<bool, DbError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        match action.as_str() {
            "read" => store::mark_read(&mut conn, &sub, &id, now),
            "archive" => store::set_archived(&mut conn, &sub, &id, true, now),
            _ => store::set_archived(&mut conn, &sub, &id, false, now),
        }
    })
    .await??;
    if !done {
        return Ok(HttpResponse::NotFound().finish());
    }
    Ok(see_other(&back))
}

/// A notice as posted by another system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNotice {
    /// The resident; or `national_id`, when the poster is allowed to address residents by it.
    sub: Option<String>,
    national_id: Option<String>,
    idempotency_key: String,
    service: String,
    title: String,
    #[serde(default)]
    body: String,
    link: Option<String>,
    #[serde(default = "default_status")]
    status: String,
}

fn default_status() -> String {
    "info".to_owned()
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

fn unauthorized(detail: &str) -> HttpResponse {
    let mut r = problem(StatusCode::UNAUTHORIZED, detail);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

fn has_scope(claims: &serde_json::Value, scope: &str) -> bool {
    claims["scope"]
        .as_str()
        .is_some_and(|s| s.split_whitespace().any(|x| x == scope))
}

fn check(n: &NewNotice) -> Result<(), String> {
    let len = |s: &str| s.chars().count();
    let printable = |s: &str| !s.chars().any(|c| c.is_control() && c != '\n');
    match (&n.sub, &n.national_id) {
        (Some(sub), None) if !sub.is_empty() && len(sub) <= 128 && printable(sub) => {}
        (Some(_), None) => return Err("sub must be 1-128 characters".into()),
        (None, Some(id)) if !id.is_empty() && len(id) <= 32 => {}
        (None, Some(_)) => return Err("national_id must be 1-32 characters".into()),
        _ => return Err("address the notice with exactly one of sub and national_id".into()),
    }
    if n.idempotency_key.is_empty() || len(&n.idempotency_key) > 200 {
        return Err("idempotency_key must be 1-200 characters".into());
    }
    if n.service.trim().is_empty() || len(&n.service) > 100 || !printable(&n.service) {
        return Err("service must be 1-100 characters".into());
    }
    if n.title.trim().is_empty() || len(&n.title) > 200 || !printable(&n.title) {
        return Err("title must be 1-200 characters".into());
    }
    if len(&n.body) > 4000 {
        return Err("body is longer than 4000 characters".into());
    }
    if let Some(l) = &n.link {
        match url::Url::parse(l) {
            Ok(u) if u.scheme() == "https" && l.len() <= 2048 => {}
            _ => return Err("link must be an absolute https URL".into()),
        }
    }
    if !STATUSES.contains(&n.status.as_str()) {
        return Err(format!("status must be one of {}", STATUSES.join(", ")));
    }
    Ok(())
}

async fn api_post(kit: web::Data<Kit>, req: HttpRequest, body: Vec<u8>) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return unauthorized("a bearer access token of the IdP is required");
    };
    let claims = match kit.rp.verify_live_access_token(token).await {
        Ok(c) => c,
        Err(RpError::Token(e) | RpError::Discovery(e)) => {
            tracing::warn!(error = %e, "notice API cannot check tokens at the IdP");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the notice board cannot reach the identity provider right now",
            );
        }
        Err(e) => {
            tracing::info!(error = %e, "notice API token refused");
            return unauthorized("the access token is not valid");
        }
    };
    if !has_scope(&claims, WRITE_SCOPE) {
        return problem(
            StatusCode::FORBIDDEN,
            "the token lacks the notices:write scope",
        );
    }
    // Notices are posted by services for themselves (client credentials), never with a token
    // issued for a person's login, whatever scope it carries.
    if claims.get("gid").is_some() {
        return problem(
            StatusCode::FORBIDDEN,
            "notices are posted with the service's own token, not a person's",
        );
    }
    let Some(poster) = claims["client_id"].as_str().map(str::to_owned) else {
        return unauthorized("the access token names no client");
    };
    let mut n: NewNotice = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed notice: {e}")),
    };
    if let Err(d) = check(&n) {
        return problem(StatusCode::BAD_REQUEST, &d);
    }
    let unreachable = || {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the notice board cannot reach the identity provider right now",
        )
    };
    // Only residents the IdP knows (asked with the notice board's own client credentials).
    let sub = match (n.sub.take(), n.national_id.take()) {
        (Some(sub), _) => match kit.rp.resident_exists(&sub).await {
            Ok(true) => sub,
            Ok(false) => return problem(StatusCode::NOT_FOUND, "no such resident"),
            Err(e) => {
                tracing::warn!(error = %e, "resident look-up failed");
                return unreachable();
            }
        },
        // By national id: the IdP checks the poster's right (its token travels along).
        (None, Some(national_id)) => {
            match kit.rp.resident_by_national_id(&national_id, token).await {
                Ok(Lookup::Found(sub)) => sub,
                Ok(Lookup::Unknown) => return problem(StatusCode::NOT_FOUND, "no such resident"),
                Ok(Lookup::Refused) => {
                    return problem(
                        StatusCode::FORBIDDEN,
                        "this client is not allowed to address residents by national id",
                    )
                }
                Ok(Lookup::Invalid(d)) => return problem(StatusCode::BAD_REQUEST, &d),
                Err(e) => {
                    tracing::warn!(error = %e, "resident look-up by national id failed");
                    return unreachable();
                }
            }
        }
        (None, None) => return problem(StatusCode::BAD_REQUEST, "sub or national_id is required"),
    };
    let now: NaiveDateTime = kuntalaistili_schema::now_utc();
    let row = Notice {
        id: uuid::Uuid::new_v4().to_string(),
        sub,
        poster,
        idempotency_key: n.idempotency_key,
        service: n.service.trim().to_owned(),
        title: n.title.trim().to_owned(),
        body: n.body,
        link: n.link,
        status: n.status,
        created_at: now,
        read_at: None,
        archived_at: None,
    };
    let db = kit.db.clone();
    match web::block(move || store::insert_idempotent(&mut *db.conn()?, &row)).await {
        Ok(Ok((stored, created))) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            HttpResponse::build(status)
                .insert_header((header::LOCATION, format!("{API}/{}", stored.id)))
                .json(notice_json(&stored))
        }
        other => {
            if let Ok(Err(e)) = other {
                tracing::error!(error = %e, "storing a notice failed");
            }
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the notice board cannot store notices right now",
            )
        }
    }
}

/// The resident's own notices as JSON: by the notice board session, or by an IdP access token of
/// the resident with the `notices` scope.
async fn api_get(kit: web::Data<Kit>, req: HttpRequest) -> HttpResponse {
    let sub = match bearer(&req) {
        Some(token) => match kit.rp.verify_live_access_token(token).await {
            Ok(c) if c.get("gid").is_some() && has_scope(&c, READ_SCOPE) => {
                c["sub"].as_str().map(str::to_owned)
            }
            Ok(_) => {
                return problem(
                    StatusCode::FORBIDDEN,
                    "a resident's token with the notices scope is required",
                )
            }
            Err(_) => return unauthorized("the access token is not valid"),
        },
        None => match kit.resident(&req).await {
            Ok(r) => r.map(|r| r.sub),
            Err(_) => None,
        },
    };
    let Some(sub) = sub else {
        return unauthorized("log in or send a bearer access token");
    };
    let db = kit.db.clone();
    let found = web::block(move || -> Result<(Vec<Notice>, i64), DbError> {
        let mut conn = db.conn()?;
        let f = Filter {
            limit: 200,
            ..Filter::default()
        };
        Ok((
            store::list(&mut conn, &sub, &f)?,
            store::unread_count(&mut conn, &sub)?,
        ))
    })
    .await;
    match found {
        Ok(Ok((list, unread))) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "unread": unread,
                "notices": list.iter().map(notice_json).collect::<Vec<_>>(),
            })),
        _ => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the notice board cannot be read right now",
        ),
    }
}

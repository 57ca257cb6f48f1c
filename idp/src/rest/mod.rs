//! The administrators' REST API for people and relying parties under `/api/v1` (`admin` scope):
//! what the admin pages do, for scripts and other tools. RFC 7807 errors, offset pagination.
//! Every change is audited with the calling client as actor (`client:<id>`).
//!
//! People are in [`users`], relying parties in [`clients`]; every handler has the shape of
//! [`call`] (scope, blocking call, problem JSON).

pub mod call;
pub mod clients;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::authz::api::ADMIN_SCOPE;
use crate::IdpState;
use call::Call;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/users", web::get().to(users::users_list))
        .route("/api/v1/users", web::post().to(users::users_create))
        .route("/api/v1/users/{id}", web::get().to(users::user_get))
        .route("/api/v1/users/{id}", web::delete().to(users::user_delete))
        .route(
            "/api/v1/users/{id}/disable",
            web::post().to(users::user_disable),
        )
        .route("/api/v1/clients", web::get().to(clients::clients_list))
        .route("/api/v1/clients", web::post().to(clients::clients_create))
        .route("/api/v1/clients/{id}", web::get().to(clients::client_get))
        .route(
            "/api/v1/clients/{id}",
            web::delete().to(clients::client_delete),
        )
        .route(
            "/api/v1/clients/{id}",
            web::patch().to(clients::client_patch),
        )
        .route(
            "/api/v1/clients/{id}/secret",
            web::post().to(clients::client_rotate),
        );
}

/// A call from an administrators' tool: the caller's token has the `admin` scope.
pub(crate) async fn admin(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<Call, HttpResponse> {
    Call::start(state, req, ADMIN_SCOPE).await
}

/// A JSON body of at most 32 KiB.
async fn body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, HttpResponse> {
    call::body_limited(payload, 32 * 1024).await
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

/// 400 problem JSON for a query [`page_of`] refused.
fn bad_query(detail: String) -> HttpResponse {
    kuntalaistili_connectors::http::problem(StatusCode::BAD_REQUEST, &detail)
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

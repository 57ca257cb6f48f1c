//! The service directory: the sub-region (seutukunta) classification of Statistics Finland,
//! shipped in `services/data/` (source and validity recorded in the file), loaded into the
//! database on first start, replaceable with `kuntalaistili directory import FILE` when the yearly
//! classification changes, and served at `GET /services/directory/api/seutukunnat`; services
//! (names and descriptions in fi/sv/en, provider, channel, authentication level, keywords, target
//! groups, municipalities) searchable by text and sub-region ([`pages`], the JSON API), edited by
//! people holding `directory:edit` ([`manage`]) and exchanged as JSON (CLI and edit pages).

pub mod catalogue;
pub mod classification;
pub mod manage;
pub mod pages;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use kuntalaistili_schema::Db;

pub const SEUTUKUNNAT_PATH: &str = "/services/directory/api/seutukunnat";
pub const SERVICES_PATH: &str = "/services/directory/api/services";

/// Mounts the directory's routes; `db` is the directory's own database handle.
pub fn configure(cfg: &mut web::ServiceConfig, db: Db) {
    cfg.app_data(web::Data::new(DirectoryState { db }))
        .app_data(web::QueryConfig::default().error_handler(|_, _| {
            actix_web::error::InternalError::from_response(
                "bad query",
                problem(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "malformed query string",
                ),
            )
            .into()
        }))
        .route(SEUTUKUNNAT_PATH, web::get().to(directory_seutukunnat_get))
        .route(SERVICES_PATH, web::get().to(directory_services_get));
}

pub struct DirectoryState {
    db: Db,
}

async fn directory_seutukunnat_get(state: web::Data<DirectoryState>) -> HttpResponse {
    let st = state.clone();
    let result = web::block(
        move || -> Result<serde_json::Value, kuntalaistili_schema::DbError> {
            let (regions, municipalities) =
                kuntalaistili_schema::directory::classification(&mut *st.db.conn()?)?;
            Ok(classification::to_json(&regions, &municipalities))
        },
    )
    .await;
    match result {
        Ok(Ok(doc)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .json(doc),
        other => unavailable(other.ok().and_then(Result::err)),
    }
}

#[derive(Debug, serde::Deserialize)]
struct ServicesQuery {
    seutukunta: Option<String>,
    q: Option<String>,
}

async fn directory_services_get(
    state: web::Data<DirectoryState>,
    query: web::Query<ServicesQuery>,
) -> HttpResponse {
    let ServicesQuery { seutukunta, q } = query.into_inner();
    if seutukunta
        .as_ref()
        .is_some_and(|s| s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()))
    {
        return problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            "seutukunta must be a three-digit code",
        );
    }
    if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            "q is longer than 200 characters",
        );
    }
    let st = state.clone();
    let result = web::block(
        move || -> Result<serde_json::Value, kuntalaistili_schema::DbError> {
            let mut conn = st.db.conn()?;
            let services = kuntalaistili_schema::directory::services(&mut conn)?;
            let (_, municipalities) = kuntalaistili_schema::directory::classification(&mut conn)?;
            let found = catalogue::search(
                &services,
                &municipalities,
                seutukunta.as_deref(),
                q.as_deref(),
            );
            Ok(serde_json::json!({ "services": found }))
        },
    )
    .await;
    match result {
        Ok(Ok(doc)) => HttpResponse::Ok().json(doc),
        other => unavailable(other.ok().and_then(Result::err)),
    }
}

use kuntalaistili_connectors::http::problem;

fn unavailable(cause: Option<kuntalaistili_schema::DbError>) -> HttpResponse {
    if let Some(e) = cause {
        tracing::error!(error = %e, "directory unavailable");
    }
    problem(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "the directory cannot be read right now",
    )
}

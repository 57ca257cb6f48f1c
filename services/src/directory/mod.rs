//! The service directory. So far: the sub-region (seutukunta) classification of Statistics
//! Finland, shipped in `services/data/` (source and validity recorded in the file), loaded into
//! the database on first start, replaceable with `kuntalaistili directory import FILE` when the
//! yearly classification changes, and served at `GET /services/directory/api/seutukunnat`.
//! Services with names, providers and search arrive with the portal issue.

pub mod classification;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use kuntalaistili_schema::Db;

pub const SEUTUKUNNAT_PATH: &str = "/services/directory/api/seutukunnat";

/// Mounts the directory's routes; `db` is the directory's own database handle.
pub fn configure(cfg: &mut web::ServiceConfig, db: Db) {
    cfg.app_data(web::Data::new(DirectoryState { db }))
        .route(SEUTUKUNNAT_PATH, web::get().to(directory_seutukunnat_get));
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
        other => {
            if let Ok(Err(e)) = other {
                tracing::error!(error = %e, "directory unavailable");
            }
            HttpResponse::ServiceUnavailable()
                .content_type("application/problem+json")
                .json(serde_json::json!({
                    "type": "about:blank",
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": "the directory cannot be read right now",
                }))
        }
    }
}

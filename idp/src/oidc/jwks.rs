//! `GET /oauth2/jwks`: the published signing keys (public parts), including pre-published
//! successors and retired keys whose tokens may still be in use.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use kuntalaistili_metadata::keys;

use crate::IdpState;

pub async fn oidc_jwks_get(state: web::Data<IdpState>) -> HttpResponse {
    let st = state.clone();
    let result = web::block(move || -> Result<serde_json::Value, keys::KeysError> {
        let mut conn = st.db.conn()?;
        keys::jwks(&mut conn, kuntalaistili_schema::now_utc())
    })
    .await;
    match result {
        Ok(Ok(doc)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .json(doc),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "JWKS unavailable");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the key store cannot be read right now",
        }))
}

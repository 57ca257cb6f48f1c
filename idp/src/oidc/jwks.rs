//! `GET /oauth2/jwks`: the published signing keys (public parts), including pre-published
//! successors and retired keys whose tokens may still be in use.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::IdpState;

pub async fn oidc_jwks_get(state: web::Data<IdpState>) -> HttpResponse {
    let doc = super::cache::jwks_doc(&state).await;
    match doc {
        Ok(doc) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(doc.as_str().to_owned()),
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

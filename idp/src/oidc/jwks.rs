//! `GET /oauth2/jwks`: the published signing keys (public parts), including pre-published
//! successors and retired keys whose tokens may still be in use.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use kuntalaistili_metadata::keys;

use crate::IdpState;

pub async fn oidc_jwks_get(state: web::Data<IdpState>) -> HttpResponse {
    let doc = match state.oidc_cache.jwks_if_fresh() {
        Some(d) => Ok(d),
        None => {
            let st = state.clone();
            web::block(move || st.oidc_cache.jwks(&st.db))
                .await
                .unwrap_or_else(|_| Err(keys::KeysError::NoActiveKey("any")))
        }
    };
    match doc {
        Ok(doc) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(doc.as_str().to_owned()),
        Err(e) => {
            tracing::error!(error = %e, "JWKS unavailable");
            unavailable()
        }
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

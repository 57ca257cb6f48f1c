//! HTTP answers every component gives the same way.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

/// An RFC 7807 problem document (never cached).
pub fn problem(status: StatusCode, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        }))
}

/// Reads a JSON API body up to `limit` bytes; a longer one is a 400 problem (not a 413 page).
pub async fn read_limited(
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> Result<Vec<u8>, HttpResponse> {
    use futures_util::StreamExt;
    let mut buf = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| problem(StatusCode::BAD_REQUEST, "the body could not be read"))?;
        if buf.len() + chunk.len() > limit {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                &format!("the body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

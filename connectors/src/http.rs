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

/// An HTML page response: never cached, the language cookie when the user just chose one, and
/// any extra cookies. `rendered` is the template's output; a template error (a bug, caught by
/// the template tests) is logged and answered with a plain 500.
pub fn page<E: std::fmt::Debug>(
    req: &actix_web::HttpRequest,
    status: StatusCode,
    template: &str,
    rendered: Result<String, E>,
    cookies: Vec<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    use actix_web::cookie::{Cookie, SameSite};
    let body = match rendered {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(template, error = ?e, "template rendering failed");
            return HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error / Sisäinen virhe / Internt fel");
        }
    };
    let mut resp = HttpResponse::build(status);
    resp.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(l) = crate::i18n::requested(req) {
        resp.cookie(
            Cookie::build(crate::i18n::LANG_COOKIE, l.code())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(actix_web::cookie::time::Duration::days(365))
                .finish(),
        );
    }
    for c in cookies {
        resp.cookie(c);
    }
    resp.body(body)
}

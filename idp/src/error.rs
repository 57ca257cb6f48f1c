//! The edge error of the IdP's browser-facing handlers. Handlers return [`WebError`]; its response
//! carries only a status and a translation key, and the error-page middleware
//! ([`render_error_page`]) turns it (and any other bare 4xx/5xx, such as an extractor's) into a
//! translated HTML page. The cause is logged once, never sent.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpResponse, ResponseError};

use crate::i18n;
use crate::render;
use crate::IdpState;

/// Translation key of the message to show, attached to error responses.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKey(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("bad request")]
    BadRequest(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedMedia,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<kuntalaistili_schema::DbError> for WebError {
    fn from(e: kuntalaistili_schema::DbError) -> Self {
        tracing::error!(error = %e, "database error");
        WebError::Unavailable
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        tracing::error!(error = %e, "blocking pool error");
        WebError::Unavailable
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let key = match self {
            WebError::BadRequest(k) => k,
            WebError::Forbidden => "error.forbidden",
            WebError::NotFound => "error.not_found",
            WebError::TooLarge => "error.too_long",
            WebError::UnsupportedMedia => "error.unsupported_media",
            WebError::Unavailable => "error.unavailable",
            WebError::Internal => "error.internal",
        };
        let mut resp = HttpResponse::build(self.status_code()).finish();
        resp.extensions_mut().insert(ErrorKey(key));
        resp
    }
}

/// Maps form-extractor failures (size, content type, encoding) to [`WebError`].
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as U;
    let e = match err {
        U::Overflow { .. } | U::UnknownLength => WebError::TooLarge,
        U::ContentType => WebError::UnsupportedMedia,
        _ => WebError::BadRequest("error.bad_request"),
    };
    e.into()
}

fn default_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 | 405 => "error.not_found",
        403 => "error.forbidden",
        413 => "error.too_long",
        415 => "error.unsupported_media",
        500..=599 if status != StatusCode::SERVICE_UNAVAILABLE => "error.internal",
        503 => "error.unavailable",
        _ => "error.bad_request",
    }
}

/// Error-handler middleware callback: replaces the body of an error response that is not already
/// a page or a protocol document with the translated error page.
pub fn render_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already_rendered = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("text/html")
                || ct.contains("json")
                || ct.contains("xml")
                || ct.starts_with("text/plain")
        });
    if already_rendered {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let key = res
        .response()
        .extensions()
        .get::<ErrorKey>()
        .map_or_else(|| default_key(status), |k| k.0);
    let (req, _old) = res.into_parts();
    let Some(state) = req.app_data::<web::Data<IdpState>>() else {
        let resp = HttpResponse::build(status).finish().map_into_boxed_body();
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, resp).map_into_right_body(),
        ));
    };
    let lang = i18n::negotiate(&req);
    let mut ctx = state.templates.context(lang, req.path(), None);
    ctx.insert("heading", &state.templates.tr.text(lang, "error.title"));
    ctx.insert("message", &state.templates.tr.text(lang, key));
    let resp: HttpResponse<BoxBody> = render::html(
        &state.templates,
        &req,
        status,
        "idp/message.html",
        &ctx,
        vec![],
    );
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, resp).map_into_right_body(),
    ))
}

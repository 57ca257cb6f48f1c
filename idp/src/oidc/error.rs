//! OAuth 2 / OIDC protocol errors as RFC 6749 §5.2 JSON.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// Set when the client tried HTTP Basic authentication (answer with a challenge).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            status: StatusCode::BAD_REQUEST,
            basic_challenge: false,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", d)
    }

    pub fn invalid_client(basic: bool) -> OAuthError {
        OAuthError {
            code: "invalid_client",
            description: "client authentication failed".into(),
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: basic,
        }
    }

    pub fn unavailable() -> OAuthError {
        OAuthError {
            code: "temporarily_unavailable",
            description: "the service is temporarily unavailable".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            basic_challenge: false,
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                "Basic realm=\"kuntalaistili\""
            } else {
                "Bearer"
            };
            r.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        r.json(serde_json::json!({ "error": self.code, "error_description": self.description }))
    }
}

/// Form decoding for protocol endpoints: the IdP's size limit, errors as OAuth JSON.
pub fn form_config() -> actix_web::web::FormConfig {
    actix_web::web::FormConfig::default()
        .limit(crate::FORM_LIMIT_BYTES)
        .error_handler(form_error)
}

/// Form-decoding failures on protocol endpoints answer in JSON, not with an HTML page.
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as U;
    let description = match err {
        U::Overflow { .. } | U::UnknownLength => "request body too large",
        U::ContentType => "use application/x-www-form-urlencoded",
        _ => "malformed form body",
    };
    OAuthError::invalid_request(description).into()
}

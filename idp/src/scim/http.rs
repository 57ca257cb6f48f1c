//! The HTTP side of the SCIM API shared by every endpoint: the error format (RFC 7644 §3.12),
//! bearer-token authorization, bodies, ETags (`meta.version`, `If-Match`, `If-None-Match`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_schema::iso_utc;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{BASE, ERROR_SCHEMA, MAX_BODY, SCOPE};
use crate::IdpState;

/// A refused request, answered with [`error`] at the edge.
#[derive(Debug)]
pub struct Refusal(
    pub(super) StatusCode,
    pub(super) Option<&'static str>,
    pub(super) String,
);

impl Refusal {
    pub(super) fn bad(scim_type: &'static str, detail: &str) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, Some(scim_type), detail.to_owned())
    }

    pub(super) fn response(&self) -> HttpResponse {
        error(self.0, self.1, &self.2)
    }
}

/// A SCIM error answer (RFC 7644 §3.12).
pub fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> HttpResponse {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    HttpResponse::build(status)
        .content_type("application/scim+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

pub(super) fn scim_json(status: StatusCode, v: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/scim+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(v.to_string())
}

/// A single resource with its ETag and Location.
pub(super) fn resource(status: StatusCode, v: &Value) -> HttpResponse {
    let mut r = scim_json(status, v);
    if let Some(tag) = v["meta"]["version"].as_str() {
        if let Ok(h) = header::HeaderValue::from_str(tag) {
            r.headers_mut().insert(header::ETAG, h);
        }
    }
    if let Some(loc) = v["meta"]["location"].as_str() {
        if let Ok(h) = header::HeaderValue::from_str(loc) {
            r.headers_mut().insert(header::LOCATION, h);
        }
    }
    r
}

pub(super) async fn authorize(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<String, HttpResponse> {
    authorize_client(state, req).await.map(|c| c.actor)
}

/// The provisioning client: its name in the audit log, and whether it may handle national ids.
pub(super) struct Provisioner {
    pub(super) actor: String,
    pub(super) national_id: bool,
}

pub(super) async fn authorize_client(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<Provisioner, HttpResponse> {
    match crate::api::caller(state, req, SCOPE).await {
        Ok(c) => Ok(Provisioner {
            actor: format!("client:{}", c.client_id),
            national_id: c.allow_national_id,
        }),
        Err(resp) => {
            let status = resp.status();
            let detail = match status {
                StatusCode::UNAUTHORIZED => "a valid bearer access token is required",
                StatusCode::FORBIDDEN => "the token lacks the scim scope",
                _ => "try again shortly",
            };
            let mut r = error(status, None, detail);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            Err(r)
        }
    }
}

pub(super) fn unavailable() -> HttpResponse {
    error(StatusCode::SERVICE_UNAVAILABLE, None, "try again shortly")
}

pub(super) fn not_found(what: &str) -> HttpResponse {
    error(StatusCode::NOT_FOUND, None, &format!("{what} not found"))
}

pub(super) async fn body(payload: web::Payload) -> Result<Value, HttpResponse> {
    let bytes = kuntalaistili_connectors::http::read_limited(payload, MAX_BODY)
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                &format!("the body is larger than {MAX_BODY} bytes"),
            )
        })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            &format!("the body is not JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

/// `W/"…"` from the resource's content (without `meta`): equal content, equal tag.
pub(super) fn version(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        o.remove("meta");
    }
    let h = Sha256::digest(d.to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&h[..12]))
}

pub(super) fn with_meta(
    mut doc: Value,
    kind: &str,
    location: String,
    created: NaiveDateTime,
    modified: NaiveDateTime,
) -> Value {
    let v = version(&doc);
    doc["meta"] = json!({
        "resourceType": kind,
        "created": iso_utc(created),
        "lastModified": iso_utc(modified),
        "location": location,
        "version": v,
    });
    doc
}

/// `If-Match` must name the current version (or `*`); `412` otherwise.
pub(super) fn precondition(req: &HttpRequest, current: &Value) -> Result<(), Refusal> {
    let Some(want) = req.headers().get(header::IF_MATCH) else {
        return Ok(());
    };
    let want = want.to_str().unwrap_or_default();
    let have = current["meta"]["version"].as_str().unwrap_or_default();
    if want.trim() == "*" || want.split(',').any(|t| t.trim() == have) {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource has changed (If-Match does not name its current version)".into(),
        ))
    }
}

/// A method the endpoint does not have (RFC 7644 §3.12 answers it with a SCIM error).
pub(super) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        &format!("{} is not supported on {}", req.method(), req.path()),
    );
    let allow = if req.path().ends_with("/.search") {
        "POST"
    } else if ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"]
        .iter()
        .any(|p| req.path().contains(p))
    {
        "GET"
    } else if req.path().ends_with("/Users") || req.path().ends_with("/Groups") {
        "GET, POST"
    } else {
        "GET, PUT, PATCH, DELETE"
    };
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

/// Any other path under the SCIM base: a SCIM `404`.
pub(super) async fn no_such_endpoint() -> HttpResponse {
    error(StatusCode::NOT_FOUND, None, "no such SCIM endpoint")
}

pub(super) fn public_base(state: &IdpState) -> String {
    format!("{}{BASE}", state.settings.public_url)
}

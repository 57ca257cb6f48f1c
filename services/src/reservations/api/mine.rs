//! The resident's part of the JSON API: the bearer token with the service's scope, then book
//! (`POST {base}/api/{collection}`), list and read their reservations, cancel (`DELETE`) and move
//! (`PATCH`); refusals are RFC 7807 problems (409 taken, 422 a rule with its `code`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::reservations as store;
use serde::Deserialize;
use serde_json::json;

use super::super::engine::RuleError;
use super::super::flows::{self, BookError, Request, Who};
use super::super::Booking;
use super::{collection, parse_instant, reservation_json, unavailable};
use crate::kit::{problem, RpError};

fn unauthorized(detail: &str) -> HttpResponse {
    let mut r = problem(StatusCode::UNAUTHORIZED, detail);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The resident behind the bearer token (a resident's token with the service's scope).
async fn resident(b: &Booking, req: &HttpRequest) -> Result<Who, HttpResponse> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 8192)
        .ok_or_else(|| unauthorized("a bearer access token of the IdP is required"))?;
    let claims = match b.kit.rp.verify_live_access_token(token).await {
        Ok(c) => c,
        Err(RpError::Token(e) | RpError::Discovery(e)) => {
            tracing::warn!(error = %e, "booking API cannot check tokens at the IdP");
            return Err(unavailable());
        }
        Err(_) => return Err(unauthorized("the access token is not valid")),
    };
    let has_scope = claims["scope"]
        .as_str()
        .is_some_and(|s| s.split_whitespace().any(|x| x == b.scope));
    if !has_scope || claims.get("gid").is_none() {
        return Err(problem(
            StatusCode::FORBIDDEN,
            &format!(
                "a resident's access token with the {} scope is required",
                b.scope
            ),
        ));
    }
    let sub = claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| unauthorized("the access token names no resident"))?;
    Ok(Who {
        sub,
        lang: crate::kit::render::negotiate(req).code().to_owned(),
        acr: claims["acr"].as_str().map(str::to_owned),
    })
}

/// The problem answer of a refused booking action.
pub fn refused(e: &BookError) -> HttpResponse {
    match e {
        BookError::Rule(r) => rule_problem(r),
        BookError::SlotTaken => problem(
            StatusCode::CONFLICT,
            "the time is already taken; choose another",
        ),
        BookError::NoResource | BookError::NoReservation | BookError::NoType => {
            problem(StatusCode::NOT_FOUND, &e.to_string())
        }
        BookError::StrongAuth => problem(StatusCode::FORBIDDEN, &e.to_string()),
        BookError::WrongState(_) => problem(StatusCode::CONFLICT, &e.to_string()),
        BookError::Payment(d) => problem(StatusCode::BAD_GATEWAY, d),
        BookError::Db(_) | BookError::Blocking => {
            tracing::error!(error = %e, "booking failed");
            unavailable()
        }
    }
}

fn rule_problem(r: &RuleError) -> HttpResponse {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "type": "about:blank",
            "title": "Unprocessable Entity",
            "status": status.as_u16(),
            "detail": r.detail(),
            "code": r.key().trim_start_matches("res.rule_"),
        }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReservation {
    resource: String,
    begins_at: String,
    ends_at: Option<String>,
    #[serde(rename = "type")]
    appt_type: Option<String>,
    #[serde(default)]
    purpose: String,
}

pub(super) async fn create_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    body: Vec<u8>,
) -> HttpResponse {
    let who = match resident(&b, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let n: NewReservation = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed request: {e}")),
    };
    let Some(begins) = parse_instant(&n.begins_at).filter(|_| n.begins_at.len() > 10) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "begins_at must be an RFC 3339 time",
        );
    };
    let ends = match (&n.ends_at, &n.appt_type) {
        (Some(e), _) => match parse_instant(e).filter(|_| e.len() > 10) {
            Some(t) => t,
            None => return problem(StatusCode::BAD_REQUEST, "ends_at must be an RFC 3339 time"),
        },
        (None, Some(_)) => begins,
        (None, None) => return problem(StatusCode::BAD_REQUEST, "ends_at is required"),
    };
    if n.resource.len() > 64 || n.purpose.chars().count() > 500 {
        return problem(StatusCode::BAD_REQUEST, "resource or purpose is too long");
    }
    let rq = Request {
        resource_id: n.resource,
        begins,
        ends,
        appt_type: n.appt_type.filter(|t| !t.is_empty() && t.len() <= 64),
        purpose: n.purpose,
    };
    match flows::book(&b, &who, rq).await {
        Ok((r, _)) => HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("{}/api/{}/{}", b.base(), collection(&b), r.id),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(reservation_json(&r)),
        Err(e) => refused(&e),
    }
}

pub(super) async fn mine_get(b: web::Data<Booking>, req: HttpRequest) -> HttpResponse {
    let who = match resident(&b, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let (db, kind) = (b.kit.db.clone(), b.kind);
    match web::block(move || store::of_resident(&mut *db.conn()?, &who.sub, kind)).await {
        Ok(Ok(list)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ collection(&b): list.iter().map(|(r, _)| reservation_json(r)).collect::<Vec<_>>() })),
        _ => unavailable(),
    }
}

pub(super) async fn one_get(b: web::Data<Booking>, req: HttpRequest, id: String) -> HttpResponse {
    let who = match resident(&b, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    match flows::load(&b, &id, Some(&who.sub)).await {
        Ok((r, _)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(reservation_json(&r)),
        Err(e) => refused(&e),
    }
}

pub(super) async fn one_delete(
    b: web::Data<Booking>,
    req: HttpRequest,
    id: String,
) -> HttpResponse {
    let who = match resident(&b, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    match flows::cancel_by_resident(&b, &who.sub, &id).await {
        Ok(r) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(reservation_json(&r)),
        Err(e) => refused(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    begins_at: String,
}

pub(super) async fn one_patch(
    b: web::Data<Booking>,
    req: HttpRequest,
    id: String,
    body: Vec<u8>,
) -> HttpResponse {
    let who = match resident(&b, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let m: Move = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed request: {e}")),
    };
    let Some(begins) = parse_instant(&m.begins_at).filter(|_| m.begins_at.len() > 10) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "begins_at must be an RFC 3339 time",
        );
    };
    match flows::reschedule(&b, &who.sub, &id, begins).await {
        Ok(r) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(reservation_json(&r)),
        Err(e) => refused(&e),
    }
}

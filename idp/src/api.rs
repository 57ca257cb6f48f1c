//! The REST API under `/api/v1` for services and external systems: bearer access tokens of this
//! IdP (client credentials), one scope per capability, RFC 7807 errors. So far: messages
//! (`messages:send`), resident look-up (`residents:read`) and audit ingest (`audit:write`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_schema::{users, DbError};
use serde_json::json;

use crate::audit::{kind, Event};
use crate::oidc::userinfo::bearer;
use crate::IdpState;

/// Scope for asking whether a resident exists (and their language).
pub const RESIDENTS_SCOPE: &str = "residents:read";

/// The calling client, when its token is ours, live, and carries the scope.
pub async fn caller(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    scope: &str,
) -> Result<Caller, HttpResponse> {
    let Some(token) = bearer(req) else {
        return Err(unauthorized("a bearer access token is required"));
    };
    token_caller(state, token, Some(scope)).await
}

fn unauthorized(d: &str) -> HttpResponse {
    let mut r = problem(StatusCode::UNAUTHORIZED, d);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The client an access token was issued to, when the token is ours, live, carries `scope` (if
/// one is named), and the client is registered and enabled.
pub async fn token_caller(
    state: &web::Data<IdpState>,
    token: &str,
    scope: Option<&str>,
) -> Result<Caller, HttpResponse> {
    let now = chrono::Utc::now().timestamp();
    let claims = match state.oidc_cache.verified_token(token, now) {
        Some(c) => c,
        None => {
            let jwks = crate::oidc::cache::jwks_doc(state)
                .await
                .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"))?;
            let Some(claims) = crate::oidc::introspect::verified_access_token(state, &jwks, token)
            else {
                return Err(unauthorized("the access token is not valid"));
            };
            let claims = std::sync::Arc::new(claims);
            state.oidc_cache.remember_token(token, claims.clone());
            claims
        }
    };
    if let Some(scope) = scope.filter(|scope| {
        !claims["scope"]
            .as_str()
            .is_some_and(|s| s.split_whitespace().any(|x| x == *scope))
    }) {
        return Err(problem(
            StatusCode::FORBIDDEN,
            &format!("the token lacks the {scope} scope"),
        ));
    }
    let client_id = claims["client_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| unauthorized("the access token names no client"))?;
    // A revoked token (or one of a revoked grant) stops at once; the sender's name comes from
    // the registry, not the body.
    // A token issued for a person's login carries a privileged scope only while the person
    // holds what the scope needs (checked now, not only when the token was issued).
    let (st, c) = (state.clone(), claims.clone());
    let asked = scope.map(str::to_owned);
    let live = web::block(move || -> Result<Liveness, DbError> {
        let mut conn = st.db.conn()?;
        let Some(grant) = crate::oidc::introspect::still_live(&mut conn, &c)? else {
            return Ok(Liveness::Revoked);
        };
        let (Some(grant), Some(asked)) = (grant, asked) else {
            return Ok(Liveness::Live);
        };
        if crate::oidc::privileged::needs(&asked).is_none() {
            return Ok(Liveness::Live);
        }
        let person = users::find_by_id(&mut conn, &grant.user_id)?;
        Ok(match person {
            Some(u) if crate::oidc::privileged::person_may_hold(&asked, &u) => Liveness::Live,
            _ => Liveness::PersonLacks(asked),
        })
    })
    .await;
    match live {
        Ok(Ok(Liveness::Live)) => {}
        Ok(Ok(Liveness::Revoked)) => return Err(unauthorized("the access token was revoked")),
        Ok(Ok(Liveness::PersonLacks(s))) => {
            return Err(problem(
                StatusCode::FORBIDDEN,
                &format!("the person this token was issued for may not use the {s} scope"),
            ))
        }
        _ => {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "try again shortly",
            ))
        }
    }
    let client = crate::oidc::client_auth::load(state, &client_id)
        .await
        .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"))?
        .filter(|c| !c.disabled)
        .ok_or_else(|| unauthorized("the client is not registered"))?;
    // A token issued for a resident (it belongs to their grant) speaks for them, not only for
    // the client.
    let for_resident = claims.get("gid").is_some() || claims["sub"].as_str() != Some(&client_id);
    Ok(Caller {
        client_id,
        name: client.name.clone(),
        allow_national_id: client.allow_national_id,
        for_resident,
    })
}

/// Whether a token may still be used, and for the asked scope.
enum Liveness {
    Live,
    Revoked,
    PersonLacks(String),
}

/// Who sends: the client and its registered name (shown to residents as the sender).
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub name: String,
    /// The client may learn and use residents' national identification numbers.
    pub allow_national_id: bool,
    /// The token was issued for a resident's login, not to the client itself.
    pub for_resident: bool,
}

/// `GET /api/v1/residents/{sub}`: whether a resident exists and can be addressed, with their
/// language (what a service needs before it stores something for them). Nothing else is told.
#[utoipa::path(get, path = "/api/v1/residents/{sub}", tag = "register", params(("sub" = String, Path, description = "Resident id")), security(("bearer" = ["residents:read"])), responses((status = 200, description = "{sub, preferred_language}"), (status = 404, description = "No such resident")))]
pub async fn residents_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(resp) = caller(&state, &req, RESIDENTS_SCOPE).await {
        return resp;
    }
    let sub = path.into_inner();
    if sub.len() > 128 {
        return problem(StatusCode::NOT_FOUND, "no such resident");
    }
    let st = state.clone();
    match web::block(move || users::find_by_id(&mut *st.db.conn()?, &sub)).await {
        Ok(Ok(Some(u))) if !u.disabled => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "sub": u.id, "preferred_language": u.preferred_language })),
        Ok(Ok(_)) => problem(StatusCode::NOT_FOUND, "no such resident"),
        _ => problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
    }
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    national_id: String,
    /// The access token of the system the look-up is made for (e.g. the poster of a notice):
    /// its client, not the caller, must be allowed national ids. Without it, the caller must be.
    requester_token: Option<String>,
}

/// `POST /api/v1/residents/lookup {national_id, requester_token?}` (`residents:read`): the
/// subject of the person with this national identification number, for a service acting for a
/// system allowed to address residents by it. Every look-up is audited, found or not; the
/// number itself is never logged.
#[utoipa::path(post, path = "/api/v1/residents/lookup", tag = "register", request_body = Lookup, security(("bearer" = ["residents:read"])), responses((status = 200, description = "{sub, preferred_language}"), (status = 400, description = "Not a valid personal identity code"), (status = 403, description = "The requester may not use national ids"), (status = 404, description = "No such resident")))]
pub async fn residents_lookup_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let via = match caller(&state, &req, RESIDENTS_SCOPE).await {
        Ok(c) if !c.for_resident => c,
        Ok(_) => {
            return problem(
                StatusCode::FORBIDDEN,
                "the look-up takes the service's own client-credentials token",
            )
        }
        Err(resp) => return resp,
    };
    let body = match kuntalaistili_connectors::http::read_limited(body, 8 * 1024).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let q: Lookup = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed look-up: {e}")),
    };
    // Whose right counts: the requester's (its token must be ours and live), else the caller's.
    let requester = match &q.requester_token {
        // Only the client's own (client-credentials) token: residents' tokens travel widely
        // (every service a resident uses sees them) and must not open the look-up.
        Some(t) => match token_caller(&state, t, None).await {
            Ok(c) if !c.for_resident => c,
            _ => return problem(
                StatusCode::FORBIDDEN,
                "the requester token is not a live client-credentials token of a registered client",
            ),
        },
        None => via.clone(),
    };
    let Some(national_id) = crate::customers::hetu::validate(&q.national_id) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "national_id is not a valid Finnish personal identity code",
        );
    };
    let st = state.clone();
    let allowed = requester.allow_national_id;
    let found = web::block(
        move || -> Result<Option<users::User>, kuntalaistili_schema::DbError> {
            let mut conn = st.db.conn()?;
            let user = if allowed {
                users::find_by_national_id_index(
                    &mut conn,
                    &st.keys.national_id_index(&national_id),
                )?
                .filter(|u| !u.disabled)
            } else {
                None
            };
            let mut e = if !allowed {
                Event::failure(kind::NATIONAL_ID_LOOKUP)
            } else {
                Event::success(kind::NATIONAL_ID_LOOKUP)
            }
            .actor(requester.client_id.clone())
            .details(json!({
                "via": via.client_id,
                "found": user.is_some(),
                "allowed": allowed,
            }));
            if let Some(u) = &user {
                e = e.subject(u.id.clone());
            }
            kuntalaistili_schema::audit::append(
                &mut conn,
                e.into_new(),
                kuntalaistili_schema::now_utc(),
            )?;
            Ok(user)
        },
    )
    .await;
    match found {
        _ if !allowed => problem(
            StatusCode::FORBIDDEN,
            "the requesting client is not allowed to address residents by national id",
        ),
        Ok(Ok(Some(u))) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "sub": u.id, "preferred_language": u.preferred_language })),
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such resident"),
        _ => problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
    }
}

/// Scope for storing events in the audit log.
pub const AUDIT_SCOPE: &str = "audit:write";

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestEvent {
    /// The caller's own event type (`reservation.confirmed`); stored as `ext.<type>`.
    event_type: String,
    /// `success` or `failure`.
    outcome: String,
    /// Whom it is about (a resident's `sub`), if anyone.
    subject: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

/// `POST /api/v1/audit/events`: services and external systems store their own events in the
/// tamper-evident log (`audit:write`). Their types are prefixed `ext.` and the actor is the
/// calling client, so nobody can write an event that looks like the IdP's own.
#[utoipa::path(post, path = "/api/v1/audit/events", tag = "audit", request_body = IngestEvent, security(("bearer" = ["audit:write"])), responses((status = 201, description = "{seq, id, hash, occurred_at}"), (status = 400, description = "Invalid event")))]
pub async fn audit_events_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let caller = match caller(&state, &req, AUDIT_SCOPE).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let body = match kuntalaistili_connectors::http::read_limited(body, 16 * 1024).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let e: IngestEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(err) => return problem(StatusCode::BAD_REQUEST, &format!("malformed event: {err}")),
    };
    let type_ok = !e.event_type.is_empty()
        && e.event_type.len() <= 64
        && e.event_type.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !type_ok {
        return problem(
            StatusCode::BAD_REQUEST,
            "event_type must be 1-64 characters of a-z, 0-9, . _ -",
        );
    }
    if !matches!(e.outcome.as_str(), "success" | "failure") {
        return problem(
            StatusCode::BAD_REQUEST,
            "outcome must be success or failure",
        );
    }
    if e.subject.as_ref().is_some_and(|s| s.len() > 128) {
        return problem(
            StatusCode::BAD_REQUEST,
            "subject is longer than 128 characters",
        );
    }
    if !(e.details.is_object() || e.details.is_null()) {
        return problem(StatusCode::BAD_REQUEST, "details must be a JSON object");
    }
    let ip = crate::client_ip(&req, &state.settings);
    let st = state.clone();
    let stored = web::block(move || {
        kuntalaistili_schema::audit::append(
            &mut *st.db.conn()?,
            kuntalaistili_schema::audit::NewEvent {
                event_type: format!("ext.{}", e.event_type),
                outcome: e.outcome,
                actor: Some(caller.client_id),
                subject: e.subject,
                ip,
                details: if e.details.is_null() {
                    json!({})
                } else {
                    e.details
                },
            },
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    match stored {
        Ok(Ok(ev)) => HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "seq": ev.seq, "id": ev.id, "hash": ev.hash,
                "occurred_at": kuntalaistili_schema::iso_utc(ev.occurred_at) })),
        _ => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit log cannot be written right now",
        ),
    }
}

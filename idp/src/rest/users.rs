//! People over the administrators' REST API: list and search, register, read, disable, erase.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_schema::{users, DbError};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::call::{json_ok, respond, unavailable, Problem};
use super::{admin, bad_query, body, page_of, paged, PageQuery};
use crate::customers::{self, CustomerError, NewPerson};
use crate::IdpState;

impl Problem for CustomerError {
    fn answer(self) -> HttpResponse {
        match self {
            CustomerError::Db(DbError::Conflict(what)) => {
                problem(StatusCode::CONFLICT, &format!("{what} already exists"))
            }
            CustomerError::Db(DbError::NotFound(_)) => {
                problem(StatusCode::NOT_FOUND, "no such user")
            }
            CustomerError::Db(e) => {
                tracing::error!(error = %e, "register storage error");
                unavailable()
            }
            other => problem(StatusCode::BAD_REQUEST, &other.to_string()),
        }
    }
}

/// List people, optionally searched.
#[utoipa::path(get, path = "/api/v1/users", tag = "register", params(PageQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of people"), (status = 400, description = "Bad query"),
        (status = 401, description = "No valid token"), (status = 403, description = "Token lacks the admin scope")))]
pub async fn users_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let (q, limit, offset) = page_of(&req).map_err(bad_query)?;
            let needle = q.unwrap_or_default().trim().to_lowercase();
            let items = call
                .run(move |st| -> Result<Vec<Value>, DbError> {
                    Ok(users::list(&mut *st.db.conn()?)?
                        .iter()
                        .filter(|u| {
                            needle.is_empty()
                                || [
                                    Some(&u.username),
                                    u.given_name.as_ref(),
                                    u.family_name.as_ref(),
                                    u.email.as_ref(),
                                ]
                                .into_iter()
                                .flatten()
                                .any(|f| f.to_lowercase().contains(&needle))
                        })
                        .map(customers::public_json)
                        .collect())
                })
                .await?;
            Ok(json_ok(StatusCode::OK, &paged(items, limit, offset)))
        }
        .await,
    )
}

/// A person to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    pub username: String,
    pub password: Option<String>,
    /// resident (default), staff or admin.
    #[serde(default)]
    pub role: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    /// Three-digit municipality code.
    pub home_municipality: Option<String>,
    /// fi, sv or en.
    pub preferred_language: Option<String>,
    /// Finnish personal identity code (stored encrypted, never returned).
    pub national_id: Option<String>,
    /// Space-separated: email, sms, notice.
    pub message_channels: Option<String>,
}

/// Register a person.
#[utoipa::path(post, path = "/api/v1/users", tag = "register", request_body = PersonBody,
    security(("bearer" = ["admin"])),
    responses((status = 201, description = "Registered"), (status = 400, description = "Invalid"),
        (status = 409, description = "Username or national id taken")))]
pub async fn users_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let b: PersonBody = body(payload).await?;
            let p = NewPerson {
                username: b.username,
                password: b.password,
                role: b.role,
                given_name: b.given_name,
                family_name: b.family_name,
                email: b.email,
                phone: b.phone,
                street_address: b.street_address,
                postal_code: b.postal_code,
                locality: b.locality,
                country: b.country,
                home_municipality: b.home_municipality,
                preferred_language: b.preferred_language,
                national_id: b.national_id,
                message_channels: b.message_channels,
                external_id: None,
            };
            let actor = call.actor();
            let u = call
                .run(move |st| {
                    customers::add(
                        &mut *st.db.conn()?,
                        &st.keys,
                        &st.hasher,
                        p,
                        &actor,
                        kuntalaistili_schema::now_utc(),
                    )
                })
                .await?;
            let mut resp = json_ok(StatusCode::CREATED, &customers::public_json(&u));
            if let Ok(h) = header::HeaderValue::from_str(&format!("/api/v1/users/{}", u.id)) {
                resp.headers_mut().insert(header::LOCATION, h);
            }
            Ok(resp)
        }
        .await,
    )
}

/// One person.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "register",
    params(("id" = String, Path, description = "The person's id (sub)")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The person"), (status = 404, description = "No such person")))]
pub async fn user_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let u = call
                .run(move |st| users::find_by_id(&mut *st.db.conn()?, &id))
                .await?
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such user"))?;
            Ok(json_ok(StatusCode::OK, &customers::public_json(&u)))
        }
        .await,
    )
}

/// Disable an account (its sessions end, its grants are revoked).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "register",
    params(("id" = String, Path, description = "The person's id")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Disabled"), (status = 404, description = "No such person")))]
pub async fn user_disable(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let (uid, grants) = call
                .run(move |st| -> Result<_, CustomerError> {
                    let mut conn = st.db.conn()?;
                    let u = users::find_by_id(&mut conn, &id)?.ok_or(DbError::NotFound("user"))?;
                    let done = customers::disable(
                        &mut conn,
                        &u.username,
                        &actor,
                        kuntalaistili_schema::now_utc(),
                    )?;
                    Ok((u.id, done.grants))
                })
                .await?;
            // The services the person was logged in to end their sessions too.
            crate::session::logout::grants_revoked(&state, &uid, grants).await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

/// Erase a person: the account closes now, the data is overwritten after the retention period.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "register",
    params(("id" = String, Path, description = "The person's id")),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Erasure requested"), (status = 404, description = "No such person")))]
pub async fn user_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(
        async {
            let call = admin(&state, &req).await?;
            let actor = call.actor();
            let uid = id.into_inner();
            let u2 = uid.clone();
            let grants = call
                .run(move |st| -> Result<Option<_>, DbError> {
                    let mut conn = st.db.conn()?;
                    if users::find_by_id(&mut conn, &u2)?
                        .filter(|u| u.erasure_requested_at.is_none())
                        .is_none()
                    {
                        return Ok(None);
                    }
                    Ok(Some(customers::gdpr::request_erasure(
                        &mut conn,
                        &u2,
                        &actor,
                        None,
                        st.settings.erasure_retention_days,
                        kuntalaistili_schema::now_utc(),
                    )?))
                })
                .await?
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such user"))?;
            crate::session::logout::grants_revoked(&state, &uid, grants).await;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

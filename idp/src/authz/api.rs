//! The access-rights REST API: `POST /api/v1/authz/check` for services (`authz:check`), and the
//! management of roles, groups and grants for administrators' tools (`admin`). Errors are RFC 7807
//! problem JSON.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_schema::authz as rows;
use serde::Deserialize;
use serde_json::json;

use super::{AuthzError, NewGrant};
use crate::audit::Event;
use crate::rest::call::{
    body_limited, nothing, reply, respond, scoped, unavailable, Call, Problem, Reply,
};
use crate::IdpState;
use kuntalaistili_schema::audit;

/// Scope of services that ask whether someone may do something.
pub const CHECK_SCOPE: &str = "authz:check";
/// Scope of administrators' tools (everything under `/api/v1` that changes the platform).
pub const ADMIN_SCOPE: &str = "admin";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/authz/check", web::post().to(check_post))
        .route("/api/v1/authz/roles", web::get().to(roles_get))
        .route("/api/v1/authz/roles/{name}", web::put().to(role_put))
        .route("/api/v1/authz/roles/{name}", web::delete().to(role_delete))
        .route("/api/v1/authz/groups", web::get().to(groups_get))
        .route("/api/v1/authz/groups/{name}", web::put().to(group_put))
        .route(
            "/api/v1/authz/groups/{name}",
            web::delete().to(group_delete),
        )
        .route(
            "/api/v1/authz/groups/{name}/members/{sub}",
            web::put().to(member_put),
        )
        .route(
            "/api/v1/authz/groups/{name}/members/{sub}",
            web::delete().to(member_delete),
        )
        .route("/api/v1/authz/grants", web::get().to(grants_get))
        .route("/api/v1/authz/grants", web::post().to(grants_post))
        .route("/api/v1/authz/grants/{id}", web::delete().to(grant_delete))
        .route("/api/v1/authz/people/{sub}", web::get().to(person_get));
}

impl Problem for AuthzError {
    fn answer(self) -> HttpResponse {
        match self {
            AuthzError::Invalid(m) => problem(StatusCode::BAD_REQUEST, &m),
            AuthzError::NotFound(what) => {
                problem(StatusCode::NOT_FOUND, &format!("{what} not found"))
            }
            AuthzError::Db(e) => {
                tracing::error!(error = %e, "access rights storage error");
                unavailable()
            }
        }
    }
}

/// A JSON body of at most 16 KiB.
async fn body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, HttpResponse> {
    body_limited(payload, 16 * 1024).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    sub: String,
    service: String,
    /// The function (`edit`), or the whole `service:function`.
    permission: String,
    /// A question for display only (whether to show a link), not a decision about an action:
    /// a denial is not written to the audit log.
    #[serde(default)]
    probe: bool,
}

/// `POST /api/v1/authz/check {sub, service, permission}` → `{"allowed": bool, …}`; 404 for an
/// unknown person. Denials are audited.
#[utoipa::path(post, path = "/api/v1/authz/check", tag = "authz", request_body = CheckRequest, security(("bearer" = ["authz:check"])), responses((status = 200, description = "{allowed, sub, service, permission}"), (status = 400, description = "Bad names"), (status = 404, description = "No such person")))]
pub(crate) async fn check_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    respond(
        async {
            let call = Call::start(&state, &req, CHECK_SCOPE).await?;
            let who = call.caller.client_id.clone();
            let q: CheckRequest = body(payload).await?;
            let function = match q.permission.split_once(':') {
                Some((s, f)) if s == q.service => f.to_owned(),
                Some(_) => {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        "permission names another service than service",
                    ))
                }
                None => q.permission.clone(),
            };
            if rows::parse_permission(&format!("{}:{function}", q.service), false).is_none() {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "service and permission must be 1-64 characters of a-z, 0-9, '-', '_' and '.'",
                ));
            }
            if q.sub.is_empty() || q.sub.len() > 128 {
                return Err(problem(StatusCode::NOT_FOUND, "no such person"));
            }
            call.run(move |st| -> Result<Reply, AuthzError> {
                let mut conn = st.db.conn()?;
                let rights = st.authz.rights(&mut conn, &q.sub)?;
                let now = kuntalaistili_schema::now_utc();
                let allowed = rights.allows(&q.service, &function, now);
                if !allowed {
                    if !rights.active
                        && kuntalaistili_schema::users::find_by_id(&mut conn, &q.sub)?.is_none()
                    {
                        return Err(AuthzError::NotFound("person"));
                    }
                    if !q.probe {
                        audit::append(
                            &mut conn,
                            Event::failure(super::kind::DENIED)
                                .actor(who.clone())
                                .subject(q.sub.clone())
                                .details(json!({ "service": q.service, "permission": function }))
                                .into_new(),
                            now,
                        )?;
                    }
                }
                Ok((
                    StatusCode::OK,
                    json!({
                        "allowed": allowed,
                        "sub": q.sub,
                        "service": q.service,
                        "permission": format!("{}:{function}", q.service),
                    }),
                ))
            })
            .await
            .map(reply)
        }
        .await,
    )
}

/// Every role.
#[utoipa::path(get, path = "/api/v1/authz/roles", tag = "authz", security(("bearer" = ["admin"])), responses((status = 200, description = "Every role with its permissions")))]
pub(crate) async fn roles_get(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, _, ()| -> Result<Reply, AuthzError> {
            let roles = rows::roles(&mut *st.db.conn()?)?;
            let items: Vec<_> = roles
                .into_iter()
                .map(|(r, p)| {
                    json!({
                        "name": r.name,
                        "description": r.description,
                        "permissions": p,
                        "created_at": kuntalaistili_schema::iso_utc(r.created_at),
                    })
                })
                .collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    #[serde(default)]
    description: String,
    permissions: Vec<String>,
}

/// Create or replace a role.
#[utoipa::path(put, path = "/api/v1/authz/roles/{name}", tag = "authz", params(("name" = String, Path, description = "Role name")), request_body = RoleBody, security(("bearer" = ["admin"])), responses((status = 201, description = "Created"), (status = 200, description = "Replaced"), (status = 400, description = "Invalid")))]
pub(crate) async fn role_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let name = path.into_inner();
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        body(payload),
        move |st, actor, b: RoleBody| -> Result<Reply, AuthzError> {
            let new = super::save_role(
                &mut *st.db.conn()?,
                &name,
                &b.description,
                &b.permissions,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((
                if new {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                json!({ "name": name, "description": b.description.trim(), "permissions": b.permissions }),
            ))
        },
    )
    .await
}

/// Remove a role.
#[utoipa::path(delete, path = "/api/v1/authz/roles/{name}", tag = "authz", params(("name" = String, Path, description = "Role name")), security(("bearer" = ["admin"])), responses((status = 204, description = "Removed with its grants"), (status = 404, description = "No such role")))]
pub(crate) async fn role_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, actor, ()| -> Result<Reply, AuthzError> {
            super::remove_role(
                &mut *st.db.conn()?,
                &path,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((StatusCode::NO_CONTENT, serde_json::Value::Null))
        },
    )
    .await
}

/// Every group.
#[utoipa::path(get, path = "/api/v1/authz/groups", tag = "authz", security(("bearer" = ["admin"])), responses((status = 200, description = "Every group with its members")))]
pub(crate) async fn groups_get(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, _, ()| -> Result<Reply, AuthzError> {
            let items: Vec<_> = rows::groups(&mut *st.db.conn()?)?
                .into_iter()
                .map(|(g, m)| {
                    json!({
                        "name": g.name,
                        "description": g.description,
                        "members": m,
                        "created_at": kuntalaistili_schema::iso_utc(g.created_at),
                    })
                })
                .collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupBody {
    #[serde(default)]
    description: String,
}

/// Create a group or update its description.
#[utoipa::path(put, path = "/api/v1/authz/groups/{name}", tag = "authz", params(("name" = String, Path, description = "Group name")), request_body = GroupBody, security(("bearer" = ["admin"])), responses((status = 201, description = "Created"), (status = 200, description = "Updated")))]
pub(crate) async fn group_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        body(payload),
        move |st, actor, b: GroupBody| -> Result<Reply, AuthzError> {
            let new = super::save_group(
                &mut *st.db.conn()?,
                &path,
                &b.description,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((
                if new {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                json!({ "name": *path, "description": b.description.trim() }),
            ))
        },
    )
    .await
}

/// Remove a group.
#[utoipa::path(delete, path = "/api/v1/authz/groups/{name}", tag = "authz", params(("name" = String, Path, description = "Group name")), security(("bearer" = ["admin"])), responses((status = 204, description = "Removed"), (status = 404, description = "No such group")))]
pub(crate) async fn group_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, actor, ()| -> Result<Reply, AuthzError> {
            super::remove_group(
                &mut *st.db.conn()?,
                &path,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((StatusCode::NO_CONTENT, serde_json::Value::Null))
        },
    )
    .await
}

async fn member(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    add: bool,
) -> HttpResponse {
    let (group, sub) = path.into_inner();
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, actor, ()| -> Result<Reply, AuthzError> {
            super::set_member(
                &mut *st.db.conn()?,
                &group,
                &sub,
                add,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((StatusCode::NO_CONTENT, serde_json::Value::Null))
        },
    )
    .await
}

/// Add a member.
#[utoipa::path(put, path = "/api/v1/authz/groups/{name}/members/{sub}", tag = "authz", params(("name" = String, Path, description = "Group name"), ("sub" = String, Path, description = "Person id")), security(("bearer" = ["admin"])), responses((status = 204, description = "A member"), (status = 404, description = "No such group or person")))]
pub(crate) async fn member_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    member(state, req, path, true).await
}

/// Remove a member.
#[utoipa::path(delete, path = "/api/v1/authz/groups/{name}/members/{sub}", tag = "authz", params(("name" = String, Path, description = "Group name"), ("sub" = String, Path, description = "Person id")), security(("bearer" = ["admin"])), responses((status = 204, description = "Not a member")))]
pub(crate) async fn member_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    member(state, req, path, false).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct GrantsQuery {
    user: Option<String>,
    group: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/v1/authz/grants?user=&group=&limit=&offset=`: newest first, pages of at most 500.
#[utoipa::path(get, path = "/api/v1/authz/grants", tag = "authz", params(GrantsQuery), security(("bearer" = ["admin"])), responses((status = 200, description = "A page of grants, newest first")))]
pub(crate) async fn grants_get(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    let query = async {
        let q = web::Query::<GrantsQuery>::from_query(req.query_string())
            .map_err(|e| problem(StatusCode::BAD_REQUEST, &e.to_string()))?
            .into_inner();
        let limit = q.limit.unwrap_or(100);
        let offset = q.offset.unwrap_or(0);
        if !(1..=500).contains(&limit) || offset < 0 {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "limit must be 1-500 and offset not negative",
            ));
        }
        Ok((q, limit, offset))
    };
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        query,
        move |st, _, (q, limit, offset)| -> Result<Reply, AuthzError> {
            let items = rows::grants(
                &mut *st.db.conn()?,
                q.user.as_deref(),
                q.group.as_deref(),
                limit + 1,
                offset,
            )?;
            let more = items.len() as i64 > limit;
            let items: Vec<_> = items
                .iter()
                .take(limit as usize)
                .map(super::grant_json)
                .collect();
            Ok((
                StatusCode::OK,
                json!({
                    "items": items,
                    "limit": limit,
                    "offset": offset,
                    "next_offset": more.then_some(offset + limit),
                }),
            ))
        },
    )
    .await
}

/// Grant a role or a permission to a person or a group.
#[utoipa::path(post, path = "/api/v1/authz/grants", tag = "authz", request_body = super::NewGrant, security(("bearer" = ["admin"])), responses((status = 201, description = "Granted"), (status = 400, description = "Invalid"), (status = 404, description = "No such person, group or role")))]
pub(crate) async fn grants_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        body(payload),
        move |st, actor, g: NewGrant| -> Result<Reply, AuthzError> {
            let row = super::grant(
                &mut *st.db.conn()?,
                g,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((StatusCode::CREATED, super::grant_json(&row)))
        },
    )
    .await
}

/// Revoke a grant.
#[utoipa::path(delete, path = "/api/v1/authz/grants/{id}", tag = "authz", params(("id" = String, Path, description = "Grant id")), security(("bearer" = ["admin"])), responses((status = 204, description = "Revoked"), (status = 404, description = "No such grant")))]
pub(crate) async fn grant_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, actor, ()| -> Result<Reply, AuthzError> {
            super::revoke(
                &mut *st.db.conn()?,
                &path,
                &actor,
                kuntalaistili_schema::now_utc(),
            )?;
            Ok((StatusCode::NO_CONTENT, serde_json::Value::Null))
        },
    )
    .await
}

/// `GET /api/v1/authz/people/{sub}`: everything a person holds and how (role, group, period).
#[utoipa::path(get, path = "/api/v1/authz/people/{sub}", tag = "authz", params(("sub" = String, Path, description = "Person id")), security(("bearer" = ["admin"])), responses((status = 200, description = "Everything the person holds and how"), (status = 404, description = "No such person")))]
pub(crate) async fn person_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    scoped(
        &state,
        &req,
        ADMIN_SCOPE,
        nothing(),
        move |st, _, ()| -> Result<Reply, AuthzError> {
            let mut conn = st.db.conn()?;
            if kuntalaistili_schema::users::find_by_id(&mut conn, &path)?.is_none() {
                return Err(AuthzError::NotFound("person"));
            }
            let rights = st.authz.rights(&mut conn, &path)?;
            let now = kuntalaistili_schema::now_utc();
            let t = |t: Option<chrono::NaiveDateTime>| t.map(kuntalaistili_schema::iso_utc);
            let items: Vec<_> = rights
                .entitlements
                .iter()
                .map(|e| {
                    json!({
                        "permission": e.permission,
                        "role": e.role,
                        "group": e.group,
                        "valid_from": t(e.valid_from),
                        "valid_until": t(e.valid_until),
                        "in_force": rights.active
                            && e.valid_from.is_none_or(|f| f <= now)
                            && e.valid_until.is_none_or(|u| now < u),
                        "grant": e.grant_id,
                    })
                })
                .collect();
            Ok((
                StatusCode::OK,
                json!({ "sub": *path, "active": rights.active, "entitlements": items }),
            ))
        },
    )
    .await
}

//! `/admin/users`: search the register, view a person with their sessions and rights, and act:
//! disable, set a new password, end every session, grant or revoke a right.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{audit, authz as rights, oidc_flows, sessions, users, DbError};
use serde::Deserialize;
use serde_json::json;

use super::{context, require_admin, require_admin_form, text};
use crate::audit::{kind, Event};
use crate::authz::{AuthzError, NewGrant};
use crate::error::WebError;
use crate::session::logout::redirect;
use crate::IdpState;

fn when(t: NaiveDateTime) -> String {
    t.format("%-d.%-m.%Y %H.%M UTC").to_string()
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
}

/// At most this many people are listed; narrow the search for more.
const LIST_LIMIT: usize = 200;

pub async fn list(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let q: String = query
        .into_inner()
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let st = state.clone();
    let needle = q.to_lowercase();
    let (found, total) = web::block(move || -> Result<_, DbError> {
        let all = users::list(&mut *st.db.conn()?)?;
        let matching: Vec<_> = all
            .into_iter()
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
            .collect();
        let total = matching.len();
        Ok((
            matching.into_iter().take(LIST_LIMIT).collect::<Vec<_>>(),
            total,
        ))
    })
    .await??;
    let rows: Vec<_> = found
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "username": u.username,
                "name": u.display_name(),
                "email": u.email,
                "role": u.role,
                "disabled": u.disabled,
                "erasure": u.erasure_requested_at.is_some(),
            })
        })
        .collect();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert("q", &q);
    ctx.insert("people", &rows);
    ctx.insert("total", &total);
    ctx.insert("truncated", &(total > LIST_LIMIT));
    Ok(state.form_page(&req, StatusCode::OK, "admin/users.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

pub async fn show(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let id = path.into_inner();
    let st = state.clone();
    let (user, live, held, roles, groups) = web::block(move || -> Result<_, WebError> {
        let mut conn = st.db.conn()?;
        let user = users::find_by_id(&mut conn, &id)?.ok_or(WebError::NotFound)?;
        let now = kuntalaistili_schema::now_utc();
        Ok((
            user,
            sessions::list_for_user(&mut conn, &id, now)?,
            rights::entitlements(&mut conn, &id)?,
            rights::roles(&mut conn)?,
            rights::groups_of(&mut conn, &id)?,
        ))
    })
    .await??;
    let now = kuntalaistili_schema::now_utc();
    let t = |t: Option<NaiveDateTime>| t.map(when);
    let held: Vec<_> = held
        .iter()
        .map(|e| {
            json!({
                "permission": e.permission,
                "role": e.role,
                "group": e.group,
                "valid_from": t(e.valid_from),
                "valid_until": t(e.valid_until),
                "in_force": e.valid_from.is_none_or(|f| f <= now) && e.valid_until.is_none_or(|u| now < u),
                "grant": e.grant_id,
                // Grants through a group are managed on the group, not here.
                "direct": e.group.is_none(),
            })
        })
        .collect();
    let live: Vec<_> = live
        .iter()
        .map(|s| json!({ "created": when(s.created_at), "last_seen": when(s.last_seen_at), "ip": s.ip }))
        .collect();
    let roles: Vec<&str> = roles.iter().map(|(r, _)| r.name.as_str()).collect();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert(
        "person",
        &json!({
            "id": user.id,
            "username": user.username,
            "name": user.display_name(),
            "email": user.email,
            "phone": user.phone,
            "municipality": user.home_municipality,
            "language": user.preferred_language,
            "role": user.role,
            "disabled": user.disabled,
            "has_national_id": user.national_id_enc.is_some(),
            "created": when(user.created_at),
            "erasure_requested": t(user.erasure_requested_at),
            "erased": t(user.erased_at),
        }),
    );
    ctx.insert("sessions", &live);
    ctx.insert("rights", &held);
    ctx.insert("roles", &roles);
    ctx.insert("groups", &groups);
    if let Some(d) = query.into_inner().done.filter(|d| {
        ["disabled", "password", "sessions", "granted", "revoked"].contains(&d.as_str())
    }) {
        ctx.insert("notice", &text(&state, &req, &format!("admin.done_{d}")));
    }
    Ok(state.form_page(&req, StatusCode::OK, "admin/user.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    password: Option<String>,
    /// `permission` or `role`.
    kind: Option<String>,
    grant: Option<String>,
    /// `YYYY-MM-DD`: the grant ends at the start of that day (UTC).
    valid_until: Option<String>,
}

pub async fn action(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let admin = match require_admin_form(&state, &req, form.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let (id, what) = path.into_inner();
    let st = state.clone();
    let uid = id.clone();
    let user = web::block(move || users::find_by_id(&mut *st.db.conn()?, &uid))
        .await??
        .ok_or(WebError::NotFound)?;
    let actor = admin.id.clone();
    let back = |done: &str| redirect(&format!("/admin/users/{id}?done={done}"));
    match what.as_str() {
        "disable" => {
            let st = state.clone();
            let name = user.username.clone();
            let done = web::block(move || {
                crate::customers::disable(
                    &mut *st.db.conn()?,
                    &name,
                    &actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "disabling failed");
                WebError::Unavailable
            })?;
            // The services the person was logged in to end their sessions too.
            crate::session::logout::grants_revoked(&state, &user.id, done.grants).await;
            Ok(back("disabled"))
        }
        "password" => {
            let password = form.password.unwrap_or_default();
            if let Err(e) = crate::customers::check_password(&password) {
                return Ok(super::refused(
                    &state,
                    &req,
                    "admin.password_refused",
                    &e.to_string(),
                ));
            }
            let st = state.clone();
            let name = user.username.clone();
            let grants = web::block(move || {
                crate::customers::set_password(
                    &mut *st.db.conn()?,
                    &st.hasher,
                    &name,
                    &password,
                    &actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "setting a password failed");
                WebError::Unavailable
            })?;
            // A password set by someone else ends every session, the services' too.
            crate::session::logout::grants_revoked(&state, &user.id, grants).await;
            Ok(back("password"))
        }
        "end-sessions" => {
            let st = state.clone();
            let uid = user.id.clone();
            let grants = web::block(move || -> Result<_, DbError> {
                let mut conn = st.db.conn()?;
                let now = kuntalaistili_schema::now_utc();
                write_tx(&mut conn, |conn| -> Result<_, DbError> {
                    let n = sessions::delete_all_for_user(conn, &uid)?;
                    let grants = oidc_flows::revoke_for_user(conn, &uid, now)?;
                    audit::append_in_tx(
                        conn,
                        Event::success(kind::SESSIONS_ENDED_ALL)
                            .actor(actor)
                            .subject(uid.clone())
                            .details(json!({ "count": n, "by": "admin" }))
                            .into_new(),
                        now,
                    )?;
                    Ok(grants)
                })
            })
            .await??;
            crate::session::logout::grants_revoked(&state, &user.id, grants).await;
            Ok(back("sessions"))
        }
        "grant" => {
            let value = form.grant.unwrap_or_default().trim().to_owned();
            let until = match form
                .valid_until
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(d) => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                    Err(_) => return Ok(super::refused(&state, &req, "admin.grant_refused", d)),
                },
                None => None,
            };
            let mut g = NewGrant {
                user: Some(user.id.clone()),
                valid_until: until,
                ..NewGrant::default()
            };
            if form.kind.as_deref() == Some("role") {
                g.role = Some(value);
            } else {
                g.permission = Some(value);
            }
            let st = state.clone();
            let r = web::block(move || {
                crate::authz::grant(
                    &mut *st.db.conn()?,
                    g,
                    &actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await?;
            match r {
                Ok(_) => Ok(back("granted")),
                Err(AuthzError::Invalid(d)) => {
                    Ok(super::refused(&state, &req, "admin.grant_refused", &d))
                }
                Err(AuthzError::NotFound(w)) => {
                    Ok(super::refused(&state, &req, "admin.grant_refused", w))
                }
                Err(AuthzError::Db(e)) => Err(e.into()),
            }
        }
        _ => Err(WebError::NotFound),
    }
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

pub async fn revoke_grant(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin_form(&state, &req, form.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let id = path.into_inner();
    let r = web::block(move || {
        crate::authz::revoke(
            &mut *st.db.conn()?,
            &id,
            &admin.id,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    match r {
        Ok(g) => match g.user_id {
            Some(u) => Ok(redirect(&format!("/admin/users/{u}?done=revoked"))),
            None => Ok(redirect("/admin/roles")),
        },
        Err(AuthzError::NotFound(_)) => Err(WebError::NotFound),
        Err(AuthzError::Invalid(_)) => Err(WebError::BadRequest("error.bad_request")),
        Err(AuthzError::Db(e)) => Err(e.into()),
    }
}

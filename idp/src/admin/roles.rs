//! `/admin/roles`: roles (named sets of `service:function` permissions) and groups.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::authz as rights;
use serde::Deserialize;
use serde_json::json;

use super::{context, require_admin, require_admin_form};
use crate::authz::AuthzError;
use crate::error::WebError;
use crate::session::logout::redirect;
use crate::IdpState;

pub async fn list(state: web::Data<IdpState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let (roles, groups, names) = web::block(move || -> Result<_, kuntalaistili_schema::DbError> {
        let mut conn = st.db.conn()?;
        let groups = rights::groups(&mut conn)?;
        let ids: Vec<String> = groups.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
        let names = kuntalaistili_schema::users::usernames(&mut conn, &ids)?;
        Ok((rights::roles(&mut conn)?, groups, names))
    })
    .await??;
    let roles: Vec<_> = roles
        .iter()
        .map(|(r, p)| json!({ "name": r.name, "description": r.description, "permissions": p.join(", ") }))
        .collect();
    let groups: Vec<_> = groups
        .iter()
        .map(|(g, m)| {
            let people: Vec<_> = m
                .iter()
                .map(|id| json!({ "id": id, "username": names.get(id).cloned().unwrap_or_default() }))
                .collect();
            json!({ "name": g.name, "description": g.description, "members": m.len(), "people": people })
        })
        .collect();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert("roles", &roles);
    ctx.insert("groups", &groups);
    Ok(state.form_page(&req, StatusCode::OK, "admin/roles.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    csrf: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// Comma- or line-separated.
    permissions: Option<String>,
}

pub async fn save(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let perms: Vec<String> = f
        .permissions
        .unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let st = state.clone();
    let r = web::block(move || {
        crate::authz::save_role(
            &mut *st.db.conn()?,
            f.name.unwrap_or_default().trim(),
            &f.description.unwrap_or_default(),
            &perms,
            &admin.id,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    match r {
        Ok(_) => Ok(redirect("/admin/roles")),
        Err(AuthzError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.role_refused",
            &e.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

pub async fn remove(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin_form(&state, &req, form.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let name = path.into_inner();
    let r = web::block(move || {
        crate::authz::remove_role(
            &mut *st.db.conn()?,
            &name,
            &admin.id,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    match r {
        Ok(()) => Ok(redirect("/admin/roles")),
        Err(AuthzError::NotFound(_)) => Err(WebError::NotFound),
        Err(AuthzError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.role_refused",
            &e.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct GroupForm {
    csrf: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// For adding a member.
    username: Option<String>,
}

/// `POST /admin/groups`: create a group (or change its description).
pub async fn save_group(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let r = web::block(move || {
        crate::authz::save_group(
            &mut *st.db.conn()?,
            f.name.unwrap_or_default().trim(),
            &f.description.unwrap_or_default(),
            &admin.id,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    match r {
        Ok(_) => Ok(redirect("/admin/roles#groups-h")),
        Err(AuthzError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.role_refused",
            &e.to_string(),
        )),
    }
}

/// `POST /admin/groups/{name}/{action}`: `remove` the group, `add` a member (by username), or
/// `drop` one (`username` = the member's id).
pub async fn group_action(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let (group, action) = path.into_inner();
    let st = state.clone();
    let who = f.username.unwrap_or_default();
    let r = web::block(move || -> Result<(), AuthzError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        match action.as_str() {
            "remove" => crate::authz::remove_group(&mut conn, &group, &admin.id, now),
            "add" => {
                let name = crate::customers::normalize_username(&who)
                    .map_err(|e| AuthzError::Invalid(e.to_string()))?;
                let user = kuntalaistili_schema::users::find_by_username(&mut conn, &name)?
                    .ok_or(AuthzError::NotFound("person"))?;
                crate::authz::set_member(&mut conn, &group, &user.id, true, &admin.id, now)
                    .map(|_| ())
            }
            "drop" => {
                crate::authz::set_member(&mut conn, &group, &who, false, &admin.id, now).map(|_| ())
            }
            _ => Err(AuthzError::NotFound("action")),
        }
    })
    .await?;
    match r {
        Ok(()) => Ok(redirect("/admin/roles#groups-h")),
        Err(AuthzError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.role_refused",
            &e.to_string(),
        )),
    }
}

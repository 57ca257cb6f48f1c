//! `/Groups`: the access-rights groups as SCIM Groups; their members are users of the register.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::{authz as groups_store, users, DbError};
use serde_json::{json, Value};

use super::http::{
    authorize, body, error, not_found, public_base, resource, scim_json, unavailable, with_meta,
    Refusal,
};
use super::query::{parse_list_query, projection, read, Projection};
use super::users::{live_user, str_at};
use super::{patch, Kind, GROUP_SCHEMA};
use crate::IdpState;

// ---------------------------------------------------------------- groups

fn group_doc(
    state: &IdpState,
    g: &groups_store::Group,
    members: &[String],
    names: &std::collections::HashMap<String, String>,
) -> Value {
    let base = public_base(state);
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "value": m,
                "display": names.get(m).cloned().unwrap_or_default(),
                "$ref": format!("{base}/Users/{m}"),
                "type": "User",
            })
        })
        .collect();
    let display = if g.description.is_empty() {
        g.name.clone()
    } else {
        g.description.clone()
    };
    let mut doc = json!({
        "schemas": [GROUP_SCHEMA],
        "id": g.name,
        "displayName": display,
        "members": members,
    });
    if let Some(e) = &g.external_id {
        doc["externalId"] = json!(e);
    }
    with_meta(
        doc,
        "Group",
        format!("{base}/Groups/{}", g.name),
        g.created_at,
        g.created_at,
    )
}

/// Every group (or only the one named `only`) as SCIM documents; members are named from one
/// query over their ids only.
pub(super) fn all_groups(state: &IdpState) -> Result<Vec<Value>, DbError> {
    groups_docs(state, None)
}

fn groups_docs(state: &IdpState, only: Option<&str>) -> Result<Vec<Value>, DbError> {
    let mut conn = state.db.conn()?;
    let groups: Vec<_> = groups_store::groups(&mut conn)?
        .into_iter()
        .filter(|(g, _)| only.is_none_or(|n| g.name == n))
        .collect();
    let mut ids: Vec<String> = groups.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    let names = users::usernames(&mut conn, &ids)?;
    Ok(groups
        .iter()
        .map(|(g, m)| group_doc(state, g, m, &names))
        .collect())
}

pub(super) async fn groups_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let q = match parse_list_query(&req) {
        Ok(q) => q,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    match web::block(move || all_groups(&st).map(|d| q.page(d))).await {
        Ok(Ok(v)) => scim_json(StatusCode::OK, &v),
        _ => unavailable(),
    }
}

pub(super) async fn load_group(
    state: &web::Data<IdpState>,
    id: String,
) -> Result<Value, HttpResponse> {
    let st = state.clone();
    let name = id.clone();
    match web::block(move || groups_docs(&st, Some(&name))).await {
        Ok(Ok(all)) => all
            .into_iter()
            .find(|g| g["id"] == id.as_str())
            .ok_or_else(|| not_found("group")),
        _ => Err(unavailable()),
    }
}

/// A group id from its display name: lower-case a-z, 0-9 and '-', at most 64 characters.
fn slug(display: &str) -> String {
    let mut s = String::new();
    for c in display.trim().to_lowercase().chars() {
        let c = match c {
            'ä' | 'å' => 'a',
            'ö' => 'o',
            c if c.is_ascii_alphanumeric() => c,
            _ => '-',
        };
        if !(c == '-' && (s.is_empty() || s.ends_with('-'))) {
            s.push(c);
        }
    }
    let s: String = s.trim_end_matches('-').chars().take(56).collect();
    if s.is_empty() {
        "group".to_owned()
    } else {
        s
    }
}

/// What a SCIM Group document sets.
struct GroupIn {
    display: String,
    external_id: Option<String>,
    /// Member ids, sorted, each once.
    members: Vec<String>,
}

/// Display name, external id and member ids of a SCIM Group document.
fn group_from(doc: &Value) -> Result<GroupIn, Refusal> {
    let Some(display) = str_at(doc, &["displayName"])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    else {
        return Err(Refusal::bad("invalidValue", "displayName is required"));
    };
    let members = match doc
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for m in a {
                match m["value"].as_str() {
                    Some(v) => ids.push(v.to_owned()),
                    None => {
                        return Err(Refusal::bad(
                            "invalidValue",
                            "every member needs a value (a user id)",
                        ))
                    }
                }
            }
            ids.sort();
            ids.dedup();
            ids
        }
        Some(_) => return Err(Refusal::bad("invalidValue", "members must be an array")),
    };
    let external_id = match str_at(doc, &["externalId"]) {
        Some(e) if e.chars().count() > 256 || e.chars().any(char::is_control) => {
            return Err(Refusal::bad(
                "invalidValue",
                "externalId must be at most 256 characters, without control characters",
            ))
        }
        Some(e) if !e.trim().is_empty() => Some(e.to_owned()),
        _ => None,
    };
    Ok(GroupIn {
        display: display.to_owned(),
        external_id,
        members,
    })
}

/// Saves a group's display name, external id and exact member list (in one transaction,
/// audited).
fn store_group(
    state: &IdpState,
    name: &str,
    g: &GroupIn,
    actor: &str,
    create: bool,
) -> Result<(), crate::authz::AuthzError> {
    let mut conn = state.db.conn()?;
    for m in &g.members {
        if live_user(&mut conn, m)?.is_none() {
            return Err(crate::authz::AuthzError::NotFound("member"));
        }
    }
    crate::authz::set_group(
        &mut conn,
        name,
        &g.display,
        g.external_id.as_deref(),
        &g.members,
        create,
        actor,
        kuntalaistili_schema::now_utc(),
    )
}

fn authz_error(e: crate::authz::AuthzError) -> HttpResponse {
    match e {
        crate::authz::AuthzError::NotFound(what) => error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            &format!("{what} not found"),
        ),
        crate::authz::AuthzError::Invalid(d) => {
            error(StatusCode::BAD_REQUEST, Some("invalidValue"), &d)
        }
        crate::authz::AuthzError::Db(e) => {
            tracing::error!(error = %e, "SCIM storage error");
            unavailable()
        }
    }
}

pub(super) async fn groups_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match projection(&req) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let g = match group_from(&doc) {
        Ok(g) => g,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let r = web::block(move || -> Result<String, crate::authz::AuthzError> {
        let display = &g.display;
        // Display names are unique (RFC 7643 §4.2 leaves it to the provider; clients expect it).
        let existing = all_groups(&st)?;
        if existing.iter().any(|g| {
            g["displayName"]
                .as_str()
                .is_some_and(|d| d.to_lowercase() == display.to_lowercase())
        }) {
            return Err(crate::authz::AuthzError::Invalid("exists".into()));
        }
        let base = slug(display);
        let mut name = base.clone();
        let mut n = 2;
        while existing.iter().any(|g| g["id"] == name.as_str()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        store_group(&st, &name, &g, &actor, true)?;
        Ok(name)
    })
    .await;
    match r {
        Ok(Ok(name)) => match load_group(&state, name).await {
            Ok(v) => resource(StatusCode::CREATED, &p.apply(v)),
            Err(r) => r,
        },
        Ok(Err(crate::authz::AuthzError::Invalid(d))) if d == "exists" => error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "a group with this displayName exists",
        ),
        Ok(Err(e)) => authz_error(e),
        Err(_) => unavailable(),
    }
}

pub(super) async fn group_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let p = match projection(&req) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    match load_group(&state, id.into_inner()).await {
        Ok(v) => read(&req, &p, v),
        Err(r) => r,
    }
}

async fn replace_group(
    state: &web::Data<IdpState>,
    id: String,
    doc: Value,
    actor: String,
    p: &Projection,
) -> HttpResponse {
    let g = match group_from(&doc) {
        Ok(g) => g,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let name = id.clone();
    let r = web::block(move || store_group(&st, &name, &g, &actor, false)).await;
    match r {
        Ok(Ok(())) => match load_group(state, id).await {
            Ok(v) => resource(StatusCode::OK, &p.apply(v)),
            Err(r) => r,
        },
        Ok(Err(e)) => authz_error(e),
        Err(_) => unavailable(),
    }
}

pub(super) async fn group_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::Group,
        id.clone(),
        |who, _, p| async move {
            match body(payload).await {
                Ok(doc) => replace_group(&st, id, doc, who.actor, &p).await,
                Err(r) => r,
            }
        },
    )
    .await
}

pub(super) async fn group_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::Group,
        id.clone(),
        |who, current, p| async move {
            let ops = match body(payload).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            match patch::apply(current, &ops) {
                Ok(patched) => replace_group(&st, id, patched, who.actor, &p).await,
                Err(e) => error(StatusCode::BAD_REQUEST, Some(e.scim_type), &e.detail),
            }
        },
    )
    .await
}

pub(super) async fn group_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let id = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::Group,
        id.clone(),
        |who, _, _| async move {
            let r = web::block(move || {
                crate::authz::remove_group(
                    &mut *st.db.conn()?,
                    &id,
                    &who.actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await;
            match r {
                Ok(Ok(())) => HttpResponse::NoContent().finish(),
                Ok(Err(e)) => authz_error(e),
                Err(_) => unavailable(),
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_ids_from_display_names() {
        assert_eq!(
            super::slug("Kirjaston henkilökunta"),
            "kirjaston-henkilokunta"
        );
        assert_eq!(super::slug("  Åbo / Turku  "), "abo-turku");
        assert_eq!(super::slug("???"), "group");
    }
}

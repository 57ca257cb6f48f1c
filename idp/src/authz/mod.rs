//! Access rights down to a single person and function: roles bundle `service:function`
//! permissions; a role or a single permission is granted to a person or to a group, optionally
//! for a period. Services ask `POST /api/v1/authz/check` ([`api`]); relying parties configured
//! for it receive a `permissions` claim.
//!
//! Checks are answered from an in-memory index of each person's rights. Every change bumps a
//! generation number in the database in the same transaction, and every check compares it first,
//! so a change made on any node (or by the CLI) takes effect on the next check everywhere.

pub mod api;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::NaiveDateTime;
use kuntalaistili_schema::authz::{self as rows, Entitlement, Grant, Group, Role};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{users, AnyConnection, DbError};
use serde_json::json;

use crate::audit::Event;
use kuntalaistili_schema::audit;

/// Audit event types of access-rights changes and denied checks.
pub mod kind {
    pub const ROLE_SAVED: &str = "authz.role_saved";
    pub const ROLE_REMOVED: &str = "authz.role_removed";
    pub const GROUP_SAVED: &str = "authz.group_saved";
    pub const GROUP_REMOVED: &str = "authz.group_removed";
    pub const MEMBER_ADDED: &str = "authz.member_added";
    pub const MEMBER_REMOVED: &str = "authz.member_removed";
    pub const GRANTED: &str = "authz.granted";
    pub const REVOKED: &str = "authz.revoked";
    pub const DENIED: &str = "authz.denied";
}

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<kuntalaistili_schema::QueryError> for AuthzError {
    fn from(e: kuntalaistili_schema::QueryError) -> Self {
        AuthzError::Db(DbError::Query(e))
    }
}

fn db(e: DbError) -> AuthzError {
    match e {
        DbError::NotFound(what) => AuthzError::NotFound(what),
        other => AuthzError::Db(other),
    }
}

/// What the index knows of one person.
#[derive(Debug)]
pub struct Rights {
    /// The person exists and is not disabled.
    pub active: bool,
    pub entitlements: Vec<Entitlement>,
}

impl Rights {
    /// Whether `service:function` is granted and in force at `now`.
    pub fn allows(&self, service: &str, function: &str, now: NaiveDateTime) -> bool {
        self.active
            && self.entitlements.iter().any(|e| {
                in_force(e, now)
                    && e.permission
                        .split_once(':')
                        .is_some_and(|(s, f)| s == service && (f == function || f == "*"))
            })
    }

    /// The permissions in force at `now` of the services in `release` (space-separated service
    /// names, `*` for all), sorted and without repeats: what a relying party's claim holds.
    pub fn released(&self, release: &str, now: NaiveDateTime) -> Vec<String> {
        if !self.active {
            return Vec::new();
        }
        let services: Vec<&str> = release.split_whitespace().collect();
        let mut out: Vec<String> = self
            .entitlements
            .iter()
            .filter(|e| in_force(e, now))
            .filter(|e| {
                e.permission
                    .split_once(':')
                    .is_some_and(|(s, _)| services.iter().any(|x| *x == "*" || *x == s))
            })
            .map(|e| e.permission.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn in_force(e: &Entitlement, now: NaiveDateTime) -> bool {
    e.valid_from.is_none_or(|f| f <= now) && e.valid_until.is_none_or(|u| now < u)
}

/// The in-memory index: each person's rights as of a generation.
#[derive(Debug, Default)]
pub struct Index {
    inner: RwLock<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    generation: i64,
    people: HashMap<String, Arc<Rights>>,
}

/// At most this many people are held; beyond it the index starts over (it refills on demand).
const MAX_PEOPLE: usize = 200_000;

impl Index {
    /// The rights of `user_id`, current as of this call: one small read of the generation, and
    /// the person's rows only when the index lacks them or is stale.
    pub fn rights(&self, conn: &mut AnyConnection, user_id: &str) -> Result<Arc<Rights>, DbError> {
        let generation = rows::generation(conn)?;
        if let Ok(c) = self.inner.read() {
            if c.generation == generation {
                if let Some(r) = c.people.get(user_id) {
                    return Ok(r.clone());
                }
            }
        }
        // Loaded after the generation was read: never older than what that generation promises.
        let active = users::find_by_id(conn, user_id)?.is_some_and(|u| !u.disabled);
        let rights = Arc::new(Rights {
            active,
            entitlements: if active {
                rows::entitlements(conn, user_id)?
            } else {
                Vec::new()
            },
        });
        if let Ok(mut c) = self.inner.write() {
            if generation > c.generation {
                c.people.clear();
                c.generation = generation;
            }
            // Unknown or disabled people are not held: creating or enabling someone needs no bump.
            if generation == c.generation && active {
                if c.people.len() >= MAX_PEOPLE {
                    c.people.clear();
                }
                c.people.insert(user_id.to_owned(), rights.clone());
            }
        }
        Ok(rights)
    }
}

/// A role name: 1-64 of `a-z 0-9 - _ .`.
fn check_name(what: &str, name: &str) -> Result<(), AuthzError> {
    if rows::valid_part(name) {
        Ok(())
    } else {
        Err(AuthzError::Invalid(format!(
            "{what} name {name:?} must be 1-64 characters of a-z, 0-9, '-', '_' and '.'"
        )))
    }
}

fn check_permission(p: &str) -> Result<(), AuthzError> {
    match rows::parse_permission(p, true) {
        Some(_) => Ok(()),
        None => Err(AuthzError::Invalid(format!(
            "permission {p:?} must be service:function (function may be *)"
        ))),
    }
}

fn check_description(d: &str) -> Result<String, AuthzError> {
    let d = d.trim();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(AuthzError::Invalid(
            "description must be at most 500 printable characters".into(),
        ));
    }
    Ok(d.to_owned())
}

/// Creates or replaces a role; true when new.
pub fn save_role(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
    permissions: &[String],
    actor: &str,
    now: NaiveDateTime,
) -> Result<bool, AuthzError> {
    check_name("role", name)?;
    let description = check_description(description)?;
    if permissions.is_empty() || permissions.len() > 200 {
        return Err(AuthzError::Invalid("a role needs 1-200 permissions".into()));
    }
    for p in permissions {
        check_permission(p)?;
    }
    let mut perms = permissions.to_vec();
    perms.sort();
    perms.dedup();
    write_tx(conn, |conn| -> Result<bool, AuthzError> {
        let new = rows::put_role(
            conn,
            &Role {
                name: name.to_owned(),
                description,
                created_at: now,
            },
            &perms,
        )
        .map_err(db)?;
        rows::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::ROLE_SAVED)
                .actor(actor)
                .details(json!({ "role": name, "permissions": perms, "new": new }))
                .into_new(),
            now,
        )?;
        Ok(new)
    })
}

/// Removes a role and every grant of it.
pub fn remove_role(
    conn: &mut AnyConnection,
    name: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), AuthzError> {
    write_tx(conn, |conn| -> Result<(), AuthzError> {
        if !rows::delete_role(conn, name)? {
            return Err(AuthzError::NotFound("role"));
        }
        rows::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::ROLE_REMOVED)
                .actor(actor)
                .details(json!({ "role": name }))
                .into_new(),
            now,
        )?;
        Ok(())
    })
}

/// Creates a group or updates its description; true when new.
pub fn save_group(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<bool, AuthzError> {
    check_name("group", name)?;
    let description = check_description(description)?;
    write_tx(conn, |conn| -> Result<bool, AuthzError> {
        let new = rows::put_group(
            conn,
            &Group {
                name: name.to_owned(),
                description,
                created_at: now,
                external_id: None,
            },
        )
        .map_err(db)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::GROUP_SAVED)
                .actor(actor)
                .details(json!({ "group": name, "new": new }))
                .into_new(),
            now,
        )?;
        Ok(new)
    })
}

/// Removes a group, its memberships and its grants.
pub fn remove_group(
    conn: &mut AnyConnection,
    name: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), AuthzError> {
    write_tx(conn, |conn| -> Result<(), AuthzError> {
        if !rows::delete_group(conn, name)? {
            return Err(AuthzError::NotFound("group"));
        }
        rows::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::GROUP_REMOVED)
                .actor(actor)
                .details(json!({ "group": name }))
                .into_new(),
            now,
        )?;
        Ok(())
    })
}

/// Sets a group's description, external id (SCIM `externalId`) and exact member list in one
/// transaction (a new group when `create`: `Invalid("exists")` if the name is taken). Every
/// membership change is audited.
#[allow(clippy::too_many_arguments)] // the group as a whole, plus who and when
pub fn set_group(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
    external_id: Option<&str>,
    members: &[String],
    create: bool,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), AuthzError> {
    check_name("group", name)?;
    let description = check_description(description)?;
    write_tx(conn, |conn| -> Result<(), AuthzError> {
        let current: Option<Vec<String>> = rows::groups(conn)?
            .into_iter()
            .find(|(g, _)| g.name == name)
            .map(|(_, m)| m);
        if create && current.is_some() {
            return Err(AuthzError::Invalid("exists".into()));
        }
        if !create && current.is_none() {
            return Err(AuthzError::NotFound("group"));
        }
        let current = current.unwrap_or_default();
        let new = rows::put_group(
            conn,
            &Group {
                name: name.to_owned(),
                description: description.clone(),
                created_at: now,
                external_id: None,
            },
        )
        .map_err(|e| match e {
            DbError::Conflict(_) => AuthzError::Invalid("exists".into()),
            other => db(other),
        })?;
        rows::set_group_external_id(conn, name, external_id)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::GROUP_SAVED)
                .actor(actor)
                .details(json!({ "group": name, "new": new }))
                .into_new(),
            now,
        )?;
        let mut changed = false;
        for (m, add) in members
            .iter()
            .filter(|m| !current.contains(m))
            .map(|m| (m, true))
            .chain(
                current
                    .iter()
                    .filter(|m| !members.contains(m))
                    .map(|m| (m, false)),
            )
        {
            if add {
                rows::add_member(conn, name, m).map_err(db)?;
            } else {
                rows::remove_member(conn, name, m)?;
            }
            changed = true;
            audit::append_in_tx(
                conn,
                Event::success(if add {
                    kind::MEMBER_ADDED
                } else {
                    kind::MEMBER_REMOVED
                })
                .actor(actor)
                .subject(m.clone())
                .details(json!({ "group": name }))
                .into_new(),
                now,
            )?;
        }
        if changed {
            rows::bump(conn)?;
        }
        Ok(())
    })
}

/// Adds (or with `add == false` removes) a person to a group; false when nothing changed.
pub fn set_member(
    conn: &mut AnyConnection,
    group: &str,
    user_id: &str,
    add: bool,
    actor: &str,
    now: NaiveDateTime,
) -> Result<bool, AuthzError> {
    write_tx(conn, |conn| -> Result<bool, AuthzError> {
        let changed = if add {
            rows::add_member(conn, group, user_id).map_err(db)?
        } else {
            rows::remove_member(conn, group, user_id)?
        };
        if changed {
            rows::bump(conn)?;
            audit::append_in_tx(
                conn,
                Event::success(if add {
                    kind::MEMBER_ADDED
                } else {
                    kind::MEMBER_REMOVED
                })
                .actor(actor)
                .subject(user_id)
                .details(json!({ "group": group }))
                .into_new(),
                now,
            )?;
        }
        Ok(changed)
    })
}

/// What to grant, to whom, and for how long.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// A person (user id); exactly one of `user` and `group`.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Exactly one of `role` and `permission`.
    pub role: Option<String>,
    pub permission: Option<String>,
    /// RFC 3339.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Stores a grant; it takes effect at the next check.
pub fn grant(
    conn: &mut AnyConnection,
    g: NewGrant,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Grant, AuthzError> {
    if g.user.is_some() == g.group.is_some() {
        return Err(AuthzError::Invalid(
            "grant to exactly one of a user or a group".into(),
        ));
    }
    if g.role.is_some() == g.permission.is_some() {
        return Err(AuthzError::Invalid(
            "grant exactly one of a role or a permission".into(),
        ));
    }
    if let Some(p) = &g.permission {
        check_permission(p)?;
    }
    let (from, until) = (
        g.valid_from.map(|t| t.naive_utc()),
        g.valid_until.map(|t| t.naive_utc()),
    );
    if let (Some(f), Some(u)) = (from, until) {
        if u <= f {
            return Err(AuthzError::Invalid(
                "valid_until must be after valid_from".into(),
            ));
        }
    }
    let row = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: g.user,
        group_name: g.group,
        role: g.role,
        permission: g.permission,
        valid_from: from,
        valid_until: until,
        granted_by: actor.to_owned(),
        created_at: now,
    };
    write_tx(conn, |conn| -> Result<(), AuthzError> {
        rows::insert_grant(conn, &row).map_err(db)?;
        rows::bump(conn)?;
        let mut e = Event::success(kind::GRANTED)
            .actor(actor)
            .details(grant_json(&row));
        if let Some(u) = &row.user_id {
            e = e.subject(u.clone());
        }
        audit::append_in_tx(conn, e.into_new(), now)?;
        Ok(())
    })?;
    Ok(row)
}

/// Deletes a grant; it stops at the next check.
pub fn revoke(
    conn: &mut AnyConnection,
    id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Grant, AuthzError> {
    write_tx(conn, |conn| -> Result<Grant, AuthzError> {
        let g = rows::delete_grant(conn, id)?.ok_or(AuthzError::NotFound("grant"))?;
        rows::bump(conn)?;
        let mut e = Event::success(kind::REVOKED)
            .actor(actor)
            .details(grant_json(&g));
        if let Some(u) = &g.user_id {
            e = e.subject(u.clone());
        }
        audit::append_in_tx(conn, e.into_new(), now)?;
        Ok(g)
    })
}

/// A grant as shown by the CLI and the API.
pub fn grant_json(g: &Grant) -> serde_json::Value {
    let t = |t: Option<NaiveDateTime>| t.map(kuntalaistili_schema::iso_utc);
    json!({
        "id": g.id,
        "user": g.user_id,
        "group": g.group_name,
        "role": g.role,
        "permission": g.permission,
        "valid_from": t(g.valid_from),
        "valid_until": t(g.valid_until),
        "granted_by": g.granted_by,
        "created_at": kuntalaistili_schema::iso_utc(g.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(p: &str, from: Option<i64>, until: Option<i64>) -> Entitlement {
        let at = |d: i64| {
            chrono::DateTime::from_timestamp(d, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default()
        };
        Entitlement {
            permission: p.into(),
            role: None,
            group: None,
            valid_from: from.map(at),
            valid_until: until.map(at),
            grant_id: "g".into(),
        }
    }

    #[test]
    fn checks_respect_wildcards_periods_and_disabled_people() {
        let now = chrono::DateTime::from_timestamp(1_000, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        let r = Rights {
            active: true,
            entitlements: vec![
                ent("directory:edit", None, None),
                ent("forms:*", None, None),
                ent("reservations:approve", Some(2_000), None),
                ent("feedback:read", None, Some(1_000)),
            ],
        };
        assert!(r.allows("directory", "edit", now));
        assert!(!r.allows("directory", "publish", now));
        assert!(r.allows("forms", "handle", now));
        assert!(!r.allows("reservations", "approve", now), "not yet valid");
        assert!(!r.allows("feedback", "read", now), "expired at exactly now");
        assert_eq!(
            r.released("directory forms", now),
            vec!["directory:edit", "forms:*"]
        );
        assert_eq!(r.released("*", now).len(), 2);
        let off = Rights {
            active: false,
            entitlements: r.entitlements.clone(),
        };
        assert!(!off.allows("directory", "edit", now));
        assert!(off.released("*", now).is_empty());
    }
}

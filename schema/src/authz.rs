//! Access rights: roles (named sets of `service:function` permissions), groups of people, and
//! grants of a role or a single permission to one person or a group, optionally for a period.
//! Rows only; the rules and the in-memory index live in `kuntalaistili-idp::authz`. Every writer
//! here bumps the generation in the caller's transaction (see [`bump`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::{
    authz_grants, authz_group_members, authz_groups, authz_role_permissions, authz_roles,
    authz_state,
};
use crate::DbError;

/// A service or function name: 1-64 of `a-z 0-9 - _ .`.
pub fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Splits `service:function`; the function may be `*` (every function of the service) when
/// `wildcard` is allowed (in grants and roles, never in a check).
pub fn parse_permission(p: &str, wildcard: bool) -> Option<(&str, &str)> {
    let (s, f) = p.split_once(':')?;
    (valid_part(s) && (valid_part(f) || (wildcard && f == "*"))).then_some((s, f))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = authz_roles)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = authz_groups)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
    /// The provisioning client's identifier for the group (SCIM `externalId`), as given.
    pub external_id: Option<String>,
}

/// One grant: to exactly one of a user or a group, of exactly one of a role or a permission.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authz_grants)]
pub struct Grant {
    pub id: String,
    pub user_id: Option<String>,
    pub group_name: Option<String>,
    pub role: Option<String>,
    pub permission: Option<String>,
    pub valid_from: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub granted_by: String,
    pub created_at: NaiveDateTime,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn valid_at(&self, now: NaiveDateTime) -> bool {
        self.valid_from.is_none_or(|f| f <= now) && self.valid_until.is_none_or(|u| now < u)
    }
}

/// The current generation: any change to rights makes it larger.
pub fn generation(conn: &mut AnyConnection) -> Result<i64, DbError> {
    Ok(authz_state::table
        .find(1)
        .select(authz_state::generation)
        .first(conn)?)
}

/// Marks every node's index stale; call in the transaction that changes rights.
pub fn bump(conn: &mut AnyConnection) -> Result<(), DbError> {
    diesel::update(authz_state::table.find(1))
        .set(authz_state::generation.eq(authz_state::generation + 1))
        .execute(conn)?;
    Ok(())
}

fn conflict(what: &'static str) -> impl Fn(DieselError) -> DbError {
    move |e| match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            DbError::Conflict(what)
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            DbError::NotFound(what)
        }
        other => DbError::Query(other),
    }
}

/// Creates or replaces a role and its permissions; true when it is new.
pub fn put_role(
    conn: &mut AnyConnection,
    role: &Role,
    permissions: &[String],
) -> Result<bool, DbError> {
    let exists = authz_roles::table
        .find(&role.name)
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        diesel::update(authz_roles::table.find(&role.name))
            .set(authz_roles::description.eq(&role.description))
            .execute(conn)?;
        diesel::delete(
            authz_role_permissions::table.filter(authz_role_permissions::role.eq(&role.name)),
        )
        .execute(conn)?;
    } else {
        diesel::insert_into(authz_roles::table)
            .values(role)
            .execute(conn)
            .map_err(conflict("role"))?;
    }
    for p in permissions {
        diesel::insert_into(authz_role_permissions::table)
            .values((
                authz_role_permissions::role.eq(&role.name),
                authz_role_permissions::permission.eq(p),
            ))
            .execute(conn)?;
    }
    Ok(!exists)
}

/// Removes a role (and every grant of it); false when there was none.
pub fn delete_role(conn: &mut AnyConnection, name: &str) -> Result<bool, DbError> {
    diesel::delete(authz_grants::table.filter(authz_grants::role.eq(name))).execute(conn)?;
    diesel::delete(authz_role_permissions::table.filter(authz_role_permissions::role.eq(name)))
        .execute(conn)?;
    Ok(diesel::delete(authz_roles::table.find(name)).execute(conn)? > 0)
}

/// Every role with its permissions, by name.
pub fn roles(conn: &mut AnyConnection) -> Result<Vec<(Role, Vec<String>)>, DbError> {
    let roles: Vec<Role> = authz_roles::table
        .order(authz_roles::name)
        .select(Role::as_select())
        .load(conn)?;
    let perms: Vec<(String, String)> = authz_role_permissions::table
        .order((
            authz_role_permissions::role,
            authz_role_permissions::permission,
        ))
        .load(conn)?;
    Ok(roles
        .into_iter()
        .map(|r| {
            let p = perms
                .iter()
                .filter(|(role, _)| *role == r.name)
                .map(|(_, p)| p.clone())
                .collect();
            (r, p)
        })
        .collect())
}

/// Creates a group (false when it exists: its description is updated).
pub fn put_group(conn: &mut AnyConnection, g: &Group) -> Result<bool, DbError> {
    let n = diesel::update(authz_groups::table.find(&g.name))
        .set(authz_groups::description.eq(&g.description))
        .execute(conn)?;
    if n > 0 {
        return Ok(false);
    }
    diesel::insert_into(authz_groups::table)
        .values(g)
        .execute(conn)
        .map_err(conflict("group"))?;
    Ok(true)
}

/// Sets (or with `None` clears) a group's external id; false when there is no such group.
pub fn set_group_external_id(
    conn: &mut AnyConnection,
    name: &str,
    external_id: Option<&str>,
) -> Result<bool, DbError> {
    Ok(diesel::update(authz_groups::table.find(name))
        .set(authz_groups::external_id.eq(external_id))
        .execute(conn)?
        > 0)
}

/// Removes a group, its memberships and its grants; false when there was none.
pub fn delete_group(conn: &mut AnyConnection, name: &str) -> Result<bool, DbError> {
    diesel::delete(authz_grants::table.filter(authz_grants::group_name.eq(name))).execute(conn)?;
    diesel::delete(authz_group_members::table.filter(authz_group_members::group_name.eq(name)))
        .execute(conn)?;
    Ok(diesel::delete(authz_groups::table.find(name)).execute(conn)? > 0)
}

/// Every group with its members' user ids.
pub fn groups(conn: &mut AnyConnection) -> Result<Vec<(Group, Vec<String>)>, DbError> {
    let groups: Vec<Group> = authz_groups::table
        .order(authz_groups::name)
        .select(Group::as_select())
        .load(conn)?;
    let members: Vec<(String, String)> = authz_group_members::table
        .order((
            authz_group_members::group_name,
            authz_group_members::user_id,
        ))
        .load(conn)?;
    Ok(groups
        .into_iter()
        .map(|g| {
            let m = members
                .iter()
                .filter(|(group, _)| *group == g.name)
                .map(|(_, u)| u.clone())
                .collect();
            (g, m)
        })
        .collect())
}

/// Adds a member; false when they already were one. `NotFound` for an unknown group or user.
pub fn add_member(conn: &mut AnyConnection, group: &str, user_id: &str) -> Result<bool, DbError> {
    let there = authz_group_members::table
        .find((group, user_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if there {
        return Ok(false);
    }
    diesel::insert_into(authz_group_members::table)
        .values((
            authz_group_members::group_name.eq(group),
            authz_group_members::user_id.eq(user_id),
        ))
        .execute(conn)
        .map_err(conflict("group"))?;
    Ok(true)
}

/// Removes a member; false when they were not one.
pub fn remove_member(
    conn: &mut AnyConnection,
    group: &str,
    user_id: &str,
) -> Result<bool, DbError> {
    Ok(diesel::delete(authz_group_members::table.find((group, user_id))).execute(conn)? > 0)
}

/// Stores a grant. `NotFound` when its user, group or role does not exist.
pub fn insert_grant(conn: &mut AnyConnection, g: &Grant) -> Result<(), DbError> {
    diesel::insert_into(authz_grants::table)
        .values(g)
        .execute(conn)
        .map_err(conflict("grant target"))?;
    Ok(())
}

/// Deletes a grant and returns it.
pub fn delete_grant(conn: &mut AnyConnection, id: &str) -> Result<Option<Grant>, DbError> {
    let g = authz_grants::table
        .find(id)
        .select(Grant::as_select())
        .first(conn)
        .optional()?;
    if g.is_some() {
        diesel::delete(authz_grants::table.find(id)).execute(conn)?;
    }
    Ok(g)
}

/// Grants to a user directly, to a group, or all (newest first), at most `limit` after `offset`.
pub fn grants(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
    group: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Grant>, DbError> {
    let mut q = authz_grants::table
        .select(Grant::as_select())
        .order((authz_grants::created_at.desc(), authz_grants::id))
        .limit(limit)
        .offset(offset)
        .into_boxed();
    if let Some(u) = user_id {
        q = q.filter(authz_grants::user_id.eq(u.to_owned()));
    }
    if let Some(g) = group {
        q = q.filter(authz_grants::group_name.eq(g.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// One right a person holds, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entitlement {
    /// `service:function` (the function may be `*`).
    pub permission: String,
    /// The role it came with, if any.
    pub role: Option<String>,
    /// The group it came through, if any.
    pub group: Option<String>,
    pub valid_from: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub grant_id: String,
}

/// Everything granted to `user_id`, directly or through their groups, expanded from roles to
/// permissions; validity periods are kept (the caller decides about "now"). At most four
/// indexed queries whatever the size of the register.
pub fn entitlements(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<Entitlement>, DbError> {
    let groups: Vec<String> = authz_group_members::table
        .filter(authz_group_members::user_id.eq(user_id))
        .select(authz_group_members::group_name)
        .load(conn)?;
    // Two index look-ups, not one `user_id = ? OR group_name IN (…)`: SQLite answers the OR
    // with a scan of every grant (≈ 40 ms at a million grants).
    let mut grants: Vec<Grant> = authz_grants::table
        .filter(authz_grants::user_id.eq(user_id))
        .select(Grant::as_select())
        .load(conn)?;
    if !groups.is_empty() {
        grants.extend(
            authz_grants::table
                .filter(authz_grants::group_name.eq_any(&groups))
                .select(Grant::as_select())
                .load::<Grant>(conn)?,
        );
    }
    let roles: Vec<&str> = grants.iter().filter_map(|g| g.role.as_deref()).collect();
    let role_perms: Vec<(String, String)> = if roles.is_empty() {
        Vec::new()
    } else {
        authz_role_permissions::table
            .filter(authz_role_permissions::role.eq_any(&roles))
            .load(conn)?
    };
    let mut out = Vec::new();
    for g in &grants {
        let base = |permission: String| Entitlement {
            permission,
            role: g.role.clone(),
            group: g.group_name.clone(),
            valid_from: g.valid_from,
            valid_until: g.valid_until,
            grant_id: g.id.clone(),
        };
        match (&g.permission, &g.role) {
            (Some(p), _) => out.push(base(p.clone())),
            (None, Some(r)) => out.extend(
                role_perms
                    .iter()
                    .filter(|(role, _)| role == r)
                    .map(|(_, p)| base(p.clone())),
            ),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// Removes a person's own grants and group memberships (their erasure); returns how many rows.
pub fn delete_for_user(conn: &mut AnyConnection, user_id: &str) -> Result<usize, DbError> {
    let g = diesel::delete(authz_grants::table.filter(authz_grants::user_id.eq(user_id)))
        .execute(conn)?;
    let m =
        diesel::delete(authz_group_members::table.filter(authz_group_members::user_id.eq(user_id)))
            .execute(conn)?;
    Ok(g + m)
}

/// The groups a person belongs to.
pub fn groups_of(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>, DbError> {
    Ok(authz_group_members::table
        .filter(authz_group_members::user_id.eq(user_id))
        .select(authz_group_members::group_name)
        .order(authz_group_members::group_name)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names() {
        assert_eq!(
            parse_permission("directory:edit", false),
            Some(("directory", "edit"))
        );
        assert_eq!(
            parse_permission("directory:*", true),
            Some(("directory", "*"))
        );
        assert_eq!(parse_permission("directory:*", false), None);
        for bad in [
            "directory",
            ":edit",
            "dir:",
            "Dir:edit",
            "a:b:c",
            "a b:c",
            "*:edit",
        ] {
            assert_eq!(parse_permission(bad, true), None, "{bad}");
        }
    }
}

//! `kuntalaistili authz …`: roles, groups, grants and checks of access rights (people are named
//! by username).

use anyhow::{anyhow, Context};
use clap::Subcommand;
use kuntalaistili_idp::authz::{self, NewGrant};
use kuntalaistili_schema::{authz as rows, users, AnyConnection};
use serde_json::json;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum AuthzCommand {
    /// Create or replace a role: a named set of service:function permissions.
    Role {
        name: String,
        /// Comma-separated permissions, e.g. directory:edit,forms:* (function * = all).
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove a role and every grant of it.
    RemoveRole { name: String },
    /// Every role with its permissions.
    Roles,
    /// Create a group (or update its description).
    Group {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove a group with its memberships and grants.
    RemoveGroup { name: String },
    /// Every group with its members.
    Groups,
    /// Add a person to a group.
    AddMember { group: String, username: String },
    /// Take a person out of a group.
    RemoveMember { group: String, username: String },
    /// Grant a role or a single permission to a person or a group; prints the grant.
    Grant {
        /// The person (username); or --group.
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(
            long,
            conflicts_with = "permission",
            required_unless_present = "permission"
        )]
        role: Option<String>,
        /// service:function (function * = all of the service).
        #[arg(long)]
        permission: Option<String>,
        /// RFC 3339 instant the grant starts (default: now).
        #[arg(long)]
        valid_from: Option<chrono::DateTime<chrono::Utc>>,
        /// RFC 3339 instant the grant ends (default: never).
        #[arg(long)]
        valid_until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Withdraw a grant by id.
    Revoke { id: String },
    /// Grants, newest first: all, or a person's own, or a group's.
    Grants {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Whether a person may do service:function now (exit code 0 yes, 3 no).
    Check {
        username: String,
        permission: String,
    },
}

fn user_id(conn: &mut AnyConnection, username: &str) -> anyhow::Result<String> {
    let name =
        kuntalaistili_idp::customers::normalize_username(username).map_err(|e| anyhow!("{e}"))?;
    Ok(users::find_by_username(conn, &name)?
        .ok_or_else(|| anyhow!("no user {username:?}"))?
        .id)
}

pub(super) fn authz_cmd(
    config: &Config,
    cmd: AuthzCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let db = open_migrated(config)?;
    let mut conn = db.conn()?;
    let now = kuntalaistili_schema::now_utc();
    match cmd {
        AuthzCommand::Role {
            name,
            permissions,
            description,
        } => {
            let new = authz::save_role(&mut conn, &name, &description, &permissions, "cli", now)?;
            io.report(
                json,
                json!({ "role": name, "created": new }),
                format_args!("role {name} {}", if new { "created" } else { "updated" }),
            )?;
        }
        AuthzCommand::RemoveRole { name } => {
            authz::remove_role(&mut conn, &name, "cli", now)?;
            io.report(
                json,
                json!({ "removed": name }),
                format_args!("role {name} removed"),
            )?;
        }
        AuthzCommand::Roles => {
            let roles = rows::roles(&mut conn)?;
            if json {
                let v: Vec<_> = roles
                    .iter()
                    .map(|(r, p)| json!({ "name": r.name, "description": r.description, "permissions": p }))
                    .collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for (r, p) in &roles {
                    writeln!(io.out, "{}\t{}\t{}", r.name, p.join(","), r.description)?;
                }
            }
        }
        AuthzCommand::Group { name, description } => {
            let new = authz::save_group(&mut conn, &name, &description, "cli", now)?;
            io.report(
                json,
                json!({ "group": name, "created": new }),
                format_args!("group {name} {}", if new { "created" } else { "updated" }),
            )?;
        }
        AuthzCommand::RemoveGroup { name } => {
            authz::remove_group(&mut conn, &name, "cli", now)?;
            io.report(
                json,
                json!({ "removed": name }),
                format_args!("group {name} removed"),
            )?;
        }
        AuthzCommand::Groups => {
            let groups = rows::groups(&mut conn)?;
            if json {
                let v: Vec<_> = groups
                    .iter()
                    .map(|(g, m)| json!({ "name": g.name, "description": g.description, "members": m }))
                    .collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for (g, m) in &groups {
                    writeln!(io.out, "{}\t{} members\t{}", g.name, m.len(), g.description)?;
                }
            }
        }
        AuthzCommand::AddMember { group, username } => {
            let id = user_id(&mut conn, &username)?;
            let changed = authz::set_member(&mut conn, &group, &id, true, "cli", now)?;
            io.report(
                json,
                json!({ "group": group, "user": id, "changed": changed }),
                format_args!("{username} is a member of {group}"),
            )?;
        }
        AuthzCommand::RemoveMember { group, username } => {
            let id = user_id(&mut conn, &username)?;
            let changed = authz::set_member(&mut conn, &group, &id, false, "cli", now)?;
            io.report(
                json,
                json!({ "group": group, "user": id, "changed": changed }),
                format_args!("{username} is not a member of {group}"),
            )?;
        }
        AuthzCommand::Grant {
            user,
            group,
            role,
            permission,
            valid_from,
            valid_until,
        } => {
            let user = match user {
                Some(u) => Some(user_id(&mut conn, &u)?),
                None => None,
            };
            let g = authz::grant(
                &mut conn,
                NewGrant {
                    user,
                    group,
                    role,
                    permission,
                    valid_from,
                    valid_until,
                },
                "cli",
                now,
            )?;
            let v = authz::grant_json(&g);
            io.report(json, &v, format_args!("granted: {}", g.id))?;
        }
        AuthzCommand::Revoke { id } => {
            let g = authz::revoke(&mut conn, &id, "cli", now)?;
            io.report(
                json,
                authz::grant_json(&g),
                format_args!("revoked: {}", g.id),
            )?;
        }
        AuthzCommand::Grants { user, group } => {
            let user = match user {
                Some(u) => Some(user_id(&mut conn, &u)?),
                None => None,
            };
            let all = rows::grants(&mut conn, user.as_deref(), group.as_deref(), 10_000, 0)?;
            if json {
                let v: Vec<_> = all.iter().map(authz::grant_json).collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for g in &all {
                    writeln!(
                        io.out,
                        "{}\t{}\t{}\tuntil {}",
                        g.id,
                        g.user_id
                            .as_deref()
                            .map(|u| format!("user {u}"))
                            .or(g.group_name.as_deref().map(|x| format!("group {x}")))
                            .unwrap_or_default(),
                        g.role
                            .as_deref()
                            .map(|r| format!("role {r}"))
                            .or(g.permission.clone())
                            .unwrap_or_default(),
                        g.valid_until
                            .map(kuntalaistili_schema::iso_utc)
                            .unwrap_or_else(|| "-".into()),
                    )?;
                }
            }
        }
        AuthzCommand::Check {
            username,
            permission,
        } => {
            let (service, function) = rows::parse_permission(&permission, false)
                .context("the permission must be service:function")?;
            let id = user_id(&mut conn, &username)?;
            let rights = authz::Index::default().rights(&mut conn, &id)?;
            let allowed = rights.allows(service, function, now);
            io.report(
                json,
                json!({ "allowed": allowed, "user": id, "permission": permission }),
                format_args!("{}", if allowed { "allowed" } else { "denied" }),
            )?;
            return Ok(if allowed { 0 } else { 3 });
        }
    }
    Ok(0)
}

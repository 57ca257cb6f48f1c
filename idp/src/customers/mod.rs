//! The customer register: validated creation and maintenance of residents, staff and
//! administrators. Used by the CLI now and by the admin UI/API and SCIM later.

pub mod gdpr;
pub mod hetu;

use chrono::NaiveDateTime;
use kuntalaistili_schema::pool::{write_tx, AnyConnection};
use kuntalaistili_schema::users::{self, User, ROLES};
use kuntalaistili_schema::{audit, sessions, DbError};

use crate::audit::{kind, Event};
use crate::crypto::MasterKeys;
use crate::password::{PasswordError, PasswordHasher};

#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

fn invalid(field: &'static str, reason: &'static str) -> CustomerError {
    CustomerError::Invalid { field, reason }
}

/// A person to register, as given by an operator or an API.
#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    pub username: String,
    pub password: Option<String>,
    pub role: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    pub home_municipality: Option<String>,
    pub preferred_language: Option<String>,
    pub national_id: Option<String>,
    /// Message channels, space-separated (`email sms notice`); default `email notice`.
    pub message_channels: Option<String>,
    /// The provisioning client's identifier for the person (SCIM `externalId`), kept as given.
    pub external_id: Option<String>,
}

/// Channels a person may receive messages through.
pub const CHANNELS: [&str; 3] = ["email", "sms", "notice"];

/// Validates a space-separated channel list (deduplicated, in the canonical order).
pub fn channels(raw: Option<&str>) -> Result<String, CustomerError> {
    let Some(raw) = raw else {
        return Ok("email notice".to_owned());
    };
    let asked: Vec<&str> = raw
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect();
    if asked.iter().any(|c| !CHANNELS.contains(c)) {
        return Err(invalid(
            "message_channels",
            "each channel must be email, sms or notice",
        ));
    }
    Ok(CHANNELS
        .iter()
        .filter(|c| asked.contains(c))
        .copied()
        .collect::<Vec<_>>()
        .join(" "))
}

pub const MIN_PASSWORD_CHARS: usize = 8;

/// Lower-cases and checks a username: 1–64 characters of `a-z 0-9 . _ @ -`.
pub fn normalize_username(raw: &str) -> Result<String, CustomerError> {
    let u = raw.trim().to_lowercase();
    if u.is_empty() || u.chars().count() > 64 {
        return Err(invalid("username", "must be 1-64 characters"));
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err(invalid(
            "username",
            "may contain only a-z, 0-9, '.', '_', '@' and '-'",
        ));
    }
    Ok(u)
}

pub fn check_password(password: &str) -> Result<(), CustomerError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(invalid("password", "must be at least 8 characters"));
    }
    if password.len() > crate::session::login::MAX_PASSWORD_BYTES {
        return Err(invalid("password", "must be at most 1024 bytes"));
    }
    Ok(())
}

fn text(
    v: Option<String>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, CustomerError> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(invalid(field, "is too long")),
        Some(s) if s.chars().any(char::is_control) => {
            Err(invalid(field, "contains control characters"))
        }
        other => Ok(other),
    }
}

fn email(v: Option<String>) -> Result<Option<String>, CustomerError> {
    let Some(e) = text(v, "email", 254)? else {
        return Ok(None);
    };
    let mut parts = e.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("email", "must look like name@example.fi"));
    };
    if local.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || e.contains(char::is_whitespace)
    {
        return Err(invalid("email", "must look like name@example.fi"));
    }
    Ok(Some(e))
}

/// An external id is kept exactly as given (it is the provisioning client's key), but not an
/// empty one, a very long one or one with control characters.
fn external_id(v: Option<String>) -> Result<Option<String>, CustomerError> {
    match v {
        Some(e) if e.chars().count() > 256 => Err(invalid("external_id", "is too long")),
        Some(e) if e.chars().any(char::is_control) => {
            Err(invalid("external_id", "contains control characters"))
        }
        Some(e) if e.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Validates a person's description into a new row (a fresh id; the password hashed; the
/// national id encrypted with a keyed look-up index).
fn build(
    keys: &MasterKeys,
    hasher: &PasswordHasher,
    p: NewPerson,
    now: NaiveDateTime,
) -> Result<User, CustomerError> {
    let username = normalize_username(&p.username)?;
    let role = if p.role.is_empty() {
        "resident".to_owned()
    } else {
        p.role.clone()
    };
    if !ROLES.contains(&role.as_str()) {
        return Err(invalid("role", "must be resident, staff or admin"));
    }
    let password_hash = match &p.password {
        Some(pw) => {
            check_password(pw)?;
            Some(hasher.hash(pw)?)
        }
        None => None,
    };
    let language = p
        .preferred_language
        .as_deref()
        .unwrap_or("fi")
        .to_ascii_lowercase();
    if !["fi", "sv", "en"].contains(&language.as_str()) {
        return Err(invalid("preferred_language", "must be fi, sv or en"));
    }
    let municipality = text(p.home_municipality, "home_municipality", 3)?;
    let message_channels = channels(p.message_channels.as_deref())?;
    if municipality
        .as_ref()
        .is_some_and(|m| m.len() != 3 || !m.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "home_municipality",
            "must be a three-digit municipality code",
        ));
    }
    let national_id = match p.national_id {
        Some(n) => Some(hetu::validate(&n).ok_or_else(|| {
            invalid(
                "national_id",
                "is not a valid Finnish personal identity code",
            )
        })?),
        None => None,
    };
    let phone = text(p.phone, "phone", 32)?;
    if phone.as_ref().is_some_and(|ph| {
        !ph.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
    }) {
        return Err(invalid(
            "phone",
            "may contain only digits, spaces and + - ( )",
        ));
    }
    let row = User {
        id: uuid::Uuid::new_v4().to_string(),
        username,
        password_hash,
        role,
        disabled: false,
        given_name: text(p.given_name, "given_name", 100)?,
        family_name: text(p.family_name, "family_name", 100)?,
        email: email(p.email)?,
        phone,
        street_address: text(p.street_address, "street_address", 200)?,
        postal_code: text(p.postal_code, "postal_code", 16)?,
        locality: text(p.locality, "locality", 100)?,
        country: text(p.country, "country", 2)?,
        home_municipality: municipality,
        preferred_language: language,
        national_id_index: national_id.as_deref().map(|n| keys.national_id_index(n)),
        national_id_enc: national_id.as_deref().map(|n| keys.encrypt_national_id(n)),
        created_at: now,
        updated_at: now,
        message_channels,
        erasure_requested_at: None,
        erased_at: None,
        external_id: external_id(p.external_id)?,
    };
    Ok(row)
}

/// Validates and stores a new person; the national id is stored encrypted with a keyed look-up
/// index. Audited as `user.created` with `actor`.
pub fn add(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    hasher: &PasswordHasher,
    p: NewPerson,
    actor: &str,
    now: NaiveDateTime,
) -> Result<User, CustomerError> {
    let row = build(keys, hasher, p, now)?;
    write_tx(conn, |conn| -> Result<(), DbError> {
        users::insert(conn, &row)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::USER_CREATED)
                .actor(actor)
                .subject(row.id.clone())
                .details(serde_json::json!({ "role": row.role }))
                .into_new(),
            now,
        )?;
        Ok(())
    })?;
    Ok(row)
}

#[allow(clippy::too_many_arguments)] // the register's context (keys, hasher) plus the change
/// Replaces a person's register data with `p` (as a SCIM PUT does). Kept unless given: the
/// password and the national id (never shown, so never sent back), the role, and the account's
/// state (`active: None`). Closing the account or setting a new password ends its sessions and
/// revokes its grants (returned, for back-channel logout), like [`disable`] and
/// [`set_password`]. Audited as `user.updated`.
pub fn replace(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    hasher: &PasswordHasher,
    id: &str,
    p: NewPerson,
    active: Option<bool>,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(User, Vec<kuntalaistili_schema::oidc_flows::Grant>), CustomerError> {
    let old = users::find_by_id(conn, id)?
        .filter(|u| u.erasure_requested_at.is_none())
        .ok_or(DbError::NotFound("user"))?;
    let keep_role = p.role.is_empty();
    let mut row = build(keys, hasher, p, now)?;
    row.id = old.id.clone();
    row.created_at = old.created_at;
    if keep_role {
        row.role = old.role.clone();
    }
    let new_password = row.password_hash.is_some();
    if !new_password {
        row.password_hash = old.password_hash.clone();
    }
    if row.national_id_enc.is_none() {
        row.national_id_enc = old.national_id_enc.clone();
        row.national_id_index = old.national_id_index.clone();
    }
    row.disabled = active.map_or(old.disabled, |a| !a);
    let closing = row.disabled && !old.disabled;
    let grants = write_tx(conn, |conn| -> Result<_, DbError> {
        users::replace(conn, &row)?;
        let mut ended = 0;
        let mut grants = Vec::new();
        if closing || new_password {
            ended = sessions::delete_all_for_user(conn, &row.id)?;
            grants = kuntalaistili_schema::oidc_flows::revoke_for_user(conn, &row.id, now)?;
        }
        kuntalaistili_schema::authz::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::USER_UPDATED)
                .actor(actor)
                .subject(row.id.clone())
                .details(serde_json::json!({
                    "active": !row.disabled,
                    "password_changed": new_password,
                    "sessions_ended": ended,
                    "grants_revoked": grants.len(),
                }))
                .into_new(),
            now,
        )?;
        Ok(grants)
    })?;
    Ok((row, grants))
}

/// Sets a new password for a person, as someone else (an administrator, the CLI) does: it ends
/// every session of the person and revokes what the old password granted (RFC 9700 §4.14).
/// Returns the revoked grants, whose clients the caller tells (back-channel logout). Audited as
/// `user.password_set`.
pub fn set_password(
    conn: &mut AnyConnection,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Vec<kuntalaistili_schema::oidc_flows::Grant>, CustomerError> {
    let username = normalize_username(username)?;
    check_password(password)?;
    let hash = hasher.hash(password)?;
    Ok(write_tx(conn, |conn| -> Result<_, DbError> {
        users::set_password_hash(conn, &username, &hash, now)?;
        let id = users::find_by_username(conn, &username)?
            .map(|u| u.id)
            .ok_or(DbError::NotFound("user"))?;
        let ended = sessions::delete_all_for_user(conn, &id)?;
        let revoked = kuntalaistili_schema::oidc_flows::revoke_for_user(conn, &id, now)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::USER_PASSWORD_SET)
                .actor(actor)
                .subject(id)
                .details(serde_json::json!({
                    "sessions_ended": ended,
                    "grants_revoked": revoked.len(),
                }))
                .into_new(),
            now,
        )?;
        Ok(revoked)
    })?)
}

/// What disabling an account ended.
#[derive(Debug)]
pub struct Disabled {
    pub sessions_ended: usize,
    /// The revoked grants: their clients are told (back-channel logout) by the caller.
    pub grants: Vec<kuntalaistili_schema::oidc_flows::Grant>,
}

/// Disables an account, ends all its sessions and revokes its grants (returned, so that the
/// caller tells their clients).
pub fn disable(
    conn: &mut AnyConnection,
    username: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Disabled, CustomerError> {
    let username = normalize_username(username)?;
    Ok(write_tx(conn, |conn| -> Result<Disabled, DbError> {
        let id = users::set_disabled(conn, &username, true, now)?;
        let ended = sessions::delete_all_for_user(conn, &id)?;
        let revoked = kuntalaistili_schema::oidc_flows::revoke_for_user(conn, &id, now)?;
        // Rights held in any node's index end with the account.
        kuntalaistili_schema::authz::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::USER_DISABLED)
                .actor(actor)
                .subject(id)
                .details(
                    serde_json::json!({ "sessions_ended": ended, "grants_revoked": revoked.len() }),
                )
                .into_new(),
            now,
        )?;
        Ok(Disabled {
            sessions_ended: ended,
            grants: revoked,
        })
    })?)
}

/// The public view of a person for CLI and API output: no password hash, no national id.
pub fn public_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "disabled": u.disabled,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "email": u.email,
        "phone": u.phone,
        "street_address": u.street_address,
        "postal_code": u.postal_code,
        "locality": u.locality,
        "country": u.country,
        "home_municipality": u.home_municipality,
        "preferred_language": u.preferred_language,
        "message_channels": u.message_channels,
        "has_national_id": u.national_id_enc.is_some(),
        "has_password": u.password_hash.is_some(),
        "created_at": kuntalaistili_schema::iso_utc(u.created_at),
        "updated_at": kuntalaistili_schema::iso_utc(u.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" Maija.M ").unwrap(), "maija.m");
        assert!(normalize_username("").is_err());
        assert!(normalize_username("a b").is_err());
        assert!(normalize_username(&"x".repeat(65)).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            email(Some("a@b.fi".into())).unwrap().as_deref(),
            Some("a@b.fi")
        );
        assert!(email(Some("a@b".into())).is_err());
        assert!(email(Some("a@@b.fi".into())).is_err());
        assert!(email(Some("a b@c.fi".into())).is_err());
        assert_eq!(email(Some("  ".into())).unwrap(), None);
    }
}

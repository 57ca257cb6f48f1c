//! The customer register's core table: residents, staff and administrators.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::users;
use crate::DbError;

/// What a person may do beyond using services.
pub const ROLES: [&str; 3] = ["resident", "staff", "admin"];

/// A person in the register. `national_id_enc` is ciphertext; `national_id_index` a keyed hash for
/// look-ups. Neither is ever shown as is.
/// New rows are inserted as a whole `User`; the caller has validated and normalised every field.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    pub home_municipality: Option<String>,
    pub preferred_language: String,
    pub national_id_enc: Option<String>,
    pub national_id_index: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Channels the person wants messages through, space-separated (`email sms notice`).
    pub message_channels: String,
    /// When the person asked for erasure (the account closed then).
    pub erasure_requested_at: Option<NaiveDateTime>,
    /// When the personal data was overwritten, after the retention period.
    pub erased_at: Option<NaiveDateTime>,
    /// The provisioning client's identifier for the person (SCIM `externalId`), as given.
    pub external_id: Option<String>,
}

impl User {
    /// "Given Family", or the username when no name is registered.
    pub fn display_name(&self) -> String {
        match (&self.given_name, &self.family_name) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            (Some(g), None) => g.clone(),
            (None, Some(f)) => f.clone(),
            (None, None) => self.username.clone(),
        }
    }
}

fn conflict(e: DieselError, what: &'static str) -> DbError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            DbError::Conflict(what)
        }
        other => DbError::Query(other),
    }
}

pub fn insert(conn: &mut AnyConnection, user: &User) -> Result<(), DbError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map_err(|e| conflict(e, "user (username or national id)"))?;
    Ok(())
}

/// Overwrites every column of an existing person (the id stays).
pub fn replace(conn: &mut AnyConnection, user: &User) -> Result<(), DbError> {
    let n = diesel::update(users::table.find(&user.id))
        .set(user)
        .execute(conn)
        .map_err(|e| conflict(e, "user (username or national id)"))?;
    if n == 0 {
        return Err(DbError::NotFound("user"));
    }
    Ok(())
}

pub fn find_by_username(conn: &mut AnyConnection, username: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The people with this external id (SCIM `externalId`; each provisioning client has its own).
pub fn find_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> Result<Vec<User>, DbError> {
    Ok(users::table
        .filter(users::external_id.eq(external_id))
        .order(users::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

pub fn find_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// People not being erased, by username: `limit` of them after `offset`, and how many there are.
pub fn page_live(
    conn: &mut AnyConnection,
    offset: i64,
    limit: i64,
) -> Result<(Vec<User>, i64), DbError> {
    let live = users::erasure_requested_at.is_null();
    let total = users::table.filter(live).count().get_result(conn)?;
    let rows = users::table
        .filter(live)
        .order(users::username.asc())
        .offset(offset)
        .limit(limit)
        .select(User::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Usernames of these people, by id (for naming group members).
pub fn usernames(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, DbError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = users::table
            .filter(users::id.eq_any(chunk))
            .select((users::id, users::username))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The person whose national id has this keyed index (see `MasterKeys::national_id_index`).
pub fn find_by_national_id_index(
    conn: &mut AnyConnection,
    index: &str,
) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::national_id_index.eq(index))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// All users ordered by username (the register is small enough for the CLI; the admin API pages).
pub fn list(conn: &mut AnyConnection) -> Result<Vec<User>, DbError> {
    Ok(users::table
        .order(users::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

pub fn set_password_hash(
    conn: &mut AnyConnection,
    username: &str,
    hash: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("user"));
    }
    Ok(())
}

/// Sets a person's message channels and preferred language (both validated by the caller).
pub fn set_preferences(
    conn: &mut AnyConnection,
    id: &str,
    channels: &str,
    language: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::message_channels.eq(channels),
            users::preferred_language.eq(language),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("user"));
    }
    Ok(())
}

/// Disables or re-enables an account; returns the user's id.
pub fn set_disabled(
    conn: &mut AnyConnection,
    username: &str,
    disabled: bool,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let id: Option<String> = users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(conn)
        .optional()?;
    let id = id.ok_or(DbError::NotFound("user"))?;
    diesel::update(users::table.find(&id))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(id)
}

/// Closes an account at the person's request; the personal data stays for the retention period.
pub fn request_erasure(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::disabled.eq(true),
            users::erasure_requested_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// People whose erasure was requested before `before` and whose data is not yet overwritten.
pub fn due_for_erasure(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(users::table
        .filter(users::erasure_requested_at.le(before))
        .filter(users::erased_at.is_null())
        .select(users::id)
        .limit(limit)
        .load(conn)?)
}

/// Overwrites a person's personal data; the row, its id and role stay (audit references).
pub fn overwrite_personal_data(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::username.eq(format!("erased-{id}")),
            users::password_hash.eq(None::<String>),
            users::given_name.eq(None::<String>),
            users::family_name.eq(None::<String>),
            users::email.eq(None::<String>),
            users::phone.eq(None::<String>),
            users::street_address.eq(None::<String>),
            users::postal_code.eq(None::<String>),
            users::locality.eq(None::<String>),
            users::country.eq(None::<String>),
            users::home_municipality.eq(None::<String>),
            users::national_id_enc.eq(None::<String>),
            users::external_id.eq(None::<String>),
            users::national_id_index.eq(None::<String>),
            users::message_channels.eq(""),
            users::disabled.eq(true),
            users::erased_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

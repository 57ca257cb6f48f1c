//! Server-side SSO sessions. The cookie carries a random token; only its SHA-256 is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::AnyConnection;
use crate::schema::{sessions, users};
use crate::users::User;
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub acr: String,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn insert(conn: &mut AnyConnection, session: &Session) -> Result<(), DbError> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)?;
    Ok(())
}

/// The live session for a token hash together with its (enabled) user.
pub fn find_active(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<(Session, User)>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(now))
        .filter(users::disabled.eq(false))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?)
}

/// A session (live or not) by id, with its user.
pub fn find_with_user(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<(Session, User)>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?)
}

/// Records activity and slides the idle expiry forward, bounded by `absolute_expiry`.
pub fn touch(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Session>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .order(sessions::created_at.desc())
        .select(Session::as_select())
        .load(conn)?)
}

/// Ends one session of a user; returns whether it existed.
pub fn delete_for_user(conn: &mut AnyConnection, user_id: &str, id: &str) -> Result<bool, DbError> {
    let n = diesel::delete(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Ends every session of a user; returns how many there were.
pub fn delete_all_for_user(conn: &mut AnyConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

/// Housekeeping: drops expired rows.
pub fn delete_expired(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}

/// Number of live sessions (for `/metrics`).
pub fn count_active(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<i64, DbError> {
    Ok(sessions::table
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

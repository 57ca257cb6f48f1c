//! Sessions of the built-in services (each an OIDC relying party of the IdP).
//! The cookie carries a random token; only its SHA-256 is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::AnyConnection;
use crate::schema::svc_sessions;
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = svc_sessions)]
pub struct ServiceSession {
    pub token_hash: String,
    pub service: String,
    pub sub: String,
    pub name: String,
    /// The IdP session (`sid` of the ID token), for back-channel logout.
    pub idp_sid: Option<String>,
    /// Kept for the `id_token_hint` of RP-initiated logout.
    pub id_token: String,
    pub csrf: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The resident's email address, for services that ask for it (payments).
    pub email: Option<String>,
    /// When the session was last used (the idle limit counts from here; `None`: created_at).
    pub last_seen_at: Option<NaiveDateTime>,
    /// When the IdP last confirmed its own session (login or silent authentication).
    pub idp_checked_at: Option<NaiveDateTime>,
}

impl ServiceSession {
    /// When the session was last used.
    pub fn seen(&self) -> NaiveDateTime {
        self.last_seen_at.unwrap_or(self.created_at)
    }

    /// When the IdP last confirmed its session.
    pub fn idp_checked(&self) -> NaiveDateTime {
        self.idp_checked_at.unwrap_or(self.created_at)
    }
}

pub fn insert(conn: &mut AnyConnection, s: &ServiceSession) -> Result<(), DbError> {
    diesel::insert_into(svc_sessions::table)
        .values(s)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut AnyConnection,
    service: &str,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<ServiceSession>, DbError> {
    Ok(svc_sessions::table
        .find(token_hash)
        .filter(svc_sessions::service.eq(service))
        .filter(svc_sessions::expires_at.gt(now))
        .select(ServiceSession::as_select())
        .first(conn)
        .optional()?)
}

/// Records that the session was used at `now`.
pub fn touch(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(svc_sessions::table.find(token_hash))
        .set(svc_sessions::last_seen_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut AnyConnection, token_hash: &str) -> Result<(), DbError> {
    diesel::delete(svc_sessions::table.find(token_hash)).execute(conn)?;
    Ok(())
}

/// Ends a service's sessions that belong to an IdP session (back-channel logout).
pub fn delete_by_sid(conn: &mut AnyConnection, service: &str, sid: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(
        svc_sessions::table
            .filter(svc_sessions::service.eq(service))
            .filter(svc_sessions::idp_sid.eq(sid)),
    )
    .execute(conn)?)
}

/// Ends a service's sessions of a subject (back-channel logout without `sid`).
pub fn delete_by_sub(conn: &mut AnyConnection, service: &str, sub: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(
        svc_sessions::table
            .filter(svc_sessions::service.eq(service))
            .filter(svc_sessions::sub.eq(sub)),
    )
    .execute(conn)?)
}

pub fn delete_expired(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(
        diesel::delete(svc_sessions::table.filter(svc_sessions::expires_at.le(now)))
            .execute(conn)?,
    )
}

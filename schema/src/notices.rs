//! The personal notice board: notices other systems post about a resident's e-service processes.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::notices;
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = notices)]
pub struct Notice {
    pub id: String,
    pub sub: String,
    /// The client that posted it.
    pub poster: String,
    pub idempotency_key: String,
    /// The e-service it is about (shown, and filterable).
    pub service: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
    pub archived_at: Option<NaiveDateTime>,
}

/// Stores a notice unless the poster already sent one with the same key; returns the stored
/// notice and whether it is new.
pub fn insert_idempotent(conn: &mut AnyConnection, n: &Notice) -> Result<(Notice, bool), DbError> {
    let existing = |conn: &mut AnyConnection| -> Result<Option<Notice>, DbError> {
        Ok(notices::table
            .filter(notices::poster.eq(&n.poster))
            .filter(notices::idempotency_key.eq(&n.idempotency_key))
            .select(Notice::as_select())
            .first(conn)
            .optional()?)
    };
    if let Some(e) = existing(conn)? {
        return Ok((e, false));
    }
    match diesel::insert_into(notices::table).values(n).execute(conn) {
        Ok(_) => Ok((n.clone(), true)),
        // A concurrent request with the same key won the race: answer with its notice.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => existing(conn)?
            .map(|e| (e, false))
            .ok_or(DbError::Conflict("notice")),
        Err(e) => Err(e.into()),
    }
}

/// Which of a resident's notices to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub archived: bool,
    pub unread_only: bool,
    pub service: Option<String>,
    pub limit: i64,
}

pub fn list(conn: &mut AnyConnection, sub: &str, f: &Filter) -> Result<Vec<Notice>, DbError> {
    let mut q = notices::table
        .filter(notices::sub.eq(sub))
        .select(Notice::as_select())
        .order((notices::created_at.desc(), notices::id.asc()))
        .limit(f.limit.clamp(1, 500))
        .into_boxed();
    q = if f.archived {
        q.filter(notices::archived_at.is_not_null())
    } else {
        q.filter(notices::archived_at.is_null())
    };
    if f.unread_only {
        q = q.filter(notices::read_at.is_null());
    }
    if let Some(s) = &f.service {
        q = q.filter(notices::service.eq(s));
    }
    Ok(q.load(conn)?)
}

/// Unread, unarchived notices of a resident.
pub fn unread_count(conn: &mut AnyConnection, sub: &str) -> Result<i64, DbError> {
    Ok(notices::table
        .filter(notices::sub.eq(sub))
        .filter(notices::read_at.is_null())
        .filter(notices::archived_at.is_null())
        .count()
        .get_result(conn)?)
}

/// The services a resident has notices from (for the filter).
pub fn services_of(conn: &mut AnyConnection, sub: &str) -> Result<Vec<String>, DbError> {
    Ok(notices::table
        .filter(notices::sub.eq(sub))
        .select(notices::service)
        .distinct()
        .order(notices::service.asc())
        .load(conn)?)
}

/// Marks a resident's notice read; false when it is not theirs.
pub fn mark_read(
    conn: &mut AnyConnection,
    sub: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        notices::table
            .find(id)
            .filter(notices::sub.eq(sub))
            .filter(notices::read_at.is_null()),
    )
    .set(notices::read_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1 || owned(conn, sub, id)?)
}

/// Archives (or restores) a resident's notice; archiving also marks it read.
pub fn set_archived(
    conn: &mut AnyConnection,
    sub: &str,
    id: &str,
    archived: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = if archived {
        diesel::update(
            notices::table
                .find(id)
                .filter(notices::sub.eq(sub))
                .filter(notices::read_at.is_null()),
        )
        .set(notices::read_at.eq(Some(now)))
        .execute(conn)?;
        diesel::update(notices::table.find(id).filter(notices::sub.eq(sub)))
            .set(notices::archived_at.eq(Some(now)))
            .execute(conn)?
    } else {
        diesel::update(notices::table.find(id).filter(notices::sub.eq(sub)))
            .set(notices::archived_at.eq(None::<NaiveDateTime>))
            .execute(conn)?
    };
    Ok(n == 1)
}

fn owned(conn: &mut AnyConnection, sub: &str, id: &str) -> Result<bool, DbError> {
    Ok(notices::table
        .find(id)
        .filter(notices::sub.eq(sub))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

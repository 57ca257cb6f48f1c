//! The durable message outbox: one row per message and channel. Rows are claimed with a lease
//! (status `sending`, lease end in `next_attempt_at`), so several nodes never send one row twice
//! and a crash mid-send only delays it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::message_outbox;
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = message_outbox)]
pub struct OutboxMessage {
    pub id: String,
    /// The client (or service) that asked for it.
    pub sender: String,
    pub idempotency_key: String,
    pub recipient_sub: String,
    /// `email`, `sms` or `notice`.
    pub channel: String,
    /// Email address, phone number, or the subject for notices.
    pub address: String,
    pub language: String,
    pub service: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// Inserts the rows of one message (all channels) unless the sender used the key before; returns
/// the stored rows and whether they are new. Run inside a write transaction.
pub fn enqueue(
    conn: &mut AnyConnection,
    rows: &[OutboxMessage],
) -> Result<(Vec<OutboxMessage>, bool), DbError> {
    let Some(first) = rows.first() else {
        return Ok((vec![], false));
    };
    let existing: Vec<OutboxMessage> = message_outbox::table
        .filter(message_outbox::sender.eq(&first.sender))
        .filter(message_outbox::idempotency_key.eq(&first.idempotency_key))
        .select(OutboxMessage::as_select())
        .order(message_outbox::channel.asc())
        .load(conn)?;
    if !existing.is_empty() {
        return Ok((existing, false));
    }
    for r in rows {
        diesel::insert_into(message_outbox::table)
            .values(r)
            .execute(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    DbError::Conflict("message")
                }
                other => DbError::Query(other),
            })?;
    }
    Ok((rows.to_vec(), true))
}

/// Due rows: queued and due, or sending with an expired lease (a crash mid-send).
pub fn due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OutboxMessage>, DbError> {
    Ok(message_outbox::table
        .filter(
            message_outbox::status
                .eq("queued")
                .or(message_outbox::status.eq("sending")),
        )
        .filter(message_outbox::next_attempt_at.le(now))
        .order(message_outbox::next_attempt_at.asc())
        .limit(limit)
        .select(OutboxMessage::as_select())
        .load(conn)?)
}

/// Claims a due row for sending until `lease_until`; false when another worker got it first.
pub fn claim(
    conn: &mut AnyConnection,
    m: &OutboxMessage,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        message_outbox::table
            .find(&m.id)
            .filter(message_outbox::status.eq(&m.status))
            .filter(message_outbox::next_attempt_at.eq(m.next_attempt_at))
            .filter(message_outbox::next_attempt_at.le(now)),
    )
    .set((
        message_outbox::status.eq("sending"),
        message_outbox::next_attempt_at.eq(lease_until),
        message_outbox::attempts.eq(m.attempts + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn mark_sent(conn: &mut AnyConnection, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(message_outbox::table.find(id))
        .set((
            message_outbox::status.eq("sent"),
            message_outbox::sent_at.eq(Some(now)),
            message_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt: queued again at `retry_at`, or `failed` for good when `None`.
pub fn mark_attempt_failed(
    conn: &mut AnyConnection,
    id: &str,
    error: &str,
    retry_at: Option<NaiveDateTime>,
) -> Result<(), DbError> {
    let error: String = error.chars().take(500).collect();
    match retry_at {
        Some(at) => diesel::update(message_outbox::table.find(id))
            .set((
                message_outbox::status.eq("queued"),
                message_outbox::next_attempt_at.eq(at),
                message_outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)?,
        None => diesel::update(message_outbox::table.find(id))
            .set((
                message_outbox::status.eq("failed"),
                message_outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)?,
    };
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<OutboxMessage>, DbError> {
    Ok(message_outbox::table
        .find(id)
        .select(OutboxMessage::as_select())
        .first(conn)
        .optional()?)
}

/// Every message to a resident, newest first (for their data export).
pub fn for_recipient(conn: &mut AnyConnection, sub: &str) -> Result<Vec<OutboxMessage>, DbError> {
    Ok(message_outbox::table
        .filter(message_outbox::recipient_sub.eq(sub))
        .order(message_outbox::created_at.desc())
        .select(OutboxMessage::as_select())
        .load(conn)?)
}

/// Deletes every message to a resident (their erasure); returns how many.
pub fn delete_for_recipient(conn: &mut AnyConnection, sub: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(message_outbox::table.filter(message_outbox::recipient_sub.eq(sub)))
            .execute(conn)?,
    )
}

//! The booking services' outbox: notices and messages still to deliver, each retried until it is
//! taken or given up.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::res_outbox;
use crate::DbError;

/// Something still to tell a resident: `channel` `notice` (to the notice board) or `message` (to
/// the IdP's message API), `body` the JSON to send.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = res_outbox)]
pub struct Outgoing {
    pub id: String,
    /// The booking service that queued it (and delivers it with its own client).
    pub service: String,
    pub channel: String,
    pub body: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn outbox_add(conn: &mut AnyConnection, rows: &[Outgoing]) -> Result<(), DbError> {
    write_tx(conn, |c| {
        for r in rows {
            diesel::insert_into(res_outbox::table)
                .values(r)
                .execute(c)?;
        }
        Ok(())
    })
}

/// Rows of `service` due now, oldest first.
pub fn outbox_due(
    conn: &mut AnyConnection,
    service: &str,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Outgoing>, DbError> {
    Ok(res_outbox::table
        .filter(res_outbox::service.eq(service))
        .filter(res_outbox::next_attempt_at.le(now))
        .select(Outgoing::as_select())
        .order(res_outbox::next_attempt_at.asc())
        .limit(limit)
        .load(conn)?)
}

/// Delivered (or given up on): gone.
pub fn outbox_done(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(res_outbox::table.find(id)).execute(conn)?;
    Ok(())
}

/// Not delivered: try again at `next`.
pub fn outbox_retry(
    conn: &mut AnyConnection,
    id: &str,
    attempts: i32,
    next: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(res_outbox::table.find(id))
        .set((
            res_outbox::attempts.eq(attempts),
            res_outbox::next_attempt_at.eq(next),
        ))
        .execute(conn)?;
    Ok(())
}

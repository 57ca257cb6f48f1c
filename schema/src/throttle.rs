//! Failed-login counters per key (an account name or a source address), shared by every node
//! through the database.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::login_throttle;
use crate::DbError;

/// How many failures a key may have inside `window` before it is blocked, and for how long.
/// Each further failure while blocked doubles the block, up to `max_block`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: i32,
    pub window: Duration,
    pub block: Duration,
    pub max_block: Duration,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
struct Row {
    throttle_key: String,
    failures: i32,
    window_start: NaiveDateTime,
    blocked_until: Option<NaiveDateTime>,
}

/// The counters of `keys` (one query).
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Until when the longest block in force lasts.
    pub blocked_until: Option<NaiveDateTime>,
    /// The keys that have a counter at all (so a success knows whether there is one to clear).
    pub counted: Vec<String>,
}

pub fn status(
    conn: &mut AnyConnection,
    keys: &[&str],
    now: NaiveDateTime,
) -> Result<Status, DbError> {
    let rows: Vec<(String, Option<NaiveDateTime>)> = login_throttle::table
        .filter(login_throttle::throttle_key.eq_any(keys))
        .select((login_throttle::throttle_key, login_throttle::blocked_until))
        .load(conn)?;
    Ok(Status {
        blocked_until: rows
            .iter()
            .filter_map(|(_, b)| *b)
            .filter(|b| *b > now)
            .max(),
        counted: rows.into_iter().map(|(k, _)| k).collect(),
    })
}

/// Counts one failure for `key`; returns the block that is now in force, if any.
pub fn record_failure(
    conn: &mut AnyConnection,
    key: &str,
    now: NaiveDateTime,
    policy: &Policy,
) -> Result<Option<NaiveDateTime>, DbError> {
    write_tx(conn, |conn| {
        // Lock the row on PostgreSQL so concurrent failures are all counted; SQLite's
        // BEGIN IMMEDIATE already serialises writers.
        let existing: Option<Row> = match conn {
            AnyConnection::Postgresql(pg) => login_throttle::table
                .find(key)
                .select(Row::as_select())
                .for_update()
                .first(pg)
                .optional()?,
            AnyConnection::Sqlite(_) => login_throttle::table
                .find(key)
                .select(Row::as_select())
                .first(conn)
                .optional()?,
        };
        let mut row = match existing {
            Some(r)
                if r.window_start + policy.window > now
                    || r.blocked_until.is_some_and(|b| b > now) =>
            {
                r
            }
            Some(r) => Row {
                failures: 0,
                window_start: now,
                blocked_until: None,
                ..r
            },
            None => {
                let fresh = Row {
                    throttle_key: key.to_owned(),
                    failures: 0,
                    window_start: now,
                    blocked_until: None,
                };
                insert_ignoring_conflict(conn, &fresh)?;
                fresh
            }
        };
        row.failures = row.failures.saturating_add(1);
        if row.failures >= policy.max_failures {
            let over = (row.failures - policy.max_failures).clamp(0, 16) as u32;
            let block = policy
                .block
                .checked_mul(1 << over)
                .map_or(policy.max_block, |b| b.min(policy.max_block));
            row.blocked_until = Some(now + block);
        }
        diesel::update(login_throttle::table.find(key))
            .set((
                login_throttle::failures.eq(row.failures),
                login_throttle::window_start.eq(row.window_start),
                login_throttle::blocked_until.eq(row.blocked_until),
            ))
            .execute(conn)?;
        Ok(row.blocked_until)
    })
}

/// Forgets the failures of `key` (after a successful login of that account).
pub fn clear(conn: &mut AnyConnection, key: &str) -> Result<(), DbError> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)?;
    Ok(())
}

// The one upsert here: `ON CONFLICT DO NOTHING` exists on both engines but diesel only offers it
// per backend, so run it on the inner connection.
fn insert_ignoring_conflict(conn: &mut AnyConnection, row: &Row) -> Result<(), DbError> {
    let stmt = diesel::insert_into(login_throttle::table).values(row.clone());
    match conn {
        AnyConnection::Postgresql(pg) => stmt.on_conflict_do_nothing().execute(pg)?,
        AnyConnection::Sqlite(lite) => stmt.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(())
}

/// Housekeeping: drops counters whose window has passed and that block nothing.
pub fn delete_stale(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    window: Duration,
) -> Result<usize, DbError> {
    Ok(diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_start.lt(now - window))
            .filter(
                login_throttle::blocked_until
                    .is_null()
                    .or(login_throttle::blocked_until.lt(now)),
            ),
    )
    .execute(conn)?)
}

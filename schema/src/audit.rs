//! The append-only audit log. Each row stores the hash of the previous row, so any change, removal
//! or insertion shows up in [`verify`]. The chain head lives in `audit_head`; appending updates
//! that row first, which takes its row lock (PostgreSQL) or the write lock (SQLite) so concurrent
//! writers and several nodes never fork the chain.

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{audit_anchor, audit_events, audit_head};
use crate::DbError;

/// The hash that stands before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An event to record. `details` is a JSON object; it must never hold secrets.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// Timestamps are hashed as stored; both engines keep microseconds.
fn truncate_micros(t: NaiveDateTime) -> NaiveDateTime {
    let nanos = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(nanos).unwrap_or(t)
}

/// The hash of a row: SHA-256 over a JSON array of every field but the hash itself, so field
/// boundaries are unambiguous.
pub fn row_hash(e: &AuditEvent) -> String {
    let canonical = serde_json::json!([
        e.seq,
        e.id,
        e.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.event_type,
        e.outcome,
        e.actor,
        e.subject,
        e.ip,
        e.details,
        e.prev_hash,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends `event` inside the caller's write transaction (so it commits or rolls back with the
/// change it records).
pub fn append_in_tx(
    conn: &mut AnyConnection,
    event: NewEvent,
    now: NaiveDateTime,
) -> Result<AuditEvent, DbError> {
    // Taking the next number locks the head row; RETURNING saves a round trip (diesel offers it
    // per backend only, so run it on the inner connection).
    let bump = diesel::update(audit_head::table.find(1))
        .set(audit_head::seq.eq(audit_head::seq + 1))
        .returning((audit_head::seq, audit_head::hash));
    let (seq, prev_hash): (i64, String) = match conn {
        AnyConnection::Postgresql(pg) => bump.get_result(pg)?,
        AnyConnection::Sqlite(lite) => bump.get_result(lite)?,
    };
    let mut row = AuditEvent {
        seq,
        id: uuid::Uuid::now_v7().to_string(),
        occurred_at: truncate_micros(now),
        event_type: event.event_type,
        outcome: event.outcome,
        actor: event.actor,
        subject: event.subject,
        ip: event.ip,
        details: event.details.to_string(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = row_hash(&row);
    diesel::insert_into(audit_events::table)
        .values(&row)
        .execute(conn)?;
    diesel::update(audit_head::table.find(1))
        .set(audit_head::hash.eq(&row.hash))
        .execute(conn)?;
    Ok(row)
}

/// Appends `event` in a transaction of its own.
pub fn append(
    conn: &mut AnyConnection,
    event: NewEvent,
    now: NaiveDateTime,
) -> Result<AuditEvent, DbError> {
    write_tx(conn, |conn| append_in_tx(conn, event, now))
}

/// The newest events first, optionally of one type (for the account page and the CLI).
pub fn recent(
    conn: &mut AnyConnection,
    event_type: Option<&str>,
    subject: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    let mut q = audit_events::table
        .select(AuditEvent::as_select())
        .order(audit_events::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(t) = event_type {
        q = q.filter(audit_events::event_type.eq(t.to_owned()));
    }
    if let Some(s) = subject {
        q = q.filter(audit_events::subject.eq(s.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// Up to `limit` events with `seq > after`, oldest first (for export in batches).
pub fn after(conn: &mut AnyConnection, after: i64, limit: i64) -> Result<Vec<AuditEvent>, DbError> {
    Ok(audit_events::table
        .filter(audit_events::seq.gt(after))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked.
    pub checked: i64,
    /// The first row that is broken or missing, with the reason; `None` when the chain is intact.
    pub first_broken: Option<(i64, String)>,
}

/// Walks the chain from the first row and reports the first row whose hash, predecessor link or
/// sequence number is wrong, and a head that does not match the last row.
pub fn verify(conn: &mut AnyConnection) -> Result<VerifyReport, DbError> {
    const BATCH: i64 = 1000;
    let (anchor_seq, anchor_hash) = anchor(conn)?;
    let mut expected_seq = anchor_seq + 1;
    let mut prev = anchor_hash.clone();
    let mut checked = 0i64;
    loop {
        let rows: Vec<AuditEvent> = audit_events::table
            .filter(audit_events::seq.ge(expected_seq))
            .order(audit_events::seq.asc())
            .limit(BATCH)
            .select(AuditEvent::as_select())
            .load(conn)?;
        let n = rows.len() as i64;
        for row in rows {
            if row.seq != expected_seq {
                return Ok(broken(checked, expected_seq, "row missing"));
            }
            if row.prev_hash != prev {
                return Ok(broken(checked, row.seq, "link to previous row broken"));
            }
            if row_hash(&row) != row.hash {
                return Ok(broken(checked, row.seq, "row content changed"));
            }
            prev = row.hash;
            expected_seq += 1;
            checked += 1;
        }
        if n < BATCH {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    if head_seq != expected_seq - 1 {
        return Ok(broken(
            checked,
            expected_seq,
            "rows missing at the end of the log",
        ));
    }
    if head_hash != prev {
        return Ok(broken(
            checked,
            head_seq,
            "chain head does not match the last row",
        ));
    }
    // A moved anchor (rows deleted by hand) is not recorded by a pruning event in the chain.
    if anchor_seq > 0 {
        let recorded = audit_events::table
            .filter(audit_events::event_type.eq(PRUNED))
            .select(audit_events::details)
            .load::<String>(conn)?
            .iter()
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .any(|d| d["anchor_seq"] == anchor_seq && d["anchor_hash"] == anchor_hash.as_str());
        if !recorded {
            return Ok(broken(
                checked,
                anchor_seq + 1,
                "rows before it were deleted without a recorded pruning",
            ));
        }
    }
    Ok(VerifyReport {
        checked,
        first_broken: None,
    })
}

fn broken(checked: i64, seq: i64, why: &str) -> VerifyReport {
    VerifyReport {
        checked,
        first_broken: Some((seq, why.to_owned())),
    }
}

/// One event reduced to what statistics need.
#[derive(Debug, Clone, Queryable)]
pub struct Tally {
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
}

/// Events of the given types since `from` (oldest first), only the columns statistics use.
pub fn since(
    conn: &mut AnyConnection,
    types: &[&str],
    from: NaiveDateTime,
) -> Result<Vec<Tally>, DbError> {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    Ok(audit_events::table
        .filter(audit_events::event_type.eq_any(types))
        .filter(audit_events::occurred_at.ge(from))
        .order(audit_events::seq.asc())
        .select((
            audit_events::occurred_at,
            audit_events::event_type,
            audit_events::outcome,
            audit_events::actor,
            audit_events::subject,
        ))
        .load(conn)?)
}

/// What the administrators' log browser asks for.
#[derive(Debug, Clone, Default)]
pub struct Browse {
    /// Event types starting with this (`login.` or `login.failure`).
    pub event_type: Option<String>,
    pub subject: Option<String>,
    pub actor: Option<String>,
    /// Only events older than this sequence number (the next page).
    pub before_seq: Option<i64>,
}

/// Up to `limit` events matching `b`, newest first.
pub fn browse(
    conn: &mut AnyConnection,
    b: &Browse,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    let mut q = audit_events::table
        .select(AuditEvent::as_select())
        .order(audit_events::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(t) = &b.event_type {
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q = q.filter(
            audit_events::event_type
                .like(format!("{escaped}%"))
                .escape('\\'),
        );
    }
    if let Some(s) = &b.subject {
        q = q.filter(audit_events::subject.eq(s.clone()));
    }
    if let Some(a) = &b.actor {
        q = q.filter(audit_events::actor.eq(a.clone()));
    }
    if let Some(seq) = b.before_seq {
        q = q.filter(audit_events::seq.lt(seq));
    }
    Ok(q.load(conn)?)
}

/// The event type that records a pruning (and the anchor it left).
pub const PRUNED: &str = "audit.pruned";

/// Where the chain starts: the sequence number and hash of the last pruned row (0 and the
/// genesis hash before any pruning).
pub fn anchor(conn: &mut AnyConnection) -> Result<(i64, String), DbError> {
    Ok(audit_anchor::table
        .find(1)
        .select((audit_anchor::seq, audit_anchor::hash))
        .first(conn)?)
}

/// The last sequence number of events that occurred before `before` (0 when none).
pub fn last_seq_before(conn: &mut AnyConnection, before: NaiveDateTime) -> Result<i64, DbError> {
    Ok(audit_events::table
        .filter(audit_events::occurred_at.lt(before))
        .select(diesel::dsl::max(audit_events::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Deletes the rows up to `through` (already exported by the caller), moves the anchor to the
/// last of them and records the pruning in the chain, in one transaction. Returns how many rows
/// went.
pub fn prune_through(
    conn: &mut AnyConnection,
    through: i64,
    actor: &str,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    write_tx(conn, |conn| -> Result<usize, DbError> {
        let (anchor_seq, _) = anchor(conn)?;
        if through <= anchor_seq {
            return Ok(0);
        }
        let last: AuditEvent = audit_events::table
            .find(through)
            .select(AuditEvent::as_select())
            .first(conn)?;
        let n = diesel::delete(audit_events::table.filter(audit_events::seq.le(through)))
            .execute(conn)?;
        diesel::update(audit_anchor::table.find(1))
            .set((
                audit_anchor::seq.eq(last.seq),
                audit_anchor::hash.eq(&last.hash),
            ))
            .execute(conn)?;
        append_in_tx(
            conn,
            NewEvent {
                event_type: PRUNED.to_owned(),
                outcome: "success".to_owned(),
                actor: Some(actor.to_owned()),
                subject: None,
                ip: None,
                details: serde_json::json!({
                    "rows": n,
                    "anchor_seq": last.seq,
                    "anchor_hash": last.hash,
                    "pruned_through": crate::iso_utc(last.occurred_at),
                }),
            },
            now,
        )?;
        Ok(n)
    })
}

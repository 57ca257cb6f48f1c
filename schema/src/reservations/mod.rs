//! Storage of the booking engine shared by facility reservation and appointment booking: units,
//! resources with opening hours, exceptions and appointment types, recurring series, reservations
//! and residents' calendar feeds.
//!
//! No double booking: an active reservation's blocked time (its time plus buffers) may not
//! overlap another's on the same resource. The database enforces it — an exclusion constraint on
//! PostgreSQL, triggers inside SQLite's serialised write transaction — and [`book`] turns the
//! refusal into [`DbError::Conflict`]`("slot")`.
//!
//! - here: reservations, series and reports.
//! - `resources`: units, resources, opening hours, exceptions, appointment types.
//! - `feeds`: residents' calendar feeds. `outbox`: notices and messages still to deliver.

mod feeds;
mod outbox;
mod resources;

pub use feeds::{feed_of, feed_sub};
pub use outbox::{outbox_add, outbox_done, outbox_due, outbox_retry, Outgoing};
pub use resources::{
    appt_type, appt_types_of, exceptions_between, hours_of, import, insert_appt_type, insert_hours,
    insert_resource, insert_unit, resource, search, set_exception, unit, units, ApptType,
    Exception, Hours, Resource, ResourceSetup, Search, Unit,
};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{res_reservations, res_resources, res_series};
use crate::DbError;

/// States that hold the slot.
pub const ACTIVE: [&str; 4] = [
    "created",
    "requires_handling",
    "waiting_for_payment",
    "confirmed",
];

/// A club's weekly shift; its occurrences are reservations with `series_id`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = res_series)]
pub struct Series {
    pub id: String,
    pub resource_id: String,
    pub holder: String,
    pub weekday: i32,
    pub start_min: i32,
    pub minutes: i32,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize)]
#[diesel(table_name = res_reservations, treat_none_as_null = true)]
pub struct Reservation {
    pub id: String,
    pub resource_id: String,
    /// The resident; none for staff blocks and series.
    pub sub: Option<String>,
    /// `resident`, `staff`, `block` or `series`.
    pub kind: String,
    pub series_id: Option<String>,
    pub appt_type_id: Option<String>,
    pub state: String,
    pub begins_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub blocked_from: NaiveDateTime,
    pub blocked_until: NaiveDateTime,
    pub purpose: String,
    pub price_cents: i64,
    pub vat_basis_points: i32,
    /// The resident's language for messages (fi, sv, en).
    pub language: String,
    /// The handler's message or the reason of a cancellation.
    pub message: Option<String>,
    /// When an unpaid reservation lets its slot go.
    pub expires_at: Option<NaiveDateTime>,
    pub reminded_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Reservation {
    pub fn is_active(&self) -> bool {
        ACTIVE.contains(&self.state.as_str())
    }
}

fn slot_taken(e: DieselError) -> DbError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ExclusionViolation, _) => {
            DbError::Conflict("slot")
        }
        DieselError::DatabaseError(_, ref info) if info.message().contains("no_overlap") => {
            DbError::Conflict("slot")
        }
        other => DbError::Query(other),
    }
}

/// The longest time one reservation may block (a CHECK constraint of the table): overlap
/// look-ups search only this far back, so they read the few rows near the asked time even on a
/// resource with years of reservations.
pub const MAX_BLOCK_DAYS: i64 = 3;

/// Active reservations whose blocked time meets `[from, to)`, by start.
pub fn busy_between(
    conn: &mut AnyConnection,
    resource_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<Reservation>, DbError> {
    Ok(res_reservations::table
        .filter(res_reservations::resource_id.eq(resource_id))
        .filter(res_reservations::blocked_from.gt(from - chrono::Duration::days(MAX_BLOCK_DAYS)))
        .filter(res_reservations::blocked_from.lt(to))
        .filter(res_reservations::blocked_until.gt(from))
        .filter(res_reservations::state.eq_any(ACTIVE))
        .select(Reservation::as_select())
        .order(res_reservations::begins_at.asc())
        .load(conn)?)
}

/// The blocked times `[from, until)` of the active reservations meeting `[from, to)`, by start
/// (what availability needs, without the rest of the rows).
pub fn busy_spans(
    conn: &mut AnyConnection,
    resource_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(NaiveDateTime, NaiveDateTime)>, DbError> {
    Ok(res_reservations::table
        .filter(res_reservations::resource_id.eq(resource_id))
        .filter(res_reservations::blocked_from.gt(from - chrono::Duration::days(MAX_BLOCK_DAYS)))
        .filter(res_reservations::blocked_from.lt(to))
        .filter(res_reservations::blocked_until.gt(from))
        .filter(res_reservations::state.eq_any(ACTIVE))
        .select((
            res_reservations::blocked_from,
            res_reservations::blocked_until,
        ))
        .order(res_reservations::blocked_from.asc())
        .load(conn)?)
}

/// Active upcoming reservations of a resident on a resource.
fn active_upcoming(
    conn: &mut AnyConnection,
    resource_id: &str,
    sub: &str,
    now: NaiveDateTime,
) -> Result<i64, DbError> {
    Ok(res_reservations::table
        .filter(res_reservations::resource_id.eq(resource_id))
        .filter(res_reservations::sub.eq(sub))
        .filter(res_reservations::state.eq_any(ACTIVE))
        .filter(res_reservations::ends_at.gt(now))
        .count()
        .get_result(conn)?)
}

/// Stores a new reservation in one write transaction. With `limit`, the resident's active upcoming
/// reservations on the resource are counted first (serialised per resident on PostgreSQL by an
/// advisory lock) and `DbError::Conflict("limit")` answers when the limit is reached. An overlap
/// with another active reservation is `DbError::Conflict("slot")`, decided by the database.
pub fn book(
    conn: &mut AnyConnection,
    r: &Reservation,
    limit: Option<i32>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    write_tx(conn, |c| {
        if let (Some(max), Some(sub)) = (limit, &r.sub) {
            if let AnyConnection::Postgresql(pg) = c {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(format!("res:{}:{sub}", r.resource_id))
                    .execute(pg)?;
            }
            if active_upcoming(c, &r.resource_id, sub, now)? >= i64::from(max) {
                return Err(DbError::Conflict("limit"));
            }
        }
        diesel::insert_into(res_reservations::table)
            .values(r)
            .execute(c)
            .map_err(slot_taken)?;
        Ok(())
    })
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<Reservation>, DbError> {
    Ok(res_reservations::table
        .find(id)
        .select(Reservation::as_select())
        .first(conn)
        .optional()?)
}

/// Moves a reservation from one of `from` states to `to` (with a message and expiry); returns the
/// updated row, or `None` when it was not in one of `from` (someone else moved it first).
pub fn transition(
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
    message: Option<&str>,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Option<Reservation>, DbError> {
    write_tx(conn, |c| {
        let n = diesel::update(
            res_reservations::table
                .filter(res_reservations::id.eq(id))
                .filter(res_reservations::state.eq_any(from)),
        )
        .set((
            res_reservations::state.eq(to),
            res_reservations::message.eq(message),
            res_reservations::expires_at.eq(expires_at),
            res_reservations::updated_at.eq(now),
        ))
        .execute(c)
        .map_err(slot_taken)?;
        if n == 0 {
            return Ok(None);
        }
        find(c, id)
    })
}

/// Confirms a reservation whose payment arrived, inside the caller's transaction: only while it
/// still waits for payment and its payment time has not run out. True when confirmed.
pub fn confirm_paid_in(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        res_reservations::table
            .filter(res_reservations::id.eq(id))
            .filter(res_reservations::state.eq("waiting_for_payment"))
            .filter(
                res_reservations::expires_at
                    .is_null()
                    .or(res_reservations::expires_at.ge(now)),
            ),
    )
    .set((
        res_reservations::state.eq("confirmed"),
        res_reservations::expires_at.eq(None::<NaiveDateTime>),
        res_reservations::updated_at.eq(now),
    ))
    .execute(conn)
    .map_err(slot_taken)?;
    Ok(n == 1)
}

/// Moves an active reservation to another time (rescheduling); the database refuses overlaps.
pub fn reschedule(
    conn: &mut AnyConnection,
    id: &str,
    times: [NaiveDateTime; 4],
    now: NaiveDateTime,
) -> Result<Option<Reservation>, DbError> {
    let [begins, ends, blocked_from, blocked_until] = times;
    write_tx(conn, |c| {
        let n = diesel::update(
            res_reservations::table
                .filter(res_reservations::id.eq(id))
                .filter(res_reservations::state.eq_any(ACTIVE)),
        )
        .set((
            res_reservations::begins_at.eq(begins),
            res_reservations::ends_at.eq(ends),
            res_reservations::blocked_from.eq(blocked_from),
            res_reservations::blocked_until.eq(blocked_until),
            res_reservations::reminded_at.eq(None::<NaiveDateTime>),
            res_reservations::updated_at.eq(now),
        ))
        .execute(c)
        .map_err(slot_taken)?;
        if n == 0 {
            return Ok(None);
        }
        find(c, id)
    })
}

/// A resident's reservations of one kind of resource, newest start first.
pub fn of_resident(
    conn: &mut AnyConnection,
    sub: &str,
    kind: &str,
) -> Result<Vec<(Reservation, Resource)>, DbError> {
    Ok(res_reservations::table
        .inner_join(res_resources::table)
        .filter(res_reservations::sub.eq(sub))
        .filter(res_resources::kind.eq(kind))
        .select((Reservation::as_select(), Resource::as_select()))
        .order(res_reservations::begins_at.desc())
        .limit(500)
        .load(conn)?)
}

/// Reservations waiting for a handler, oldest first.
pub fn requiring_handling(
    conn: &mut AnyConnection,
) -> Result<Vec<(Reservation, Resource)>, DbError> {
    Ok(res_reservations::table
        .inner_join(res_resources::table)
        .filter(res_reservations::state.eq("requires_handling"))
        .select((Reservation::as_select(), Resource::as_select()))
        .order(res_reservations::created_at.asc())
        .limit(500)
        .load(conn)?)
}

/// Every reservation (any state) of the resources of a unit, starting in `[from, to)`.
pub fn of_unit_between(
    conn: &mut AnyConnection,
    unit_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(Reservation, Resource)>, DbError> {
    Ok(res_reservations::table
        .inner_join(res_resources::table)
        .filter(res_resources::unit_id.eq(unit_id))
        .filter(res_reservations::begins_at.ge(from))
        .filter(res_reservations::begins_at.lt(to))
        .select((Reservation::as_select(), Resource::as_select()))
        .order(res_reservations::begins_at.asc())
        .limit(5000)
        .load(conn)?)
}

/// Unpaid reservations whose payment time ran out.
pub fn expired_unpaid(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
) -> Result<Vec<Reservation>, DbError> {
    Ok(res_reservations::table
        .filter(res_reservations::state.eq("waiting_for_payment"))
        .filter(res_reservations::expires_at.lt(now))
        .select(Reservation::as_select())
        .limit(500)
        .load(conn)?)
}

/// Confirmed reservations of residents on `kind` resources starting in `[from, to)` that have not
/// been reminded of.
pub fn due_reminders(
    conn: &mut AnyConnection,
    kind: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(Reservation, Resource)>, DbError> {
    Ok(res_reservations::table
        .inner_join(res_resources::table)
        .filter(res_resources::kind.eq(kind))
        .filter(res_reservations::state.eq("confirmed"))
        .filter(res_reservations::sub.is_not_null())
        .filter(res_reservations::reminded_at.is_null())
        .filter(res_reservations::begins_at.ge(from))
        .filter(res_reservations::begins_at.lt(to))
        .select((Reservation::as_select(), Resource::as_select()))
        .limit(500)
        .load(conn)?)
}

/// Marks a reminder sent; false when another node did it first.
pub fn mark_reminded(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = write_tx(conn, |c| {
        diesel::update(
            res_reservations::table
                .filter(res_reservations::id.eq(id))
                .filter(res_reservations::reminded_at.is_null()),
        )
        .set(res_reservations::reminded_at.eq(Some(now)))
        .execute(c)
    })?;
    Ok(n == 1)
}

/// Stores a series and its occurrences in one transaction; an occurrence whose time is taken is
/// skipped and its date returned (the club sees which weeks it did not get).
pub fn add_series(
    conn: &mut AnyConnection,
    s: &Series,
    occurrences: &[Reservation],
) -> Result<Vec<NaiveDateTime>, DbError> {
    write_tx(conn, |c| {
        diesel::insert_into(res_series::table)
            .values(s)
            .execute(c)?;
        let mut skipped = Vec::new();
        for o in occurrences {
            let taken = res_reservations::table
                .filter(res_reservations::resource_id.eq(&o.resource_id))
                .filter(
                    res_reservations::blocked_from
                        .gt(o.blocked_from - chrono::Duration::days(MAX_BLOCK_DAYS)),
                )
                .filter(res_reservations::blocked_from.lt(o.blocked_until))
                .filter(res_reservations::blocked_until.gt(o.blocked_from))
                .filter(res_reservations::state.eq_any(ACTIVE))
                .count()
                .get_result::<i64>(c)?;
            if taken > 0 {
                skipped.push(o.begins_at);
                continue;
            }
            diesel::insert_into(res_reservations::table)
                .values(o)
                .execute(c)
                .map_err(slot_taken)?;
        }
        Ok(skipped)
    })
}

pub fn series(conn: &mut AnyConnection, id: &str) -> Result<Option<Series>, DbError> {
    Ok(res_series::table
        .find(id)
        .select(Series::as_select())
        .first(conn)
        .optional()?)
}

/// Counts and sums (cents) of reservations by resource and state starting in `[from, to)`.
pub fn report(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(String, String, i64, i64)>, DbError> {
    let rows: Vec<(String, String, i64)> = res_reservations::table
        .filter(res_reservations::begins_at.ge(from))
        .filter(res_reservations::begins_at.lt(to))
        .select((
            res_reservations::resource_id,
            res_reservations::state,
            res_reservations::price_cents,
        ))
        .limit(200_000)
        .load(conn)?;
    let mut by: std::collections::BTreeMap<(String, String), (i64, i64)> = Default::default();
    for (r, s, cents) in rows {
        let e = by.entry((r, s)).or_default();
        e.0 += 1;
        e.1 += cents;
    }
    Ok(by
        .into_iter()
        .map(|((r, s), (n, c))| (r, s, n, c))
        .collect())
}

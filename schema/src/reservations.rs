//! Storage of the booking engine shared by facility reservation and appointment booking: units,
//! resources with opening hours, exceptions and appointment types, recurring series, reservations
//! and residents' calendar feeds.
//!
//! No double booking: an active reservation's blocked time (its time plus buffers) may not
//! overlap another's on the same resource. The database enforces it — an exclusion constraint on
//! PostgreSQL, triggers inside SQLite's serialised write transaction — and [`book`] turns the
//! refusal into [`DbError::Conflict`]`("slot")`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{
    res_appt_types, res_exceptions, res_feeds, res_hours, res_outbox, res_reservations,
    res_resources, res_series, res_units,
};
use crate::DbError;

/// States that hold the slot.
pub const ACTIVE: [&str; 4] = [
    "created",
    "requires_handling",
    "waiting_for_payment",
    "confirmed",
];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize)]
#[diesel(table_name = res_units, treat_none_as_null = true)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub municipality_code: String,
    pub street_address: String,
    pub postal_code: String,
    pub city: String,
    pub contact: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, serde::Serialize)]
#[diesel(table_name = res_resources, treat_none_as_null = true)]
pub struct Resource {
    pub id: String,
    pub unit_id: String,
    /// `facility` or `appointment`.
    pub kind: String,
    pub name_fi: String,
    pub name_sv: String,
    pub name_en: String,
    pub description: String,
    pub resource_type: String,
    /// Space-separated purposes (`sports meeting party`).
    pub purposes: String,
    pub capacity: i32,
    pub equipment: String,
    pub image_url: Option<String>,
    pub terms: String,
    /// `weak` (any login) or `strong` (strong identification).
    pub auth_level: String,
    pub lipas_id: Option<i64>,
    pub slot_minutes: i32,
    pub min_minutes: i32,
    pub max_minutes: i32,
    pub buffer_before: i32,
    pub buffer_after: i32,
    /// How soon before its start a reservation may still be made.
    pub advance_min_minutes: i32,
    /// How far ahead reservations may be made.
    pub advance_max_days: i32,
    /// Active upcoming reservations one resident may hold on this resource.
    pub max_per_resident: i32,
    /// Residents may cancel until this many hours before the start.
    pub cancel_hours: i32,
    pub manual_approval: bool,
    /// `free`, `hourly` or `fixed`.
    pub price_kind: String,
    pub price_cents: i64,
    pub reduced_price_cents: Option<i64>,
    /// VAT in basis points (2550 = 25.5 %).
    pub vat_basis_points: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

impl Resource {
    pub fn name(&self, lang: &str) -> &str {
        match lang {
            "sv" if !self.name_sv.is_empty() => &self.name_sv,
            "en" if !self.name_en.is_empty() => &self.name_en,
            _ => &self.name_fi,
        }
    }
}

/// A weekly opening period: on `weekday` (1 = Monday … 7 = Sunday) between `valid_from` and
/// `valid_until` (inclusive), open from `opens_min` to `closes_min` local minutes after midnight.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = res_hours)]
pub struct Hours {
    pub id: String,
    pub resource_id: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub weekday: i32,
    pub opens_min: i32,
    pub closes_min: i32,
}

/// A day with other hours than the weekly ones; no hours = closed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = res_exceptions)]
pub struct Exception {
    pub resource_id: String,
    pub day: NaiveDate,
    pub opens_min: Option<i32>,
    pub closes_min: Option<i32>,
    pub reason: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = res_appt_types)]
pub struct ApptType {
    pub id: String,
    pub resource_id: String,
    pub name_fi: String,
    pub name_sv: String,
    pub name_en: String,
    pub minutes: i32,
}

impl ApptType {
    pub fn name(&self, lang: &str) -> &str {
        match lang {
            "sv" if !self.name_sv.is_empty() => &self.name_sv,
            "en" if !self.name_en.is_empty() => &self.name_en,
            _ => &self.name_fi,
        }
    }
}

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

pub fn insert_unit(conn: &mut AnyConnection, u: &Unit) -> Result<(), DbError> {
    diesel::insert_into(res_units::table)
        .values(u)
        .execute(conn)?;
    Ok(())
}

pub fn insert_resource(conn: &mut AnyConnection, r: &Resource) -> Result<(), DbError> {
    diesel::insert_into(res_resources::table)
        .values(r)
        .execute(conn)?;
    Ok(())
}

pub fn insert_hours(conn: &mut AnyConnection, h: &Hours) -> Result<(), DbError> {
    diesel::insert_into(res_hours::table)
        .values(h)
        .execute(conn)?;
    Ok(())
}

/// Sets (replaces) the exception of one day.
pub fn set_exception(conn: &mut AnyConnection, e: &Exception) -> Result<(), DbError> {
    write_tx(conn, |c| {
        diesel::delete(res_exceptions::table.find((&e.resource_id, e.day))).execute(c)?;
        diesel::insert_into(res_exceptions::table)
            .values(e)
            .execute(c)?;
        Ok(())
    })
}

pub fn insert_appt_type(conn: &mut AnyConnection, t: &ApptType) -> Result<(), DbError> {
    diesel::insert_into(res_appt_types::table)
        .values(t)
        .execute(conn)?;
    Ok(())
}

/// Everything about a resource an operator configures, replaced as a whole by [`import`].
#[derive(Debug, Clone)]
pub struct ResourceSetup {
    pub resource: Resource,
    pub hours: Vec<Hours>,
    pub exceptions: Vec<Exception>,
    pub types: Vec<ApptType>,
}

/// Stores units and resources (new ones added, existing ones updated — their `created_at`
/// kept), each resource's weekly hours and appointment types replaced and its exceptions set, all
/// in one transaction; returns (units, resources) written.
pub fn import(
    conn: &mut AnyConnection,
    units: &[Unit],
    resources: &[ResourceSetup],
) -> Result<(usize, usize), DbError> {
    write_tx(conn, |c| {
        for u in units {
            let exists = res_units::table.find(&u.id).count().get_result::<i64>(c)? > 0;
            if exists {
                let mut u = u.clone();
                u.created_at = res_units::table
                    .find(&u.id)
                    .select(res_units::created_at)
                    .first(c)?;
                diesel::update(res_units::table.find(&u.id))
                    .set(&u)
                    .execute(c)?;
            } else {
                diesel::insert_into(res_units::table).values(u).execute(c)?;
            }
        }
        for s in resources {
            let r = &s.resource;
            let exists = res_resources::table
                .find(&r.id)
                .count()
                .get_result::<i64>(c)?
                > 0;
            if exists {
                let mut r = r.clone();
                r.created_at = res_resources::table
                    .find(&r.id)
                    .select(res_resources::created_at)
                    .first(c)?;
                diesel::update(res_resources::table.find(&r.id))
                    .set(&r)
                    .execute(c)?;
            } else {
                diesel::insert_into(res_resources::table)
                    .values(r)
                    .execute(c)?;
            }
            diesel::delete(res_hours::table.filter(res_hours::resource_id.eq(&r.id))).execute(c)?;
            for h in &s.hours {
                diesel::insert_into(res_hours::table).values(h).execute(c)?;
            }
            diesel::delete(res_appt_types::table.filter(res_appt_types::resource_id.eq(&r.id)))
                .execute(c)?;
            for t in &s.types {
                diesel::insert_into(res_appt_types::table)
                    .values(t)
                    .execute(c)?;
            }
            for e in &s.exceptions {
                diesel::delete(res_exceptions::table.find((&e.resource_id, e.day))).execute(c)?;
                diesel::insert_into(res_exceptions::table)
                    .values(e)
                    .execute(c)?;
            }
        }
        Ok((units.len(), resources.len()))
    })
}

pub fn units(conn: &mut AnyConnection) -> Result<Vec<Unit>, DbError> {
    Ok(res_units::table
        .select(Unit::as_select())
        .order(res_units::name.asc())
        .load(conn)?)
}

pub fn unit(conn: &mut AnyConnection, id: &str) -> Result<Option<Unit>, DbError> {
    Ok(res_units::table
        .find(id)
        .select(Unit::as_select())
        .first(conn)
        .optional()?)
}

pub fn resource(conn: &mut AnyConnection, id: &str) -> Result<Option<Resource>, DbError> {
    Ok(res_resources::table
        .find(id)
        .select(Resource::as_select())
        .first(conn)
        .optional()?)
}

/// What a search may narrow by.
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub kind: Option<String>,
    pub municipality: Option<String>,
    pub resource_type: Option<String>,
    pub min_capacity: Option<i32>,
    pub free_only: bool,
    pub unit: Option<String>,
}

/// Active resources with their units, by name.
pub fn search(conn: &mut AnyConnection, s: &Search) -> Result<Vec<(Resource, Unit)>, DbError> {
    let mut q = res_resources::table
        .inner_join(res_units::table)
        .filter(res_resources::active.eq(true))
        .select((Resource::as_select(), Unit::as_select()))
        .order(res_resources::name_fi.asc())
        .into_boxed();
    if let Some(k) = &s.kind {
        q = q.filter(res_resources::kind.eq(k.clone()));
    }
    if let Some(m) = &s.municipality {
        q = q.filter(res_units::municipality_code.eq(m.clone()));
    }
    if let Some(t) = &s.resource_type {
        q = q.filter(res_resources::resource_type.eq(t.clone()));
    }
    if let Some(c) = s.min_capacity {
        q = q.filter(res_resources::capacity.ge(c));
    }
    if s.free_only {
        q = q.filter(res_resources::price_kind.eq("free"));
    }
    if let Some(u) = &s.unit {
        q = q.filter(res_resources::unit_id.eq(u.clone()));
    }
    Ok(q.limit(500).load(conn)?)
}

pub fn hours_of(conn: &mut AnyConnection, resource_id: &str) -> Result<Vec<Hours>, DbError> {
    Ok(res_hours::table
        .filter(res_hours::resource_id.eq(resource_id))
        .select(Hours::as_select())
        .order((res_hours::weekday.asc(), res_hours::opens_min.asc()))
        .load(conn)?)
}

pub fn exceptions_between(
    conn: &mut AnyConnection,
    resource_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Exception>, DbError> {
    Ok(res_exceptions::table
        .filter(res_exceptions::resource_id.eq(resource_id))
        .filter(res_exceptions::day.ge(from))
        .filter(res_exceptions::day.le(to))
        .select(Exception::as_select())
        .load(conn)?)
}

pub fn appt_types_of(
    conn: &mut AnyConnection,
    resource_id: &str,
) -> Result<Vec<ApptType>, DbError> {
    Ok(res_appt_types::table
        .filter(res_appt_types::resource_id.eq(resource_id))
        .select(ApptType::as_select())
        .order(res_appt_types::minutes.asc())
        .load(conn)?)
}

pub fn appt_type(conn: &mut AnyConnection, id: &str) -> Result<Option<ApptType>, DbError> {
    Ok(res_appt_types::table
        .find(id)
        .select(ApptType::as_select())
        .first(conn)
        .optional()?)
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

/// Makes `new_hash` the resident's calendar feed of one booking service (`kind`), replacing that
/// service's earlier feed (the other service's feed stays); true when one was replaced.
pub fn feed_of(
    conn: &mut AnyConnection,
    kind: &str,
    sub: &str,
    new_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    write_tx(conn, |c| {
        let mine = || {
            res_feeds::table
                .filter(res_feeds::kind.eq(kind))
                .filter(res_feeds::sub.eq(sub))
        };
        let replaced = diesel::delete(mine()).execute(c)? > 0;
        diesel::insert_into(res_feeds::table)
            .values((
                res_feeds::token_hash.eq(new_hash),
                res_feeds::kind.eq(kind),
                res_feeds::sub.eq(sub),
                res_feeds::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(replaced)
    })
}

/// Whose feed of the booking service `kind` a token hash opens.
pub fn feed_sub(
    conn: &mut AnyConnection,
    kind: &str,
    hash: &str,
) -> Result<Option<String>, DbError> {
    Ok(res_feeds::table
        .find(hash)
        .filter(res_feeds::kind.eq(kind))
        .select(res_feeds::sub)
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

//! Units and their resources, with opening hours (weekly periods and exceptions) and appointment
//! types: what an operator configures ([`import`]) and what searches read.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::pool::{write_tx, AnyConnection};
use crate::schema::{res_appt_types, res_exceptions, res_hours, res_resources, res_units};
use crate::DbError;

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

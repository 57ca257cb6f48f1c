//! `kuntalaistili bookings …`: operators describe units, facilities and appointment resources in
//! one JSON document (opening hours, exceptions, appointment types, rules, prices) and import it;
//! importing again updates what changed. `bookings list` shows what is bookable.

use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::Subcommand;
use kuntalaistili_schema::reservations::{
    self as store, ApptType, Exception, Hours, Resource, ResourceSetup, Unit,
};
use serde::Deserialize;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum BookingsCommand {
    /// Add or update units and their resources from a JSON file (see ops/config/bookings.example.json).
    Import { file: std::path::PathBuf },
    /// List the bookable resources.
    List,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    units: Vec<UnitIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitIn {
    id: String,
    name: String,
    municipality: String,
    street_address: String,
    postal_code: String,
    city: String,
    #[serde(default)]
    contact: String,
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(default)]
    resources: Vec<ResourceIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Names {
    fi: String,
    #[serde(default)]
    sv: String,
    #[serde(default)]
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Price {
    kind: String,
    #[serde(default)]
    cents: i64,
    reduced_cents: Option<i64>,
    #[serde(default)]
    vat_percent: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursIn {
    weekdays: Vec<i32>,
    opens: String,
    closes: String,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionIn {
    date: NaiveDate,
    opens: Option<String>,
    closes: Option<String>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeIn {
    id: String,
    name: Names,
    minutes: i32,
}

fn d_slot() -> i32 {
    60
}
fn d_min() -> i32 {
    60
}
fn d_max() -> i32 {
    180
}
fn d_ahead() -> i32 {
    90
}
fn d_per() -> i32 {
    3
}
fn d_cancel() -> i32 {
    24
}
fn d_true() -> bool {
    true
}
fn d_weak() -> String {
    "weak".into()
}
fn d_direct() -> String {
    "direct".into()
}
fn d_facility() -> String {
    "facility".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceIn {
    id: String,
    #[serde(default = "d_facility")]
    kind: String,
    name: Names,
    #[serde(default)]
    description: String,
    #[serde(rename = "type")]
    resource_type: String,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    capacity: i32,
    #[serde(default)]
    equipment: String,
    image_url: Option<String>,
    #[serde(default)]
    terms: String,
    #[serde(default = "d_weak")]
    authentication: String,
    lipas_id: Option<i64>,
    #[serde(default = "d_slot")]
    slot_minutes: i32,
    #[serde(default = "d_min")]
    min_minutes: i32,
    #[serde(default = "d_max")]
    max_minutes: i32,
    #[serde(default)]
    buffer_before_minutes: i32,
    #[serde(default)]
    buffer_after_minutes: i32,
    #[serde(default)]
    min_minutes_ahead: i32,
    #[serde(default = "d_ahead")]
    max_days_ahead: i32,
    #[serde(default = "d_per")]
    max_per_resident: i32,
    #[serde(default = "d_cancel")]
    cancel_hours_before: i32,
    #[serde(default = "d_direct")]
    approval: String,
    price: Option<Price>,
    #[serde(default = "d_true")]
    active: bool,
    #[serde(default)]
    hours: Vec<HoursIn>,
    #[serde(default)]
    exceptions: Vec<ExceptionIn>,
    #[serde(default)]
    appointment_types: Vec<TypeIn>,
}

/// `HH:MM` as minutes after midnight (`24:00` allowed).
fn minutes(s: &str, what: &str) -> anyhow::Result<i32> {
    let parsed = s.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?);
        ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60)
            .then_some(h * 60 + m)
    });
    parsed.with_context(|| format!("{what}: {s:?} is not a time HH:MM"))
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn convert(doc: Doc) -> anyhow::Result<(Vec<Unit>, Vec<ResourceSetup>)> {
    let now = kuntalaistili_schema::now_utc();
    let mut units = Vec::new();
    let mut setups = Vec::new();
    for u in doc.units {
        if !id_ok(&u.id) {
            bail!("unit id {:?}: 1-64 letters, digits, - or _", u.id);
        }
        if u.name.trim().is_empty() || u.municipality.len() != 3 {
            bail!(
                "unit {}: a name and a three-digit municipality code are required",
                u.id
            );
        }
        for r in u.resources {
            let at = format!("resource {}", r.id);
            if !id_ok(&r.id) {
                bail!("{at}: the id must be 1-64 letters, digits, - or _");
            }
            if !matches!(r.kind.as_str(), "facility" | "appointment") {
                bail!("{at}: kind must be facility or appointment");
            }
            if r.name.fi.trim().is_empty() {
                bail!("{at}: a Finnish name is required");
            }
            if !(5..=1440).contains(&r.slot_minutes)
                || r.min_minutes < r.slot_minutes
                || r.max_minutes < r.min_minutes
                || r.max_minutes > 1440
                || r.min_minutes % r.slot_minutes != 0
            {
                bail!("{at}: slot_minutes 5-1440, min_minutes a multiple of it, max_minutes ≥ min_minutes and at most 1440");
            }
            if [
                r.buffer_before_minutes,
                r.buffer_after_minutes,
                r.min_minutes_ahead,
                r.max_per_resident,
                r.cancel_hours_before,
                r.capacity,
            ]
            .iter()
            .any(|n| *n < 0)
                || !(1..=3650).contains(&r.max_days_ahead)
                || r.buffer_before_minutes > 720
                || r.buffer_after_minutes > 720
            {
                bail!("{at}: numbers must not be negative, max_days_ahead 1-3650, buffers at most 720 minutes");
            }
            if !matches!(r.authentication.as_str(), "weak" | "strong") {
                bail!("{at}: authentication must be weak or strong");
            }
            if !matches!(r.approval.as_str(), "direct" | "manual") {
                bail!("{at}: approval must be direct or manual");
            }
            let price = r.price.unwrap_or(Price {
                kind: "free".into(),
                cents: 0,
                reduced_cents: None,
                vat_percent: 0.0,
            });
            if !matches!(price.kind.as_str(), "free" | "hourly" | "fixed")
                || price.cents < 0
                || !(0.0..=100.0).contains(&price.vat_percent)
                || (price.kind != "free" && price.cents == 0)
            {
                bail!("{at}: price kind free, hourly or fixed (with cents > 0), vat_percent 0-100");
            }
            let mut hours = Vec::new();
            for (i, h) in r.hours.iter().enumerate() {
                let (o, c) = (minutes(&h.opens, &at)?, minutes(&h.closes, &at)?);
                if o >= c {
                    bail!("{at}: opening hours must close after they open");
                }
                for wd in &h.weekdays {
                    if !(1..=7).contains(wd) {
                        bail!("{at}: weekdays are 1 (Monday) … 7 (Sunday)");
                    }
                    hours.push(Hours {
                        id: format!("{}-{i}-{wd}", r.id),
                        resource_id: r.id.clone(),
                        valid_from: h
                            .valid_from
                            .unwrap_or(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()),
                        valid_until: h.valid_until,
                        weekday: *wd,
                        opens_min: o,
                        closes_min: c,
                    });
                }
            }
            let mut exceptions = Vec::new();
            for e in &r.exceptions {
                let (o, c) = match (&e.opens, &e.closes) {
                    (Some(o), Some(c)) => (Some(minutes(o, &at)?), Some(minutes(c, &at)?)),
                    (None, None) => (None, None),
                    _ => {
                        bail!("{at}: an exception gives both opens and closes, or neither (closed)")
                    }
                };
                exceptions.push(Exception {
                    resource_id: r.id.clone(),
                    day: e.date,
                    opens_min: o,
                    closes_min: c,
                    reason: e.reason.clone(),
                });
            }
            let mut types = Vec::new();
            for t in &r.appointment_types {
                if !id_ok(&t.id) || t.minutes < 5 || t.minutes % r.slot_minutes != 0 {
                    bail!("{at}: appointment type {:?} needs an id and a length that is a multiple of slot_minutes", t.id);
                }
                types.push(ApptType {
                    id: t.id.clone(),
                    resource_id: r.id.clone(),
                    name_fi: t.name.fi.clone(),
                    name_sv: t.name.sv.clone(),
                    name_en: t.name.en.clone(),
                    minutes: t.minutes,
                });
            }
            if r.kind == "appointment" && types.is_empty() {
                bail!("{at}: an appointment resource needs appointment_types");
            }
            setups.push(ResourceSetup {
                resource: Resource {
                    id: r.id.clone(),
                    unit_id: u.id.clone(),
                    kind: r.kind,
                    name_fi: r.name.fi,
                    name_sv: r.name.sv,
                    name_en: r.name.en,
                    description: r.description,
                    resource_type: r.resource_type,
                    purposes: r.purposes.join(" "),
                    capacity: r.capacity,
                    equipment: r.equipment,
                    image_url: r.image_url,
                    terms: r.terms,
                    auth_level: r.authentication,
                    lipas_id: r.lipas_id,
                    slot_minutes: r.slot_minutes,
                    min_minutes: r.min_minutes,
                    max_minutes: r.max_minutes,
                    buffer_before: r.buffer_before_minutes,
                    buffer_after: r.buffer_after_minutes,
                    advance_min_minutes: r.min_minutes_ahead,
                    advance_max_days: r.max_days_ahead,
                    max_per_resident: r.max_per_resident,
                    cancel_hours: r.cancel_hours_before,
                    manual_approval: r.approval == "manual",
                    price_kind: price.kind,
                    price_cents: price.cents,
                    reduced_price_cents: price.reduced_cents,
                    vat_basis_points: (price.vat_percent * 100.0).round() as i32,
                    active: r.active,
                    created_at: now,
                },
                hours,
                exceptions,
                types,
            });
        }
        units.push(Unit {
            id: u.id,
            name: u.name,
            municipality_code: u.municipality,
            street_address: u.street_address,
            postal_code: u.postal_code,
            city: u.city,
            contact: u.contact,
            latitude: u.lat,
            longitude: u.lon,
            created_at: now,
        });
    }
    Ok((units, setups))
}

pub(super) fn bookings_cmd(
    config: &Config,
    cmd: BookingsCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let db = open_migrated(config)?;
    match cmd {
        BookingsCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let doc: Doc = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a bookings document", file.display()))?;
            let (units, setups) = convert(doc)?;
            let mut conn = db.conn()?;
            let (u, r) = store::import(&mut conn, &units, &setups)?;
            kuntalaistili_schema::audit::append(
                &mut conn,
                kuntalaistili_schema::audit::NewEvent {
                    event_type: "bookings.imported".into(),
                    outcome: "success".into(),
                    actor: Some("cli".into()),
                    subject: None,
                    ip: None,
                    details: serde_json::json!({
                        "units": units.iter().map(|u| &u.id).collect::<Vec<_>>(),
                        "resources": setups.iter().map(|s| &s.resource.id).collect::<Vec<_>>(),
                    }),
                },
                kuntalaistili_schema::now_utc(),
            )?;
            io.report(
                json,
                serde_json::json!({ "units": u, "resources": r }),
                format_args!("imported {u} units and {r} resources"),
            )?;
        }
        BookingsCommand::List => {
            let list = store::search(&mut *db.conn()?, &store::Search::default())?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(r, u)| serde_json::json!({ "id": r.id, "kind": r.kind, "name": r.name_fi, "unit": u.id }))
                    .collect();
                io.report(
                    true,
                    serde_json::json!({ "resources": v }),
                    format_args!(""),
                )?;
            } else {
                for (r, u) in list {
                    writeln!(io.out, "{}\t{}\t{}\t{}", r.id, r.kind, r.name_fi, u.name)?;
                }
            }
        }
    }
    Ok(0)
}

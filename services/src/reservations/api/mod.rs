//! The JSON API (a contract other front ends use too). Public: `GET {base}/api/resources`
//! (search), `GET {base}/api/resources/{id}`, `GET {base}/api/resources/{id}/availability?from=&to=`.
//! With the resident's IdP access token carrying the service's scope (`reservations`,
//! `appointments`): `POST {base}/api/{collection}` `{"resource", "begins_at", "ends_at"}` → 201
//! with the reservation and its state, 409 problem when the time is taken, 422 problem when a
//! rule refuses it (with a `code`); `GET {base}/api/{collection}[/{id}]`, `DELETE …/{id}` cancels
//! within the rules, `PATCH …/{id}` `{"begins_at"}` moves it.

mod mine;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime};
use kuntalaistili_schema::reservations::{self as store, Reservation, Resource, Unit};
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine;
use super::flows::BookError;
use super::Booking;
use crate::kit::{problem, read_limited};

/// Largest accepted body.
const MAX_BODY: usize = 8 * 1024;
/// Longest availability window, in days.
pub const MAX_DAYS: i64 = 31;

/// `reservations` or `appointments`.
pub fn collection(b: &Booking) -> &'static str {
    if b.kind == "appointment" {
        "appointments"
    } else {
        "reservations"
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    let base = booking.base();
    let coll = collection(&booking);
    let (b1, b2, b3, b4, b5, b6, b7, b8) = (
        booking.clone(),
        booking.clone(),
        booking.clone(),
        booking.clone(),
        booking.clone(),
        booking.clone(),
        booking.clone(),
        booking,
    );
    cfg.route(
        &format!("{base}/api/resources"),
        web::get().to(move |q: web::Query<SearchQuery>| {
            let b = b1.clone();
            async move { resources_get(b, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/api/resources/{{id}}"),
        web::get().to(move |p: web::Path<String>| {
            let b = b2.clone();
            async move { resource_get(b, p.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/api/resources/{{id}}/availability"),
        web::get().to(move |p: web::Path<String>, q: web::Query<RangeQuery>| {
            let b = b3.clone();
            async move { availability_get(b, p.into_inner(), q.into_inner()).await }
        }),
    )
    .service(
        web::resource(format!("{base}/api/{coll}"))
            .route(web::post().to(move |req: HttpRequest, body: web::Payload| {
                let b = b4.clone();
                async move {
                    match read_limited(body, MAX_BODY).await {
                        Ok(body) => mine::create_post(b, req, body).await,
                        Err(resp) => resp,
                    }
                }
            }))
            .route(web::get().to(move |req: HttpRequest| {
                let b = b5.clone();
                async move { mine::mine_get(b, req).await }
            })),
    )
    .service(
        web::resource(format!("{base}/api/{coll}/{{id}}"))
            .route(
                web::get().to(move |req: HttpRequest, p: web::Path<String>| {
                    let b = b6.clone();
                    async move { mine::one_get(b, req, p.into_inner()).await }
                }),
            )
            .route(
                web::delete().to(move |req: HttpRequest, p: web::Path<String>| {
                    let b = b7.clone();
                    async move { mine::one_delete(b, req, p.into_inner()).await }
                }),
            )
            .route(web::patch().to(
                move |req: HttpRequest, p: web::Path<String>, body: web::Payload| {
                    let b = b8.clone();
                    async move {
                        match read_limited(body, MAX_BODY).await {
                            Ok(body) => mine::one_patch(b, req, p.into_inner(), body).await,
                            Err(resp) => resp,
                        }
                    }
                },
            )),
    );
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub municipality: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub capacity: Option<String>,
    pub free: Option<String>,
    pub unit: Option<String>,
    /// With `to`: only resources with a free slot in between.
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A date (`2027-01-15`, local) or an RFC 3339 instant, as a UTC instant; dates are local
/// midnight.
pub fn parse_instant(s: &str) -> Option<NaiveDateTime> {
    if s.len() == 10 {
        return engine::parse_date(s).map(|d| engine::local_to_utc(d, 0));
    }
    use chrono::Datelike;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.naive_utc())
        .filter(|t| (2000..=2200).contains(&t.year()))
}

/// The local days `[from, to)` covers: `from` defaults to today, `to` to a week later.
pub fn days_of(q: &RangeQuery, now: NaiveDateTime) -> Result<(NaiveDate, NaiveDate), String> {
    let from = match q.from.as_deref() {
        Some(s) => parse_instant(s).ok_or("from must be a date or an RFC 3339 time")?,
        None => now,
    };
    let to = match q.to.as_deref() {
        Some(s) => parse_instant(s).ok_or("to must be a date or an RFC 3339 time")?,
        None => from + Duration::days(7),
    };
    if to <= from {
        return Err("to must be after from".into());
    }
    if to - from > Duration::days(MAX_DAYS) {
        return Err(format!("at most {MAX_DAYS} days at a time"));
    }
    let first = engine::local_date(from);
    let last = engine::local_date(to - Duration::seconds(1));
    Ok((first, last))
}

pub fn iso(t: NaiveDateTime) -> String {
    kuntalaistili_schema::iso_utc(t)
}

pub fn resource_json(r: &Resource, u: Option<&Unit>) -> Value {
    let mut v = json!({
        "id": r.id,
        "kind": r.kind,
        "name": { "fi": r.name_fi, "sv": r.name_sv, "en": r.name_en },
        "description": r.description,
        "type": r.resource_type,
        "purposes": r.purposes.split_whitespace().collect::<Vec<_>>(),
        "capacity": r.capacity,
        "equipment": r.equipment,
        "image_url": r.image_url,
        "terms": r.terms,
        "authentication": r.auth_level,
        "lipas_id": r.lipas_id,
        "slot_minutes": r.slot_minutes,
        "min_minutes": r.min_minutes,
        "max_minutes": r.max_minutes,
        "buffer_before_minutes": r.buffer_before,
        "buffer_after_minutes": r.buffer_after,
        "reservable_min_minutes_ahead": r.advance_min_minutes,
        "reservable_max_days_ahead": r.advance_max_days,
        "max_reservations_per_resident": r.max_per_resident,
        "cancellable_until_hours_before": r.cancel_hours,
        "approval": if r.manual_approval { "manual" } else { "direct" },
        "price": {
            "kind": r.price_kind,
            "cents": r.price_cents,
            "reduced_cents": r.reduced_price_cents,
            "vat_percent": f64::from(r.vat_basis_points) / 100.0,
        },
        "timezone": "Europe/Helsinki",
    });
    if let Some(u) = u {
        v["unit"] = json!({
            "id": u.id,
            "name": u.name,
            "municipality": u.municipality_code,
            "street_address": u.street_address,
            "postal_code": u.postal_code,
            "city": u.city,
            "contact": u.contact,
            "location": u.latitude.zip(u.longitude).map(|(lat, lon)| json!({ "lat": lat, "lon": lon })),
        });
    }
    v
}

pub fn reservation_json(r: &Reservation) -> Value {
    json!({
        "id": r.id,
        "resource": r.resource_id,
        "state": r.state,
        "begins_at": iso(r.begins_at),
        "ends_at": iso(r.ends_at),
        "purpose": r.purpose,
        "type": r.appt_type_id,
        "price_cents": r.price_cents,
        "vat_percent": f64::from(r.vat_basis_points) / 100.0,
        "message": r.message,
        "payment_due_at": r.expires_at.map(iso),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    })
}

fn unavailable() -> HttpResponse {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "the booking service is not available right now",
    )
}

async fn resources_get(b: web::Data<Booking>, q: SearchQuery) -> HttpResponse {
    let capacity = match q.capacity.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => match c.parse::<i32>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return problem(StatusCode::BAD_REQUEST, "capacity must be a whole number"),
        },
        None => None,
    };
    let window = match (&q.from, &q.to) {
        (Some(f), Some(t)) => match (parse_instant(f), parse_instant(t)) {
            (Some(f), Some(t)) if f < t && t - f <= Duration::days(MAX_DAYS) => Some((f, t)),
            _ => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "from and to must be dates or RFC 3339 times, at most 31 days apart",
                )
            }
        },
        (None, None) => None,
        _ => return problem(StatusCode::BAD_REQUEST, "give both from and to, or neither"),
    };
    let nonempty = |s: Option<String>| s.filter(|x| !x.is_empty() && x.len() <= 100);
    let search = store::Search {
        kind: Some(b.kind.to_owned()),
        municipality: nonempty(q.municipality),
        resource_type: nonempty(q.resource_type),
        min_capacity: capacity,
        free_only: q.free.is_some_and(|f| f == "1" || f == "true"),
        unit: nonempty(q.unit),
    };
    let db = b.kit.db.clone();
    let found = web::block(move || -> Result<Vec<(Resource, Unit)>, DbError> {
        let mut conn = db.conn()?;
        let mut list = store::search(&mut conn, &search)?;
        if let Some((from, to)) = window {
            list = with_free_slot(&mut conn, list, from, to)?;
        }
        Ok(list)
    })
    .await;
    match found {
        Ok(Ok(list)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .json(json!({
                "resources": list.iter().map(|(r, u)| resource_json(r, Some(u))).collect::<Vec<_>>(),
            })),
        _ => unavailable(),
    }
}

/// The resources of `list` that have a free slot inside `[from, to)` (search by time).
pub fn with_free_slot(
    conn: &mut kuntalaistili_schema::AnyConnection,
    list: Vec<(Resource, Unit)>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<(Resource, Unit)>, DbError> {
    let now = kuntalaistili_schema::now_utc();
    let (first, last) = (
        engine::local_date(from),
        engine::local_date(to - Duration::seconds(1)),
    );
    let mut keep = Vec::new();
    for (r, u) in list {
        let hours = store::hours_of(conn, &r.id)?;
        let exc = store::exceptions_between(conn, &r.id, first, last)?;
        let busy = store::busy_spans(conn, &r.id, from, to)?;
        let free = engine::availability(&r, &hours, &exc, &busy, first, last, now)
            .iter()
            .flat_map(|(_, s)| s.iter())
            .any(|s| s.status == "free" && s.begins_at >= from && s.ends_at <= to);
        if free {
            keep.push((r, u));
        }
    }
    Ok(keep)
}

async fn resource_get(b: web::Data<Booking>, id: String) -> HttpResponse {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let found = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let Some(r) = store::resource(&mut conn, &id)?.filter(|r| r.kind == kind) else {
            return Ok(None);
        };
        let u = store::unit(&mut conn, &r.unit_id)?;
        let hours = store::hours_of(&mut conn, &r.id)?;
        let types = store::appt_types_of(&mut conn, &r.id)?;
        Ok(Some((r, u, hours, types)))
    })
    .await;
    match found {
        Ok(Ok(Some((r, u, hours, types)))) => {
            let mut v = resource_json(&r, u.as_ref());
            v["opening_hours"] = json!(hours
                .iter()
                .map(|h| json!({
                    "weekday": h.weekday,
                    "opens": format!("{:02}:{:02}", h.opens_min / 60, h.opens_min % 60),
                    "closes": format!("{:02}:{:02}", h.closes_min / 60, h.closes_min % 60),
                    "valid_from": h.valid_from,
                    "valid_until": h.valid_until,
                }))
                .collect::<Vec<_>>());
            if !types.is_empty() {
                v["appointment_types"] = json!(types
                    .iter()
                    .map(|t| json!({ "id": t.id, "name": { "fi": t.name_fi, "sv": t.name_sv, "en": t.name_en }, "minutes": t.minutes }))
                    .collect::<Vec<_>>());
            }
            HttpResponse::Ok().json(v)
        }
        Ok(Ok(None)) => problem(StatusCode::NOT_FOUND, "no such resource"),
        _ => unavailable(),
    }
}

/// The slots of `[first, last]` with their status, for the resource (as JSON).
pub async fn availability(
    b: &Booking,
    id: String,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Option<(Resource, Vec<(NaiveDate, Vec<engine::Slot>)>)>, BookError> {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    web::block(move || -> Result<_, BookError> {
        let mut conn = db.conn()?;
        let Some(r) = store::resource(&mut conn, &id)?.filter(|r| r.kind == kind) else {
            return Ok(None);
        };
        let hours = store::hours_of(&mut conn, &r.id)?;
        let exc = store::exceptions_between(&mut conn, &r.id, first, last)?;
        // Wide enough for the buffers of reservations just outside the days.
        let from = engine::local_to_utc(first, 0) - Duration::days(1);
        let to = engine::local_to_utc(last, 24 * 60) + Duration::days(1);
        let busy = store::busy_spans(&mut conn, &r.id, from, to)?;
        let now = kuntalaistili_schema::now_utc();
        let days = engine::availability(&r, &hours, &exc, &busy, first, last, now);
        Ok(Some((r, days)))
    })
    .await?
}

async fn availability_get(b: web::Data<Booking>, id: String, q: RangeQuery) -> HttpResponse {
    if id.len() > 64 {
        return problem(StatusCode::NOT_FOUND, "no such resource");
    }
    let (first, last) = match days_of(&q, kuntalaistili_schema::now_utc()) {
        Ok(d) => d,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    #[derive(serde::Serialize)]
    struct SlotOut {
        begins_at: String,
        ends_at: String,
        status: &'static str,
    }
    #[derive(serde::Serialize)]
    struct DayOut {
        date: NaiveDate,
        slots: Vec<SlotOut>,
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        resource: &'a str,
        timezone: &'static str,
        slot_minutes: i32,
        days: Vec<DayOut>,
    }
    match availability(&b, id, first, last).await {
        Ok(Some((r, days))) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .json(Out {
                resource: &r.id,
                timezone: "Europe/Helsinki",
                slot_minutes: r.slot_minutes,
                days: days
                    .into_iter()
                    .map(|(date, slots)| DayOut {
                        date,
                        slots: slots
                            .into_iter()
                            .map(|s| SlotOut {
                                begins_at: iso(s.begins_at),
                                ends_at: iso(s.ends_at),
                                status: s.status,
                            })
                            .collect(),
                    })
                    .collect(),
            }),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such resource"),
        Err(_) => unavailable(),
    }
}

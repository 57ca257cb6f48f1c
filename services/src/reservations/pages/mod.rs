//! Residents' pages: search (municipality, type, capacity, free of charge, a time with a free
//! slot), a resource's week calendar with its free slots as buttons (live: the page listens to
//! the resource's event stream), booking, own reservations with cancel and pay, the calendar-feed
//! address, and the payment provider's return and callback addresses.
//!
//! - here: the routes, search, a resource's calendar and booking.
//! - `mine`: the resident's own reservations and their calendar feed.
//! - `payments`: the payment provider's return and callback addresses.

mod mine;
mod payments;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use kuntalaistili_schema::reservations::{self as store, Reservation, Resource};
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api;
use super::engine;
use super::flows::{self, BookError, Request, Who};
use super::Booking;
use crate::kit::{render, see_other, KitError, Resident};

pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    let base = booking.base();
    let b = booking;
    let c = |b: &web::Data<Booking>| b.clone();
    let (b1, b2, b3, b4, b5, b6, b7, b8, b9) = (
        c(&b),
        c(&b),
        c(&b),
        c(&b),
        c(&b),
        c(&b),
        c(&b),
        c(&b),
        c(&b),
    );
    cfg.route(
        &format!("{base}/"),
        web::get().to(move |req: HttpRequest, q: web::Query<api::SearchQuery>| {
            let b = b1.clone();
            async move { search_page(b, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/resources/{{id}}"),
        web::get().to(
            move |req: HttpRequest, p: web::Path<String>, q: web::Query<WeekQuery>| {
                let b = b2.clone();
                async move { resource_page(b, req, p.into_inner(), q.into_inner(), None).await }
            },
        ),
    )
    .route(
        &format!("{base}/resources/{{id}}/book"),
        web::post().to(
            move |req: HttpRequest, p: web::Path<String>, f: web::Form<BookForm>| {
                let b = b3.clone();
                async move { book_post(b, req, p.into_inner(), f.into_inner()).await }
            },
        ),
    )
    .route(
        &format!("{base}/mine"),
        web::get().to(move |req: HttpRequest, q: web::Query<MineQuery>| {
            let b = b4.clone();
            async move { mine::mine_page(b, req, q.into_inner(), None).await }
        }),
    )
    .route(
        &format!("{base}/mine/{{id}}/{{action}}"),
        web::post().to(
            move |req: HttpRequest, p: web::Path<(String, String)>, f: web::Form<ActionForm>| {
                let b = b5.clone();
                async move { mine::mine_action(b, req, p.into_inner(), f.into_inner()).await }
            },
        ),
    )
    .route(
        &format!("{base}/feed"),
        web::post().to(move |req: HttpRequest, f: web::Form<ActionForm>| {
            let b = b6.clone();
            async move { mine::feed_post(b, req, f.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/payments/return"),
        web::get().to(move |req: HttpRequest| {
            let b = b7.clone();
            async move { payments::payment_return(b, req).await }
        }),
    )
    .route(
        &format!("{base}/payments/callback"),
        web::get().to(move |req: HttpRequest| {
            let b = b8.clone();
            async move { payments::payment_callback(b, req).await }
        }),
    )
    .route(
        &format!("{base}/payments/refund-callback"),
        web::get().to(move |req: HttpRequest| {
            let b = b9.clone();
            async move { payments::refund_callback(b, req).await }
        }),
    )
    .route(
        &format!("{base}/calendar.js"),
        web::get().to(|| async {
            HttpResponse::Ok()
                .content_type("text/javascript; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                .body(CALENDAR_JS)
        }),
    );
}

/// Progressive enhancement of the week calendar: listens to the resource's event stream and
/// reloads the calendar section when its availability changes (the page works without it).
const CALENDAR_JS: &str = include_str!("../../../../templates/static/calendar.js");

/// The policy of the calendar page: its one script from here, its event stream from here.
const CSP_CALENDAR: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Pages whose forms lead to the payment provider (another site).
const CSP_PAY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_csp(mut resp: HttpResponse, csp: &'static str) -> HttpResponse {
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(csp),
    );
    resp
}

#[derive(Debug, Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
    #[serde(rename = "type")]
    appt_type: Option<String>,
    /// Choosing a new time for this reservation (rescheduling) instead of booking.
    #[serde(rename = "move")]
    moving: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BookForm {
    csrf: Option<String>,
    begins_at: Option<String>,
    slots: Option<String>,
    #[serde(rename = "type")]
    appt_type: Option<String>,
    purpose: Option<String>,
    week: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MineQuery {
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    begins_at: Option<String>,
    /// Set on the confirmation step of cancelling a paid reservation.
    confirm: Option<String>,
}

fn lang_of(req: &HttpRequest) -> &'static str {
    render::negotiate(req).code()
}

fn tr(b: &Booking, req: &HttpRequest, key: &str) -> String {
    b.kit.templates.tr.text(render::negotiate(req), key)
}

/// A rule's message in the page's language, with its number.
pub fn rule_text(b: &Booking, req: &HttpRequest, e: &BookError) -> String {
    match e {
        BookError::Rule(r) => {
            let t = tr(b, req, r.key());
            match r.n() {
                Some(n) => t.replace("{n}", &n.to_string()),
                None => t,
            }
        }
        BookError::SlotTaken => tr(b, req, "res.error_taken"),
        BookError::StrongAuth => tr(b, req, "res.error_strong"),
        BookError::WrongState(_) => tr(b, req, "res.error_state"),
        BookError::Payment(_) => tr(b, req, "res.error_payment"),
        BookError::NoResource | BookError::NoReservation | BookError::NoType => {
            tr(b, req, "res.error_missing")
        }
        BookError::Db(_) | BookError::Blocking => tr(b, req, "res.error_unavailable"),
    }
}

pub fn hm(t: NaiveDateTime) -> String {
    engine::to_local(t).format("%H.%M").to_string()
}

pub fn resource_view(r: &Resource, lang: &str) -> Value {
    json!({
        "id": r.id,
        "name": r.name(lang),
        "description": r.description,
        "type": r.resource_type,
        "capacity": r.capacity,
        "equipment": r.equipment,
        "terms": r.terms,
        "purposes": r.purposes,
        "price": match r.price_kind.as_str() {
            "hourly" => format!("{} / h", engine::euros(r.price_cents)),
            "fixed" => engine::euros(r.price_cents),
            _ => String::new(),
        },
        "reduced_price": r.reduced_price_cents.map(engine::euros),
        "free": r.price_kind == "free",
        "manual": r.manual_approval,
        "slot_minutes": r.slot_minutes,
        "min_minutes": r.min_minutes,
        "max_minutes": r.max_minutes,
        "cancel_hours": r.cancel_hours,
        "advance_max_days": r.advance_max_days,
        "strong": r.auth_level == "strong",
    })
}

pub fn reservation_view(r: &Reservation, res: &Resource, lang: &str, now: NaiveDateTime) -> Value {
    json!({
        "id": r.id,
        "resource": res.name(lang),
        "resource_id": res.id,
        "state": r.state,
        "when": engine::local_span(r.begins_at, r.ends_at),
        "begins_at": api::iso(r.begins_at),
        "price": (r.price_cents > 0).then(|| engine::euros(r.price_cents)),
        "message": r.message,
        "purpose": r.purpose,
        "active": r.is_active(),
        "upcoming": r.begins_at > now,
        "cancellable": r.is_active() && r.begins_at > now
            && (r.state != "confirmed" || engine::check_cancel(res, r.begins_at, now).is_ok()),
        "payable": r.state == "waiting_for_payment" && r.expires_at.is_some_and(|e| e > now),
        "pay_until": r.expires_at.map(hm),
    })
}

/// A resident already logged in at the IdP is recognised without a click (silent SSO, tried
/// once per browser and then not again for a while).
fn silently(b: &Booking, req: &HttpRequest, resident: &Option<Resident>) -> Option<HttpResponse> {
    if resident.is_some()
        || !b.kit.may_try_silent(req)
        || req.method() != actix_web::http::Method::GET
    {
        return None;
    }
    let here = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    };
    Some(see_other(&format!(
        "{}?silent=1&return_to={}",
        b.kit.cfg.path(crate::kit::LOGIN),
        crate::kit::enc(&here)
    )))
}

async fn search_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    q: api::SearchQuery,
) -> Result<HttpResponse, KitError> {
    let resident = b.kit.resident(&req).await?;
    if let Some(redirect) = silently(&b, &req, &resident) {
        return Ok(redirect);
    }
    let lang = lang_of(&req);
    let capacity = q
        .capacity
        .as_deref()
        .and_then(|c| c.parse::<i32>().ok())
        .filter(|c| *c > 0);
    let nonempty = |s: &Option<String>| s.clone().filter(|x| !x.is_empty() && x.len() <= 100);
    let search = store::Search {
        kind: Some(b.kind.to_owned()),
        municipality: nonempty(&q.municipality),
        resource_type: nonempty(&q.resource_type),
        min_capacity: capacity,
        free_only: q.free.as_deref() == Some("1"),
        unit: nonempty(&q.unit),
    };
    // A date (and optional hour) narrows to resources with a free slot then.
    let window = q
        .from
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(engine::parse_date)
        .map(|d| {
            let hour =
                q.to.as_deref()
                    .and_then(|h| h.parse::<i32>().ok())
                    .filter(|h| (0..24).contains(h));
            match hour {
                Some(h) => (
                    engine::local_to_utc(d, h * 60),
                    engine::local_to_utc(d, h * 60 + 60),
                ),
                None => (engine::local_to_utc(d, 0), engine::local_to_utc(d, 24 * 60)),
            }
        });
    let db = b.kit.db.clone();
    let (list, units, types) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let all = store::search(
            &mut conn,
            &store::Search {
                kind: search.kind.clone(),
                ..store::Search::default()
            },
        )?;
        let mut types: Vec<String> = all.iter().map(|(r, _)| r.resource_type.clone()).collect();
        types.sort();
        types.dedup();
        let mut units: Vec<(String, String)> = all
            .iter()
            .map(|(_, u)| (u.municipality_code.clone(), u.city.clone()))
            .collect();
        units.sort();
        units.dedup();
        let mut list = store::search(&mut conn, &search)?;
        if let Some((from, to)) = window {
            list = api::with_free_slot(&mut conn, list, from, to)?;
        }
        Ok((list, units, types))
    })
    .await??;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "resources",
        &list
            .iter()
            .map(|(r, u)| {
                let mut v = resource_view(r, lang);
                v["unit"] = json!({ "name": u.name, "city": u.city, "address": u.street_address });
                v
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "municipalities",
        &units
            .iter()
            .map(|(code, city)| json!({ "code": code, "name": city }))
            .collect::<Vec<_>>(),
    );
    ctx.insert("types", &types);
    ctx.insert(
        "f",
        &json!({
            "municipality": q.municipality, "type": q.resource_type, "capacity": q.capacity,
            "free": q.free.as_deref() == Some("1"), "date": q.from, "hour": q.to,
        }),
    );
    ctx.insert("base", b.base());
    ctx.insert("kind", b.kind);
    Ok(b.kit.page(
        &req,
        StatusCode::OK,
        "services/reservations.html",
        resident.as_ref(),
        ctx,
    ))
}

/// Monday of the week `week` names (any date in it), or of this week.
fn monday(week: Option<&str>) -> NaiveDate {
    let today = engine::local_date(kuntalaistili_schema::now_utc());
    let d = week
        .and_then(engine::parse_date)
        .filter(|d| (*d - today).num_days().abs() < 800)
        .unwrap_or(today);
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

async fn resource_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    id: String,
    q: WeekQuery,
    error: Option<(StatusCode, String)>,
) -> Result<HttpResponse, KitError> {
    let resident = b.kit.resident(&req).await?;
    if let Some(redirect) = silently(&b, &req, &resident) {
        return Ok(redirect);
    }
    let lang = lang_of(&req);
    let first = monday(q.week.as_deref());
    let last = first + Duration::days(6);
    let Ok(found) = api::availability(&b, id.clone(), first, last).await else {
        return Err(KitError::Blocking);
    };
    let Some((r, days)) = found else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let (db, rid) = (b.kit.db.clone(), r.id.clone());
    let (unit, types) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let res = store::resource(&mut conn, &rid)?;
        let unit = match res {
            Some(res) => store::unit(&mut conn, &res.unit_id)?,
            None => None,
        };
        Ok((unit, store::appt_types_of(&mut conn, &rid)?))
    })
    .await??;
    let weekdays = ["ma", "ti", "ke", "to", "pe", "la", "su"];
    let days_v: Vec<Value> = days
        .iter()
        .map(|(d, slots)| {
            json!({
                "date": d.to_string(),
                "weekday": tr(&b, &req, &format!("res.day_{}", weekdays[d.weekday().num_days_from_monday() as usize])),
                "label": d.format("%-d.%-m.").to_string(),
                "slots": slots.iter().map(|s| json!({
                    "begins_at": api::iso(s.begins_at),
                    "label": format!("{}–{}", hm(s.begins_at), hm(s.ends_at)),
                    "status": s.status,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let max_slots = (r.max_minutes / r.slot_minutes.max(5)).max(1);
    let min_slots = (r.min_minutes / r.slot_minutes.max(5)).max(1);
    let lengths: Vec<Value> = (min_slots..=max_slots)
        .map(|n| json!({ "n": n, "minutes": n * r.slot_minutes }))
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("r", &resource_view(&r, lang));
    ctx.insert(
        "unit",
        &unit.map(|u| json!({ "name": u.name, "address": format!("{}, {} {}", u.street_address, u.postal_code, u.city), "contact": u.contact })),
    );
    ctx.insert("days", &days_v);
    ctx.insert("lengths", &lengths);
    ctx.insert(
        "types",
        &types
            .iter()
            .map(|t| json!({ "id": t.id, "name": t.name(lang), "minutes": t.minutes }))
            .collect::<Vec<_>>(),
    );
    ctx.insert("selected_type", &q.appt_type);
    let moving = q.moving.filter(|m| {
        !m.is_empty() && m.len() <= 64 && m.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
    });
    ctx.insert("moving", &moving);
    ctx.insert("week", &first.to_string());
    ctx.insert("prev_week", &(first - Duration::days(7)).to_string());
    ctx.insert("next_week", &(first + Duration::days(7)).to_string());
    ctx.insert(
        "week_label",
        &format!(
            "{} – {}",
            first.format("%-d.%-m."),
            last.format("%-d.%-m.%Y")
        ),
    );
    ctx.insert("base", b.base());
    ctx.insert("kind", b.kind);
    ctx.insert(
        "events_url",
        &format!("{}/api/resources/{}/events", b.base(), r.id),
    );
    ctx.insert(
        "ics_url",
        &format!("{}/api/resources/{}/calendar.ics", b.base(), r.id),
    );
    ctx.insert(
        "login_to_book",
        &format!(
            "{}?return_to={}",
            b.kit.cfg.path(crate::kit::LOGIN),
            crate::kit::enc(&format!("{}/resources/{}?week={}", b.base(), r.id, first))
        ),
    );
    if let Some(res) = &resident {
        ctx.insert("csrf", &res.csrf);
    }
    let status = match &error {
        Some((s, e)) => {
            ctx.insert("error", e);
            *s
        }
        None => StatusCode::OK,
    };
    Ok(with_csp(
        b.kit.page(
            &req,
            status,
            "services/reservation_calendar.html",
            resident.as_ref(),
            ctx,
        ),
        CSP_CALENDAR,
    ))
}

async fn require(
    b: &Booking,
    req: &HttpRequest,
    back: &str,
) -> Result<Result<Resident, HttpResponse>, KitError> {
    b.kit.require(req, back).await
}

async fn book_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    id: String,
    f: BookForm,
) -> Result<HttpResponse, KitError> {
    let back = format!("{}/resources/{id}", b.base());
    let resident = match require(&b, &req, &back).await? {
        Ok(r) => r,
        Err(redirect) => return Ok(redirect),
    };
    if !crate::kit::Kit::csrf_ok(&resident, f.csrf.as_deref()) {
        return Ok(HttpResponse::Forbidden().finish());
    }
    let wq = WeekQuery {
        week: f.week.clone(),
        appt_type: f.appt_type.clone(),
        moving: None,
    };
    let Some(begins) = f.begins_at.as_deref().and_then(api::parse_instant) else {
        let e = tr(&b, &req, "res.rule_bad_times");
        return resource_page(b, req, id, wq, Some((StatusCode::BAD_REQUEST, e))).await;
    };
    let (slot_minutes, n) = {
        let db = b.kit.db.clone();
        let rid = id.clone();
        let res = web::block(move || store::resource(&mut *db.conn()?, &rid)).await??;
        let Some(res) = res else {
            return Ok(HttpResponse::NotFound().finish());
        };
        let n = f
            .slots
            .as_deref()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|n| (1..=96).contains(n))
            .unwrap_or((res.min_minutes / res.slot_minutes.max(5)).max(1));
        (res.slot_minutes, n)
    };
    let who = Who {
        sub: resident.sub.clone(),
        lang: lang_of(&req).to_owned(),
        acr: None,
    };
    let rq = Request {
        resource_id: id.clone(),
        begins,
        ends: begins + Duration::minutes(i64::from(slot_minutes * n)),
        appt_type: f
            .appt_type
            .clone()
            .filter(|t| !t.is_empty() && t.len() <= 64),
        purpose: f.purpose.clone().unwrap_or_default(),
    };
    match flows::book(&b, &who, rq).await {
        Ok((r, _)) => Ok(see_other(&format!("{}/mine?done={}", b.base(), r.id))),
        Err(e) => {
            let status = match e {
                BookError::SlotTaken | BookError::WrongState(_) => StatusCode::CONFLICT,
                BookError::Db(_) | BookError::Blocking => return Err(KitError::Blocking),
                BookError::StrongAuth => StatusCode::FORBIDDEN,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let text = rule_text(&b, &req, &e);
            resource_page(b, req, id, wq, Some((status, text))).await
        }
    }
}

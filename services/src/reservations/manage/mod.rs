//! Staff pages under `{base}/manage/` for people with the access right `manage` of the service
//! (`reservations` or `appointments`), asked from the IdP at the moment of use: requests to handle
//! (approve or deny with a message), cancel any reservation, a unit's week calendar, reports by
//! resource and state, staff blocks and staff reservations, and recurring series for clubs
//! (weekly shifts; an occurrence is cancelled alone in the calendar).
//!
//! - here: the routes, who is staff, requests, the unit calendar, reports.
//! - `blocks`: staff blocks, staff reservations and recurring series.

mod blocks;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, Duration};
use kuntalaistili_schema::pool::AnyConnection;
use kuntalaistili_schema::reservations::{self as store, Resource, Unit};
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use serde_json::json;

use super::engine;
use super::flows::{self, BookError};
use super::pages::{hm, rule_text};
use super::Booking;
use crate::kit::{render, see_other, KitError, Resident};

pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    let base = booking.base();
    let c = |b: &web::Data<Booking>| b.clone();
    let (b1, b2, b3, b4, b5, b6) = (
        c(&booking),
        c(&booking),
        c(&booking),
        c(&booking),
        c(&booking),
        c(&booking),
    );
    cfg.route(
        &format!("{base}/manage/"),
        web::get().to(move |req: HttpRequest| {
            let b = b1.clone();
            async move { manage_page(b, req, None).await }
        }),
    )
    .route(
        &format!("{base}/manage/reservations/{{id}}/{{action}}"),
        web::post().to(
            move |req: HttpRequest, p: web::Path<(String, String)>, f: web::Form<HandleForm>| {
                let b = b2.clone();
                async move { handle_post(b, req, p.into_inner(), f.into_inner()).await }
            },
        ),
    )
    .route(
        &format!("{base}/manage/units/{{id}}"),
        web::get().to(
            move |req: HttpRequest, p: web::Path<String>, q: web::Query<WeekQuery>| {
                let b = b3.clone();
                async move { unit_page(b, req, p.into_inner(), q.into_inner()).await }
            },
        ),
    )
    .route(
        &format!("{base}/manage/report"),
        web::get().to(move |req: HttpRequest, q: web::Query<ReportQuery>| {
            let b = b4.clone();
            async move { report_page(b, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/manage/block"),
        web::post().to(move |req: HttpRequest, f: web::Form<BlockForm>| {
            let b = b5.clone();
            async move { blocks::block_post(b, req, f.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/manage/series"),
        web::post().to(move |req: HttpRequest, f: web::Form<SeriesForm>| {
            let b = b6.clone();
            async move { blocks::series_post(b, req, f.into_inner()).await }
        }),
    );
}

#[derive(Debug, Deserialize)]
pub struct HandleForm {
    csrf: Option<String>,
    message: Option<String>,
    back: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BlockForm {
    csrf: Option<String>,
    resource: String,
    date: String,
    start: String,
    end: String,
    reason: Option<String>,
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SeriesForm {
    csrf: Option<String>,
    resource: String,
    holder: String,
    weekday: String,
    start: String,
    minutes: String,
    first_day: String,
    last_day: String,
}

/// Which units a staff member manages: every unit (the service's `manage` function, e.g.
/// `reservations:manage`) or some (`reservations:manage.UNIT`, the unit id in lower case).
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Units(std::collections::BTreeSet<String>),
}

impl Scope {
    pub fn allows(&self, unit: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Units(u) => u.contains(unit),
        }
    }
}

/// The access-rights function that lets someone manage one unit.
pub fn unit_function(unit: &str) -> String {
    format!("{}.{}", super::AUTHZ_MANAGE, unit.to_ascii_lowercase())
}

fn denied_page(b: &Booking, req: &HttpRequest, resident: &Resident) -> HttpResponse {
    let lang = render::negotiate(req);
    let mut ctx = tera::Context::new();
    ctx.insert(
        "heading",
        &b.kit.templates.tr.text(lang, "res.manage_denied_title"),
    );
    ctx.insert(
        "message",
        &b.kit.templates.tr.text(lang, "res.manage_denied"),
    );
    b.kit.page(
        req,
        StatusCode::FORBIDDEN,
        "services/message.html",
        Some(resident),
        ctx,
    )
}

/// The staff member and what they manage, or the answer to give instead (login, or 403). Asked
/// from the IdP at the moment of use; a refusal is audited there.
async fn staff(
    b: &Booking,
    req: &HttpRequest,
) -> Result<Result<(Resident, Scope), HttpResponse>, KitError> {
    let back = format!("{}/manage/", b.base());
    let resident = match b.kit.require(req, &back).await? {
        Ok(r) => r,
        Err(redirect) => return Ok(Err(redirect)),
    };
    if b.may_manage(&resident.sub, true).await? {
        return Ok(Ok((resident, Scope::All)));
    }
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let units: std::collections::BTreeSet<String> =
        web::block(move || resources_of(&mut *db.conn()?, kind))
            .await??
            .into_iter()
            .map(|(_, u)| u.id)
            .collect();
    let mut mine = std::collections::BTreeSet::new();
    for u in units {
        if b.kit
            .rp
            .may(&resident.sub, b.authz_service, &unit_function(&u), true)
            .await?
        {
            mine.insert(u);
        }
    }
    if mine.is_empty() {
        // Not a probe: the refusal is recorded in the audit log.
        let _ = b.may_manage(&resident.sub, false).await?;
        return Ok(Err(denied_page(b, req, &resident)));
    }
    Ok(Ok((resident, Scope::Units(mine))))
}

/// As [`staff`], for a form: also refused (403) unless the form's CSRF token is the staff
/// member's own.
async fn staff_form(
    b: &Booking,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<Result<(Resident, Scope), HttpResponse>, KitError> {
    let (resident, scope) = match staff(b, req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(Err(resp)),
    };
    if !crate::kit::Kit::csrf_ok(&resident, csrf) {
        return Ok(Err(HttpResponse::Forbidden().finish()));
    }
    Ok(Ok((resident, scope)))
}

/// Every resource of the service's `kind`, with its unit.
fn resources_of(conn: &mut AnyConnection, kind: &str) -> Result<Vec<(Resource, Unit)>, DbError> {
    store::search(
        conn,
        &store::Search {
            kind: Some(kind.to_owned()),
            ..store::Search::default()
        },
    )
}

/// The unit of a resource of this service (for the scope check).
async fn unit_of_resource(b: &Booking, resource: &str) -> Result<Option<String>, KitError> {
    let (db, id, kind) = (b.kit.db.clone(), resource.to_owned(), b.kind);
    Ok(web::block(move || store::resource(&mut *db.conn()?, &id))
        .await??
        .filter(|r| r.kind == kind)
        .map(|r| r.unit_id))
}

fn hhmm(s: &str) -> Option<i32> {
    let (h, m) = s.split_once([':', '.'])?;
    let (h, m) = (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

async fn manage_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    notice: Option<(StatusCode, String, String)>,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff(&b, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let lang = render::negotiate(&req).code();
    let (db, kind, sc) = (b.kit.db.clone(), b.kind, scope.clone());
    let (pending, units, resources) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let pending: Vec<_> = store::requiring_handling(&mut conn)?
            .into_iter()
            .filter(|(_, res)| res.kind == kind && sc.allows(&res.unit_id))
            .collect();
        let resources = resources_of(&mut conn, kind)?;
        let resources = resources
            .into_iter()
            .filter(|(_, u)| sc.allows(&u.id))
            .collect::<Vec<_>>();
        Ok((pending, store::units(&mut conn)?, resources))
    })
    .await??;
    let now = kuntalaistili_schema::now_utc();
    let mut ctx = tera::Context::new();
    ctx.insert(
        "pending",
        &pending
            .iter()
            .map(|(r, res)| super::pages::reservation_view(r, res, lang, now))
            .collect::<Vec<_>>(),
    );
    let unit_ids: std::collections::BTreeSet<&str> =
        resources.iter().map(|(_, u)| u.id.as_str()).collect();
    ctx.insert(
        "units",
        &units
            .iter()
            .filter(|u| unit_ids.contains(u.id.as_str()))
            .map(|u| json!({ "id": u.id, "name": u.name, "city": u.city }))
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "resources",
        &resources
            .iter()
            .map(|(r, _)| json!({ "id": r.id, "name": r.name(lang) }))
            .collect::<Vec<_>>(),
    );
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("base", b.base());
    ctx.insert("today", &engine::local_date(now).to_string());
    if let Some((status, key, text)) = &notice {
        ctx.insert(key.as_str(), text);
        return Ok(b.kit.page(
            &req,
            *status,
            "services/reservations_manage.html",
            Some(&resident),
            ctx,
        ));
    }
    Ok(b.kit.page(
        &req,
        StatusCode::OK,
        "services/reservations_manage.html",
        Some(&resident),
        ctx,
    ))
}

async fn handle_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    (id, action): (String, String),
    f: HandleForm,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff_form(&b, &req, f.csrf.as_deref()).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    // Where to go back to is checked before acting: a refused path changes nothing.
    let Some(back) = b
        .kit
        .form_return(f.back.as_deref(), format!("{}/manage/", b.base()))
    else {
        return Ok(HttpResponse::BadRequest().finish());
    };
    let message: String = f.message.unwrap_or_default().chars().take(1000).collect();
    match flows::load(&b, &id, None).await {
        Ok((_, res)) if scope.allows(&res.unit_id) => {}
        Ok(_) => return Ok(denied_page(&b, &req, &resident)),
        Err(BookError::Db(_) | BookError::Blocking) => return Err(KitError::Blocking),
        Err(_) => return Ok(HttpResponse::NotFound().finish()),
    }
    let result = match action.as_str() {
        "approve" => flows::approve(&b, &id, &message).await,
        "deny" => flows::end_by_staff(&b, &id, "denied", &message).await,
        "cancel" => flows::end_by_staff(&b, &id, "cancelled", &message).await,
        _ => return Ok(HttpResponse::NotFound().finish()),
    };
    match result {
        Ok(r) => {
            let kit = b.kit.clone();
            let (actor, rid, state) = (resident.sub.clone(), r.id.clone(), r.state.clone());
            actix_web::rt::spawn(async move {
                let _ = kit
                    .rp
                    .audit(
                        "reservation.handled",
                        r.sub.as_deref(),
                        json!({ "reservation": rid, "state": state, "by": actor }),
                    )
                    .await;
            });
            Ok(see_other(&back))
        }
        Err(BookError::Db(_) | BookError::Blocking) => Err(KitError::Blocking),
        Err(e) => {
            let text = rule_text(&b, &req, &e);
            manage_page(b, req, Some((StatusCode::CONFLICT, "error".into(), text))).await
        }
    }
}

async fn unit_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    id: String,
    q: WeekQuery,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff(&b, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    if !scope.allows(&id) {
        return Ok(denied_page(&b, &req, &resident));
    }
    let lang = render::negotiate(&req).code();
    let today = engine::local_date(kuntalaistili_schema::now_utc());
    let d = q
        .week
        .as_deref()
        .and_then(engine::parse_date)
        .unwrap_or(today);
    let first = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let (from, to) = (
        engine::local_to_utc(first, 0),
        engine::local_to_utc(first + Duration::days(7), 0),
    );
    let (db, uid, kind) = (b.kit.db.clone(), id.clone(), b.kind);
    let (unit, list) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let unit = store::unit(&mut conn, &uid)?;
        let list: Vec<_> = store::of_unit_between(&mut conn, &uid, from, to)?
            .into_iter()
            .filter(|(_, res)| res.kind == kind)
            .collect();
        Ok((unit, list))
    })
    .await??;
    let Some(unit) = unit else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let now = kuntalaistili_schema::now_utc();
    let mut days: Vec<serde_json::Value> = Vec::new();
    for i in 0..7 {
        let day = first + Duration::days(i);
        let items: Vec<_> = list
            .iter()
            .filter(|(r, _)| engine::local_date(r.begins_at) == day)
            .map(|(r, res)| {
                let mut v = super::pages::reservation_view(r, res, lang, now);
                v["span"] = json!(format!("{}–{}", hm(r.begins_at), hm(r.ends_at)));
                v["kind"] = json!(r.kind);
                v
            })
            .collect();
        days.push(json!({ "label": day.format("%-d.%-m.%Y").to_string(), "items": items }));
    }
    let mut ctx = tera::Context::new();
    ctx.insert("unit", &json!({ "id": unit.id, "name": unit.name }));
    ctx.insert("days", &days);
    ctx.insert("prev_week", &(first - Duration::days(7)).to_string());
    ctx.insert("next_week", &(first + Duration::days(7)).to_string());
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("base", b.base());
    ctx.insert(
        "back",
        &format!("{}/manage/units/{}?week={}", b.base(), unit.id, first),
    );
    Ok(b.kit.page(
        &req,
        StatusCode::OK,
        "services/reservations_unit.html",
        Some(&resident),
        ctx,
    ))
}

async fn report_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    q: ReportQuery,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff(&b, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let lang = render::negotiate(&req).code();
    let today = engine::local_date(kuntalaistili_schema::now_utc());
    let parse = |s: &Option<String>| s.as_deref().and_then(engine::parse_date);
    let from = parse(&q.from).unwrap_or(today.with_day(1).unwrap_or(today));
    let to = parse(&q.to)
        .filter(|t| *t >= from)
        .unwrap_or(from + Duration::days(30));
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let (f, t) = (
        engine::local_to_utc(from, 0),
        engine::local_to_utc(to, 24 * 60),
    );
    let (rows, resources) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let resources = resources_of(&mut conn, kind)?;
        Ok((store::report(&mut conn, f, t)?, resources))
    })
    .await??;
    let mut out = Vec::new();
    for (r, _) in resources.iter().filter(|(_, u)| scope.allows(&u.id)) {
        let mine: Vec<_> = rows.iter().filter(|(rid, ..)| rid == &r.id).collect();
        let count = |s: &str| {
            mine.iter()
                .filter(|(_, st, ..)| st == s)
                .map(|(_, _, n, _)| *n)
                .sum::<i64>()
        };
        let revenue: i64 = mine
            .iter()
            .filter(|(_, st, ..)| st == "confirmed")
            .map(|(_, _, _, c)| *c)
            .sum();
        out.push(json!({
            "name": r.name(lang),
            "confirmed": count("confirmed"),
            "requires_handling": count("requires_handling"),
            "waiting_for_payment": count("waiting_for_payment"),
            "cancelled": count("cancelled"),
            "denied": count("denied"),
            "revenue": engine::euros(revenue),
        }));
    }
    let mut ctx = tera::Context::new();
    ctx.insert("rows", &out);
    ctx.insert("from", &from.to_string());
    ctx.insert("to", &to.to_string());
    ctx.insert("base", b.base());
    Ok(b.kit.page(
        &req,
        StatusCode::OK,
        "services/reservations_report.html",
        Some(&resident),
        ctx,
    ))
}

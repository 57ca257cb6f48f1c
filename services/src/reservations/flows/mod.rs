//! What happens to a reservation: booking (rules checked here, overlaps refused by the database),
//! cancelling (within the deadline; a paid reservation is refunded), handling by staff, paying
//! (idempotent on the provider's answers), expiring unpaid ones, reminders. Every state change
//! tells open calendars (live) and the resident: a notice on their notice board and a message in
//! their language (the IdP's message API picks the channels they prefer).
//!
//! - here: booking, cancelling, handling, rescheduling, reminders.
//! - `payments`: paying, the provider's answers, expiring unpaid reservations, refunds.
//! - `outbox`: the notices and messages each change queues, and their delivery.

mod outbox;
mod payments;

pub use outbox::{deliver, notify, notify_with};
pub use payments::{expire_unpaid, payment_answer, refunds_due, start_payment, Paid};

use actix_web::web;
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::payments as orders;
use kuntalaistili_schema::reservations::{self as store, Reservation, Resource};
use kuntalaistili_schema::DbError;
use serde_json::json;

use super::engine::{self, RuleError};
use super::Booking;

/// Who books: the resident, the language of their messages, their authentication context.
#[derive(Debug, Clone)]
pub struct Who {
    pub sub: String,
    pub lang: String,
    pub acr: Option<String>,
}

/// Authentication contexts that count as strong identification.
pub const STRONG_ACR: [&str; 4] = [
    "http://ftn.ficora.fi/2017/loa2",
    "http://ftn.ficora.fi/2017/loa3",
    "http://eidas.europa.eu/LoA/substantial",
    "http://eidas.europa.eu/LoA/high",
];

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("{}", .0.detail())]
    Rule(RuleError),
    #[error("the time is already taken")]
    SlotTaken,
    #[error("no such resource")]
    NoResource,
    #[error("no such reservation")]
    NoReservation,
    #[error("no such appointment type for this resource")]
    NoType,
    #[error("this resource requires strong identification")]
    StrongAuth,
    #[error("the reservation is {0} and cannot be changed so")]
    WrongState(String),
    #[error("payment: {0}")]
    Payment(String),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("blocking pool")]
    Blocking,
}

impl From<actix_web::error::BlockingError> for BookError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        BookError::Blocking
    }
}

impl From<kuntalaistili_schema::QueryError> for BookError {
    fn from(e: kuntalaistili_schema::QueryError) -> Self {
        BookError::Db(DbError::Query(e))
    }
}

impl From<RuleError> for BookError {
    fn from(e: RuleError) -> Self {
        BookError::Rule(e)
    }
}

/// A booking request.
#[derive(Debug, Clone)]
pub struct Request {
    pub resource_id: String,
    pub begins: NaiveDateTime,
    /// Ignored for appointments with a type (the type gives the length).
    pub ends: NaiveDateTime,
    pub appt_type: Option<String>,
    pub purpose: String,
}

/// Books for a resident. The rules are checked against the resource; the database refuses a
/// time another active reservation holds (`SlotTaken`).
pub async fn book(
    b: &Booking,
    who: &Who,
    rq: Request,
) -> Result<(Reservation, Resource), BookError> {
    let (db, kind, minutes) = (b.kit.db.clone(), b.kind, b.payment_minutes);
    let who2 = who.clone();
    let (r, res) = web::block(move || -> Result<(Reservation, Resource), BookError> {
        let mut conn = db.conn()?;
        let res = store::resource(&mut conn, &rq.resource_id)?
            .filter(|r| r.kind == kind)
            .ok_or(BookError::NoResource)?;
        if res.auth_level == "strong"
            && !who2.acr.as_deref().is_some_and(|a| STRONG_ACR.contains(&a))
        {
            return Err(BookError::StrongAuth);
        }
        let (mut begins, mut ends) = (rq.begins, rq.ends);
        if let Some(t) = &rq.appt_type {
            let t = store::appt_type(&mut conn, t)?
                .filter(|t| t.resource_id == res.id)
                .ok_or(BookError::NoType)?;
            ends = begins + Duration::minutes(i64::from(t.minutes));
        } else if kind == "appointment" {
            return Err(BookError::NoType);
        }
        begins = begins.with_nanosecond_zero();
        ends = ends.with_nanosecond_zero();
        let now = kuntalaistili_schema::now_utc();
        let day = engine::local_date(begins);
        let hours = store::hours_of(&mut conn, &res.id)?;
        let exceptions = store::exceptions_between(&mut conn, &res.id, day, day)?;
        engine::check_booking(&res, &hours, &exceptions, begins, ends, now)?;
        let price = engine::price(&res, begins, ends);
        let (state, expires) = if res.manual_approval {
            ("requires_handling", None)
        } else if price > 0 {
            (
                "waiting_for_payment",
                Some(now + Duration::minutes(minutes)),
            )
        } else {
            ("confirmed", None)
        };
        let [_, _, blocked_from, blocked_until] = engine::blocked(&res, begins, ends);
        let r = Reservation {
            id: uuid::Uuid::new_v4().to_string(),
            resource_id: res.id.clone(),
            sub: Some(who2.sub.clone()),
            kind: "resident".into(),
            series_id: None,
            appt_type_id: rq.appt_type.clone(),
            state: state.into(),
            begins_at: begins,
            ends_at: ends,
            blocked_from,
            blocked_until,
            purpose: rq.purpose.chars().take(500).collect(),
            price_cents: price,
            vat_basis_points: res.vat_basis_points,
            language: who2.lang.clone(),
            message: None,
            expires_at: expires,
            reminded_at: None,
            created_at: now,
            updated_at: now,
        };
        match store::book(&mut conn, &r, Some(res.max_per_resident), now) {
            Ok(()) => Ok((r, res)),
            Err(DbError::Conflict("slot")) => Err(BookError::SlotTaken),
            Err(DbError::Conflict("limit")) => {
                Err(BookError::Rule(RuleError::Limit(res.max_per_resident)))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await??;
    b.live.changed(&r.resource_id);
    let event = match r.state.as_str() {
        "requires_handling" => "received",
        "waiting_for_payment" => "payment",
        _ => "confirmed",
    };
    notify(b, &r, &res, event);
    Ok((r, res))
}

trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl NoNanos for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// A reservation with its resource, when it belongs to this service (and to `sub`, if given).
pub async fn load(
    b: &Booking,
    id: &str,
    sub: Option<&str>,
) -> Result<(Reservation, Resource), BookError> {
    let (db, id, kind) = (b.kit.db.clone(), id.to_owned(), b.kind);
    let sub = sub.map(str::to_owned);
    web::block(move || -> Result<_, BookError> {
        let mut conn = db.conn()?;
        let r = store::find(&mut conn, &id)?.ok_or(BookError::NoReservation)?;
        if sub.is_some() && r.sub != sub {
            return Err(BookError::NoReservation);
        }
        let res = store::resource(&mut conn, &r.resource_id)?
            .filter(|x| x.kind == kind)
            .ok_or(BookError::NoReservation)?;
        Ok((r, res))
    })
    .await?
}

/// The resident cancels their own reservation: unpaid or unhandled ones at any time before the
/// start, confirmed ones until the cancellation deadline; a paid one is refunded.
pub async fn cancel_by_resident(
    b: &Booking,
    sub: &str,
    id: &str,
) -> Result<Reservation, BookError> {
    let (r, res) = load(b, id, Some(sub)).await?;
    if !r.is_active() {
        return Err(BookError::WrongState(r.state));
    }
    let now = kuntalaistili_schema::now_utc();
    if r.begins_at <= now {
        return Err(BookError::Rule(RuleError::InPast));
    }
    if r.state == "confirmed" {
        engine::check_cancel(&res, r.begins_at, now)?;
    }
    finish(b, &r, &res, "cancelled", Some("resident")).await
}

/// Staff end a reservation (`cancelled`, with a message) or refuse a request (`denied`).
pub async fn end_by_staff(
    b: &Booking,
    id: &str,
    to: &'static str,
    message: &str,
) -> Result<Reservation, BookError> {
    let (r, res) = load(b, id, None).await?;
    if !r.is_active() {
        return Err(BookError::WrongState(r.state));
    }
    finish(b, &r, &res, to, Some(message)).await
}

/// Moves an active reservation to `to` (`cancelled`, `denied`), refunds what was paid, tells
/// everyone.
async fn finish(
    b: &Booking,
    r: &Reservation,
    res: &Resource,
    to: &'static str,
    message: Option<&str>,
) -> Result<Reservation, BookError> {
    let (db, id) = (b.kit.db.clone(), r.id.clone());
    let msg = message.map(str::to_owned);
    let (done, paid) = web::block(move || -> Result<_, BookError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        let done = store::transition(
            &mut conn,
            &id,
            &store::ACTIVE,
            to,
            msg.as_deref(),
            None,
            now,
        )?;
        // Payments still open end with it; a paid one is refunded below.
        let mut paid = None;
        for o in orders::of_reservation(&mut conn, &id)? {
            match o.state.as_str() {
                "created" | "pending" => {
                    orders::transition(
                        &mut conn,
                        &o.id,
                        &["created", "pending"],
                        "cancelled",
                        now,
                    )?;
                }
                "paid" => paid = Some(o),
                _ => {}
            }
        }
        Ok((done, paid))
    })
    .await??;
    let Some(done) = done else {
        return Err(BookError::WrongState(r.state.clone()));
    };
    b.live.changed(&done.resource_id);
    notify(
        b,
        &done,
        res,
        if to == "denied" {
            "denied"
        } else {
            "cancelled"
        },
    );
    if let Some(order) = paid {
        payments::refund(b, &done, res, &order).await;
    }
    Ok(done)
}

/// Staff approve a request: to payment when it costs, else confirmed.
pub async fn approve(b: &Booking, id: &str, message: &str) -> Result<Reservation, BookError> {
    let (r, res) = load(b, id, None).await?;
    if r.state != "requires_handling" {
        return Err(BookError::WrongState(r.state));
    }
    let now = kuntalaistili_schema::now_utc();
    let (to, expires) = if r.price_cents > 0 {
        (
            "waiting_for_payment",
            Some(now + Duration::minutes(b.payment_minutes)),
        )
    } else {
        ("confirmed", None)
    };
    let (db, rid, msg) = (b.kit.db.clone(), r.id.clone(), message.to_owned());
    let done = web::block(move || {
        store::transition(
            &mut *db.conn()?,
            &rid,
            &["requires_handling"],
            to,
            (!msg.is_empty()).then_some(msg.as_str()),
            expires,
            now,
        )
    })
    .await??
    .ok_or(BookError::WrongState(r.state.clone()))?;
    b.live.changed(&done.resource_id);
    notify(
        b,
        &done,
        &res,
        if to == "confirmed" {
            "confirmed"
        } else {
            "payment"
        },
    );
    Ok(done)
}

/// Reminds residents of their appointments starting within the next 24 hours (once each).
pub async fn send_reminders(b: &Booking) {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let due = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        let mut out = Vec::new();
        for (r, res) in store::due_reminders(&mut conn, kind, now, now + Duration::hours(24))? {
            if store::mark_reminded(&mut conn, &r.id, now)? {
                out.push((r, res));
            }
        }
        Ok(out)
    })
    .await;
    if let Ok(Ok(list)) = due {
        for (r, res) in list {
            notify(b, &r, &res, "reminder");
        }
    }
}

/// Moves an appointment to another time (same rules as a new booking; the database refuses a
/// taken time).
pub async fn reschedule(
    b: &Booking,
    sub: &str,
    id: &str,
    begins: NaiveDateTime,
) -> Result<Reservation, BookError> {
    let (r, res) = load(b, id, Some(sub)).await?;
    if !r.is_active() {
        return Err(BookError::WrongState(r.state));
    }
    // A time staff approved is not moved by the resident alone.
    if res.manual_approval {
        return Err(BookError::Rule(RuleError::NoReschedule));
    }
    let now = kuntalaistili_schema::now_utc();
    engine::check_cancel(&res, r.begins_at, now)?;
    let begins = begins.with_nanosecond_zero();
    let ends = begins + (r.ends_at - r.begins_at);
    let (db, rid, res2) = (b.kit.db.clone(), r.id.clone(), res.clone());
    let done = web::block(move || -> Result<_, BookError> {
        let mut conn = db.conn()?;
        let day = engine::local_date(begins);
        let hours = store::hours_of(&mut conn, &res2.id)?;
        let exceptions = store::exceptions_between(&mut conn, &res2.id, day, day)?;
        engine::check_booking(&res2, &hours, &exceptions, begins, ends, now)?;
        match store::reschedule(&mut conn, &rid, engine::blocked(&res2, begins, ends), now) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(BookError::NoReservation),
            Err(DbError::Conflict("slot")) => Err(BookError::SlotTaken),
            Err(e) => Err(e.into()),
        }
    })
    .await??;
    b.live.changed(&done.resource_id);
    notify(b, &done, &res, "rescheduled");
    Ok(done)
}

fn audit(b: &Booking, event: &'static str, r: &Reservation, details: serde_json::Value) {
    let kit = b.kit.clone();
    let (sub, rid) = (r.sub.clone(), r.id.clone());
    actix_web::rt::spawn(async move {
        let mut d = details;
        d["reservation"] = json!(rid);
        if let Err(e) = kit.rp.audit(event, sub.as_deref(), d).await {
            tracing::error!(event, error = %e, "writing an audit event failed");
        }
    });
}

//! What happens to a reservation: booking (rules checked here, overlaps refused by the database),
//! cancelling (within the deadline; a paid reservation is refunded), handling by staff, paying
//! (idempotent on the provider's answers), expiring unpaid ones, reminders. Every state change
//! tells open calendars (live) and the resident: a notice on their notice board and a message in
//! their language (the IdP's message API picks the channels they prefer).

use std::collections::BTreeMap;

use actix_web::web;
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_connectors::payments::{NewPayment, PayError, Refund, Status};
use kuntalaistili_schema::payments::{self as orders, PayOrder};
use kuntalaistili_schema::pool::write_tx;
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
        refund(b, &done, res, &order).await;
    }
    Ok(done)
}

/// Refunds a paid order in whole and records it; a failure is logged for staff to follow up.
/// Refunds a paid order in whole. The order is claimed first (`paid → refunding`), so two paths
/// that find it paid (a cancel and a late bank answer) never refund twice; a refund the provider
/// refuses stays `refunding` and is tried again by the sweep ([`refunds_due`]), audited each time.
async fn refund(b: &Booking, r: &Reservation, res: &Resource, order: &PayOrder) {
    let (db, id) = (b.kit.db.clone(), order.id.clone());
    let now = kuntalaistili_schema::now_utc();
    let from: &'static [&'static str] = if order.state == "refunding" {
        &["refunding"]
    } else {
        &["paid"]
    };
    let claimed = web::block(move || -> Result<bool, DbError> {
        let mut conn = db.conn()?;
        // A stale claim is taken over by touching it (its updated_at moves on).
        orders::transition(&mut conn, &id, from, "refunding", now)
    })
    .await;
    if !matches!(claimed, Ok(Ok(true))) {
        return;
    }
    let Some(tx) = order.transaction_id.clone() else {
        tracing::error!(order = %order.id, "a paid order without the provider's transaction: staff must refund by hand");
        let (db, id) = (b.kit.db.clone(), order.id.clone());
        let _ = web::block(move || {
            orders::transition(&mut *db.conn()?, &id, &["refunding"], "refund_failed", now)
        })
        .await;
        audit(
            b,
            "payment.refund_failed",
            r,
            json!({ "order": order.id, "error": "no transaction id" }),
        );
        return;
    };
    let rf = Refund {
        amount_cents: order.amount_cents,
        refund_stamp: format!("{}-refund", order.id),
        callback_success_url: b.kit.cfg.url("/payments/refund-callback"),
        callback_cancel_url: b.kit.cfg.url("/payments/refund-callback"),
    };
    match b.pay.refund(&tx, &rf).await {
        Ok(()) => {
            let (db, id) = (b.kit.db.clone(), order.id.clone());
            let now = kuntalaistili_schema::now_utc();
            let moved = web::block(move || {
                orders::transition(&mut *db.conn()?, &id, &["refunding"], "refunded", now)
            })
            .await;
            if matches!(moved, Ok(Ok(true))) {
                notify_with(
                    b,
                    r,
                    res,
                    "refunded",
                    [("amount", engine::euros(order.amount_cents))],
                );
                audit(
                    b,
                    "payment.refunded",
                    r,
                    json!({ "order": order.id, "amount_cents": order.amount_cents }),
                );
            }
        }
        Err(e) => {
            tracing::error!(order = %order.id, error = %e, "refund failed; it is tried again");
            audit(
                b,
                "payment.refund_failed",
                r,
                json!({ "order": order.id, "error": e.to_string() }),
            );
        }
    }
}

/// Refunds what is owed and not yet refunded: paid orders of reservations that ended (a cancel
/// interrupted before its refund, a late payment) and refunds claimed over a minute ago that did
/// not finish. Run by the sweep on every node (the claim keeps them from refunding twice).
pub async fn refunds_due(b: &Booking) {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let due = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let stale = kuntalaistili_schema::now_utc() - Duration::minutes(1);
        let mut out = Vec::new();
        let mut owed = orders::refunds_due(&mut conn, stale)?;
        // A reservation paid twice (two tabs) keeps the first payment; the others go back.
        owed.extend(orders::duplicates_due(&mut conn)?);
        for o in owed {
            let Some(r) = store::find(&mut conn, &o.reservation_id)? else {
                continue;
            };
            let Some(res) = store::resource(&mut conn, &r.resource_id)?.filter(|x| x.kind == kind)
            else {
                continue;
            };
            out.push((o, r, res));
        }
        Ok(out)
    })
    .await;
    if let Ok(Ok(list)) = due {
        for (o, r, res) in list {
            refund(b, &r, &res, &o).await;
        }
    }
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

/// Starts paying a reservation that waits for payment: a payment order and the provider's page.
pub async fn start_payment(
    b: &Booking,
    sub: &str,
    email: Option<&str>,
    id: &str,
) -> Result<String, BookError> {
    let (r, res) = load(b, id, Some(sub)).await?;
    let now = kuntalaistili_schema::now_utc();
    if r.state != "waiting_for_payment" || r.expires_at.is_some_and(|e| e < now) {
        return Err(BookError::WrongState(r.state));
    }
    // A payment already open at the provider is continued (a second tab, the back button), not
    // started again: one reservation, one payment.
    let (db, rid) = (b.kit.db.clone(), r.id.clone());
    let open = web::block(move || orders::of_reservation(&mut *db.conn()?, &rid)).await??;
    if let Some(href) = open
        .into_iter()
        .find(|o| o.state == "pending" && o.provider == b.pay.name())
        .and_then(|o| o.href)
    {
        return Ok(href);
    }
    let order = PayOrder {
        id: uuid::Uuid::new_v4().to_string(),
        reservation_id: r.id.clone(),
        sub: sub.to_owned(),
        provider: b.pay.name().to_owned(),
        amount_cents: r.price_cents,
        vat_basis_points: r.vat_basis_points,
        description: format!(
            "{} {}",
            res.name(&r.language),
            engine::local_span(r.begins_at, r.ends_at)
        ),
        state: "created".into(),
        transaction_id: None,
        href: None,
        created_at: now,
        updated_at: now,
        paid_at: None,
        refunded_at: None,
    };
    let (db, o) = (b.kit.db.clone(), order.clone());
    web::block(move || orders::insert(&mut *db.conn()?, &o)).await??;
    let np = NewPayment {
        stamp: order.id.clone(),
        reference: r.id.clone(),
        amount_cents: order.amount_cents,
        vat_basis_points: order.vat_basis_points,
        description: order.description.clone(),
        product_code: res.id.clone(),
        language: r.language.to_uppercase(),
        email: email.map(str::to_owned),
        success_url: b.kit.cfg.url("/payments/return"),
        cancel_url: b.kit.cfg.url("/payments/return"),
        callback_success_url: Some(b.kit.cfg.url("/payments/callback")),
        callback_cancel_url: Some(b.kit.cfg.url("/payments/callback")),
    };
    let created = b
        .pay
        .create(&np)
        .await
        .map_err(|e| BookError::Payment(e.to_string()))?;
    let (db, oid, tx, href) = (
        b.kit.db.clone(),
        order.id.clone(),
        created.transaction_id.clone(),
        created.href.clone(),
    );
    web::block(move || orders::set_pending(&mut *db.conn()?, &oid, &tx, &href, now)).await??;
    Ok(created.href)
}

/// What a provider's answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paid {
    /// The reservation is confirmed (now or by an earlier copy of the answer).
    Confirmed(String),
    /// The payment was cancelled or failed; the reservation still waits (until it expires).
    NotPaid(String),
    /// Paid after the reservation had ended: refunded.
    Refunded(String),
    /// Still pending at the bank.
    Pending(String),
}

/// Applies a provider's redirect or callback (query parameters). A bad signature is refused and
/// audited; the same answer twice changes nothing the second time.
pub async fn payment_answer(
    b: &Booking,
    params: Vec<(String, String)>,
    channel: &'static str,
) -> Result<Paid, BookError> {
    let v = match b.pay.verify(&params) {
        Ok(v) => v,
        Err(e) => {
            let reason = match &e {
                PayError::Signature(r) => *r,
                _ => "unverifiable",
            };
            tracing::warn!(channel, reason, "payment answer refused");
            let rp = b.kit.clone();
            let stamp = params
                .iter()
                .find(|(k, _)| k == "checkout-stamp")
                .map(|(_, v)| v.chars().take(64).collect::<String>());
            actix_web::rt::spawn(async move {
                if let Err(e) = rp
                    .rp
                    .audit(
                        "payment.answer_refused",
                        None,
                        json!({ "channel": channel, "reason": reason, "stamp": stamp }),
                    )
                    .await
                {
                    tracing::error!(error = %e, "auditing a refused payment answer failed");
                }
            });
            return Err(BookError::Payment(e.to_string()));
        }
    };
    let (db, stamp, status, amount, tx) = (
        b.kit.db.clone(),
        v.stamp.clone(),
        v.status,
        v.amount_cents,
        v.transaction_id.clone(),
    );
    let outcome = web::block(move || -> Result<_, BookError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        // The order and its reservation move together: a failure in between leaves both as
        // they were, and the provider's retry finds them so.
        let (moved, confirmed, order_id) = write_tx(&mut conn, |c| -> Result<_, BookError> {
            let order = orders::find(c, &stamp)?.ok_or(BookError::NoReservation)?;
            if amount.is_some_and(|a| a != order.amount_cents) {
                return Err(BookError::Payment(
                    "the paid amount differs from the order".into(),
                ));
            }
            let moved = match status {
                // The bank says it is paid: recorded even when the order had already expired or
                // been cancelled here (the payer finished at the bank late); refunded below.
                Status::Ok => orders::transition_in(
                    c,
                    &order.id,
                    &["created", "pending", "expired", "cancelled"],
                    "paid",
                    now,
                )?,
                Status::Fail => {
                    orders::transition_in(c, &order.id, &["created", "pending"], "cancelled", now)?
                }
                Status::Pending => false,
            };
            let mut confirmed = false;
            if status == Status::Ok && (moved || order.state == "paid") {
                orders::set_transaction_in(c, &order.id, &tx)?;
                // Only while it still waits and its payment time has not run out.
                confirmed = store::confirm_paid_in(c, &order.reservation_id, now)?;
            }
            Ok((moved, confirmed, order.id))
        })?;
        let order = orders::find(&mut conn, &order_id)?.ok_or(BookError::NoReservation)?;
        // A second payment of a reservation that another payment holds owes its money back.
        let duplicate =
            !confirmed && order.state == "paid" && orders::is_duplicate_in(&mut conn, &order)?;
        let r = store::find(&mut conn, &order.reservation_id)?.ok_or(BookError::NoReservation)?;
        let res = store::resource(&mut conn, &r.resource_id)?.ok_or(BookError::NoResource)?;
        Ok((moved, confirmed, duplicate, order, r, res))
    })
    .await??;
    let (moved, confirmed, duplicate, order, r, res) = outcome;
    if moved {
        audit(
            b,
            if order.state == "paid" {
                "payment.paid"
            } else {
                "payment.cancelled"
            },
            &r,
            json!({ "order": order.id, "channel": channel, "provider": b.pay.name(), "amount_cents": order.amount_cents }),
        );
    }
    if confirmed {
        b.live.changed(&r.resource_id);
        notify(b, &r, &res, "confirmed");
    } else if order.state == "paid" && (r.state != "confirmed" || duplicate) {
        // Paid, but the reservation had ended (expired or cancelled) or was paid already by
        // another payment: money back.
        refund(b, &r, &res, &order).await;
        return Ok(if r.state == "confirmed" {
            Paid::Confirmed(r.id)
        } else {
            Paid::Refunded(r.id)
        });
    }
    Ok(match (order.state.as_str(), r.state.as_str()) {
        ("paid", "confirmed") => Paid::Confirmed(r.id),
        ("refunded", _) => Paid::Refunded(r.id),
        (_, _) if status == Status::Pending => Paid::Pending(r.id),
        _ => Paid::NotPaid(r.id),
    })
}

/// Ends reservations whose payment time ran out: their slots free at once, open payments expire.
pub async fn expire_unpaid(b: &Booking) {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let ended = web::block(move || -> Result<Vec<(Reservation, Resource)>, DbError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        let mut out = Vec::new();
        for r in store::expired_unpaid(&mut conn, now)? {
            let Some(res) = store::resource(&mut conn, &r.resource_id)?.filter(|x| x.kind == kind)
            else {
                continue;
            };
            if let Some(done) = store::transition(
                &mut conn,
                &r.id,
                &["waiting_for_payment"],
                "cancelled",
                Some("payment_expired"),
                None,
                now,
            )? {
                for o in orders::of_reservation(&mut conn, &r.id)? {
                    orders::transition(&mut conn, &o.id, &["created", "pending"], "expired", now)?;
                }
                out.push((done, res));
            }
        }
        Ok(out)
    })
    .await;
    match ended {
        Ok(Ok(list)) => {
            for (r, res) in list {
                b.live.changed(&r.resource_id);
                notify(b, &r, &res, "expired");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "expiring unpaid reservations failed"),
        Err(e) => tracing::warn!(error = %e, "expiring unpaid reservations could not run"),
    }
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

/// Tells the resident about `event`: see [`notify_with`].
pub fn notify(b: &Booking, r: &Reservation, res: &Resource, event: &'static str) {
    notify_with(b, r, res, event, []);
}

/// Queues a notice to the resident's notice board (in the language they booked in) and a message
/// through the IdP (in their register language, on their channels other than the notice board) in
/// the service's outbox; [`deliver`] sends them, retrying until the notice board and the message
/// API have taken them (both are idempotent on the key, so a repeat is harmless).
pub fn notify_with<const N: usize>(
    b: &Booking,
    r: &Reservation,
    res: &Resource,
    event: &'static str,
    extra: [(&'static str, String); N],
) {
    let Some(sub) = r.sub.clone() else { return };
    let prefix = if b.kind == "appointment" {
        "appointment"
    } else {
        "reservation"
    };
    let template = format!("{prefix}_{event}");
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    params.insert("resource".into(), res.name(&r.language).to_owned());
    params.insert("service".into(), res.name(&r.language).to_owned());
    params.insert("place".into(), res.name(&r.language).to_owned());
    params.insert("time".into(), engine::local_span(r.begins_at, r.ends_at));
    params.insert("amount".into(), engine::euros(r.price_cents));
    params.insert(
        "reason".into(),
        r.message.clone().unwrap_or_else(|| "-".into()),
    );
    for (k, v) in extra {
        params.insert(k.into(), v);
    }
    let status = match event {
        "received" => "received",
        "payment" => "waiting",
        "confirmed" | "denied" => "decided",
        _ => "info",
    };
    let texts = kuntalaistili_connectors::messaging::templates::all()
        .ok()
        .and_then(|all| all.get(&template))
        .map(|t| t.text(&r.language).clone());
    let Some(text) = texts else {
        tracing::error!(%template, "no message template");
        return;
    };
    use kuntalaistili_connectors::messaging::templates::fill;
    let (Ok(title), Ok(body)) = (fill(&text.subject, &params), fill(&text.body, &params)) else {
        tracing::error!(%template, "message template parameters missing");
        return;
    };
    let link = b.kit.cfg.url("/mine");
    let https_link = link.starts_with("https://").then_some(link);
    let key = format!(
        "{}:{event}:{}",
        r.id,
        r.updated_at.and_utc().timestamp_micros()
    );
    let notice = json!({
        "sub": sub,
        "idempotency_key": key,
        "service": kit_name(b.kit.cfg.service, &r.language),
        "title": title,
        "body": body,
        "link": https_link,
        "status": status,
    });
    let message = json!({
        "sub": sub,
        "idempotency_key": key,
        "template": template,
        "params": params,
        "link": https_link,
        "channels": ["email", "sms"],
    });
    let now = kuntalaistili_schema::now_utc();
    let rows: Vec<store::Outgoing> = [("notice", notice), ("message", message)]
        .into_iter()
        .map(|(channel, body)| store::Outgoing {
            id: uuid::Uuid::new_v4().to_string(),
            service: b.kit.cfg.service.to_owned(),
            channel: channel.into(),
            body: body.to_string(),
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        })
        .collect();
    let (db, wake) = (b.kit.db.clone(), b.wake.clone());
    actix_web::rt::spawn(async move {
        match web::block(move || store::outbox_add(&mut *db.conn()?, &rows)).await {
            Ok(Ok(())) => wake.notify_one(),
            Ok(Err(e)) => tracing::error!(error = %e, "queuing a notice and a message failed"),
            Err(e) => tracing::error!(error = %e, "queuing a notice and a message could not run"),
        }
    });
}

/// Attempts before an undeliverable notice or message is given up (logged as an error).
const MAX_ATTEMPTS: i32 = 12;

/// Sends what the outbox holds that is due: notices to the notice board of the IdP's server,
/// messages to the IdP's message API, with the service's own client-credentials token. A refusal
/// that will not change (4xx) ends the row with an error in the log; anything else is retried
/// with backoff (5 s doubling, at most an hour).
pub async fn deliver(b: &Booking) {
    loop {
        let (db, service) = (b.kit.db.clone(), b.kit.cfg.service);
        let now = kuntalaistili_schema::now_utc();
        let due =
            match web::block(move || store::outbox_due(&mut *db.conn()?, service, now, 50)).await {
                Ok(Ok(rows)) if !rows.is_empty() => rows,
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the booking outbox failed");
                    return;
                }
                Err(_) => return,
            };
        for row in due {
            let body: serde_json::Value = serde_json::from_str(&row.body).unwrap_or_default();
            let (scope, url) = if row.channel == "notice" {
                (
                    "notices:write",
                    format!("{}{}", b.kit.cfg.issuer, crate::noticeboard::API),
                )
            } else {
                ("messages:send", b.kit.rp.idp_url("/api/v1/messages"))
            };
            // 422 from the message API: the resident takes no email or SMS (the notice reached
            // them); 404: the resident no longer exists.
            let outcome = b.kit.rp.post_as_service(scope, &url, &body).await;
            let done = match outcome {
                Ok(200..=299 | 422) => true,
                Ok(s @ 400..=499) if s != 408 && s != 429 => {
                    tracing::error!(channel = %row.channel, status = s, "a notice or message was refused for good");
                    true
                }
                Ok(s) => {
                    tracing::warn!(channel = %row.channel, status = s, "a notice or message will be retried");
                    false
                }
                Err(e) => {
                    tracing::warn!(channel = %row.channel, error = %e, "a notice or message will be retried");
                    false
                }
            };
            let attempts = row.attempts + 1;
            if !done && attempts >= MAX_ATTEMPTS {
                tracing::error!(channel = %row.channel, "a notice or message could not be delivered; given up");
            }
            let db = b.kit.db.clone();
            let id = row.id.clone();
            let saved = web::block(move || -> Result<(), DbError> {
                let mut conn = db.conn()?;
                if done || attempts >= MAX_ATTEMPTS {
                    store::outbox_done(&mut conn, &id)
                } else {
                    let wait = 5i64.saturating_mul(1 << attempts.min(10)).min(3600);
                    let next = kuntalaistili_schema::now_utc() + Duration::seconds(wait);
                    store::outbox_retry(&mut conn, &id, attempts, next)
                }
            })
            .await;
            if !matches!(saved, Ok(Ok(()))) {
                tracing::warn!("recording a delivery in the booking outbox failed");
                return;
            }
        }
    }
}

/// The service name residents see on notices, in their language.
fn kit_name(service: &str, lang: &str) -> &'static str {
    match (service, lang) {
        ("appointments", "sv") => "Tidsbokning",
        ("appointments", "en") => "Appointments",
        ("appointments", _) => "Ajanvaraus",
        (_, "sv") => "Lokalbokning",
        (_, "en") => "Facility reservation",
        _ => "Tilavaraus",
    }
}

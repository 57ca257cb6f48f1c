//! Paying a reservation: starting a payment at the provider (one open payment per reservation),
//! applying the provider's answers (idempotent; a bad signature is refused and audited), expiring
//! reservations whose payment time ran out, and refunds (claimed first, so never paid back twice;
//! a refused refund is retried by the sweep).

use actix_web::web;
use chrono::Duration;
use kuntalaistili_connectors::payments::{NewPayment, PayError, Refund, Status};
use kuntalaistili_schema::payments::{self as orders, PayOrder};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::reservations::{self as store, Reservation, Resource};
use kuntalaistili_schema::DbError;
use serde_json::json;

use super::super::engine;
use super::super::Booking;
use super::outbox::{notify, notify_with};
use super::{audit, load, BookError};

/// Refunds a paid order in whole. The order is claimed first (`paid → refunding`), so two paths
/// that find it paid (a cancel and a late bank answer) never refund twice; a refund the provider
/// refuses stays `refunding` and is tried again by the sweep ([`refunds_due`]), audited each time.
pub(super) async fn refund(b: &Booking, r: &Reservation, res: &Resource, order: &PayOrder) {
    let (db, id) = (b.kit.db.clone(), order.id.clone());
    let now = kuntalaistili_schema::now_utc();
    let (stale, seen) = (order.state == "refunding", order.updated_at);
    let claimed = web::block(move || -> Result<bool, DbError> {
        let mut conn = db.conn()?;
        if stale {
            // A stale claim is taken over only as it was seen (its updated_at moves on).
            orders::reclaim_refund(&mut conn, &id, seen, now)
        } else {
            orders::transition(&mut conn, &id, &["paid"], "refunding", now)
        }
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

//! The outbox of a booking service: each state change queues a notice to the resident's notice
//! board and a message through the IdP's message API, and [`deliver`] sends them, retrying with
//! backoff until they are taken or given up (both ends are idempotent on the key).

use std::collections::BTreeMap;

use actix_web::web;
use chrono::Duration;
use kuntalaistili_schema::reservations::{self as store, Reservation, Resource};
use kuntalaistili_schema::DbError;
use serde_json::json;

use super::super::engine;
use super::super::Booking;

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

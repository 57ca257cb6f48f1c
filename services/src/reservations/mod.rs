//! Facility reservation (`/services/reservations`), in the model of Helsinki's Varaamo: units with
//! facilities, opening hours (weekly periods and exceptions), slots, buffers, advance limits,
//! per-resident limits, manual approval or direct confirmation, prices; reservations move
//! `requires_handling → waiting_for_payment → confirmed`, or end `denied` / `cancelled`.
//!
//! The same booking engine serves appointment booking (`crate::appointments`): a [`Booking`] is
//! one such service (its kit, its kind of resources, its payments and live updates).
//!
//! - `engine`: the rules (opening hours in Europe/Helsinki, slots, checks, prices).
//! - `flows`: booking, cancelling, handling, paying, expiring — each state change also posts a
//!   notice to the resident's notice board and a message in their language.
//! - `api`: the JSON API (bearer access token of the IdP with the service's scope).
//! - `pages`: residents' pages (search, week calendar, own reservations, payment).
//! - `manage`: staff pages (requests to handle, unit calendar, reports, blocks and series).
//! - `live`: server-sent events to open calendars; `ical`: RFC 5545 feeds.

pub mod api;
pub mod engine;
pub mod flows;
pub mod ical;
pub mod live;
pub mod manage;
pub mod pages;

use std::sync::Arc;

use actix_web::web;
use kuntalaistili_connectors::payments::Provider;

use crate::kit::Kit;

pub const BASE: &str = "/services/reservations";
/// Scope of a resident's access token for the JSON API.
pub const SCOPE: &str = "reservations";
/// The access-rights service and function of staff.
pub const AUTHZ_SERVICE: &str = "reservations";
pub const AUTHZ_MANAGE: &str = "manage";
/// Scope of a resident's access token for appointment booking's JSON API (the `appointment`
/// kind); `crate::appointments` re-exports it as its `SCOPE`.
pub const APPOINTMENTS_SCOPE: &str = "appointments";
/// The access-rights service of appointment booking's staff; `crate::appointments` re-exports it
/// as its `AUTHZ_SERVICE`.
pub const APPOINTMENTS_AUTHZ_SERVICE: &str = "appointments";

/// One booking service: facility reservation or appointment booking.
pub struct Booking {
    pub kit: web::Data<Kit>,
    /// `facility` or `appointment`: the resources this service books.
    pub kind: &'static str,
    /// The resident token scope of its API.
    pub scope: &'static str,
    /// The access-rights service whose `manage` function staff need.
    pub authz_service: &'static str,
    pub pay: Arc<dyn Provider>,
    pub live: live::Live,
    /// Minutes an unpaid reservation keeps its slot.
    pub payment_minutes: i64,
    /// Wakes the outbox delivery when something was queued.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Booking {
    /// The booking service of `kind` (`facility`: reservations, `appointment`: appointments),
    /// with its scope and access-rights service.
    pub fn new(
        kit: web::Data<Kit>,
        kind: &'static str,
        pay: Arc<dyn Provider>,
        payment_minutes: i64,
    ) -> Booking {
        let (scope, authz_service) = if kind == "appointment" {
            (APPOINTMENTS_SCOPE, APPOINTMENTS_AUTHZ_SERVICE)
        } else {
            (SCOPE, AUTHZ_SERVICE)
        };
        Booking {
            kit,
            kind,
            scope,
            authz_service,
            pay,
            live: Default::default(),
            payment_minutes,
            wake: Default::default(),
        }
    }

    pub fn base(&self) -> &'static str {
        self.kit.cfg.base_path
    }

    /// Whether the resident may manage this service's resources (asked at the moment of use).
    pub async fn may_manage(&self, sub: &str, probe: bool) -> Result<bool, crate::kit::RpError> {
        self.kit
            .rp
            .may(sub, self.authz_service, AUTHZ_MANAGE, probe)
            .await
    }
}

/// Mounts facility reservation: kit routes, pages, staff pages, the API, live updates, feeds and
/// the payment return/callback; starts the task that expires unpaid reservations.
pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    crate::kit::configure(cfg, booking.kit.clone());
    api::configure(cfg, booking.clone());
    pages::configure(cfg, booking.clone());
    manage::configure(cfg, booking.clone());
    live::configure(cfg, booking.clone());
    ical::configure(cfg, booking);
}

/// Every `seconds`, expires unpaid reservations whose payment time ran out (their slots free at
/// once) and, for appointments, sends the reminders that are due; delivers the outbox's notices
/// and messages as soon as they are queued and whenever retries fall due.
pub fn spawn_tasks(booking: web::Data<Booking>, seconds: u64) {
    let b = booking.clone();
    actix_web::rt::spawn(async move {
        let mut tick =
            actix_web::rt::time::interval(std::time::Duration::from_secs(seconds.max(1)));
        loop {
            tick.tick().await;
            flows::expire_unpaid(&b).await;
            flows::refunds_due(&b).await;
            if b.kind == "appointment" {
                flows::send_reminders(&b).await;
            }
        }
    });
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = booking.wake.notified() => {}
            }
            flows::deliver(&booking).await;
        }
    });
}

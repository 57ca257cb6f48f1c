//! Appointment booking (`/services/appointments`): resources that take appointments (a person, a
//! desk, a service point) with weekly schedules, appointment types with their durations, a
//! booking horizon and a cancellation deadline. Residents book, reschedule and cancel; staff with
//! the access right `appointments:manage` see and manage the day/week calendar; reminders go out
//! through the IdP's messaging a day before; iCalendar feeds and live updates as in facility
//! reservation.
//!
//! It runs on the facility reservation's booking engine (`crate::reservations`): the rules,
//! storage (no overlapping appointments, enforced by the database), pages and API are the same
//! code with `kind = "appointment"`, the `appointments` scope and its own OIDC client.

use actix_web::web;

use crate::reservations::Booking;

pub const BASE: &str = "/services/appointments";
/// The access-rights service whose `manage` function staff need.
pub use crate::reservations::APPOINTMENTS_AUTHZ_SERVICE as AUTHZ_SERVICE;
/// Scope of a resident's access token for the JSON API.
pub use crate::reservations::APPOINTMENTS_SCOPE as SCOPE;

/// Mounts appointment booking (same routes as facility reservation under its own base path).
pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    crate::reservations::configure(cfg, booking);
}

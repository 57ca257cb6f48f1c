//! Built-in services, one module folder each, and the `kit` that makes each of them an OpenID
//! Connect relying party of the IdP. Today: `directory` (the sub-region classification and the
//! service catalogue), `noticeboard` (personal notices), `portal` (the front page),
//! `reservations` (facility reservation and the booking engine), `appointments` (appointment
//! booking on that engine) and `testbank` (the built-in test bank's payment page). Services
//! never depend on the `idp` crate: they reach the IdP only over HTTP at its issuer URL.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod appointments;
pub mod directory;
pub mod kit;
pub mod noticeboard;
pub mod portal;
pub mod reservations;
pub mod testbank;

//! Built-in services (to be filled by the portal and service issues): `directory`, `noticeboard`,
//! `reservations`, `appointments`, `forms`, `feedback`, `events`, and the `kit` that makes each of
//! them an OIDC relying party of the IdP. Services never depend on the `idp` crate.
//!
//! Intentionally empty today: nothing here is used yet, and nothing is faked.

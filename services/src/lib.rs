//! Built-in services, one module folder each. So far: `directory` (the Statistics Finland
//! sub-region classification and its public JSON API). With the portal and service issues:
//! `noticeboard`, `reservations`, `appointments`, `forms`, `feedback`, `events`, and the `kit` that
//! makes each of them an OIDC relying party of the IdP. Services never depend on the `idp` crate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod directory;

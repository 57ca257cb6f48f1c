//! Built-in services, one module folder each, and the `kit` that makes each of them an OpenID
//! Connect relying party of the IdP. Today: `directory` (the sub-region classification and the
//! service catalogue), `noticeboard` (personal notices) and `portal` (the front page). Services
//! never depend on the `idp` crate: they reach the IdP only over HTTP at its issuer URL.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod directory;
pub mod kit;
pub mod noticeboard;
pub mod portal;

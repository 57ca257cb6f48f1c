//! The relying-party registry: OIDC clients ([`clients`]) and SAML service providers ([`saml`]),
//! added from metadata (a file, a URL, or a signed federation aggregate), with their settings and
//! the metadata refresh.
//!
//! No HTTP server here; storage goes through `kuntalaistili-schema`, and only [`saml::fetch`] goes
//! out to the network (for metadata).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod clients;
pub mod saml;

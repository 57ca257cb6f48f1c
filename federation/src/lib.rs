//! The relying-party registry. Today: OIDC clients ([`clients`]) created by the operator CLI.
//! With the OIDC and SAML issues: dynamic registration rules, SAML SPs, attribute release and
//! claim mapping per RP, metadata import and refresh.
//!
//! No HTTP here; storage goes through `kuntalaistili-schema`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod clients;
pub mod saml;

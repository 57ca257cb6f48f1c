//! Keys and metadata: the master key and what is derived from it ([`crypto`]), token-signing keys
//! with rotation and the JWKS ([`keys`]). OIDC discovery, IdP SAML metadata and remote metadata
//! validation join here with the OIDC and SAML work.
//!
//! No HTTP here; storage goes through `kuntalaistili-schema`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod crypto;
pub mod keys;
pub mod saml;

//! End-to-end tests: one binary (link time), one module per area. Every flow runs on SQLite and
//! on PostgreSQL (`dual!`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod audit_log;
mod authz;
mod bad_input;
mod browser;
mod cli;
mod directory;
mod interop_apache;
mod interop_oidc;
mod keys;
mod login;
mod messaging;
mod module_cycles;
mod oidc;
mod ops;
mod portal;
mod register;
mod reservations;
mod rest_api;
mod saml;
mod scim;
mod scim_compliance;
mod service_sessions;
mod sessions;
mod storage;
mod tls;
mod token;

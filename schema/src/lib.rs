//! Storage for Kuntalaistili: the diesel schema, models, migrations for SQLite and PostgreSQL, the
//! connection pool ([`Db`]) and the queries the other crates run. One code path serves both
//! backends through [`AnyConnection`]; anything backend-specific lives in [`pool`].
//!
//! This crate owns the database and nothing else: no HTTP, no protocol logic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod audit;
pub mod authz;
pub mod directory;
mod error;
pub mod notices;
pub mod oidc_clients;
pub mod oidc_flows;
pub mod outbox;
pub mod payments;
pub mod pool;
pub mod reservations;
pub mod saml;
pub mod schema;
pub mod service_sessions;
pub mod sessions;
pub mod signing_keys;
pub mod throttle;
pub mod users;

/// The query error other crates meet through [`pool::write_tx`].
pub use diesel::result::Error as QueryError;
pub use error::DbError;
pub use pool::{AnyConnection, Backend, Db, PoolOptions};

/// The current instant in UTC as stored in `TIMESTAMP` columns.
pub fn now_utc() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A stored UTC instant as RFC 3339 to the second (`2026-11-26T08:00:00Z`), for output.
pub fn iso_utc(t: chrono::NaiveDateTime) -> String {
    format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

//! Integrations behind traits, and what they share with the web components. Today: `i18n`, the
//! user-interface languages (fi, sv, en), language negotiation and the translation tables — used
//! by the IdP's pages, the services' pages and (with the messaging connector) messages in each
//! resident's language. `messaging`: channels (email over SMTP, SMS, notice
//! board) and the outbox worker. `payments`: bank payment services behind one trait — a
//! Paytrail-compatible client and a built-in test bank. Still to come: upstream identification.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;
pub mod i18n;
pub mod messaging;
pub mod payments;

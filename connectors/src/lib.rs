//! Integrations behind traits (to be filled by later issues): payments (a Paytrail-compatible
//! provider and a built-in test bank), messaging channels (email over SMTP, SMS, notice board) and
//! upstream identification.
//!
//! Intentionally empty today: nothing here is used yet, and nothing is faked.

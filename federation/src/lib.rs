//! The relying-party registry (to be filled by the OpenID Connect and SAML issues): SAML SPs and
//! OIDC clients, attribute release and claim mapping per RP, metadata import and refresh, dynamic
//! client registration rules, upstream IdPs for brokering.
//!
//! Intentionally empty today: nothing here is used yet, and nothing is faked.

//! The IdP's part of the configuration (the binary loads the whole file and hands this over).

use serde::{Deserialize, Serialize};

use crate::password::PasswordParams;

/// SSO session lifetimes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session ends after this many minutes without activity.
    pub idle_timeout_minutes: i64,
    /// A session ends this many hours after login, active or not.
    pub absolute_timeout_hours: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout_minutes: 60,
            absolute_timeout_hours: 12,
        }
    }
}

/// Login throttling: failures counted per account name and per source address.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Failed logins for one account name within the window before it is blocked.
    pub account_max_failures: i32,
    /// Failed logins from one address within the window before it is blocked.
    pub ip_max_failures: i32,
    /// Length of the counting window in minutes.
    pub window_minutes: i64,
    /// First block in minutes; doubles with every further failure.
    pub block_minutes: i64,
    /// Longest block in minutes.
    pub max_block_minutes: i64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            account_max_failures: 5,
            ip_max_failures: 50,
            window_minutes: 15,
            block_minutes: 1,
            max_block_minutes: 60,
        }
    }
}

/// Everything the IdP needs from the configuration.
#[derive(Debug, Clone)]
pub struct IdpSettings {
    /// Base URL residents and relying parties see (issuer / entity base).
    pub public_url: String,
    /// Cookies are `Secure` and `__Host-` prefixed. True when `public_url` is https; plain http is
    /// for development only, where browsers would drop `Secure` cookies.
    pub secure_cookies: bool,
    pub password: PasswordParams,
    pub session: SessionSettings,
    pub throttle: ThrottleSettings,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// Lifetime of access tokens in seconds.
    pub access_token_seconds: i64,
    /// Lifetime of refresh tokens (and of `offline_access` grants) in days.
    pub refresh_token_days: i64,
    /// Who may register clients at the registration endpoint.
    pub registration: Registration,
    /// Message channels this node can deliver (`email`, `sms`, `notice`).
    pub message_channels: Vec<String>,
    /// Days between a resident's erasure request and the overwriting of their data.
    pub erasure_retention_days: i64,
    /// Extra CA certificates (PEM) for SAML metadata fetched over https.
    pub saml_metadata_ca: Option<Vec<u8>>,
}

/// Dynamic client registration (RFC 7591) policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Disabled,
    /// Anyone may register (clients still need consent from each resident).
    Open,
    /// Only with this initial access token (bearer).
    Token(String),
}

impl IdpSettings {
    pub fn new(public_url: &str) -> IdpSettings {
        let public_url = public_url.trim_end_matches('/').to_owned();
        IdpSettings {
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            password: PasswordParams::default(),
            session: SessionSettings::default(),
            throttle: ThrottleSettings::default(),
            trust_forwarded_for: false,
            access_token_seconds: 900,
            refresh_token_days: 30,
            registration: Registration::Disabled,
            message_channels: vec!["notice".to_owned()],
            erasure_retention_days: 30,
            saml_metadata_ca: None,
        }
    }
}

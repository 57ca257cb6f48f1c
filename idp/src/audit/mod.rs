//! The IdP's audit API: typed event names and a builder over the storage layer's hash-chained
//! log. Events are appended inside the transaction of the change they record. The audit issue
//! extends this (ingest API, browser, statistics); callers keep using [`Event`].

use kuntalaistili_schema::audit::NewEvent;

/// Event types (stable strings: they are stored and exported).
pub mod kind {
    pub const LOGIN_SUCCESS: &str = "login.success";
    pub const LOGIN_FAILURE: &str = "login.failure";
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    pub const LOGOUT: &str = "logout";
    pub const SESSION_ENDED: &str = "session.ended";
    pub const SESSIONS_ENDED_ALL: &str = "session.ended_all";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_PASSWORD_SET: &str = "user.password_set";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_PREFERENCES: &str = "user.preferences_changed";
    pub const USER_EXPORTED: &str = "user.exported";
    pub const USER_UPDATED: &str = "user.updated";
    pub const USER_ERASURE_REQUESTED: &str = "user.erasure_requested";
    pub const USER_ERASED: &str = "user.erased";
    pub const OIDC_AUTHORIZED: &str = "oidc.authorized";
    pub const OIDC_DENIED: &str = "oidc.denied";
    pub const CONSENT_WITHDRAWN: &str = "oidc.consent_withdrawn";
    pub const TOKEN_ISSUED: &str = "oidc.token_issued";
    pub const TOKEN_REPLAY: &str = "oidc.token_replay";
    pub const TOKEN_REVOKED: &str = "oidc.token_revoked";
    pub const NATIONAL_ID_RELEASED: &str = "oidc.national_id_released";
    pub const BACKCHANNEL_LOGOUT: &str = "oidc.backchannel_logout";
    pub const CLIENT_REGISTERED: &str = "client.registered";
    pub const NATIONAL_ID_LOOKUP: &str = "resident.national_id_lookup";
}

/// A security event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event(NewEvent);

impl Event {
    /// A successful event of `kind`.
    pub fn success(kind: &str) -> Event {
        Event::new(kind, "success")
    }

    /// A failed or refused event of `kind`.
    pub fn failure(kind: &str) -> Event {
        Event::new(kind, "failure")
    }

    fn new(kind: &str, outcome: &str) -> Event {
        Event(NewEvent {
            event_type: kind.to_owned(),
            outcome: outcome.to_owned(),
            actor: None,
            subject: None,
            ip: None,
            details: serde_json::json!({}),
        })
    }

    /// Who did it: a user id, `cli`, or a client id.
    pub fn actor(mut self, actor: impl Into<String>) -> Event {
        self.0.actor = Some(actor.into());
        self
    }

    /// Whom it concerns (a user id).
    pub fn subject(mut self, subject: impl Into<String>) -> Event {
        self.0.subject = Some(subject.into());
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Event {
        self.0.ip = ip;
        self
    }

    /// Extra facts (a JSON object). Never passwords, tokens or national ids.
    pub fn details(mut self, details: serde_json::Value) -> Event {
        self.0.details = details;
        self
    }

    pub fn into_new(self) -> NewEvent {
        self.0
    }
}

/// Appends one event on the blocking pool.
pub async fn record(
    state: &actix_web::web::Data<crate::IdpState>,
    event: Event,
) -> Result<(), crate::error::WebError> {
    let st = state.clone();
    actix_web::web::block(move || -> Result<(), crate::error::WebError> {
        kuntalaistili_schema::audit::append(
            &mut *st.db.conn()?,
            event.into_new(),
            kuntalaistili_schema::now_utc(),
        )?;
        Ok(())
    })
    .await?
}

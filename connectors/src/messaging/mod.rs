//! Messaging: channels (email over SMTP, SMS through an HTTP gateway, the personal notice board)
//! behind one dispatcher, and the worker that drains the durable outbox (`message_outbox`):
//! due rows are claimed with a lease, sent, and marked sent, retried with exponential backoff, or
//! failed after the configured attempts. Nothing is lost when the process stops between enqueue
//! and send: a queued row stays due, a row whose lease ran out is due again.

mod email;
mod sms;
pub mod templates;

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::notices::{self, Notice};
use kuntalaistili_schema::outbox::{self, OutboxMessage};
use kuntalaistili_schema::{Db, DbError};
use serde::{Deserialize, Serialize};

pub use email::SmtpConfig;
pub use sms::SmsConfig;

/// `[messaging]` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingConfig {
    /// The From address of email.
    pub from: String,
    /// Email over SMTP; no email channel when absent.
    pub smtp: Option<SmtpConfig>,
    /// SMS through an HTTP gateway; no SMS channel when absent.
    pub sms: Option<SmsConfig>,
    /// Attempts before a message is marked failed.
    pub max_attempts: i32,
    /// First retry delay; doubles with every attempt (at most an hour).
    pub retry_seconds: i64,
    /// How often the worker looks for due messages.
    pub poll_millis: u64,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            from: "Kuntalaistili <noreply@localhost>".to_owned(),
            smtp: None,
            sms: None,
            max_attempts: 5,
            retry_seconds: 30,
            poll_millis: 2000,
        }
    }
}

impl MessagingConfig {
    /// The channels that can deliver with this configuration.
    pub fn available(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.smtp.is_some() {
            c.push("email");
        }
        if self.sms.is_some() {
            c.push("sms");
        }
        c.push("notice");
        c
    }
}

/// Why a delivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (connection refused, timeout, 4xx SMTP, 5xx gateway).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Will never work (bad address, 5xx SMTP, 4xx gateway, channel not configured).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The channels of this node.
pub struct Dispatcher {
    email: Option<email::EmailChannel>,
    sms: Option<sms::SmsChannel>,
    db: Db,
}

impl Dispatcher {
    pub fn new(config: &MessagingConfig, db: Db) -> Result<Dispatcher, String> {
        Ok(Dispatcher {
            email: match &config.smtp {
                Some(s) => Some(email::EmailChannel::new(s, &config.from)?),
                None => None,
            },
            sms: match &config.sms {
                Some(s) => Some(sms::SmsChannel::new(s)?),
                None => None,
            },
            db,
        })
    }

    /// Delivers one message on its channel.
    pub async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        match m.channel.as_str() {
            "email" => match &self.email {
                Some(e) => e.send(m).await,
                None => Err(SendError::Permanent("email is not configured".into())),
            },
            "sms" => match &self.sms {
                Some(s) => s.send(m).await,
                None => Err(SendError::Permanent("SMS is not configured".into())),
            },
            "notice" => self.notice(m).await,
            other => Err(SendError::Permanent(format!("unknown channel {other:?}"))),
        }
    }

    /// The notice board as a channel: a notice for the recipient, idempotent on the message id.
    async fn notice(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let row = Notice {
            id: uuid::Uuid::new_v4().to_string(),
            sub: m.address.clone(),
            poster: format!("messaging:{}", m.sender),
            idempotency_key: m.id.clone(),
            service: m.service.clone(),
            title: m.subject.clone(),
            body: m.body.clone(),
            link: m.link.clone(),
            status: "info".to_owned(),
            created_at: kuntalaistili_schema::now_utc(),
            read_at: None,
            archived_at: None,
        };
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> Result<(), DbError> {
            notices::insert_idempotent(&mut *db.conn()?, &row).map(|_| ())
        })
        .await
        .map_err(|e| SendError::Temporary(e.to_string()))?
        .map_err(|e| SendError::Temporary(e.to_string()))
    }
}

/// The worker that drains the outbox.
pub struct Worker {
    pub config: MessagingConfig,
    pub dispatcher: Dispatcher,
    pub db: Db,
}

/// How long a claimed row is ours before another worker may take it.
const LEASE_MINUTES: i64 = 5;

impl Worker {
    fn retry_at(&self, attempts: i32, now: NaiveDateTime) -> Option<NaiveDateTime> {
        if attempts >= self.config.max_attempts {
            return None;
        }
        let exp = (attempts - 1).clamp(0, 20) as u32;
        let secs = self
            .config
            .retry_seconds
            .max(0)
            .saturating_mul(1i64 << exp)
            .min(3600);
        Some(now + Duration::seconds(secs))
    }

    /// Sends what is due now; returns how many rows were handled.
    pub async fn run_once(&self) -> Result<usize, DbError> {
        let db = self.db.clone();
        let due = tokio::task::spawn_blocking(move || {
            outbox::due(&mut *db.conn()?, kuntalaistili_schema::now_utc(), 50)
        })
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))??;
        let mut handled = 0;
        for m in due {
            let now = kuntalaistili_schema::now_utc();
            let (db, row) = (self.db.clone(), m.clone());
            let claimed = tokio::task::spawn_blocking(move || {
                outbox::claim(
                    &mut *db.conn()?,
                    &row,
                    now,
                    now + Duration::minutes(LEASE_MINUTES),
                )
            })
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))??;
            if !claimed {
                continue;
            }
            let attempts = m.attempts + 1;
            let result = self.dispatcher.send(&m).await;
            let now = kuntalaistili_schema::now_utc();
            let retry = match &result {
                Err(SendError::Temporary(_)) => self.retry_at(attempts, now),
                _ => None,
            };
            let (db, id) = (self.db.clone(), m.id.clone());
            let outcome = match &result {
                Ok(()) => None,
                Err(e) => Some(e.to_string()),
            };
            match &outcome {
                None => tracing::info!(id = %m.id, channel = %m.channel, "message sent"),
                Some(e) => tracing::warn!(id = %m.id, channel = %m.channel, attempts, error = %e,
                    retry = retry.is_some(), "message not delivered"),
            }
            tokio::task::spawn_blocking(move || -> Result<(), DbError> {
                let mut conn = db.conn()?;
                match outcome {
                    None => outbox::mark_sent(&mut conn, &id, now),
                    Some(e) => outbox::mark_attempt_failed(&mut conn, &id, &e, retry),
                }
            })
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))??;
            handled += 1;
        }
        Ok(handled)
    }

    /// Runs forever on the current runtime, polling every `poll_millis`.
    pub fn spawn(self: Arc<Self>) {
        actix_web::rt::spawn(async move {
            let every = std::time::Duration::from_millis(self.config.poll_millis.max(50));
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "the message outbox could not be read");
                }
                actix_web::rt::time::sleep(every).await;
            }
        });
    }
}

//! Email over SMTP with lettre: STARTTLS (default), implicit TLS, or plain (local relays only).

use kuntalaistili_schema::outbox::OutboxMessage;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::SendError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// `starttls`, `tls` or `none` (plain, for a relay on the same host or network only).
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_port() -> u16 {
    587
}

fn default_tls() -> String {
    "starttls".to_owned()
}

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl EmailChannel {
    pub fn new(c: &SmtpConfig, from: &str) -> Result<EmailChannel, String> {
        let mut b = match c.tls.as_str() {
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                .map_err(|e| e.to_string())?,
            "tls" => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host).map_err(|e| e.to_string())?
            }
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            other => {
                return Err(format!(
                    "messaging.smtp.tls must be starttls, tls or none, not {other:?}"
                ))
            }
        };
        b = b
            .port(c.port)
            .timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(EmailChannel {
            transport: b.build(),
            from: from
                .parse()
                .map_err(|e| format!("messaging.from {from:?}: {e}"))?,
        })
    }

    pub async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let to = m
            .address
            .parse()
            .map_err(|e| SendError::Permanent(format!("address: {e}")))?;
        let mut text = m.body.clone();
        if let Some(l) = &m.link {
            text.push_str("\n\n");
            text.push_str(l);
        }
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send(mail).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

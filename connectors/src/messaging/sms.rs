//! SMS through an HTTP gateway: `POST url` with JSON `{"from", "to", "text"}` and an optional
//! bearer token. 2xx is delivered; 4xx will never work; 5xx and network errors are retried.

use kuntalaistili_schema::outbox::OutboxMessage;
use serde::{Deserialize, Serialize};

use super::SendError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub url: String,
    pub token: Option<String>,
    /// Sender name or number shown to the resident.
    #[serde(default = "default_sender")]
    pub sender: String,
}

fn default_sender() -> String {
    "Kunta".to_owned()
}

pub struct SmsChannel {
    http: reqwest::Client,
    config: SmsConfig,
}

impl SmsChannel {
    pub fn new(c: &SmsConfig) -> Result<SmsChannel, String> {
        Ok(SmsChannel {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?,
            config: c.clone(),
        })
    }

    pub async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        let mut text = format!("{}\n{}", m.subject, m.body);
        if let Some(l) = &m.link {
            text.push('\n');
            text.push_str(l);
        }
        let mut rq = self.http.post(&self.config.url).json(&serde_json::json!({
            "from": self.config.sender, "to": m.address, "text": text,
        }));
        if let Some(t) = &self.config.token {
            rq = rq.bearer_auth(t);
        }
        match rq.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_client_error() => Err(SendError::Permanent(format!(
                "gateway refused the message: {}",
                r.status()
            ))),
            Ok(r) => Err(SendError::Temporary(format!(
                "gateway answered {}",
                r.status()
            ))),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

//! The IdP's APIs with the service's own client-credentials tokens: access-rights checks, the
//! audit log, the message API and the notice board, residents.

use std::time::{Duration, Instant};

use openidconnect::{OAuth2TokenResponse, Scope};
use serde_json::Value;

use super::{Lookup, Rp, RpError};

impl Rp {
    /// The service's own access token (client credentials) for the IdP's APIs, reused until
    /// shortly before it expires.
    async fn service_token(&self, scope: &'static str) -> Result<String, RpError> {
        if let Some((until, t)) = self.service_tokens.read().await.get(scope) {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let client = self.client().await?;
        let tokens = client
            .exchange_client_credentials()
            .map_err(|e| RpError::Token(e.to_string()))?
            .add_scope(Scope::new(scope.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        let life = tokens
            .expires_in()
            .unwrap_or(Duration::from_secs(60))
            .saturating_sub(Duration::from_secs(30));
        let token = tokens.access_token().secret().clone();
        self.service_tokens
            .write()
            .await
            .insert(scope, (Instant::now() + life, token.clone()));
        Ok(token)
    }

    fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.as_str().trim_end_matches('/'))
    }

    /// Whether the resident may do `service:function` now (`POST /api/v1/authz/check`,
    /// `authz:check`): asked at the moment of use, so a revoked right stops at once. A `probe`
    /// only decides what to show (a link), so its denial is not audited.
    pub async fn may(
        &self,
        sub: &str,
        service: &str,
        function: &str,
        probe: bool,
    ) -> Result<bool, RpError> {
        let token = self.service_token("authz:check").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/authz/check"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "sub": sub, "service": service, "permission": function, "probe": probe,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        match r.status().as_u16() {
            200 => Ok(r
                .json::<Value>()
                .await
                .map_err(|e| RpError::Token(e.to_string()))?["allowed"]
                == Value::Bool(true)),
            404 => Ok(false),
            s => Err(RpError::Token(format!("the access check answered {s}"))),
        }
    }

    /// Records an event of this service in the IdP's tamper-evident audit log
    /// (`POST /api/v1/audit/events`, `audit:write`).
    pub async fn audit(
        &self,
        event_type: &str,
        subject: Option<&str>,
        details: Value,
    ) -> Result<(), RpError> {
        let token = self.service_token("audit:write").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/audit/events"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "event_type": event_type,
                "outcome": "success",
                "subject": subject,
                "details": details,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(RpError::Token(format!(
                "the audit log answered {}",
                r.status()
            )))
        }
    }

    /// Posts JSON with the service's own access token for `scope` (client credentials) and
    /// returns the answer's status; used for the IdP's message API and the notice board.
    pub async fn post_as_service(
        &self,
        scope: &'static str,
        url: &str,
        body: &Value,
    ) -> Result<u16, RpError> {
        let token = self.service_token(scope).await?;
        let r = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        Ok(r.status().as_u16())
    }

    /// The IdP's API URL of `path`.
    pub fn idp_url(&self, path: &str) -> String {
        self.api_url(path)
    }

    /// Whether the IdP knows this resident (`GET /api/v1/residents/{sub}`, `residents:read`).
    pub async fn resident_exists(&self, sub: &str) -> Result<bool, RpError> {
        let token = self.service_token("residents:read").await?;
        let url = self.api_url(&format!("/api/v1/residents/{}", crate::kit::enc(sub)));
        let r = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(RpError::Token(format!("resident look-up answered {s}"))),
        }
    }

    /// The subject of the resident with this national id, looked up for the system whose access
    /// token is `requester_token` (`POST /api/v1/residents/lookup`, `residents:read`): that
    /// system, not this service, must be allowed to address residents by national id.
    pub async fn resident_by_national_id(
        &self,
        national_id: &str,
        requester_token: &str,
    ) -> Result<Lookup, RpError> {
        let token = self.service_token("residents:read").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/residents/lookup"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "national_id": national_id,
                "requester_token": requester_token,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            200 => match body["sub"].as_str() {
                Some(sub) => Ok(Lookup::Found(sub.to_owned())),
                None => Err(RpError::Token("the look-up answered without a sub".into())),
            },
            404 => Ok(Lookup::Unknown),
            403 => Ok(Lookup::Refused),
            400 => Ok(Lookup::Invalid(
                body["detail"]
                    .as_str()
                    .unwrap_or("invalid national id")
                    .to_owned(),
            )),
            s => Err(RpError::Token(format!("the resident look-up answered {s}"))),
        }
    }
}

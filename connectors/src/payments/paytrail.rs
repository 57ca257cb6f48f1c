//! A client of the Paytrail Payment API (`POST /payments`, `POST /payments/{id}/refund`): every
//! request carries the `checkout-*` headers and their HMAC-SHA256 `signature`; every answer's
//! signature is checked before its content is used; redirects and callbacks are verified with
//! [`super::check_signature`].

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    check_signature, read_verified, signature, Created, NewPayment, PayError, Provider, Refund,
    Verified,
};

/// `[payments.paytrail]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaytrailConfig {
    /// The merchant id (`checkout-account`).
    pub account: String,
    /// The merchant's shared secret.
    pub secret: String,
    /// The API's base URL.
    #[serde(default = "default_base")]
    pub base_url: String,
}

fn default_base() -> String {
    "https://services.paytrail.com".to_owned()
}

pub struct Paytrail {
    cfg: PaytrailConfig,
    http: reqwest::Client,
}

impl Paytrail {
    pub fn new(cfg: PaytrailConfig) -> Result<Paytrail, PayError> {
        if cfg.account.is_empty() || cfg.secret.is_empty() {
            return Err(PayError::Config(
                "payments.paytrail needs account and secret".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| PayError::Config(e.to_string()))?;
        Ok(Paytrail { cfg, http })
    }

    fn headers(&self, method: &str, transaction_id: Option<&str>) -> Vec<(String, String)> {
        let mut h = vec![
            ("checkout-account".to_owned(), self.cfg.account.clone()),
            ("checkout-algorithm".to_owned(), "sha256".to_owned()),
            ("checkout-method".to_owned(), method.to_owned()),
            (
                "checkout-nonce".to_owned(),
                uuid::Uuid::new_v4().to_string(),
            ),
            (
                "checkout-timestamp".to_owned(),
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
            ),
        ];
        if let Some(t) = transaction_id {
            h.push(("checkout-transaction-id".to_owned(), t.to_owned()));
        }
        h
    }

    /// Sends a signed JSON request and returns the answer's status and body after checking the
    /// answer's signature.
    async fn send(
        &self,
        path: &str,
        transaction_id: Option<&str>,
        body: String,
    ) -> Result<(u16, serde_json::Value), PayError> {
        let headers = self.headers("POST", transaction_id);
        let sig = signature(
            &self.cfg.secret,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &body,
        );
        let mut rq = self
            .http
            .post(format!("{}{path}", self.cfg.base_url.trim_end_matches('/')))
            .header("content-type", "application/json; charset=utf-8")
            .header("signature", sig);
        for (k, v) in &headers {
            rq = rq.header(k.as_str(), v.as_str());
        }
        let resp = rq
            .body(body)
            .send()
            .await
            .map_err(|e| PayError::Provider(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut answer: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                let k = k.as_str();
                (k.starts_with("checkout-") || k == "signature")
                    .then(|| Some((k.to_owned(), v.to_str().ok()?.to_owned())))
                    .flatten()
            })
            .collect();
        answer.sort();
        let text = resp
            .text()
            .await
            .map_err(|e| PayError::Provider(e.to_string()))?;
        check_signature(&self.cfg.secret, &answer, &text)?;
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok((status, value))
    }
}

impl Provider for Paytrail {
    fn name(&self) -> &'static str {
        "paytrail"
    }

    fn is_test(&self) -> bool {
        false
    }

    fn create<'a>(&'a self, p: &'a NewPayment) -> BoxFuture<'a, Result<Created, PayError>> {
        Box::pin(async move {
            let mut body = json!({
                "stamp": p.stamp,
                "reference": p.reference,
                "amount": p.amount_cents,
                "currency": "EUR",
                "language": p.language,
                "items": [{
                    "unitPrice": p.amount_cents,
                    "units": 1,
                    "vatPercentage": f64::from(p.vat_basis_points) / 100.0,
                    "productCode": p.product_code,
                    "description": p.description,
                }],
                "customer": { "email": p.email.clone().unwrap_or_default() },
                "redirectUrls": { "success": p.success_url, "cancel": p.cancel_url },
            });
            if let (Some(s), Some(c)) = (&p.callback_success_url, &p.callback_cancel_url) {
                body["callbackUrls"] = json!({ "success": s, "cancel": c });
            }
            let (status, v) = self.send("/payments", None, body.to_string()).await?;
            if status != 201 {
                return Err(PayError::Provider(format!(
                    "payment create answered {status}: {}",
                    v["message"].as_str().unwrap_or("")
                )));
            }
            match (v["transactionId"].as_str(), v["href"].as_str()) {
                (Some(t), Some(h)) if h.starts_with("https://") => Ok(Created {
                    transaction_id: t.to_owned(),
                    href: h.to_owned(),
                }),
                _ => Err(PayError::Provider(
                    "payment create answered without transactionId and an https href".into(),
                )),
            }
        })
    }

    fn verify(&self, params: &[(String, String)]) -> Result<Verified, PayError> {
        check_signature(&self.cfg.secret, params, "")?;
        read_verified(params, &self.cfg.account)
    }

    fn refund<'a>(
        &'a self,
        transaction_id: &'a str,
        r: &'a Refund,
    ) -> BoxFuture<'a, Result<(), PayError>> {
        Box::pin(async move {
            let body = json!({
                "amount": r.amount_cents,
                "refundStamp": r.refund_stamp,
                "refundReference": r.refund_stamp,
                "callbackUrls": { "success": r.callback_success_url, "cancel": r.callback_cancel_url },
            });
            let path = format!("/payments/{transaction_id}/refund");
            let (status, v) = self
                .send(&path, Some(transaction_id), body.to_string())
                .await?;
            if status == 201 || status == 200 {
                Ok(())
            } else {
                Err(PayError::Provider(format!(
                    "refund answered {status}: {}",
                    v["message"].as_str().unwrap_or("")
                )))
            }
        })
    }
}

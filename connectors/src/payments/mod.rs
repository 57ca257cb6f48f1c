//! Electronic payments through banks' payment services, behind one [`Provider`] trait with two
//! implementations: [`paytrail::Paytrail`], a client of the Paytrail Payment API (HMAC-SHA256
//! signed `checkout-*` headers, redirect and callback URLs whose query parameters carry a
//! signature, refunds), and [`testbank::TestBank`], a built-in bank for demos and tests that
//! answers with the same signed parameters (and is refused in production mode).

pub mod paytrail;
pub mod testbank;

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// `[payments]` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// `testbank` or `paytrail`.
    pub provider: String,
    pub paytrail: Option<paytrail::PaytrailConfig>,
    /// Minutes an unpaid reservation holds its slot before it expires.
    pub payment_minutes: i64,
    /// Production mode: the test bank is refused.
    pub production: bool,
    /// Let the test bank run on a public https address (a staging site). Without it the test
    /// bank runs only for local addresses (http, localhost, 127.0.0.1).
    pub allow_test_bank: bool,
    /// How often unpaid reservations are looked at for expiry (and reminders for sending).
    pub sweep_seconds: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            provider: "testbank".to_owned(),
            paytrail: None,
            payment_minutes: 20,
            production: false,
            allow_test_bank: false,
            sweep_seconds: 30,
        }
    }
}

/// A payment to create.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// Our order id; unique per merchant.
    pub stamp: String,
    pub reference: String,
    pub amount_cents: i64,
    /// VAT in basis points (2550 = 25.5 %).
    pub vat_basis_points: i32,
    pub description: String,
    pub product_code: String,
    /// `FI`, `SV` or `EN`.
    pub language: String,
    pub email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub callback_success_url: Option<String>,
    pub callback_cancel_url: Option<String>,
}

/// A created payment: the provider's transaction and where to send the payer.
#[derive(Debug, Clone)]
pub struct Created {
    pub transaction_id: String,
    pub href: String,
}

/// What a redirect or callback says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    Pending,
}

/// The verified content of a redirect or callback.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Our order id.
    pub stamp: String,
    pub transaction_id: String,
    pub status: Status,
    pub amount_cents: Option<i64>,
}

/// A refund to ask for.
#[derive(Debug, Clone)]
pub struct Refund {
    pub amount_cents: i64,
    pub refund_stamp: String,
    pub callback_success_url: String,
    pub callback_cancel_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("payment configuration: {0}")]
    Config(String),
    #[error("payment provider: {0}")]
    Provider(String),
    #[error("payment signature refused: {0}")]
    Signature(&'static str),
}

/// A bank payment service.
pub trait Provider: Send + Sync {
    /// `paytrail` or `testbank`.
    fn name(&self) -> &'static str;
    /// Whether payments are pretend money (shown as such to people).
    fn is_test(&self) -> bool;
    fn create<'a>(&'a self, p: &'a NewPayment) -> BoxFuture<'a, Result<Created, PayError>>;
    /// Checks the signature of a redirect's or callback's query parameters and reads them.
    fn verify(&self, params: &[(String, String)]) -> Result<Verified, PayError>;
    fn refund<'a>(
        &'a self,
        transaction_id: &'a str,
        r: &'a Refund,
    ) -> BoxFuture<'a, Result<(), PayError>>;
}

impl PaymentsConfig {
    /// Whether the test bank may run for a server at `public_url`: never in production mode; on
    /// local or plain-http addresses; elsewhere only when allowed explicitly.
    pub fn test_bank_allowed(&self, public_url: &str) -> bool {
        if self.production {
            return false;
        }
        let local = url::Url::parse(public_url).ok().is_some_and(|u| {
            u.scheme() == "http"
                || matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        });
        local || self.allow_test_bank
    }
}

/// No payment service: the state of a server whose configuration names none it may use (the
/// test bank refused on a public site). Every payment is refused with a clear reason.
pub struct Unavailable {
    pub reason: String,
}

impl Provider for Unavailable {
    fn name(&self) -> &'static str {
        "none"
    }

    fn is_test(&self) -> bool {
        false
    }

    fn create<'a>(&'a self, _: &'a NewPayment) -> BoxFuture<'a, Result<Created, PayError>> {
        Box::pin(async move { Err(PayError::Config(self.reason.clone())) })
    }

    fn verify(&self, _: &[(String, String)]) -> Result<Verified, PayError> {
        Err(PayError::Signature("no payment service is configured"))
    }

    fn refund<'a>(&'a self, _: &'a str, _: &'a Refund) -> BoxFuture<'a, Result<(), PayError>> {
        Box::pin(async move { Err(PayError::Config(self.reason.clone())) })
    }
}

/// The provider the configuration names; `secret_for_testbank` signs the test bank's answers.
pub fn from_config(
    cfg: &PaymentsConfig,
    db: kuntalaistili_schema::Db,
    public_url: &str,
    secret_for_testbank: String,
) -> Result<std::sync::Arc<dyn Provider>, PayError> {
    match cfg.provider.as_str() {
        "testbank" if cfg.production => Err(PayError::Config(
            "the test bank is not available in production mode".into(),
        )),
        "testbank" => Ok(std::sync::Arc::new(testbank::TestBank::new(
            db,
            public_url,
            secret_for_testbank,
        ))),
        "paytrail" => {
            let pc = cfg.paytrail.clone().ok_or_else(|| {
                PayError::Config("provider paytrail needs [payments.paytrail]".into())
            })?;
            Ok(std::sync::Arc::new(paytrail::Paytrail::new(pc)?))
        }
        other => Err(PayError::Config(format!(
            "unknown payment provider {other:?}: testbank or paytrail"
        ))),
    }
}

/// The Paytrail HMAC: the `checkout-*` parameters sorted by name as `name:value` lines, then the
/// body (empty for GET and for redirect parameters), joined by newlines, HMAC-SHA256 in hex.
pub fn signature<'a>(
    secret: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &str,
) -> String {
    let mut checkout: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, _)| k.starts_with("checkout-"))
        .collect();
    checkout.sort();
    let mut payload = String::new();
    for (k, v) in checkout {
        payload.push_str(k);
        payload.push(':');
        payload.push_str(v);
        payload.push('\n');
    }
    payload.push_str(body);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `signature` over the `checkout-*` parameters (and body) in constant time.
pub fn check_signature(
    secret: &str,
    params: &[(String, String)],
    body: &str,
) -> Result<(), PayError> {
    let mut given = None;
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in params {
        if !seen.insert(k.as_str()) {
            return Err(PayError::Signature("a parameter is repeated"));
        }
        if k == "signature" {
            given = Some(v.as_str());
        }
    }
    let given = given.ok_or(PayError::Signature("no signature"))?;
    match params
        .iter()
        .find(|(k, _)| k == "checkout-algorithm")
        .map(|(_, v)| v.as_str())
    {
        Some("sha256") => {}
        Some(_) => return Err(PayError::Signature("unsupported algorithm")),
        None => return Err(PayError::Signature("no algorithm")),
    }
    let expected = signature(
        secret,
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    );
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(PayError::Signature("the signature does not match"))
    }
}

/// Reads verified redirect/callback parameters (after [`check_signature`]).
pub fn read_verified(params: &[(String, String)], account: &str) -> Result<Verified, PayError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("checkout-account") != Some(account) {
        return Err(PayError::Signature("another merchant account"));
    }
    let stamp = get("checkout-stamp").ok_or(PayError::Signature("no stamp"))?;
    let transaction_id =
        get("checkout-transaction-id").ok_or(PayError::Signature("no transaction id"))?;
    let status = match get("checkout-status") {
        Some("ok") => Status::Ok,
        Some("fail") => Status::Fail,
        Some("new" | "pending" | "delayed") => Status::Pending,
        _ => return Err(PayError::Signature("unknown status")),
    };
    Ok(Verified {
        stamp: stamp.to_owned(),
        transaction_id: transaction_id.to_owned(),
        status,
        amount_cents: get("checkout-amount").and_then(|a| a.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published example of Paytrail's API documentation ("HMAC calculation (node.js)" in
    // docs/examples.md of github.com/paytrail/api-documentation, also at
    // https://docs.paytrail.com/#/examples?id=hmac-calculation-node-js): merchant 375917,
    // secret SAIPPUAKAUPPIAS, the body as JSON.stringify writes it (no spaces).
    #[test]
    fn create_payment_signature_matches_the_published_example() {
        let headers = [
            ("checkout-account", "375917"),
            ("checkout-algorithm", "sha256"),
            ("checkout-method", "POST"),
            ("checkout-nonce", "564635208570151"),
            ("checkout-timestamp", "2018-07-06T10:01:31.904Z"),
        ];
        let body = r##"{"stamp":"unique-identifier-for-merchant","reference":"3759170","amount":1525,"currency":"EUR","language":"FI","items":[{"unitPrice":1525,"units":1,"vatPercentage":24,"productCode":"#1234","deliveryDate":"2018-09-01"}],"customer":{"email":"test.customer@example.com"},"redirectUrls":{"success":"https://ecom.example.com/cart/success","cancel":"https://ecom.example.com/cart/cancel"}}"##;
        assert_eq!(
            signature("SAIPPUAKAUPPIAS", headers, body),
            "3708f6497ae7cc55a2e6009fc90aa10c3ad0ef125260ee91b19168750f6d74f6"
        );
        // The PHP example of the same page adds a content-type header: not a checkout- header,
        // so the signature is the same.
        let mut with_type = headers.to_vec();
        with_type.push(("content-type", "application/json; charset=utf-8"));
        assert_eq!(
            signature("SAIPPUAKAUPPIAS", with_type, body),
            "3708f6497ae7cc55a2e6009fc90aa10c3ad0ef125260ee91b19168750f6d74f6"
        );
        // One changed byte anywhere changes it.
        assert_ne!(
            signature("SAIPPUAKAUPPIAS", headers, &body.replace("1525", "1526")),
            "3708f6497ae7cc55a2e6009fc90aa10c3ad0ef125260ee91b19168750f6d74f6"
        );
    }

    // The "Get" request example of the same page: a GET carries no body, so the payload ends
    // with an empty line.
    #[test]
    fn get_request_signature_matches_the_published_example() {
        let headers = [
            ("checkout-account", "375917"),
            ("checkout-algorithm", "sha256"),
            ("checkout-method", "GET"),
            ("checkout-timestamp", "2019-11-01T08:48:50.832Z"),
            (
                "checkout-transaction-id",
                "681538c4-fc84-11e9-83bc-2ffcef4c3453",
            ),
            ("checkout-nonce", "87ac41e1-e6e6-4789-b8e0-c83930cfc447"),
        ];
        assert_eq!(
            signature("SAIPPUAKAUPPIAS", headers, ""),
            "4d84e3aedaa847b23e672ff3bc9c57ae5d1c1e84aec251ce39914eaf250bb8b2"
        );
    }

    #[test]
    fn the_test_bank_runs_only_where_it_may() {
        let mut c = PaymentsConfig::default();
        assert!(c.test_bank_allowed("http://127.0.0.1:8080"));
        assert!(c.test_bank_allowed("https://localhost:8443"));
        assert!(c.test_bank_allowed("http://demo.example.fi"));
        assert!(!c.test_bank_allowed("https://asiointi.example.fi"));
        c.allow_test_bank = true;
        assert!(c.test_bank_allowed("https://testi.example.fi"));
        c.production = true;
        assert!(!c.test_bank_allowed("http://127.0.0.1:8080"));
    }

    #[test]
    fn redirect_parameters_are_checked() {
        let mut params: Vec<(String, String)> = [
            ("checkout-account", "375917"),
            ("checkout-algorithm", "sha256"),
            ("checkout-amount", "2964"),
            ("checkout-stamp", "order-1"),
            ("checkout-reference", "192387192837195"),
            ("checkout-transaction-id", "tx-1"),
            ("checkout-status", "ok"),
            ("checkout-provider", "nordea"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = signature(
            "SAIPPUAKAUPPIAS",
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            "",
        );
        params.push(("signature".into(), sig));
        assert!(check_signature("SAIPPUAKAUPPIAS", &params, "").is_ok());
        let v = read_verified(&params, "375917").unwrap();
        assert_eq!(
            (v.stamp.as_str(), v.status, v.amount_cents),
            ("order-1", Status::Ok, Some(2964))
        );
        // Another secret, a changed status, a repeated parameter, another account: refused.
        assert!(check_signature("other", &params, "").is_err());
        let mut tampered = params.clone();
        tampered[6].1 = "fail".into();
        assert!(check_signature("SAIPPUAKAUPPIAS", &tampered, "").is_err());
        let mut repeated = params.clone();
        repeated.push(("checkout-status".into(), "fail".into()));
        assert!(check_signature("SAIPPUAKAUPPIAS", &repeated, "").is_err());
        assert!(read_verified(&params, "123456").is_err());
        let mut sha512 = params.clone();
        sha512[1].1 = "sha512".into();
        assert!(check_signature("SAIPPUAKAUPPIAS", &sha512, "").is_err());
    }
}

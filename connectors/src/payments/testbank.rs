//! The built-in test bank: payments are stored in `testbank_payments`, the payer sees a bank-like
//! page at `/testbank/{id}` (served by the services, marked as a test) and chooses to pay or
//! cancel; the answer comes back as Paytrail-style `checkout-*` parameters signed with the test
//! bank's secret, to the redirect URL and (server to server) to the callback URL, so the same
//! verification runs as with a real bank. No real money moves. Refused in production mode.

use futures_util::future::BoxFuture;
use kuntalaistili_schema::payments::{self as store, TestbankPayment};
use kuntalaistili_schema::Db;

use super::{
    check_signature, read_verified, signature, Created, NewPayment, PayError, Provider, Refund,
    Verified,
};

/// The merchant account name in the test bank's signed answers.
pub const ACCOUNT: &str = "testbank";

pub struct TestBank {
    db: Db,
    public_url: String,
    secret: String,
}

impl TestBank {
    pub fn new(db: Db, public_url: &str, secret: String) -> TestBank {
        TestBank {
            db,
            public_url: public_url.trim_end_matches('/').to_owned(),
            secret,
        }
    }

    /// The signed parameters that tell the merchant how the payment ended.
    pub fn answer(&self, p: &TestbankPayment, status: &str) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("checkout-account".into(), ACCOUNT.into()),
            ("checkout-algorithm".into(), "sha256".into()),
            ("checkout-amount".into(), p.amount_cents.to_string()),
            ("checkout-stamp".into(), p.stamp.clone()),
            ("checkout-reference".into(), p.reference.clone()),
            ("checkout-transaction-id".into(), p.id.clone()),
            ("checkout-status".into(), status.into()),
            ("checkout-provider".into(), "testbank".into()),
        ];
        let sig = signature(
            &self.secret,
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            "",
        );
        params.push(("signature".into(), sig));
        params
    }

    /// `url` with the parameters appended to its query.
    pub fn with_params(url: &str, params: &[(String, String)]) -> String {
        let mut u = url.to_owned();
        let mut sep = if u.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            u.push(sep);
            sep = '&';
            u.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
            u.push('=');
            u.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        }
        u
    }
}

impl Provider for TestBank {
    fn name(&self) -> &'static str {
        "testbank"
    }

    fn is_test(&self) -> bool {
        true
    }

    fn create<'a>(&'a self, p: &'a NewPayment) -> BoxFuture<'a, Result<Created, PayError>> {
        Box::pin(async move {
            if p.amount_cents <= 0 {
                return Err(PayError::Provider("the amount must be positive".into()));
            }
            let now = kuntalaistili_schema::now_utc();
            let row = TestbankPayment {
                id: uuid::Uuid::new_v4().to_string(),
                stamp: p.stamp.clone(),
                reference: p.reference.clone(),
                amount_cents: p.amount_cents,
                description: p.description.clone(),
                success_url: p.success_url.clone(),
                cancel_url: p.cancel_url.clone(),
                callback_success: p.callback_success_url.clone(),
                callback_cancel: p.callback_cancel_url.clone(),
                status: "new".into(),
                created_at: now,
                updated_at: now,
            };
            let db = self.db.clone();
            let stored = row.clone();
            tokio::task::spawn_blocking(move || store::testbank_insert(&mut *db.conn()?, &stored))
                .await
                .map_err(|e| PayError::Provider(e.to_string()))?
                .map_err(|e| PayError::Provider(e.to_string()))?;
            Ok(Created {
                href: format!("{}/testbank/{}", self.public_url, row.id),
                transaction_id: row.id,
            })
        })
    }

    fn verify(&self, params: &[(String, String)]) -> Result<Verified, PayError> {
        check_signature(&self.secret, params, "")?;
        read_verified(params, ACCOUNT)
    }

    fn refund<'a>(
        &'a self,
        transaction_id: &'a str,
        r: &'a Refund,
    ) -> BoxFuture<'a, Result<(), PayError>> {
        Box::pin(async move {
            let db = self.db.clone();
            let id = transaction_id.to_owned();
            let amount = r.amount_cents;
            tokio::task::spawn_blocking(move || -> Result<(), PayError> {
                let mut conn = db.conn().map_err(|e| PayError::Provider(e.to_string()))?;
                let p = store::testbank_find(&mut conn, &id)
                    .map_err(|e| PayError::Provider(e.to_string()))?
                    .ok_or_else(|| PayError::Provider("no such payment".into()))?;
                if amount != p.amount_cents {
                    return Err(PayError::Provider(
                        "the test bank refunds whole payments only".into(),
                    ));
                }
                let now = kuntalaistili_schema::now_utc();
                match store::testbank_set(&mut conn, &id, "ok", "refunded", now) {
                    Ok(true) => Ok(()),
                    Ok(false) if p.status == "refunded" => Ok(()),
                    Ok(false) => Err(PayError::Provider(format!(
                        "a payment in state {} cannot be refunded",
                        p.status
                    ))),
                    Err(e) => Err(PayError::Provider(e.to_string())),
                }
            })
            .await
            .map_err(|e| PayError::Provider(e.to_string()))?
        })
    }
}

//! The built-in test bank's page `/testbank/{id}` (see `kuntalaistili_connectors::payments::
//! testbank`): shows the payment, clearly marked as a test without real money, and lets the payer
//! pay or cancel. The outcome goes, signed, to the merchant's callback (server to server) and
//! with the browser to its return address. Mounted only when the test bank is the provider (never
//! in production mode).

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::payments::testbank::TestBank;
use kuntalaistili_schema::payments as store;
use kuntalaistili_schema::DbError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::kit::{see_other, Kit, KitError};

pub const BASE: &str = "/testbank";

/// The page's forms may end at the merchant (another site).
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct Bank {
    pub bank: Arc<TestBank>,
    /// For the page layout and texts.
    pub kit: web::Data<Kit>,
    /// Binds the page's forms to the payment (no cross-site submission).
    pub form_key: String,
    http: reqwest::Client,
}

impl Bank {
    pub fn new(bank: Arc<TestBank>, kit: web::Data<Kit>, form_key: String) -> Bank {
        Bank {
            bank,
            kit,
            form_key,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    fn form_token(&self, id: &str) -> String {
        hex::encode(Sha256::digest(format!(
            "testbank-form:{}:{id}",
            self.form_key
        )))
    }
}

#[derive(Debug, Deserialize)]
pub struct ChoiceForm {
    token: Option<String>,
}

pub fn configure(cfg: &mut web::ServiceConfig, bank: web::Data<Bank>) {
    let b2 = bank.clone();
    cfg.route(
        &format!("{BASE}/{{id}}"),
        web::get().to(move |req: HttpRequest, p: web::Path<String>| {
            let b = bank.clone();
            async move { page(b, req, p.into_inner()).await }
        }),
    )
    .route(
        &format!("{BASE}/{{id}}/{{choice}}"),
        web::post().to(
            move |p: web::Path<(String, String)>, f: web::Form<ChoiceForm>| {
                let b = b2.clone();
                async move { choose(b, p.into_inner(), f.into_inner()).await }
            },
        ),
    );
}

async fn page(b: web::Data<Bank>, req: HttpRequest, id: String) -> Result<HttpResponse, KitError> {
    if id.len() > 64 {
        return Ok(HttpResponse::NotFound().finish());
    }
    let (db, pid) = (b.kit.db.clone(), id.clone());
    let Some(p) = web::block(move || store::testbank_find(&mut *db.conn()?, &pid)).await?? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let mut ctx = tera::Context::new();
    ctx.insert(
        "p",
        &serde_json::json!({
            "id": p.id,
            "amount": crate::reservations::engine::euros(p.amount_cents),
            "description": p.description,
            "reference": p.reference,
            "status": p.status,
        }),
    );
    ctx.insert("token", &b.form_token(&p.id));
    ctx.insert("back", &p.cancel_url);
    let mut resp = b
        .kit
        .page(&req, StatusCode::OK, "services/testbank.html", None, ctx);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    Ok(resp)
}

async fn choose(
    b: web::Data<Bank>,
    (id, choice): (String, String),
    f: ChoiceForm,
) -> Result<HttpResponse, KitError> {
    if id.len() > 64 || !crate::kit::ct_eq(&b.form_token(&id), f.token.as_deref().unwrap_or("")) {
        return Ok(HttpResponse::Forbidden().finish());
    }
    let (status, to) = match choice.as_str() {
        "pay" => ("ok", "ok"),
        "cancel" => ("fail", "fail"),
        _ => return Ok(HttpResponse::NotFound().finish()),
    };
    let (db, pid) = (b.kit.db.clone(), id.clone());
    let p = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        store::testbank_set(&mut conn, &pid, "new", to, now)?;
        store::testbank_find(&mut conn, &pid)
    })
    .await??;
    let Some(p) = p else {
        return Ok(HttpResponse::NotFound().finish());
    };
    // The outcome as it stands (a second click repeats the first answer).
    let outcome = match p.status.as_str() {
        "ok" | "refunded" => "ok",
        "fail" => "fail",
        _ => status,
    };
    let params = b.bank.answer(&p, outcome);
    let callback = if outcome == "ok" {
        p.callback_success.clone()
    } else {
        p.callback_cancel.clone()
    };
    if let Some(cb) = callback {
        let url = TestBank::with_params(&cb, &params);
        match b.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the merchant's callback refused the test bank")
            }
            Err(e) => tracing::warn!(error = %e, "the merchant's callback could not be reached"),
        }
    }
    let back = if outcome == "ok" {
        &p.success_url
    } else {
        &p.cancel_url
    };
    Ok(see_other(&TestBank::with_params(back, &params)))
}

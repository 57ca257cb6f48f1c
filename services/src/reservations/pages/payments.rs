//! The payment provider's addresses: the resident's return from its page, its server-to-server
//! callback, and its refund callback. Their answers go to [`flows::payment_answer`].

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::super::flows::{self, BookError, Paid};
use super::super::Booking;
use super::rule_text;
use crate::kit::{render, see_other, KitError};

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(64)
        .collect()
}

pub(super) async fn payment_return(
    b: web::Data<Booking>,
    req: HttpRequest,
) -> Result<HttpResponse, KitError> {
    match flows::payment_answer(&b, query_pairs(&req), "redirect").await {
        Ok(Paid::Confirmed(id) | Paid::NotPaid(id) | Paid::Refunded(id) | Paid::Pending(id)) => {
            Ok(see_other(&format!("{}/mine?done={id}", b.base())))
        }
        Err(BookError::Db(_) | BookError::Blocking) => Err(KitError::Blocking),
        Err(e) => {
            let lang = render::negotiate(&req);
            let mut ctx = tera::Context::new();
            ctx.insert(
                "heading",
                &b.kit.templates.tr.text(lang, "res.error_payment_title"),
            );
            ctx.insert("message", &rule_text(&b, &req, &e));
            Ok(b.kit.page(
                &req,
                StatusCode::BAD_REQUEST,
                "services/message.html",
                None,
                ctx,
            ))
        }
    }
}

pub(super) async fn payment_callback(b: web::Data<Booking>, req: HttpRequest) -> HttpResponse {
    match flows::payment_answer(&b, query_pairs(&req), "callback").await {
        Ok(_) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body("OK"),
        Err(BookError::Db(_) | BookError::Blocking) => HttpResponse::ServiceUnavailable().finish(),
        Err(BookError::NoReservation) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// Paytrail tells the outcome of a refund here; we record refunds when the API accepts them, so
/// this only checks the signature and logs.
pub(super) async fn refund_callback(b: web::Data<Booking>, req: HttpRequest) -> HttpResponse {
    match b.pay.verify(&query_pairs(&req)) {
        Ok(v) => {
            tracing::info!(stamp = %v.stamp, status = ?v.status, "refund callback");
            HttpResponse::Ok().body("OK")
        }
        Err(e) => {
            tracing::warn!(error = %e, "refund callback refused");
            HttpResponse::BadRequest().finish()
        }
    }
}

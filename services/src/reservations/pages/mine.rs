//! The resident's own reservations (`{base}/mine`): upcoming and past, cancel (a paid one is
//! confirmed first), pay, move, and the address of their calendar feed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::reservations as store;
use serde_json::{json, Value};

use super::super::flows::{self, BookError};
use super::super::{api, engine, Booking};
use super::{
    lang_of, require, reservation_view, rule_text, tr, with_csp, ActionForm, MineQuery, CSP_PAY,
};
use crate::kit::{see_other, KitError, Resident};

pub(super) async fn mine_page(
    b: web::Data<Booking>,
    req: HttpRequest,
    q: MineQuery,
    extra: Option<(StatusCode, &'static str, String)>,
) -> Result<HttpResponse, KitError> {
    let back = format!("{}/mine", b.base());
    let resident = match require(&b, &req, &back).await? {
        Ok(r) => r,
        Err(redirect) => return Ok(redirect),
    };
    let lang = lang_of(&req);
    let (db, sub, kind) = (b.kit.db.clone(), resident.sub.clone(), b.kind);
    let list = web::block(move || store::of_resident(&mut *db.conn()?, &sub, kind)).await??;
    let now = kuntalaistili_schema::now_utc();
    let views: Vec<Value> = list
        .iter()
        .map(|(r, res)| reservation_view(r, res, lang, now))
        .collect();
    let (upcoming, past): (Vec<Value>, Vec<Value>) = views
        .into_iter()
        .partition(|v| v["upcoming"] == true && v["active"] == true);
    let mut ctx = tera::Context::new();
    let mut upcoming = upcoming;
    upcoming.reverse();
    ctx.insert("upcoming", &upcoming);
    ctx.insert("past", &past);
    ctx.insert("done", &q.done.filter(|d| d.len() <= 64));
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("base", b.base());
    ctx.insert("kind", b.kind);
    ctx.insert("test_bank", &b.pay.is_test());
    let status = match extra {
        Some((s, "confirm", value)) => {
            ctx.insert(
                "confirm",
                &serde_json::from_str::<Value>(&value).unwrap_or_default(),
            );
            s
        }
        Some((s, key, value)) => {
            ctx.insert(key, &value);
            s
        }
        None => StatusCode::OK,
    };
    Ok(with_csp(
        b.kit.page(
            &req,
            status,
            "services/reservations_mine.html",
            Some(&resident),
            ctx,
        ),
        CSP_PAY,
    ))
}

/// The logged-in resident behind a form whose CSRF token is theirs (`None`: answer 403).
async fn form_resident(
    b: &Booking,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<Option<Resident>, KitError> {
    Ok(b.kit
        .resident(req)
        .await?
        .filter(|r| crate::kit::Kit::csrf_ok(r, csrf)))
}

pub(super) async fn mine_action(
    b: web::Data<Booking>,
    req: HttpRequest,
    (id, action): (String, String),
    f: ActionForm,
) -> Result<HttpResponse, KitError> {
    let Some(resident) = form_resident(&b, &req, f.csrf.as_deref()).await? else {
        return Ok(HttpResponse::Forbidden().finish());
    };
    if id.len() > 64 {
        return Ok(HttpResponse::NotFound().finish());
    }
    // Cancelling a paid reservation asks first (the slot is lost, the payment goes back).
    if action == "cancel" && f.confirm.is_none() {
        if let Ok((r, res)) = flows::load(&b, &id, Some(&resident.sub)).await {
            if r.state == "confirmed" && r.price_cents > 0 {
                let lang = lang_of(&req);
                let text = tr(&b, &req, "res.confirm_cancel")
                    .replace("{resource}", res.name(lang))
                    .replace("{time}", &engine::local_span(r.begins_at, r.ends_at))
                    .replace("{amount}", &engine::euros(r.price_cents));
                let confirm = json!({ "id": id, "text": text }).to_string();
                return mine_page(
                    b,
                    req,
                    MineQuery { done: None },
                    Some((StatusCode::OK, "confirm", confirm)),
                )
                .await;
            }
        }
    }
    let result = match action.as_str() {
        "cancel" => flows::cancel_by_resident(&b, &resident.sub, &id)
            .await
            .map(|_| None),
        "pay" => flows::start_payment(&b, &resident.sub, resident.email.as_deref(), &id)
            .await
            .map(Some),
        "move" => match f.begins_at.as_deref().and_then(api::parse_instant) {
            Some(t) => flows::reschedule(&b, &resident.sub, &id, t)
                .await
                .map(|_| None),
            None => Err(BookError::Rule(engine::RuleError::BadTimes)),
        },
        _ => return Ok(HttpResponse::NotFound().finish()),
    };
    match result {
        Ok(Some(href)) => Ok(see_other(&href)),
        Ok(None) => Ok(see_other(&format!("{}/mine", b.base()))),
        Err(BookError::Db(_) | BookError::Blocking) => Err(KitError::Blocking),
        Err(e) => {
            let status = match e {
                BookError::NoReservation => StatusCode::NOT_FOUND,
                BookError::Payment(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::CONFLICT,
            };
            let text = rule_text(&b, &req, &e);
            mine_page(
                b,
                req,
                MineQuery { done: None },
                Some((status, "error", text)),
            )
            .await
        }
    }
}

pub(super) async fn feed_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    f: ActionForm,
) -> Result<HttpResponse, KitError> {
    let Some(resident) = form_resident(&b, &req, f.csrf.as_deref()).await? else {
        return Ok(HttpResponse::Forbidden().finish());
    };
    let token = crate::kit::random_token();
    let (db, kind, sub, h) = (
        b.kit.db.clone(),
        b.kind,
        resident.sub.clone(),
        super::super::ical::token_hash(&token),
    );
    web::block(move || {
        store::feed_of(
            &mut *db.conn()?,
            kind,
            &sub,
            &h,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await??;
    let url = b.kit.cfg.url(&format!("/feed/{token}.ics"));
    mine_page(
        b,
        req,
        MineQuery { done: None },
        Some((StatusCode::OK, "feed_url", url)),
    )
    .await
}

//! `/admin/statistics`: logins per day (succeeded and failed), active residents and tokens per
//! client over the last days, from the audit log, with charts drawn server-side as SVG (and the
//! same figures as a table, for screen readers). The live counters are in `/metrics`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDate};
use kuntalaistili_schema::{audit, oidc_clients, DbError};
use serde_json::json;

use super::require_admin;
use crate::audit::kind;
use crate::error::WebError;
use crate::i18n;
use crate::IdpState;

/// Days shown.
pub const DAYS: i64 = 14;

/// Chart geometry (SVG user units).
const WIDTH: i64 = 700;
const HEIGHT: i64 = 220;
const MARGIN: i64 = 30;

pub async fn admin_statistics_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let user = match require_admin(&state, &req).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let lang = i18n::negotiate(&req);
    let st = state.clone();
    let today = kuntalaistili_schema::now_utc().date();
    let first = today - Duration::days(DAYS - 1);
    let (events, clients) = web::block(move || -> Result<_, DbError> {
        let mut conn = st.db.conn()?;
        let from = first.and_hms_opt(0, 0, 0).unwrap_or_default();
        Ok((
            audit::since(
                &mut conn,
                &[kind::LOGIN_SUCCESS, kind::LOGIN_FAILURE, kind::TOKEN_ISSUED],
                from,
            )?,
            oidc_clients::list(&mut conn)?,
        ))
    })
    .await??;

    let days: Vec<NaiveDate> = (0..DAYS).map(|i| first + Duration::days(i)).collect();
    let mut ok: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut failed: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut active = BTreeSet::new();
    let mut tokens: BTreeMap<String, i64> = BTreeMap::new();
    for e in &events {
        let day = e.occurred_at.date();
        match e.event_type.as_str() {
            t if t == kind::LOGIN_SUCCESS => {
                *ok.entry(day).or_default() += 1;
                if let Some(s) = &e.subject {
                    active.insert(s.clone());
                }
            }
            t if t == kind::LOGIN_FAILURE => *failed.entry(day).or_default() += 1,
            _ => {
                if let Some(a) = &e.actor {
                    *tokens.entry(a.clone()).or_default() += 1;
                }
            }
        }
    }
    let max = days
        .iter()
        .map(|d| {
            ok.get(d)
                .copied()
                .unwrap_or(0)
                .max(failed.get(d).copied().unwrap_or(0))
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (WIDTH - 2 * MARGIN) / DAYS;
    let bar = (slot - 6) / 2;
    let plot = HEIGHT - 2 * MARGIN;
    let rows: Vec<serde_json::Value> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (s, f) = (
                ok.get(d).copied().unwrap_or(0),
                failed.get(d).copied().unwrap_or(0),
            );
            let x = MARGIN + i as i64 * slot + 3;
            let h = |v: i64| v * plot / max;
            json!({
                "day": d.format("%-d.%-m.").to_string(),
                "iso": d.to_string(),
                "ok": s, "failed": f,
                "x_ok": x, "x_failed": x + bar, "w": bar,
                "y_ok": HEIGHT - MARGIN - h(s), "h_ok": h(s),
                "y_failed": HEIGHT - MARGIN - h(f), "h_failed": h(f),
                "label_x": x + bar,
            })
        })
        .collect();
    let names: BTreeMap<&str, &str> = clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.name.as_str()))
        .collect();
    let mut per_client: Vec<serde_json::Value> = tokens
        .iter()
        .map(|(id, n)| json!({ "client": names.get(id.as_str()).copied().unwrap_or(id), "tokens": n }))
        .collect();
    per_client.sort_by(|a, b| b["tokens"].as_i64().cmp(&a["tokens"].as_i64()));

    let mut ctx = state
        .templates
        .context(lang, "/admin/statistics", Some(&user.display_name()));
    ctx.insert("days", &rows);
    ctx.insert("max", &max);
    ctx.insert("width", &WIDTH);
    ctx.insert("height", &HEIGHT);
    ctx.insert("baseline", &(HEIGHT - MARGIN));
    ctx.insert("active", &active.len());
    ctx.insert("logins_ok", &ok.values().sum::<i64>());
    ctx.insert("logins_failed", &failed.values().sum::<i64>());
    ctx.insert("per_client", &per_client);
    ctx.insert("period_days", &DAYS);
    Ok(crate::render::html(
        &state.templates,
        &req,
        StatusCode::OK,
        "admin/statistics.html",
        &ctx,
        vec![],
    ))
}

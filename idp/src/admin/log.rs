//! `/admin/audit`: the audit log, newest first, filtered by event type (prefix), subject and
//! actor, 50 events a page; the hash chain can be verified from the page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::audit::{self, Browse};
use serde::Deserialize;
use serde_json::json;

use super::{context, require_admin};
use crate::error::WebError;
use crate::IdpState;

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    subject: Option<String>,
    actor: Option<String>,
    before: Option<i64>,
    verify: Option<String>,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().chars().take(128).collect::<String>())
        .filter(|s| !s.is_empty())
}

pub async fn browse(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let q = query.into_inner();
    let b = Browse {
        event_type: clean(q.event_type),
        subject: clean(q.subject),
        actor: clean(q.actor),
        before_seq: q.before.filter(|b| *b > 0),
    };
    let verify = q.verify.is_some();
    let st = state.clone();
    let filter = b.clone();
    let (events, report) = web::block(move || -> Result<_, kuntalaistili_schema::DbError> {
        let mut conn = st.db.conn()?;
        let events = audit::browse(&mut conn, &filter, PAGE + 1)?;
        let report = if verify {
            Some(audit::verify(&mut conn)?)
        } else {
            None
        };
        Ok((events, report))
    })
    .await??;
    let more = events.len() as i64 > PAGE;
    let rows: Vec<_> = events
        .iter()
        .take(PAGE as usize)
        .map(|e| {
            json!({
                "seq": e.seq,
                "at": e.occurred_at.format("%-d.%-m.%Y %H.%M.%S").to_string(),
                "at_iso": kuntalaistili_schema::iso_utc(e.occurred_at),
                "type": e.event_type,
                "outcome": e.outcome,
                "actor": e.actor,
                "subject": e.subject,
                "ip": e.ip,
                "details": e.details,
            })
        })
        .collect();
    let next = more
        .then(|| rows.last().and_then(|r| r["seq"].as_i64()))
        .flatten();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert("events", &rows);
    ctx.insert(
        "filter",
        &json!({ "type": b.event_type, "subject": b.subject, "actor": b.actor }),
    );
    let enc = |s: &Option<String>| -> String {
        url::form_urlencoded::byte_serialize(s.as_deref().unwrap_or_default().as_bytes()).collect()
    };
    ctx.insert(
        "next_href",
        &next.map(|n| {
            format!(
                "/admin/audit?type={}&subject={}&actor={}&before={n}",
                enc(&b.event_type),
                enc(&b.subject),
                enc(&b.actor)
            )
        }),
    );
    ctx.insert(
        "verify",
        &report.map(|r| json!({ "checked": r.checked, "broken": r.first_broken.map(|(s, w)| format!("{s}: {w}")) })),
    );
    Ok(state.form_page(&req, StatusCode::OK, "admin/audit.html", ctx))
}

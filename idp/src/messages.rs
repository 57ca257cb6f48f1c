//! The message API for authorized services: `POST /api/v1/messages` queues a message to a
//! resident (ready text in fi/sv/en; the resident's language is chosen) on the channels the
//! resident prefers (optionally narrowed by the caller) and this node can deliver; the outbox
//! worker sends it. `GET /api/v1/messages/{id}` tells the sender its delivery status. Bearer
//! access tokens of this IdP with the `messages:send` scope (client credentials).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::problem;
use kuntalaistili_schema::outbox::{self, OutboxMessage};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{users, DbError};
use serde::Deserialize;
use serde_json::json;

use crate::IdpState;

pub const SCOPE: &str = "messages:send";
/// Largest accepted body.
pub const MAX_BODY: usize = 32 * 1024;

/// A text in the three languages (Finnish required).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Texts {
    fi: String,
    sv: Option<String>,
    en: Option<String>,
}

impl Texts {
    fn pick(&self, lang: &str) -> String {
        match lang {
            "sv" => self.sv.clone(),
            "en" => self.en.clone(),
            _ => None,
        }
        .unwrap_or_else(|| self.fi.clone())
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMessage {
    sub: String,
    idempotency_key: String,
    /// Ignored for display: residents see the sender's registered name.
    #[serde(default)]
    service: Option<String>,
    /// Ready text …
    subject: Option<Texts>,
    body: Option<Texts>,
    /// … or a template with parameters.
    template: Option<String>,
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
    link: Option<String>,
    channels: Option<Vec<String>>,
}

impl NewMessage {
    /// Subject and body in `lang`, from the ready text or the filled template.
    fn texts(&self, lang: &str) -> Result<(String, String), String> {
        match (&self.template, &self.subject, &self.body) {
            (Some(name), None, None) => {
                let all = kuntalaistili_connectors::messaging::templates::all()?;
                let t = all
                    .get(name)
                    .ok_or_else(|| format!("no template {name:?}"))?
                    .text(lang);
                use kuntalaistili_connectors::messaging::templates::fill;
                Ok((
                    fill(&t.subject, &self.params)?,
                    fill(&t.body, &self.params)?,
                ))
            }
            (None, Some(s), Some(b)) => Ok((s.pick(lang), b.pick(lang))),
            _ => Err("give either subject and body, or a template with params".into()),
        }
    }
}

fn check(m: &NewMessage) -> Result<(), String> {
    let len = |s: &str| s.chars().count();
    if m.sub.is_empty() || len(&m.sub) > 128 {
        return Err("sub must be 1-128 characters".into());
    }
    if m.idempotency_key.is_empty() || len(&m.idempotency_key) > 200 {
        return Err("idempotency_key must be 1-200 characters".into());
    }
    if m.service.as_ref().is_some_and(|s| len(s) > 100) {
        return Err("service is longer than 100 characters".into());
    }
    for t in [&m.subject, &m.body].into_iter().flatten() {
        for v in [Some(&t.fi), t.sv.as_ref(), t.en.as_ref()]
            .into_iter()
            .flatten()
        {
            if v.trim().is_empty() || len(v) > 4000 {
                return Err("texts must be 1-4000 characters".into());
            }
        }
    }
    if m.params.len() > 20
        || m.params
            .iter()
            .any(|(k, v)| len(k) > 50 || len(v) > 500 || v.chars().any(|c| c.is_control()))
    {
        return Err(
            "params: at most 20, values up to 500 characters, no control characters".into(),
        );
    }
    // Every language must work (the resident's is not known yet).
    for lang in ["fi", "sv", "en"] {
        let (subject, _) = m.texts(lang)?;
        if len(&subject) > 200 {
            return Err("subject is longer than 200 characters".into());
        }
    }
    if let Some(l) = &m.link {
        if !url::Url::parse(l).is_ok_and(|u| u.scheme() == "https") || l.len() > 2048 {
            return Err("link must be an absolute https URL".into());
        }
    }
    if let Some(c) = &m.channels {
        if c.is_empty()
            || c.iter()
                .any(|x| !crate::customers::CHANNELS.contains(&x.as_str()))
        {
            return Err("channels must list email, sms or notice".into());
        }
    }
    Ok(())
}

/// The stored rows and whether they are new, or why nothing could be queued.
type Queued = Result<(Vec<OutboxMessage>, bool), (StatusCode, String)>;

fn message_json(m: &OutboxMessage) -> serde_json::Value {
    json!({
        "id": m.id, "channel": m.channel, "status": m.status, "attempts": m.attempts,
        "language": m.language, "last_error": m.last_error,
        "created_at": kuntalaistili_schema::iso_utc(m.created_at),
        "sent_at": m.sent_at.map(kuntalaistili_schema::iso_utc),
    })
}

#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = NewMessage, security(("bearer" = ["messages:send"])), responses((status = 201, description = "Queued (one row per channel)"), (status = 200, description = "The same idempotency key again"), (status = 404, description = "No such resident"), (status = 422, description = "The resident cannot be reached")))]
pub async fn messages_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let sender = match crate::api::caller(&state, &req, SCOPE).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let body = match kuntalaistili_connectors::http::read_limited(body, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let m: NewMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed message: {e}")),
    };
    if let Err(d) = check(&m) {
        return problem(StatusCode::BAD_REQUEST, &d);
    }
    let available = state.settings.message_channels.clone();
    let st = state.clone();
    let result = web::block(move || -> Result<Queued, DbError> {
        let mut conn = st.db.conn()?;
        let Some(user) = users::find_by_id(&mut conn, &m.sub)?.filter(|u| !u.disabled) else {
            return Ok(Err((StatusCode::NOT_FOUND, "no such resident".into())));
        };
        let wanted: Vec<&str> = user.message_channels.split_whitespace().collect();
        let lang = user.preferred_language.clone();
        let (subject, body) = match m.texts(&lang) {
            Ok(t) => t,
            Err(e) => return Ok(Err((StatusCode::BAD_REQUEST, e))),
        };
        let now = kuntalaistili_schema::now_utc();
        let mut rows = Vec::new();
        for channel in wanted {
            if !available.iter().any(|a| a == channel) {
                continue;
            }
            if let Some(asked) = &m.channels {
                if !asked.iter().any(|a| a == channel) {
                    continue;
                }
            }
            let address = match channel {
                "email" => user.email.clone(),
                "sms" => user.phone.clone(),
                _ => Some(user.id.clone()),
            };
            let Some(address) = address else { continue };
            rows.push(OutboxMessage {
                id: uuid::Uuid::new_v4().to_string(),
                sender: sender.client_id.clone(),
                idempotency_key: m.idempotency_key.clone(),
                recipient_sub: user.id.clone(),
                channel: channel.to_owned(),
                address,
                language: lang.clone(),
                service: sender.name.clone(),
                subject: subject.clone(),
                body: body.clone(),
                link: m.link.clone(),
                status: "queued".to_owned(),
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
                sent_at: None,
            });
        }
        if rows.is_empty() {
            return Ok(Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "the resident cannot be reached on any requested channel".into(),
            )));
        }
        Ok(Ok(write_tx(&mut conn, |conn| {
            outbox::enqueue(conn, &rows)
        })?))
    })
    .await;
    match result {
        Ok(Ok(Ok((rows, created)))) => HttpResponse::build(if created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "messages": rows.iter().map(message_json).collect::<Vec<_>>() })),
        Ok(Ok(Err((status, d)))) => problem(status, &d),
        other => {
            if let Ok(Err(e)) = other {
                tracing::error!(error = %e, "queuing a message failed");
            }
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "messages cannot be queued right now",
            )
        }
    }
}

/// `GET /api/v1/messages/{id}`: the delivery status, for the sender only.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = String, Path, description = "Message id")), security(("bearer" = ["messages:send"])), responses((status = 200, description = "Delivery status per channel"), (status = 404, description = "No such message of this sender")))]
pub async fn messages_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let sender = match crate::api::caller(&state, &req, SCOPE).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let (st, id) = (state.clone(), path.into_inner());
    match web::block(move || outbox::find(&mut *st.db.conn()?, &id)).await {
        Ok(Ok(Some(m))) if m.sender == sender.client_id => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(message_json(&m)),
        Ok(Ok(_)) => problem(StatusCode::NOT_FOUND, "no such message"),
        _ => problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
    }
}

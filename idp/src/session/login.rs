//! `/login`: the password login form and its handling, with throttling per account and per source
//! address, no user enumeration (same message, same Argon2 cost for unknown accounts), and audit.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::sessions::{self as store, Session};
use kuntalaistili_schema::throttle::{self, Policy};
use kuntalaistili_schema::users::{self, User};
use kuntalaistili_schema::{audit, DbError};
use serde::Deserialize;

use super::{expiry, safe_next, session_cookie, token_hash};
use crate::audit::{kind, Event};
use crate::crypto::{random_token, sha256_hex};
use crate::csrf::{self, Csrf};
use crate::error::WebError;
use crate::i18n::{self, Lang};
use crate::metrics::inc;
use crate::{client_ip, IdpState};

pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
    /// Prefills the username (an OIDC `login_hint`).
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

/// How the form is shown again after a failed attempt.
struct FormState<'a> {
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
    username: &'a str,
    next: &'a str,
}

fn login_page(state: &IdpState, req: &HttpRequest, lang: Lang, f: FormState<'_>) -> HttpResponse {
    let mut ctx = state.templates.context(lang, "/login", None);
    ctx.insert("next", f.next);
    ctx.insert("username", f.username);
    if let Some(e) = &f.error {
        ctx.insert("error", e);
    }
    if let Some(n) = &f.notice {
        ctx.insert("notice", n);
    }
    crate::forms_may_leave(state.form_page(req, f.status, "idp/login.html", ctx))
}

pub async fn session_login_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let lang = i18n::negotiate(&req);
    let next = safe_next(query.next.as_deref());
    let notice = query
        .logged_out
        .as_ref()
        .map(|_| state.templates.tr.text(lang, "login.logged_out"));
    let hint: String = query
        .username
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USERNAME_CHARS)
        .collect();
    login_page(
        &state,
        &req,
        lang,
        FormState {
            status: StatusCode::OK,
            error: None,
            notice,
            username: &hint,
            next: &next,
        },
    )
}

/// What checking the password concluded.
enum Outcome {
    Success {
        token: String,
    },
    Invalid {
        blocked_until: Option<NaiveDateTime>,
    },
    Throttled {
        until: NaiveDateTime,
    },
}

pub async fn session_login_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let lang = i18n::negotiate(&req);
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let tr = |key: &str| state.templates.tr.text(lang, key);
    let secure = state.settings.secure_cookies;
    let raw_username = form.username.unwrap_or_default();
    let shown_username: String = raw_username.chars().take(MAX_USERNAME_CHARS).collect();
    let again = |status, key: &str| {
        login_page(
            &state,
            &req,
            lang,
            FormState {
                status,
                error: Some(tr(key)),
                notice: None,
                username: &shown_username,
                next: &next,
            },
        )
    };

    if !csrf::verify(&req, &state.keys, secure, form.csrf.as_deref()) {
        return Ok(again(StatusCode::FORBIDDEN, "login.error_csrf"));
    }
    let password = form.password.unwrap_or_default();
    let username = raw_username.trim().to_lowercase();
    if username.chars().count() > MAX_USERNAME_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Ok(again(StatusCode::BAD_REQUEST, "error.too_long"));
    }
    // The form decoder replaces invalid UTF-8 with U+FFFD; such input is not a credential.
    if username.contains('\u{FFFD}') || password.contains('\u{FFFD}') {
        return Ok(again(StatusCode::BAD_REQUEST, "error.bad_request"));
    }
    if username.is_empty() || password.is_empty() {
        return Ok(again(StatusCode::BAD_REQUEST, "login.error_missing"));
    }

    let ip = client_ip(&req, &state.settings);
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect::<String>());
    let old_session = token_hash(&req, secure);
    let outcome = authenticate(&state, username, password, ip, user_agent, old_session).await?;

    match outcome {
        Outcome::Success { token } => {
            inc(&state.metrics.logins_success);
            let csrf = Csrf::ensure(&req, &state.keys, secure);
            let mut resp = HttpResponse::SeeOther();
            resp.insert_header((actix_web::http::header::LOCATION, next))
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .cookie(session_cookie(secure, &token));
            for c in csrf.cookies(secure) {
                resp.cookie(c);
            }
            Ok(resp.finish())
        }
        Outcome::Invalid {
            blocked_until: None,
        } => {
            inc(&state.metrics.logins_failure);
            Ok(again(StatusCode::UNAUTHORIZED, "login.error_invalid"))
        }
        Outcome::Invalid {
            blocked_until: Some(until),
        }
        | Outcome::Throttled { until } => {
            inc(&state.metrics.logins_throttled);
            let minutes = ((until - kuntalaistili_schema::now_utc()).num_seconds() + 59) / 60;
            let msg = tr("login.error_throttled").replace("{minutes}", &minutes.max(1).to_string());
            let mut resp = login_page(
                &state,
                &req,
                lang,
                FormState {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    error: Some(msg),
                    notice: None,
                    username: &shown_username,
                    next: &next,
                },
            );
            let secs = (until - kuntalaistili_schema::now_utc())
                .num_seconds()
                .max(1);
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            Ok(resp)
        }
    }
}

pub(crate) fn policies(state: &IdpState) -> (Policy, Policy) {
    let t = state.settings.throttle;
    let base = Policy {
        max_failures: t.account_max_failures,
        window: Duration::minutes(t.window_minutes),
        block: Duration::minutes(t.block_minutes),
        max_block: Duration::minutes(t.max_block_minutes),
    };
    (
        base,
        Policy {
            max_failures: t.ip_max_failures,
            ..base
        },
    )
}

/// Throttle check and account look-up (blocking), Argon2 verification on the hashing pool, then
/// the new session with its audit row in one transaction, or the counted failure.
async fn authenticate(
    state: &web::Data<IdpState>,
    username: String,
    password: String,
    ip: Option<String>,
    user_agent: Option<String>,
    old_session: Option<String>,
) -> Result<Outcome, WebError> {
    let account_key = format!("acct:{username}");
    let ip_key = ip.as_ref().map(|ip| format!("ip:{ip}"));

    let (st, acct, ipk, name, addr) = (
        state.clone(),
        account_key.clone(),
        ip_key.clone(),
        username.clone(),
        ip.clone(),
    );
    let checked = web::block(
        move || -> Result<Result<(Option<User>, bool), NaiveDateTime>, WebError> {
            let mut conn = st.db.conn()?;
            let now = kuntalaistili_schema::now_utc();
            let keys: Vec<&str> = std::iter::once(acct.as_str())
                .chain(ipk.as_deref())
                .collect();
            let status = throttle::status(&mut conn, &keys, now)?;
            if let Some(until) = status.blocked_until {
                audit::append(
                    &mut conn,
                    Event::failure(kind::LOGIN_THROTTLED)
                        .ip(addr)
                        .details(serde_json::json!({ "username": name }))
                        .into_new(),
                    now,
                )?;
                return Ok(Err(until));
            }
            let counted = status.counted.contains(&acct);
            Ok(Ok((users::find_by_username(&mut conn, &name)?, counted)))
        },
    )
    .await??;
    let (user, account_counted) = match checked {
        Ok(found) => found,
        Err(until) => return Ok(Outcome::Throttled { until }),
    };

    // Unknown or disabled accounts are verified against the dummy hash: same cost, same answer.
    let usable = user.filter(|u| !u.disabled);
    let stored = usable.as_ref().and_then(|u| u.password_hash.clone());
    let ok = state
        .hash_pool
        .verify(stored, password)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password verification failed to run");
            WebError::Unavailable
        })?;

    let st = state.clone();
    web::block(move || -> Result<Outcome, WebError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        match (ok, usable) {
            (true, Some(user)) => {
                let token = random_token();
                let session = Session {
                    id: uuid::Uuid::new_v4().to_string(),
                    token_hash: sha256_hex(&token),
                    user_id: user.id.clone(),
                    acr: "password".to_owned(),
                    auth_time: now,
                    created_at: now,
                    last_seen_at: now,
                    expires_at: expiry(&st, now, now),
                    ip: ip.clone(),
                    user_agent,
                };
                write_tx(&mut conn, |conn| -> Result<(), DbError> {
                    // A login always starts a new session (no fixation); the browser's previous
                    // one ends.
                    if let Some(old) = &old_session {
                        if let Some((prev, _)) = store::find_active(conn, old, now)? {
                            store::delete_for_user(conn, &prev.user_id, &prev.id)?;
                        }
                    }
                    store::insert(conn, &session)?;
                    if account_counted {
                        throttle::clear(conn, &account_key)?;
                    }
                    audit::append_in_tx(
                        conn,
                        Event::success(kind::LOGIN_SUCCESS)
                            .actor(user.id.clone())
                            .subject(user.id.clone())
                            .ip(ip.clone())
                            .details(
                                serde_json::json!({ "session": session.id, "acr": "password" }),
                            )
                            .into_new(),
                        now,
                    )?;
                    Ok(())
                })?;
                tracing::info!(user = %user.id, session = %session.id, "login succeeded");
                Ok(Outcome::Success { token })
            }
            (_, usable) => {
                let (account_policy, ip_policy) = policies(&st);
                let mut blocked =
                    throttle::record_failure(&mut conn, &account_key, now, &account_policy)?;
                if let Some(k) = &ip_key {
                    blocked = blocked.max(throttle::record_failure(&mut conn, k, now, &ip_policy)?);
                }
                let mut ev = Event::failure(kind::LOGIN_FAILURE).ip(ip).details(
                    serde_json::json!({ "username": username, "blocked": blocked.is_some() }),
                );
                if let Some(u) = &usable {
                    ev = ev.subject(u.id.clone());
                }
                audit::append(&mut conn, ev.into_new(), now)?;
                Ok(Outcome::Invalid {
                    blocked_until: blocked,
                })
            }
        }
    })
    .await?
}

//! `/account`: the resident's own data, their live sessions (end one, or all), and recent logins.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_schema::oidc_flows::{self as flows, Grant};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, sessions as store, DbError};
use serde::Deserialize;

use super::logout::{redirect, CsrfForm};
use super::{current, removal_cookie};
use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n;
use crate::{client_ip, IdpState};

fn fmt_time(t: NaiveDateTime) -> (String, String) {
    (
        t.format("%-d.%-m.%Y %H.%M UTC").to_string(),
        kuntalaistili_schema::iso_utc(t),
    )
}

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    ended: Option<String>,
    withdrawn: Option<String>,
    saved: Option<String>,
    erase_failed: Option<String>,
}

pub async fn session_account_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = i18n::negotiate(&req);
    let Some((session, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    let st = state.clone();
    let uid = user.id.clone();
    let (sessions, logins, consents) = web::block(move || -> Result<_, WebError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        let sessions = store::list_for_user(&mut conn, &uid, now)?;
        let consents = flows::consents_of(&mut conn, &uid)?;
        let mut logins = audit::recent(&mut conn, Some(kind::LOGIN_SUCCESS), Some(&uid), 5)?;
        logins.extend(audit::recent(
            &mut conn,
            Some(kind::LOGIN_FAILURE),
            Some(&uid),
            5,
        )?);
        logins.sort_by_key(|e| std::cmp::Reverse(e.seq));
        logins.truncate(8);
        Ok((sessions, logins, consents))
    })
    .await??;

    let mut ctx = state
        .templates
        .context(lang, "/account", Some(&user.display_name()));
    ctx.insert("me", &me_json(&user));
    ctx.insert("sessions", &sessions_json(&sessions, &session.id));
    let logins: Vec<_> = logins
        .iter()
        .map(|e| {
            let (at, at_iso) = fmt_time(e.occurred_at);
            serde_json::json!({ "at": at, "at_iso": at_iso, "ok": e.outcome == "success", "ip": e.ip })
        })
        .collect();
    ctx.insert("logins", &logins);
    let consents: Vec<_> = consents
        .iter()
        .map(|(id, name, scope, at)| {
            let (at, at_iso) = fmt_time(*at);
            let scopes: Vec<String> = scope
                .split_whitespace()
                .filter(|s| crate::oidc::claims::SCOPES.contains(s))
                .map(|s| state.templates.tr.text(lang, &format!("consent.scope_{s}")))
                .collect();
            serde_json::json!({ "client_id": id, "name": name, "scopes": scopes, "at": at, "at_iso": at_iso })
        })
        .collect();
    ctx.insert("consents", &consents);
    if query.ended.is_some() {
        ctx.insert(
            "notice",
            &state.templates.tr.text(lang, "account.session_ended"),
        );
    }
    if query.saved.is_some() {
        ctx.insert(
            "notice",
            &state.templates.tr.text(lang, "account.preferences_saved"),
        );
    }
    if query.erase_failed.is_some() {
        ctx.insert(
            "notice",
            &state.templates.tr.text(lang, "account.erase_failed"),
        );
    }
    ctx.insert("retention_days", &state.settings.erasure_retention_days);
    if query.withdrawn.is_some() {
        ctx.insert(
            "notice",
            &state.templates.tr.text(lang, "account.consent_withdrawn"),
        );
    }
    Ok(state.form_page(&req, StatusCode::OK, "idp/account.html", ctx))
}

fn me_json(user: &User) -> serde_json::Value {
    let address: Vec<&str> = [
        &user.street_address,
        &user.postal_code,
        &user.locality,
        &user.country,
    ]
    .into_iter()
    .filter_map(|p| p.as_deref())
    .collect();
    let name = match (&user.given_name, &user.family_name) {
        (None, None) => None,
        _ => Some(user.display_name()),
    };
    serde_json::json!({
        "username": user.username,
        "name": name,
        "email": user.email,
        "phone": user.phone,
        "address": (!address.is_empty()).then(|| address.join(", ")),
        "municipality": user.home_municipality,
        // Each language by its own name, as in the language switch.
        "language": match user.preferred_language.as_str() {
            "sv" => "Svenska",
            "en" => "English",
            _ => "Suomi",
        },
        "has_national_id": user.national_id_enc.is_some(),
        "language_code": user.preferred_language,
        "channels": user.message_channels.split_whitespace().collect::<Vec<_>>(),
    })
}

fn sessions_json(sessions: &[Session], current_id: &str) -> Vec<serde_json::Value> {
    sessions
        .iter()
        .map(|s| {
            let (created, created_iso) = fmt_time(s.created_at);
            let (last_seen, last_seen_iso) = fmt_time(s.last_seen_at);
            serde_json::json!({
                "id": s.id, "created": created, "created_iso": created_iso,
                "last_seen": last_seen, "last_seen_iso": last_seen_iso,
                "ip": s.ip, "user_agent": s.user_agent, "current": s.id == current_id,
            })
        })
        .collect()
}

/// Ends one of the resident's sessions (another device, or this one).
pub async fn session_account_end_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    end_sessions(state, req, Some(path.into_inner()), form.into_inner()).await
}

/// "Log out everywhere": ends every session of the resident.
pub async fn session_account_end_all_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    end_sessions(state, req, None, form.into_inner()).await
}

async fn end_sessions(
    state: web::Data<IdpState>,
    req: HttpRequest,
    which: Option<String>,
    form: CsrfForm,
) -> Result<HttpResponse, WebError> {
    let secure = state.settings.secure_cookies;
    if !csrf::verify(&req, &state.keys, secure, form.csrf.as_deref()) {
        return Err(WebError::Forbidden);
    }
    let Some((session, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    let ip = client_ip(&req, &state.settings);
    let ends_current = which.as_deref().is_none_or(|id| id == session.id);
    let st = state.clone();
    let uid = user.id.clone();
    let (found, grants) = web::block(move || -> Result<(bool, Vec<Grant>), WebError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        Ok(write_tx(
            &mut conn,
            |conn| -> Result<(bool, Vec<Grant>), DbError> {
                let (found, ev, grants) = match &which {
                    Some(id) => {
                        let found = store::delete_for_user(conn, &user.id, id)?;
                        let grants = if found {
                            flows::revoke_for_session(conn, id, now)?
                        } else {
                            Vec::new()
                        };
                        (
                            found,
                            Event::success(kind::SESSION_ENDED)
                                .details(serde_json::json!({ "session": id })),
                            grants,
                        )
                    }
                    None => {
                        let n = store::delete_all_for_user(conn, &user.id)?;
                        (
                            true,
                            Event::success(kind::SESSIONS_ENDED_ALL)
                                .details(serde_json::json!({ "count": n })),
                            flows::revoke_for_user(conn, &user.id, now)?,
                        )
                    }
                };
                if found {
                    audit::append_in_tx(
                        conn,
                        ev.actor(user.id.clone())
                            .subject(user.id.clone())
                            .ip(ip)
                            .into_new(),
                        now,
                    )?;
                }
                Ok((found, grants))
            },
        )?)
    })
    .await??;
    crate::session::logout::grants_revoked(&state, &uid, grants).await;
    if !found {
        return Err(WebError::NotFound);
    }
    if ends_current {
        let mut resp = redirect("/login?logged_out=1");
        resp.add_cookie(&removal_cookie(secure))
            .map_err(|_| WebError::Internal)?;
        return Ok(resp);
    }
    Ok(redirect("/account?ended=1"))
}

/// Withdraws the resident's consent for a service; its tokens stop working at once.
pub async fn session_account_withdraw_consent_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    if !csrf::verify(
        &req,
        &state.keys,
        state.settings.secure_cookies,
        form.csrf.as_deref(),
    ) {
        return Err(WebError::Forbidden);
    }
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    let client_id = path.into_inner();
    let ip = client_ip(&req, &state.settings);
    let st = state.clone();
    let found = web::block(move || -> Result<bool, WebError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        Ok(write_tx(&mut conn, |conn| -> Result<bool, DbError> {
            let found = flows::withdraw_consent(conn, &user.id, &client_id, now)?;
            if found {
                audit::append_in_tx(
                    conn,
                    Event::success(kind::CONSENT_WITHDRAWN)
                        .actor(user.id.clone())
                        .subject(user.id.clone())
                        .ip(ip)
                        .details(serde_json::json!({ "client": client_id }))
                        .into_new(),
                    now,
                )?;
            }
            Ok(found)
        })?)
    })
    .await??;
    if !found {
        return Err(WebError::NotFound);
    }
    Ok(redirect("/account?withdrawn=1"))
}

#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    csrf: Option<String>,
    language: Option<String>,
    channel_email: Option<String>,
    channel_sms: Option<String>,
    channel_notice: Option<String>,
}

/// The resident chooses how messages reach them, and in which language.
pub async fn session_account_preferences_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<PreferencesForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    if !csrf::verify(
        &req,
        &state.keys,
        state.settings.secure_cookies,
        form.csrf.as_deref(),
    ) {
        return Err(WebError::Forbidden);
    }
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    let language = form
        .language
        .unwrap_or_else(|| user.preferred_language.clone());
    if !["fi", "sv", "en"].contains(&language.as_str()) {
        return Err(WebError::BadRequest("error.bad_request"));
    }
    let chosen: Vec<&str> = [
        ("email", &form.channel_email),
        ("sms", &form.channel_sms),
        ("notice", &form.channel_notice),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(c, _)| c)
    .collect();
    let channels = crate::customers::channels(Some(&chosen.join(" ")))
        .map_err(|_| WebError::BadRequest("error.bad_request"))?;
    let ip = client_ip(&req, &state.settings);
    let st = state.clone();
    web::block(move || -> Result<(), WebError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        write_tx(&mut conn, |conn| -> Result<(), DbError> {
            kuntalaistili_schema::users::set_preferences(
                conn, &user.id, &channels, &language, now,
            )?;
            audit::append_in_tx(
                conn,
                Event::success(kind::USER_PREFERENCES)
                    .actor(user.id.clone())
                    .subject(user.id.clone())
                    .ip(ip)
                    .details(serde_json::json!({ "channels": channels, "language": language }))
                    .into_new(),
                now,
            )?;
            Ok(())
        })?;
        Ok(())
    })
    .await??;
    Ok(redirect("/account?saved=1"))
}

/// `GET /account/export`: everything the IdP holds about the resident, as a JSON download.
pub async fn session_account_export_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    let ip = client_ip(&req, &state.settings);
    let st = state.clone();
    let doc = web::block(move || -> Result<_, WebError> {
        let mut conn = st.db.conn()?;
        Ok(crate::customers::gdpr::export(
            &mut conn,
            &st.keys,
            &user.id,
            ip,
            kuntalaistili_schema::now_utc(),
        )?)
    })
    .await??
    .ok_or(WebError::NotFound)?;
    let body = serde_json::to_string_pretty(&doc).map_err(|_| WebError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"kuntalaistili-omat-tiedot.json\"",
        ))
        .body(body))
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    csrf: Option<String>,
    password: Option<String>,
}

/// `POST /account/erase`: with the password as confirmation, closes the account and schedules
/// the erasure of the resident's data; the services of their sessions are told at once.
pub async fn session_account_erase_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<EraseForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let secure = state.settings.secure_cookies;
    if !csrf::verify(&req, &state.keys, secure, form.csrf.as_deref()) {
        return Err(WebError::Forbidden);
    }
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login?next=/account"));
    };
    // The password check counts against the same lock-out as the login (a stolen session must
    // not become a password-guessing oracle), and refusals are audited.
    let account_key = format!("acct:{}", user.username);
    let (st, key) = (state.clone(), account_key.clone());
    let blocked = web::block(move || -> Result<bool, WebError> {
        let now = kuntalaistili_schema::now_utc();
        Ok(
            kuntalaistili_schema::throttle::status(&mut *st.db.conn()?, &[key.as_str()], now)?
                .blocked_until
                .is_some(),
        )
    })
    .await??;
    let password = form.password.unwrap_or_default();
    let ok = !blocked
        && !password.is_empty()
        && password.len() <= 1024
        && state
            .hash_pool
            .verify(user.password_hash.clone(), password)
            .await
            .map_err(|_| WebError::Unavailable)?;
    if !ok {
        let (st, uid, ip) = (
            state.clone(),
            user.id.clone(),
            client_ip(&req, &state.settings),
        );
        web::block(move || -> Result<(), WebError> {
            let mut conn = st.db.conn()?;
            let now = kuntalaistili_schema::now_utc();
            let (policy, _) = super::login::policies(&st);
            if !blocked {
                kuntalaistili_schema::throttle::record_failure(&mut conn, &account_key, now, &policy)?;
            }
            audit::append(
                &mut conn,
                Event::failure(kind::USER_ERASURE_REQUESTED)
                    .actor(uid.clone())
                    .subject(uid)
                    .ip(ip)
                    .details(serde_json::json!({ "reason": if blocked { "throttled" } else { "password" } }))
                    .into_new(),
                now,
            )?;
            Ok(())
        })
        .await??;
        return Ok(redirect("/account?erase_failed=1#erase-h"));
    }
    let ip = client_ip(&req, &state.settings);
    let st = state.clone();
    let uid = user.id.clone();
    let grants = web::block(move || -> Result<_, WebError> {
        let mut conn = st.db.conn()?;
        Ok(crate::customers::gdpr::request_erasure(
            &mut conn,
            &uid,
            &uid,
            ip,
            st.settings.erasure_retention_days,
            kuntalaistili_schema::now_utc(),
        )?)
    })
    .await??;
    crate::session::logout::grants_revoked(&state, &user.id, grants).await;
    let lang = i18n::negotiate(&req);
    let mut ctx = state.templates.context(lang, "/account", None);
    ctx.insert(
        "heading",
        &state.templates.tr.text(lang, "account.erased_title"),
    );
    ctx.insert(
        "message",
        &state
            .templates
            .tr
            .text(lang, "account.erased_message")
            .replace("{days}", &state.settings.erasure_retention_days.to_string()),
    );
    let mut resp = crate::render::html(
        &state.templates,
        &req,
        StatusCode::OK,
        "idp/message.html",
        &ctx,
        vec![],
    );
    resp.add_cookie(&removal_cookie(secure))
        .map_err(|_| WebError::Internal)?;
    Ok(resp)
}

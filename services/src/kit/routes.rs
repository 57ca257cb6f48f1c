//! The kit's own routes under each service's base path: login (silent or not), the callback
//! that finishes the code flow, logout (here and at the IdP) and back-channel logout.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_schema::service_sessions::{self as store, ServiceSession};
use kuntalaistili_schema::DbError;
use serde::Deserialize;

use super::{
    hash, random_token, render, see_other, Kit, KitError, BACKCHANNEL, CALLBACK, LOGIN, LOGOUT,
};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    silent: Option<String>,
    /// Asked by [`KitError::Recheck`]: go round the IdP silently even with a session here.
    recheck: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BackchannelForm {
    logout_token: Option<String>,
}

/// Mounts the kit's own routes (login, callback, logout, back-channel logout) for a service.
pub fn configure(cfg: &mut web::ServiceConfig, kit: web::Data<Kit>) {
    let base = kit.cfg.base_path;
    let k1 = kit.clone();
    let k2 = kit.clone();
    let k3 = kit.clone();
    let k4 = kit;
    cfg.route(
        &format!("{base}{LOGIN}"),
        web::get().to(move |req: HttpRequest, q: web::Query<LoginQuery>| {
            let kit = k1.clone();
            async move { login_get(kit, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}{CALLBACK}"),
        web::get().to(move |req: HttpRequest, q: web::Query<CallbackQuery>| {
            let kit = k2.clone();
            async move { callback_get(kit, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}{LOGOUT}"),
        web::post().to(move |req: HttpRequest, f: web::Form<CsrfForm>| {
            let kit = k3.clone();
            async move { logout_post(kit, req, f.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}{BACKCHANNEL}"),
        web::post().to(move |f: web::Form<BackchannelForm>| {
            let kit = k4.clone();
            async move { backchannel_post(kit, f.into_inner()).await }
        }),
    );
}

async fn login_get(
    kit: web::Data<Kit>,
    req: HttpRequest,
    q: LoginQuery,
) -> Result<HttpResponse, KitError> {
    let return_to = kit.safe_return(q.return_to.as_deref());
    if q.recheck.is_some() {
        return kit.start_login(return_to, true).await;
    }
    if kit.resident(&req).await?.is_some() {
        return Ok(see_other(&return_to));
    }
    let silent = q.silent.is_some() && kit.may_try_silent(&req);
    kit.start_login(return_to, silent).await
}

async fn callback_get(
    kit: web::Data<Kit>,
    req: HttpRequest,
    q: CallbackQuery,
) -> Result<HttpResponse, KitError> {
    let fail = |key: &str| {
        let lang = render::negotiate(&req);
        let mut ctx = tera::Context::new();
        ctx.insert("heading", &kit.templates.tr.text(lang, "kit.error_title"));
        ctx.insert("message", &kit.templates.tr.text(lang, key));
        kit.page(
            &req,
            StatusCode::BAD_REQUEST,
            "services/message.html",
            None,
            ctx,
        )
    };
    let Some(state) = q.state.filter(|s| s.len() <= 256) else {
        return Ok(fail("kit.error_login"));
    };
    let Some(pending) = kit.pending(&req, &state) else {
        return Ok(fail("kit.error_login"));
    };
    // RFC 9207: the answer must come from our issuer (mix-up defence).
    if q.iss.as_deref().is_some_and(|i| i != kit.cfg.issuer) {
        return Ok(fail("kit.error_login"));
    }
    if let Some(err) = q.error {
        if pending.q
            && matches!(
                err.as_str(),
                "login_required" | "consent_required" | "interaction_required"
            )
        {
            // No IdP session: continue as a visitor (this service's session, if any, ends with
            // the IdP's), and do not try silently again.
            kit.end_local(&req).await?;
            let mut resp = see_other(&pending.r);
            resp.add_cookie(&kit.removal(kit.cookie_name()))
                .map_err(|_| KitError::Blocking)?;
            resp.add_cookie(&kit.removal(kit.login_cookie_name()))
                .map_err(|_| KitError::Blocking)?;
            let mut anon = kit.cookie(kit.anon_cookie_name(), "1".into());
            // Short-lived: a resident who logs in at the IdP later is recognised within minutes.
            anon.set_max_age(actix_web::cookie::time::Duration::minutes(2));
            resp.add_cookie(&anon).map_err(|_| KitError::Blocking)?;
            return Ok(resp);
        }
        tracing::info!(service = kit.cfg.service, error = %err, "login at the IdP did not complete");
        return Ok(fail("kit.error_login"));
    }
    let Some(code) = q.code.filter(|c| c.len() <= 512) else {
        return Ok(fail("kit.error_login"));
    };
    let identity = match kit.rp.finish(&code, &pending.v, &pending.n).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(service = kit.cfg.service, error = %e, "code exchange or ID token validation failed");
            return Ok(fail("kit.error_login"));
        }
    };
    // A session this browser had (e.g. before a silent re-check) gives way to the new one.
    kit.end_local(&req).await?;
    let token = random_token();
    let now = kuntalaistili_schema::now_utc();
    // The absolute limit counts from the login at the IdP, not from this service's round.
    let lifetime = Duration::hours(kit.cfg.session_hours);
    let expires_at = identity
        .auth_time
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| (t.naive_utc() + lifetime).min(now + lifetime))
        .unwrap_or(now + lifetime);
    if expires_at <= now {
        return Ok(fail("kit.error_login"));
    }
    let row = ServiceSession {
        token_hash: hash(&token),
        service: kit.cfg.service.to_owned(),
        sub: identity.sub,
        name: identity.name,
        idp_sid: identity.sid,
        id_token: identity.id_token,
        csrf: random_token(),
        email: identity.email,
        created_at: now,
        expires_at,
        last_seen_at: Some(now),
        idp_checked_at: Some(now),
    };
    let db = kit.db.clone();
    web::block(move || store::insert(&mut *db.conn()?, &row)).await??;
    let mut resp = see_other(&pending.r);
    resp.add_cookie(&kit.cookie(kit.cookie_name(), token))
        .map_err(|_| KitError::Blocking)?;
    resp.add_cookie(&kit.removal(kit.login_cookie_name()))
        .map_err(|_| KitError::Blocking)?;
    resp.add_cookie(&kit.removal(kit.anon_cookie_name()))
        .map_err(|_| KitError::Blocking)?;
    Ok(resp)
}

async fn logout_post(
    kit: web::Data<Kit>,
    req: HttpRequest,
    form: CsrfForm,
) -> Result<HttpResponse, KitError> {
    let Some(resident) = kit.resident(&req).await? else {
        return Ok(see_other(&kit.cfg.path("/")));
    };
    if !Kit::csrf_ok(&resident, form.csrf.as_deref()) {
        return Ok(HttpResponse::Forbidden().finish());
    }
    let (db, h, service) = (kit.db.clone(), resident.token_hash.clone(), kit.cfg.service);
    let id_token = web::block(move || -> Result<Option<String>, DbError> {
        let mut conn = db.conn()?;
        let row = store::find(&mut conn, service, &h, kuntalaistili_schema::now_utc())?;
        store::delete(&mut conn, &h)?;
        Ok(row.map(|r| r.id_token))
    })
    .await??;
    // Log out at the IdP too (RP-initiated logout), which also ends the other services' sessions
    // through back-channel logout.
    let target = kit
        .rp
        .end_session_url(id_token.as_deref(), &kit.cfg.post_logout_uri())
        .await
        .unwrap_or_else(|_| kit.cfg.path("/"));
    let mut resp = see_other(&target);
    resp.add_cookie(&kit.removal(kit.cookie_name()))
        .map_err(|_| KitError::Blocking)?;
    Ok(resp)
}

async fn backchannel_post(kit: web::Data<Kit>, form: BackchannelForm) -> HttpResponse {
    let Some(token) = form.logout_token.filter(|t| t.len() <= 8192) else {
        return logout_error();
    };
    let claims = match kit.rp.verify_logout_token(&token).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(service = kit.cfg.service, error = %e, "logout token refused");
            return logout_error();
        }
    };
    let (db, service) = (kit.db.clone(), kit.cfg.service);
    let ended = web::block(move || -> Result<usize, DbError> {
        let mut conn = db.conn()?;
        match (&claims.sid, &claims.sub) {
            (Some(sid), _) => store::delete_by_sid(&mut conn, service, sid),
            (None, Some(sub)) => store::delete_by_sub(&mut conn, service, sub),
            (None, None) => Ok(0),
        }
    })
    .await;
    match ended {
        Ok(Ok(n)) => {
            tracing::info!(
                service = kit.cfg.service,
                sessions = n,
                "back-channel logout"
            );
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        _ => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "error": "temporarily_unavailable" })),
    }
}

fn logout_error() -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": "invalid_request" }))
}

//! The authorization endpoint (`/oauth2/authorize`, GET and POST), its continuation after login
//! (`/oauth2/authorize/resume`) and the consent decision (`/consent`).
//!
//! Order of checks (OIDC Core 3.1.2.2, RFC 9700): the client and the redirect URI first — until
//! both are known good, every problem is an error page and nothing is redirected. After that,
//! errors go back to the client (query or form_post) with `state` and `iss` (RFC 9207).
//! A request that needs the resident (login, consent) is stored server-side and referred to by a
//! random id, so the login page only ever carries a short local `next` link.
//!
//! This file is the HTTP side: it reads the request, loads what the decisions need, stores and
//! issues, and renders. The decisions themselves are plain functions in [`super::request`].

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::crypto::{random_token, sha256_hex};
use kuntalaistili_schema::oidc_flows::{self as flows, AuthRequest, Code, Grant};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, DbError};
use serde::Deserialize;
use serde_json::json;

use super::answer::{reply, reply_error, see_other};
use super::claims;
use super::request::{
    self, AuthParams, Checked, ConsentStep, Invalid, Prompt, Stage, CODE_SECONDS, REQUEST_MINUTES,
    REQUEST_URI_PREFIX,
};
use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n;
use crate::session::current;
use crate::IdpState;

/// `GET /oauth2/authorize`.
pub async fn oidc_authorize_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<AuthParams>,
) -> Result<HttpResponse, WebError> {
    start(state, req, query.into_inner()).await
}

/// `POST /oauth2/authorize` (form-encoded, OIDC Core 3.1.2.1).
pub async fn oidc_authorize_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<AuthParams>,
) -> Result<HttpResponse, WebError> {
    start(state, req, form.into_inner()).await
}

async fn start(
    state: web::Data<IdpState>,
    req: HttpRequest,
    mut params: AuthParams,
) -> Result<HttpResponse, WebError> {
    if let Some(uri) = params.request_uri.clone() {
        params = pushed(&state, params.client_id.as_deref(), &uri).await?;
    }
    decide(&state, &req, params, Stage::Fresh).await
}

/// The parameters of a pushed request (single use), for the client that pushed it.
async fn pushed(
    state: &web::Data<IdpState>,
    client_id: Option<&str>,
    uri: &str,
) -> Result<AuthParams, WebError> {
    let (Some(client_id), Some(id)) = (client_id, uri.strip_prefix(REQUEST_URI_PREFIX)) else {
        return Err(WebError::BadRequest("oidc.error_request"));
    };
    let (st, id, cid) = (state.clone(), id.to_owned(), client_id.to_owned());
    let found = web::block(move || -> Result<Option<AuthRequest>, DbError> {
        let mut conn = st.db.conn()?;
        let r = flows::find_auth_request(&mut conn, &id, kuntalaistili_schema::now_utc())?;
        match r {
            Some(r) if r.pushed && r.client_id == cid => {
                if flows::delete_auth_request(&mut conn, &r.id)? {
                    Ok(Some(r))
                } else {
                    Ok(None)
                }
            }
            _ => Ok(None),
        }
    })
    .await??;
    let r = found.ok_or(WebError::BadRequest("oidc.error_request_expired"))?;
    serde_json::from_str(&r.params).map_err(|_| WebError::BadRequest("oidc.error_request"))
}

#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    id: Option<String>,
    /// A request carried through the login page itself: base64url JSON `{p, t}` …
    r: Option<String>,
    /// … and its MAC under the master key (so nothing is stored for anonymous visitors).
    m: Option<String>,
}

/// `GET /oauth2/authorize/resume?r=…&m=…` (or `?id=…` for a stored request): continues a request
/// after the login page.
pub async fn oidc_authorize_resume_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    if let (Some(r), Some(m)) = (&query.r, &query.m) {
        let (params, at) = super::carry::uncarry(&state, r, m)
            .ok_or(WebError::BadRequest("oidc.error_request_expired"))?;
        return decide(&state, &req, params, Stage::Resumed { id: None, at }).await;
    }
    let id = query
        .id
        .filter(|i| i.len() <= 64)
        .ok_or(WebError::BadRequest("oidc.error_request"))?;
    let stored = load_stored(&state, &id).await?;
    let params = serde_json::from_str(&stored.params)
        .map_err(|_| WebError::BadRequest("oidc.error_request"))?;
    decide(
        &state,
        &req,
        params,
        Stage::Resumed {
            id: Some(id),
            at: stored.created_at,
        },
    )
    .await
}

async fn load_stored(state: &web::Data<IdpState>, id: &str) -> Result<AuthRequest, WebError> {
    let (st, id) = (state.clone(), id.to_owned());
    web::block(move || -> Result<Option<AuthRequest>, DbError> {
        flows::find_auth_request(&mut *st.db.conn()?, &id, kuntalaistili_schema::now_utc())
    })
    .await??
    .filter(|r| !r.pushed)
    .ok_or(WebError::BadRequest("oidc.error_request_expired"))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    id: Option<String>,
    csrf: Option<String>,
    decision: Option<String>,
}

/// `POST /consent`: the resident's answer. Bound to the CSRF token, the session
/// the page was shown to, and the stored request (answered once).
pub async fn oidc_consent_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
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
    let id = form
        .id
        .filter(|i| i.len() <= 64)
        .ok_or(WebError::BadRequest("oidc.error_request"))?;
    let Some((session, user)) = current(&state, &req).await? else {
        return Err(WebError::Forbidden);
    };
    let stored = load_stored(&state, &id).await?;
    if stored.session_id.as_deref() != Some(session.id.as_str()) {
        return Err(WebError::Forbidden);
    }
    let params: AuthParams = serde_json::from_str(&stored.params)
        .map_err(|_| WebError::BadRequest("oidc.error_request"))?;
    if form.decision.as_deref() == Some("allow") {
        return decide(&state, &req, params, Stage::Consented { id }).await;
    }
    // Denied: answer the client once, and record it.
    let st = state.clone();
    let (uid, cid, sid) = (user.id.clone(), stored.client_id.clone(), id.clone());
    let first = web::block(move || -> Result<bool, DbError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        write_tx(&mut conn, |conn| -> Result<bool, DbError> {
            let first = flows::delete_auth_request(conn, &sid)?;
            if first {
                audit::append_in_tx(
                    conn,
                    Event::failure(kind::OIDC_DENIED)
                        .actor(uid.clone())
                        .subject(uid.clone())
                        .details(json!({ "client": cid }))
                        .into_new(),
                    now,
                )?;
            }
            Ok(first)
        })
    })
    .await??;
    if !first {
        return Err(WebError::BadRequest("oidc.error_request_expired"));
    }
    match check(&state, &req, &params).await {
        Ok(c) => Ok(reply_error(
            &state,
            &c.reply,
            "access_denied",
            "the resident did not allow the request",
        )),
        Err(Invalid::Redirect(r, code, d)) => Ok(reply_error(&state, &r, code, &d)),
        Err(Invalid::Page(e)) => Err(e),
    }
}

/// Validates, then asks for login or consent, or issues the code.
async fn decide(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    params: AuthParams,
    stage: Stage,
) -> Result<HttpResponse, WebError> {
    let c = match check(state, req, &params).await {
        Ok(c) => c,
        Err(Invalid::Page(e)) => return Err(e),
        Err(Invalid::Redirect(r, code, d)) => return Ok(reply_error(state, &r, code, &d)),
    };
    let found = current(state, req).await?;
    let now = kuntalaistili_schema::now_utc();
    if request::needs_login(&c, found.as_ref(), &stage, now) {
        if c.prompt == Prompt::None {
            return Ok(reply_error(
                state,
                &c.reply,
                "login_required",
                "the resident is not logged in",
            ));
        }
        // Anonymous requests store nothing; one too large to carry must come by PAR.
        let Some(next) = super::carry::carried(state, &params) else {
            return Ok(reply_error(
                state,
                &c.reply,
                "invalid_request",
                "the request is too large; send it by PAR (RFC 9126)",
            ));
        };
        return Ok(see_other(&request::login_url(&c, &next)));
    }
    let Some((session, user)) = found else {
        return Err(WebError::Internal);
    };

    // A client allowed a privileged scope does not make the person privileged: only people who
    // hold the scope's role get it, and service scopes never go to a person's login.
    if let Some(s) = super::privileged::first_refused(c.scopes.iter().map(String::as_str), &user) {
        refused_scope_audit(state, &user, &c.client.client_id, s).await;
        return Ok(reply_error(
            state,
            &c.reply,
            "access_denied",
            &format!("the scope {s} is not granted to this person"),
        ));
    }

    // Consent: asked unless this client is first-party or the resident already allowed these
    // scopes; `prompt=consent` always asks.
    if request::may_ask_consent(&c, &stage) {
        let (st, uid, cid) = (state.clone(), user.id.clone(), c.client.client_id.clone());
        let remembered = web::block(move || -> Result<Option<String>, DbError> {
            flows::consent(&mut *st.db.conn()?, &uid, &cid)
        })
        .await??;
        match request::consent_step(&c, remembered.as_deref()) {
            ConsentStep::Remembered => {}
            ConsentStep::Required => {
                return Ok(reply_error(
                    state,
                    &c.reply,
                    "consent_required",
                    "the resident has not allowed this client",
                ))
            }
            ConsentStep::Ask => {
                let id = store(state, &c, &params, Some(&session.id), &stage).await?;
                return Ok(consent_page(state, req, &c, &user, &id));
            }
        }
    }

    let consented = matches!(stage, Stage::Consented { .. });
    let done = request::answered(&stage);
    let code = issue_code(state, &c, &session, &user, consented, done).await?;
    let Some(code) = code else {
        return Err(WebError::BadRequest("oidc.error_request_expired"));
    };
    let fields = request::code_fields(&c, code, &state.settings.public_url);
    Ok(reply(state, &c.reply, fields))
}

/// Records that a person was refused a privileged scope (an audit failure row).
async fn refused_scope_audit(state: &web::Data<IdpState>, user: &User, client: &str, scope: &str) {
    let st = state.clone();
    let ev = Event::failure(kind::OIDC_DENIED)
        .actor(user.id.clone())
        .subject(user.id.clone())
        .details(json!({ "client": client, "reason": "privileged_scope", "scope": scope }))
        .into_new();
    let r = web::block(move || -> Result<(), DbError> {
        audit::append(&mut *st.db.conn()?, ev, kuntalaistili_schema::now_utc())?;
        Ok(())
    })
    .await;
    if !matches!(r, Ok(Ok(()))) {
        tracing::error!("auditing a refused privileged scope failed");
    }
}

/// Stores the request for the resident's next step (reusing the stored row when resuming) and
/// returns its id.
async fn store(
    state: &web::Data<IdpState>,
    c: &Checked,
    params: &AuthParams,
    session_id: Option<&str>,
    stage: &Stage,
) -> Result<String, WebError> {
    let mut params = params.clone();
    params.request_uri = None;
    let body = serde_json::to_string(&params).map_err(|_| WebError::Internal)?;
    let existing = match stage {
        Stage::Resumed { id, .. } => id.clone(),
        _ => None,
    };
    let (st, cid, sid) = (
        state.clone(),
        c.client.client_id.clone(),
        session_id.map(str::to_owned),
    );
    let id = web::block(move || -> Result<String, DbError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        if let Some(id) = existing {
            if let Some(s) = &sid {
                flows::bind_auth_request(&mut conn, &id, s)?;
            }
            return Ok(id);
        }
        let id = random_token();
        flows::insert_auth_request(
            &mut conn,
            &AuthRequest {
                id: id.clone(),
                client_id: cid,
                params: body,
                pushed: false,
                session_id: sid,
                created_at: now,
                expires_at: now + Duration::minutes(REQUEST_MINUTES),
            },
        )?;
        Ok(id)
    })
    .await??;
    Ok(id)
}

/// Validates the parameters (see [`request::validate`]) with the client they name.
pub(super) async fn check(
    state: &web::Data<IdpState>,
    _req: &HttpRequest,
    p: &AuthParams,
) -> Result<Checked, Invalid> {
    let client_id = request::client_id(p)?;
    let client = super::client_auth::load(state, client_id)
        .await
        .map_err(|_| Invalid::Page(WebError::Unavailable))?;
    request::validate(p, client)
}

/// Creates the grant and its code (and remembers consent) in one transaction; `None` when the
/// stored request was already answered.
async fn issue_code(
    state: &web::Data<IdpState>,
    c: &Checked,
    session: &Session,
    user: &User,
    remember_consent: bool,
    stored: Option<String>,
) -> Result<Option<String>, WebError> {
    let code = random_token();
    let now = kuntalaistili_schema::now_utc();
    let scope = c.scopes.join(" ");
    let offline = c.scopes.iter().any(|s| s == "offline_access");
    let lifetime = if offline {
        Duration::days(state.settings.refresh_token_days)
    } else {
        Duration::hours(state.settings.session.absolute_timeout_hours)
    };
    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: c.client.client_id.clone(),
        user_id: user.id.clone(),
        session_id: Some(session.id.clone()),
        scope: scope.clone(),
        nonce: c.nonce.clone(),
        acr: session.acr.clone(),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + lifetime,
        revoked_at: None,
    };
    let row = Code {
        code_hash: sha256_hex(&code),
        grant_id: grant.id.clone(),
        redirect_uri: c.reply.redirect_uri.clone(),
        code_challenge: c.code_challenge.clone(),
        created_at: now,
        expires_at: now + Duration::seconds(CODE_SECONDS),
        used_at: None,
    };
    let acr_asked = c.acr_values.clone();
    let st = state.clone();
    let issued = web::block(move || -> Result<bool, DbError> {
        let mut conn = st.db.conn()?;
        write_tx(&mut conn, |conn| -> Result<bool, DbError> {
            if let Some(id) = &stored {
                if !flows::delete_auth_request(conn, id)? {
                    return Ok(false);
                }
            }
            flows::insert_grant(conn, &grant)?;
            flows::insert_code(conn, &row)?;
            if remember_consent {
                flows::save_consent(conn, &grant.user_id, &grant.client_id, &grant.scope, now)?;
            }
            audit::append_in_tx(
                conn,
                Event::success(kind::OIDC_AUTHORIZED)
                    .actor(grant.user_id.clone())
                    .subject(grant.user_id.clone())
                    .details(json!({
                        "client": grant.client_id,
                        "grant": grant.id,
                        "scope": grant.scope,
                        "session": grant.session_id,
                        "consent_given": remember_consent,
                        "acr_values": acr_asked,
                    }))
                    .into_new(),
                now,
            )?;
            Ok(true)
        })
    })
    .await??;
    Ok(issued.then_some(code))
}

fn consent_page(
    state: &IdpState,
    req: &HttpRequest,
    c: &Checked,
    user: &User,
    id: &str,
) -> HttpResponse {
    let lang = c.lang.unwrap_or_else(|| i18n::negotiate(req));
    let mut ctx =
        state
            .templates
            .context(lang, crate::paths::AUTHORIZE, Some(&user.display_name()));
    ctx.insert("client_name", &c.client.name);
    // Every requested scope is shown: the known ones described, others by their name.
    let described: Vec<String> = c
        .scopes
        .iter()
        .map(|s| {
            if claims::SCOPES.contains(&s.as_str()) {
                state.templates.tr.text(lang, &format!("consent.scope_{s}"))
            } else {
                s.clone()
            }
        })
        .collect();
    ctx.insert("scopes", &described);
    ctx.insert("request_id", id);
    crate::forms_may_leave(state.form_page(req, StatusCode::OK, "idp/consent.html", ctx))
}

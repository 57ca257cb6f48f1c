//! The authorization endpoint (`/oauth2/authorize`, GET and POST), its continuation after login
//! (`/oauth2/authorize/resume`) and the consent decision (`/consent`).
//!
//! Order of checks (OIDC Core 3.1.2.2, RFC 9700): the client and the redirect URI first — until
//! both are known good, every problem is an error page and nothing is redirected. After that,
//! errors go back to the client (query or form_post) with `state` and `iss` (RFC 9207).
//! A request that needs the resident (login, consent) is stored server-side and referred to by a
//! random id, so the login page only ever carries a short local `next` link.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_metadata::crypto::{random_token, sha256_hex};
use kuntalaistili_schema::oidc_clients::OidcClient;
use kuntalaistili_schema::oidc_flows::{self as flows, AuthRequest, Code, Grant};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, DbError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::answer::{reply, reply_error, Reply};
use super::client_auth::MAX_PARAM;
use super::{claims, pkce};
use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n::{self, Lang};
use crate::session::current;
use crate::IdpState;

/// How long a code may wait for redemption.
pub const CODE_SECONDS: i64 = 60;
/// How long a stored request waits for the resident (login, consent) or a pushed one for use.
pub const REQUEST_MINUTES: i64 = 30;
/// Prefix of PAR request URIs (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The parameters of an authorization request, as received (and as stored while waiting).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_mode: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
    pub request_uri: Option<String>,
    pub request: Option<String>,
    pub registration: Option<String>,
    pub claims: Option<String>,
}

impl AuthParams {
    fn values(&self) -> [&Option<String>; 19] {
        [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.scope,
            &self.state,
            &self.nonce,
            &self.code_challenge,
            &self.code_challenge_method,
            &self.response_mode,
            &self.prompt,
            &self.max_age,
            &self.acr_values,
            &self.login_hint,
            &self.ui_locales,
            &self.id_token_hint,
            &self.request_uri,
            &self.request,
            &self.registration,
            &self.claims,
        ]
    }
}

/// Which step of the flow we are at.
#[derive(Debug, Clone)]
enum Stage {
    /// A new request from the client.
    Fresh,
    /// Back from the login page for a stored request created at `at`.
    /// (`id` is the stored row when the request was stored; signed requests carry themselves.)
    Resumed {
        id: Option<String>,
        at: NaiveDateTime,
    },
    /// The resident allowed the stored request `id`.
    Consented { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    Default,
    None,
    Login,
    Consent,
}

/// A request that passed validation.
pub(super) struct Checked {
    client: Arc<OidcClient>,
    reply: Reply,
    scopes: Vec<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Prompt,
    max_age: Option<i64>,
    login_hint: Option<String>,
    lang: Option<Lang>,
    acr_values: Vec<String>,
}

/// The outcome of validation before the redirect URI is trusted.
pub(super) enum Invalid {
    Page(WebError),
    Redirect(Reply, &'static str, String),
}

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

    // Login: none yet, another person hinted, forced, or too old for max_age. A login that
    // happened after this request was stored satisfies `prompt=login` and `max_age`.
    let fresh_login = |s: &Session| match &stage {
        Stage::Resumed { at, .. } => s.auth_time >= *at,
        Stage::Consented { .. } => true,
        Stage::Fresh => false,
    };
    let needs_login = match &found {
        None => true,
        Some((s, u)) => {
            let other_person = c
                .login_hint
                .as_ref()
                .is_some_and(|h| !h.trim().eq_ignore_ascii_case(&u.username));
            let forced = c.prompt == Prompt::Login && !fresh_login(s);
            let too_old = c
                .max_age
                .is_some_and(|m| (now - s.auth_time).num_seconds() > m && !fresh_login(s));
            (other_person && !fresh_login(s)) || forced || too_old
        }
    };
    if needs_login {
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
        let mut login = format!("{}?next={}", crate::paths::LOGIN, enc(&next));
        if let Some(h) = &c.login_hint {
            login.push_str(&format!("&username={}", enc(h)));
        }
        if let Some(l) = c.lang {
            login.push_str(&format!("&lang={}", l.code()));
        }
        return Ok(see_other(&login));
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
    let consented = matches!(stage, Stage::Consented { .. });
    if c.client.require_consent && !consented {
        let (st, uid, cid) = (state.clone(), user.id.clone(), c.client.client_id.clone());
        let remembered = web::block(move || -> Result<Option<String>, DbError> {
            flows::consent(&mut *st.db.conn()?, &uid, &cid)
        })
        .await??;
        let held: Vec<&str> = remembered
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        let covered = c.scopes.iter().all(|s| held.contains(&s.as_str()));
        if c.prompt == Prompt::Consent || !covered {
            if c.prompt == Prompt::None {
                return Ok(reply_error(
                    state,
                    &c.reply,
                    "consent_required",
                    "the resident has not allowed this client",
                ));
            }
            let id = store(state, &c, &params, Some(&session.id), &stage).await?;
            return Ok(consent_page(state, req, &c, &user, &id));
        }
    }

    let done = match &stage {
        Stage::Fresh => None,
        Stage::Resumed { id, .. } => id.clone(),
        Stage::Consented { id } => Some(id.clone()),
    };
    let code = issue_code(state, &c, &session, &user, consented, done).await?;
    let Some(code) = code else {
        return Err(WebError::BadRequest("oidc.error_request_expired"));
    };
    let mut fields = vec![("code", code)];
    if let Some(s) = &c.reply.state {
        fields.push(("state", s.clone()));
    }
    fields.push(("iss", state.settings.public_url.clone()));
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

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
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

/// Validates the parameters. Until the client and redirect URI are known good, failures are
/// pages; afterwards they are redirects to the client.
pub(super) async fn check(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    p: &AuthParams,
) -> Result<Checked, Invalid> {
    let page = |k: &'static str| Invalid::Page(WebError::BadRequest(k));
    let client_id = p
        .client_id
        .as_deref()
        .filter(|c| c.len() <= MAX_PARAM)
        .ok_or_else(|| page("oidc.error_client"))?;
    let client = super::client_auth::load(state, client_id)
        .await
        .map_err(|_| Invalid::Page(WebError::Unavailable))?
        .filter(|c| !c.disabled)
        .ok_or_else(|| page("oidc.error_client"))?;
    let registered: Vec<String> = serde_json::from_str(&client.redirect_uris).unwrap_or_default();
    let redirect_uri = p
        .redirect_uri
        .as_ref()
        .filter(|r| registered.contains(r))
        .ok_or_else(|| page("oidc.error_redirect_uri"))?
        .clone();
    let mut reply = Reply {
        redirect_uri,
        state: p.state.clone(),
        form_post: false,
    };
    let bad =
        |r: &Reply, code: &'static str, d: &str| Invalid::Redirect(r.clone(), code, d.to_owned());
    match p.response_mode.as_deref() {
        None | Some("query") => {}
        Some("form_post") => reply.form_post = true,
        Some(_) => return Err(bad(&reply, "invalid_request", "unsupported response_mode")),
    }
    if p.values()
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
    {
        reply.state = reply.state.filter(|s| s.len() <= MAX_PARAM);
        return Err(bad(&reply, "invalid_request", "a parameter is too long"));
    }
    if p.request.is_some() {
        return Err(bad(
            &reply,
            "request_not_supported",
            "request objects are not supported; use PAR",
        ));
    }
    if p.registration.is_some() {
        return Err(bad(
            &reply,
            "registration_not_supported",
            "use the registration endpoint",
        ));
    }
    match p.response_type.as_deref() {
        None => return Err(bad(&reply, "invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(bad(
                &reply,
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    let grants: Vec<String> = serde_json::from_str(&client.grant_types).unwrap_or_default();
    if !grants.iter().any(|g| g == "authorization_code") {
        return Err(bad(
            &reply,
            "unauthorized_client",
            "the client may not use the code flow",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in p.scope.as_deref().unwrap_or_default().split_whitespace() {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(bad(&reply, "invalid_scope", "the openid scope is required"));
    }
    let allowed: Vec<&str> = client.scopes.split_whitespace().collect();
    if let Some(s) = scopes.iter().find(|s| !allowed.contains(&s.as_str())) {
        return Err(bad(
            &reply,
            "invalid_scope",
            &format!("scope {s:?} is not allowed for this client"),
        ));
    }
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if client.public_client => {
            return Err(bad(
                &reply,
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ))
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "code_challenge_method without code_challenge",
            ))
        }
        (Some(_), None | Some("plain")) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "PKCE method plain is not allowed; use S256",
            ))
        }
        (Some(ch), Some("S256")) if pkce::valid_challenge(ch) => Some(ch.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "code_challenge is malformed",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "unsupported code_challenge_method",
            ))
        }
    };
    let mut prompt = Prompt::Default;
    let asked: Vec<&str> = p
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if asked.contains(&"none") && asked.len() > 1 {
        return Err(bad(
            &reply,
            "invalid_request",
            "prompt=none cannot be combined",
        ));
    }
    for a in &asked {
        prompt = match *a {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" if prompt != Prompt::Login => Prompt::Consent,
            "consent" | "select_account" => prompt,
            _ => return Err(bad(&reply, "invalid_request", "unknown prompt value")),
        };
    }
    // `login consent` asks for both; consent is asked anyway after a forced login unless
    // remembered, so `Login` wins here and consent follows the normal rules.
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(m) => match m.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(bad(
                    &reply,
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };
    let lang = p
        .ui_locales
        .as_deref()
        .and_then(|l| l.split_whitespace().find_map(Lang::parse));
    let _ = req;
    Ok(Checked {
        client,
        reply,
        scopes,
        nonce: p.nonce.clone(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint.clone().filter(|h| !h.trim().is_empty()),
        lang,
        acr_values: p
            .acr_values
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
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

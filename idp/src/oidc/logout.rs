//! RP-initiated logout (`/oauth2/logout`, OpenID Connect RP-Initiated Logout 1.0) and
//! back-channel logout notifications (OpenID Connect Back-Channel Logout 1.0).
//!
//! A `post_logout_redirect_uri` is followed only when it is registered for the client named by a
//! valid `id_token_hint` (signed by us; an `alg=none` or altered hint is refused) or by
//! `client_id`. The session ends without a question when the hint names this very session;
//! otherwise the resident confirms on a CSRF-protected page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_metadata::keys::Alg;
use kuntalaistili_schema::oidc_flows::Grant;
use kuntalaistili_schema::{audit, DbError};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n::{self, Lang};
use crate::session::current;
use crate::session::logout::{answer, end_session, redirect, Ended, LogoutParty};
use crate::{client_ip, IdpState};

#[derive(Debug, Default, Deserialize)]
pub struct EndSessionParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    ui_locales: Option<String>,
    logout_hint: Option<String>,
    csrf: Option<String>,
}

pub async fn oidc_end_session_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    q: web::Query<EndSessionParams>,
) -> Result<HttpResponse, WebError> {
    handle(state, req, q.into_inner()).await
}

pub async fn oidc_end_session_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    f: web::Form<EndSessionParams>,
) -> Result<HttpResponse, WebError> {
    handle(state, req, f.into_inner()).await
}

async fn handle(
    state: web::Data<IdpState>,
    req: HttpRequest,
    p: EndSessionParams,
) -> Result<HttpResponse, WebError> {
    let too_long = [
        &p.client_id,
        &p.post_logout_redirect_uri,
        &p.state,
        &p.ui_locales,
        &p.logout_hint,
    ]
    .into_iter()
    .flatten()
    .any(|v| v.len() > 2048)
        || p.id_token_hint.as_ref().is_some_and(|h| h.len() > 8192);
    if too_long {
        return Err(WebError::BadRequest("error.too_long"));
    }
    // The hint must be an ID token we signed (expired is fine: it only names the session).
    let hint = match &p.id_token_hint {
        Some(h) => {
            let jwks = super::cache::jwks_doc(&state)
                .await
                .map_err(|_| WebError::Unavailable)?;
            let jwks: serde_json::Value =
                serde_json::from_str(&jwks).map_err(|_| WebError::Internal)?;
            let is_id_token = kuntalaistili_metadata::keys::jwt_typ(h).as_deref() == Some("JWT");
            let claims = kuntalaistili_metadata::keys::verify_jwt(&jwks, h)
                .filter(|_| is_id_token)
                .filter(|c| c["iss"].as_str() == Some(state.settings.public_url.as_str()))
                .ok_or(WebError::BadRequest("oidc.error_logout_hint"))?;
            Some(claims)
        }
        None => None,
    };
    let hint_aud = hint.as_ref().and_then(|c| match &c["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    });
    let client_id = match (&p.client_id, &hint_aud) {
        (Some(a), Some(b)) if a != b => return Err(WebError::BadRequest("oidc.error_logout_hint")),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    let target = match &p.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(cid) => super::client_auth::load(&state, cid)
                    .await
                    .map_err(|_| WebError::Unavailable)?,
                None => None,
            };
            let registered: Vec<String> = client
                .as_ref()
                .and_then(|c| serde_json::from_str(&c.post_logout_redirect_uris).ok())
                .unwrap_or_default();
            if !registered.contains(uri) {
                return Err(WebError::BadRequest("oidc.error_logout_redirect"));
            }
            let mut url = url::Url::parse(uri)
                .map_err(|_| WebError::BadRequest("oidc.error_logout_redirect"))?;
            if let Some(s) = &p.state {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
    };
    let done = target
        .clone()
        .unwrap_or_else(|| "/login?logged_out=1".to_owned());
    let secure = state.settings.secure_cookies;
    let Some((session, user)) = current(&state, &req).await? else {
        return Ok(redirect(&done));
    };
    let confirmed = p.csrf.is_some();
    if confirmed && !csrf::verify(&req, &state.keys, secure, p.csrf.as_deref()) {
        return Err(WebError::Forbidden);
    }
    let same_session = hint
        .as_ref()
        .is_some_and(|c| c["sid"].as_str() == Some(session.id.as_str()));
    if confirmed || same_session {
        let ended = end_session(&state, &session, &user, client_ip(&req, &state.settings)).await?;
        let mut resp = answer(&state, &ended, &done).await;
        resp.add_cookie(&crate::session::removal_cookie(secure))
            .map_err(|_| WebError::Internal)?;
        return Ok(resp);
    }
    let lang = p
        .ui_locales
        .as_deref()
        .and_then(|l| l.split_whitespace().find_map(Lang::parse))
        .unwrap_or_else(|| i18n::negotiate(&req));
    let mut ctx =
        state
            .templates
            .context(lang, crate::paths::END_SESSION, Some(&user.display_name()));
    ctx.insert("action", crate::paths::END_SESSION);
    let mut hidden = Vec::new();
    for (k, v) in [
        ("client_id", &client_id),
        ("post_logout_redirect_uri", &p.post_logout_redirect_uri),
        ("state", &p.state),
    ] {
        if let Some(v) = v {
            hidden.push(json!({ "name": k, "value": v }));
        }
    }
    ctx.insert("hidden", &hidden);
    Ok(state.form_page(&req, StatusCode::OK, "idp/logout.html", ctx))
}

/// OIDC's part in logouts: the clients of the ended grants are told back-channel ([`notify`]).
pub struct BackChannelLogout;

impl LogoutParty for BackChannelLogout {
    fn back_channel<'a>(
        &'a self,
        state: &'a web::Data<IdpState>,
        ended: &'a Ended,
    ) -> futures_util::future::LocalBoxFuture<'a, ()> {
        Box::pin(notify(state, &ended.user_id, ended.grants.clone()))
    }
}

/// How long a logout waits for the clients' back-channel answers before it answers the
/// resident; slower clients are still notified, in the background.
pub const BACKCHANNEL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Sends logout tokens to every client of the ended session's grants that registered a
/// back-channel logout URI, and waits (at most [`BACKCHANNEL_WAIT`]) until they have answered,
/// so that a resident who opens another service right after logging out is logged out there
/// too. Each outcome is audited.
pub async fn notify(state: &web::Data<IdpState>, user_id: &str, grants: Vec<Grant>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut tasks = Vec::new();
    for g in grants {
        if !seen.insert((g.client_id.clone(), g.session_id.clone())) {
            continue;
        }
        let st = state.clone();
        let uid = user_id.to_owned();
        tasks.push(actix_web::rt::spawn(async move {
            if let Err(e) = send_one(&st, &uid, &g).await {
                tracing::warn!(client = %g.client_id, error = %e, "back-channel logout failed");
            }
        }));
    }
    if !tasks.is_empty() {
        // Dropping the handles on timeout detaches the tasks; they finish on their own.
        let _ = tokio::time::timeout(BACKCHANNEL_WAIT, futures_util::future::join_all(tasks)).await;
    }
}

async fn send_one(st: &web::Data<IdpState>, user_id: &str, g: &Grant) -> Result<(), String> {
    let client = super::client_auth::load(st, &g.client_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(client) = client else { return Ok(()) };
    let Some(uri) = client.backchannel_logout_uri.clone() else {
        return Ok(());
    };
    let alg = Alg::parse(&client.id_token_alg).unwrap_or(Alg::Rs256);
    let signer = super::issue::signer(st, alg)
        .await
        .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": st.settings.public_url,
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": super::claims::subject(&client, &st.keys, user_id),
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    if let Some(s) = &g.session_id {
        claims["sid"] = json!(s);
    }
    let token = signer.sign_jwt_typed(&claims, "logout+jwt");
    // A dynamically registered client's address is checked again now (the policy may be
    // stricter than when it registered) and reached only at public addresses.
    let registered = client.registration_token_hash.is_some();
    let (ok, detail) = match st.outbound.check_uri(&uri) {
        Err(why) if registered => (false, format!("refused: the URI {why}")),
        _ => {
            let http = if registered {
                &st.http_guarded
            } else {
                &st.http
            };
            match http
                .post(&uri)
                .form(&[("logout_token", token)])
                .send()
                .await
            {
                Ok(r) => (r.status().is_success(), r.status().as_u16().to_string()),
                // The guarded resolver's refusal is in the error's source chain.
                Err(e) => (false, error_chain(&e)),
            }
        }
    };
    let st2 = st.clone();
    let (cid, uid, sid) = (
        client.client_id.clone(),
        user_id.to_owned(),
        g.session_id.clone(),
    );
    let logged = web::block(move || -> Result<(), DbError> {
        let ev = if ok {
            Event::success(kind::BACKCHANNEL_LOGOUT)
        } else {
            Event::failure(kind::BACKCHANNEL_LOGOUT)
        };
        audit::append(
            &mut *st2.db.conn()?,
            ev.actor(cid.clone())
                .subject(uid)
                .details(json!({ "client": cid, "session": sid, "result": detail }))
                .into_new(),
            kuntalaistili_schema::now_utc(),
        )?;
        Ok(())
    })
    .await;
    if let Ok(Err(e)) = logged {
        tracing::error!(error = %e, "auditing a back-channel logout failed");
    }
    if ok {
        Ok(())
    } else {
        Err("the client did not accept the logout token".into())
    }
}

/// An error with its causes ("error sending request: … : resolves to no public address").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

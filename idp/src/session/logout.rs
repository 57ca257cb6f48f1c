//! `/logout`: a confirmation page (GET) and the CSRF-protected logout (POST) that ends the session
//! server-side, clears the cookie and records the event.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::oidc_flows::{self as flows, Grant};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::saml::Participant;
use kuntalaistili_schema::sessions::{self as store, Session};
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, DbError};
use serde::Deserialize;

use super::{current, removal_cookie};
use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n;
use crate::metrics::inc;
use crate::{client_ip, IdpState};

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

pub async fn session_logout_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let lang = i18n::negotiate(&req);
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let mut ctx = state
        .templates
        .context(lang, "/logout", Some(&user.display_name()));
    ctx.insert("action", crate::paths::LOGOUT);
    Ok(state.form_page(&req, StatusCode::OK, "idp/logout.html", ctx))
}

pub async fn session_logout_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let secure = state.settings.secure_cookies;
    if !csrf::verify(&req, &state.keys, secure, form.csrf.as_deref()) {
        return Err(WebError::Forbidden);
    }
    let mut participants = Vec::new();
    if let Some((session, user)) = current(&state, &req).await? {
        participants =
            end_session(&state, &session, &user, client_ip(&req, &state.settings)).await?;
    }
    // SAML SPs of the session are told front-channel, one after another, before the page.
    let mut resp = crate::saml::propagate_logout(
        &state,
        participants,
        crate::saml::LogoutFinish::Page("/login?logged_out=1".into()),
    )
    .await;
    resp.add_cookie(&removal_cookie(secure))
        .map_err(|_| WebError::Internal)?;
    Ok(resp)
}

/// Ends an SSO session: deletes it, revokes the OIDC grants made in it, records the logout, and
/// notifies the clients that asked for back-channel logout.
pub async fn end_session(
    state: &web::Data<IdpState>,
    session: &Session,
    user: &User,
    ip: Option<String>,
) -> Result<Vec<Participant>, WebError> {
    let st = state.clone();
    let (sid, uid) = (session.id.clone(), user.id.clone());
    let (grants, participants) = web::block(
        move || -> Result<(Vec<Grant>, Vec<Participant>), WebError> {
            let mut conn = st.db.conn()?;
            let now = kuntalaistili_schema::now_utc();
            Ok(write_tx(
                &mut conn,
                |conn| -> Result<(Vec<Grant>, Vec<Participant>), DbError> {
                    let participants = kuntalaistili_schema::saml::participants(conn, &sid)?;
                    store::delete_for_user(conn, &uid, &sid)?;
                    let grants = flows::revoke_for_session(conn, &sid, now)?;
                    audit::append_in_tx(
                conn,
                Event::success(kind::LOGOUT)
                    .actor(uid.clone())
                    .subject(uid.clone())
                    .ip(ip)
                    .details(serde_json::json!({ "session": sid, "grants_revoked": grants.len() }))
                    .into_new(),
                now,
            )?;
                    Ok((grants, participants))
                },
            )?)
        },
    )
    .await??;
    inc(&state.metrics.logouts);
    crate::oidc::logout::notify(state, &user.id, grants).await;
    Ok(participants)
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

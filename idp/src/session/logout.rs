//! Logout, owned here: `/logout` (a confirmation page on GET, the CSRF-protected logout on POST),
//! [`end_session`] that ends one SSO session (for `/logout`, RP-initiated logout and SAML Single
//! Logout alike), [`grants_revoked`] for grants that end otherwise (an account disabled, sessions
//! ended from a list), and the interface through which the protocols tell their parties
//! ([`LogoutParty`]).
//!
//! This module calls no protocol module. Each protocol implements [`LogoutParty`] and is
//! registered at start-up ([`IdpState::logout`]): OIDC tells its clients back-channel, SAML sends
//! the browser along its SPs front-channel. Protocols call into this module, never the other way
//! round.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
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
    let mut ended = Ended::default();
    if let Some((session, user)) = current(&state, &req).await? {
        ended = end_session(&state, &session, &user, client_ip(&req, &state.settings)).await?;
    }
    // Parties told front-channel (SAML SPs) see the browser before the page.
    let mut resp = answer(&state, &ended, "/login?logged_out=1").await;
    resp.add_cookie(&removal_cookie(secure))
        .map_err(|_| WebError::Internal)?;
    Ok(resp)
}

/// What a logout ended, for the protocols to tell their parties.
#[derive(Debug, Default)]
pub struct Ended {
    /// The person whose session (or grants) ended.
    pub user_id: String,
    /// The OIDC grants revoked.
    pub grants: Vec<Grant>,
    /// The SAML SPs the ended session gave assertions to (none when no session ended).
    pub saml: Vec<Participant>,
}

/// A protocol whose parties hear of ended sessions. Both ways of telling do nothing unless the
/// protocol has them.
pub trait LogoutParty: Send + Sync {
    /// Tells the protocol's parties of `ended`, server to server (back-channel); returns when
    /// they have answered or the protocol has waited long enough.
    fn back_channel<'a>(
        &'a self,
        _state: &'a web::Data<IdpState>,
        _ended: &'a Ended,
    ) -> LocalBoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Sends the browser along the protocol's parties of `ended` (front-channel), to arrive at
    /// `done` in the end: the answer that starts the round, or `None` when the protocol has no
    /// front channel.
    fn front_channel<'a>(
        &'a self,
        _state: &'a web::Data<IdpState>,
        _ended: &'a Ended,
        _done: &'a str,
    ) -> LocalBoxFuture<'a, Option<HttpResponse>> {
        Box::pin(std::future::ready(None))
    }
}

/// The protocols registered to hear of logouts, in the order they are told.
#[derive(Default)]
pub struct LogoutParties(Vec<Box<dyn LogoutParty>>);

impl LogoutParties {
    /// Adds a protocol.
    pub fn with(mut self, party: impl LogoutParty + 'static) -> Self {
        self.0.push(Box::new(party));
        self
    }
}

/// Tells every registered protocol, back-channel, of `ended`.
pub async fn tell(state: &web::Data<IdpState>, ended: &Ended) {
    for party in &state.logout.0 {
        party.back_channel(state, ended).await;
    }
}

/// Tells the protocols of grants revoked without a logout here (an account disabled, a password
/// set, sessions ended from a list), so that the services end their sessions too.
pub async fn grants_revoked(state: &web::Data<IdpState>, user_id: &str, grants: Vec<Grant>) {
    let ended = Ended {
        user_id: user_id.to_owned(),
        grants,
        saml: Vec::new(),
    };
    tell(state, &ended).await;
}

/// The browser's answer to a logout it asked for: the first front-channel round of a protocol,
/// which ends at `done`, or `done` at once.
pub async fn answer(state: &web::Data<IdpState>, ended: &Ended, done: &str) -> HttpResponse {
    for party in &state.logout.0 {
        if let Some(resp) = party.front_channel(state, ended, done).await {
            return resp;
        }
    }
    redirect(done)
}

/// Ends an SSO session: deletes it, revokes the OIDC grants made in it, records the logout, and
/// tells the registered protocols back-channel ([`tell`]). What ended is returned for the
/// front channel ([`answer`]).
pub async fn end_session(
    state: &web::Data<IdpState>,
    session: &Session,
    user: &User,
    ip: Option<String>,
) -> Result<Ended, WebError> {
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
    let ended = Ended {
        user_id: user.id.clone(),
        grants,
        saml: participants,
    };
    tell(state, &ended).await;
    Ok(ended)
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

//! Single Logout: `/saml/slo` receives an SP's LogoutRequest (HTTP-Redirect or HTTP-POST), ends
//! the SSO sessions it names — the protocols hear of it through the session's logout
//! ([`crate::session::logout`]) — and starts a round that tells every other SAML SP of the
//! session ([`super::round`]); it also receives the SPs' LogoutResponses during a round.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_schema::saml::{self as store, Participant};
use kuntalaistili_schema::sessions;
use kuntalaistili_schema::DbError;
use serde_json::json;

use super::binding::{post_xml, refusal, verified_root, Binding, SamlForm, MAX_RELAY_STATE};
use super::request::{self, Refused};
use super::response;
use super::round::{propagate_logout, step, LogoutFinish, Round};
use super::{kind, refuse, sp_blocking, urls};
use crate::audit::Event;
use crate::error::WebError;
use crate::IdpState;

/// `GET /saml/slo`: HTTP-Redirect binding (a request from an SP, or a response during a round).
pub async fn saml_slo_get(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    let raw = req.query_string();
    let is_response = raw.split('&').any(|p| p.starts_with("SAMLResponse="));
    let param = if is_response {
        "SAMLResponse"
    } else {
        "SAMLRequest"
    };
    match sign::read_redirect(raw, param) {
        Ok(m) => {
            let (x, relay) = (m.xml.clone(), m.relay_state.clone());
            if is_response {
                response_in(&state, &req, &x, relay, Binding::Redirect(m)).await
            } else {
                request_in(&state, &req, &x, relay, Binding::Redirect(m)).await
            }
        }
        Err(e) => refuse(&state, &req, param, None, &refusal(&e), "saml.error_logout").await,
    }
}

/// `POST /saml/slo`: HTTP-POST binding.
pub async fn saml_slo_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<SamlForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if form.saml_response.is_some() {
        match post_xml(form.saml_response.as_deref()) {
            Ok(x) => response_in(&state, &req, &x, form.relay_state, Binding::Post).await,
            Err(e) => {
                refuse(
                    &state,
                    &req,
                    "LogoutResponse",
                    None,
                    &refusal(&e),
                    "saml.error_logout",
                )
                .await
            }
        }
    } else {
        match post_xml(form.saml_request.as_deref()) {
            Ok(x) => request_in(&state, &req, &x, form.relay_state, Binding::Post).await,
            Err(e) => {
                refuse(
                    &state,
                    &req,
                    "LogoutRequest",
                    None,
                    &refusal(&e),
                    "saml.error_logout",
                )
                .await
            }
        }
    }
}

/// A LogoutRequest from an SP.
async fn request_in(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    raw: &str,
    relay: Option<String>,
    binding: Binding,
) -> HttpResponse {
    let now = kuntalaistili_schema::now_utc();
    let parsed = (|| {
        let root = xml::parse(raw, xml::MESSAGE).map_err(|e| (None, refusal(&e.into())))?;
        let lr = request::logout_request(&root, now).map_err(|r| (None, r))?;
        Ok::<_, (Option<String>, Refused)>((root, lr))
    })();
    let (root, lr) = match parsed {
        Ok(v) => v,
        Err((i, r)) => {
            return refuse(
                state,
                req,
                "LogoutRequest",
                i.as_deref(),
                &r,
                "saml.error_logout",
            )
            .await
        }
    };
    let issuer = lr.common.issuer.clone();
    let fail = |r: Refused| (issuer.clone(), r);
    let result = async {
        let (st, id) = (state.clone(), issuer.clone());
        let sp = web::block(move || sp_blocking(&st, &id))
            .await
            .map_err(|_| fail(Refused::new("unavailable", "blocking pool")))?
            .map_err(|_| fail(Refused::new("unavailable", "database")))?
            .filter(|s| s.trusted_at(now))
            .ok_or_else(|| {
                fail(Refused::new(
                    "unknown_sp",
                    "no trusted SP with this entity ID",
                ))
            })?;
        let (root, signed) =
            verified_root(raw, root, &binding, &sp.md.signing_certs).map_err(fail)?;
        if !signed && !sp.md.signing_certs.is_empty() {
            return Err(fail(Refused::new(
                "unsigned",
                "LogoutRequests from this SP must be signed",
            )));
        }
        // An SP without a signing key can only log out the browser that brings the request.
        let lr = request::logout_request(&root, now).map_err(fail)?;
        request::check_destination(&lr.common, &urls(state).slo, signed).map_err(fail)?;
        if relay.as_ref().is_some_and(|r| r.len() > MAX_RELAY_STATE) {
            return Err(fail(Refused::new("relay_state", "RelayState is too long")));
        }
        Ok((sp, lr, signed))
    }
    .await;
    let (sp, lr, signed) = match result {
        Ok(v) => v,
        Err((i, r)) => {
            return refuse(
                state,
                req,
                "LogoutRequest",
                Some(&i),
                &r,
                "saml.error_logout",
            )
            .await
        }
    };
    // Replay, then the sessions it names.
    let st = state.clone();
    let (spid, lr2) = (sp.row.entity_id.clone(), lr.clone());
    let found = web::block(move || -> Result<Option<Vec<Participant>>, DbError> {
        let mut conn = st.db.conn()?;
        let key = format!("{spid}|{}", lr2.common.id);
        if !store::record_message_id(
            &mut conn,
            &key,
            now + Duration::minutes(request::REPLAY_WINDOW_MINUTES),
        )? {
            return Ok(None);
        }
        let mut found = Vec::new();
        if lr2.session_indexes.is_empty() {
            found = store::find_participation(&mut conn, &spid, &lr2.name_id, None)?;
        } else {
            for six in &lr2.session_indexes {
                found.extend(store::find_participation(
                    &mut conn,
                    &spid,
                    &lr2.name_id,
                    Some(six),
                )?);
            }
        }
        Ok(Some(found))
    })
    .await;
    let found = match found {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => {
            let r = Refused::new(
                "replay",
                format!("request ID {} was already used", lr.common.id),
            );
            return refuse(
                state,
                req,
                "LogoutRequest",
                Some(&issuer),
                &r,
                "saml.error_logout",
            )
            .await;
        }
        _ => return actix_web::ResponseError::error_response(&WebError::Unavailable),
    };
    let found = if signed {
        found
    } else {
        let own = match crate::session::current(state, req).await {
            Ok(c) => c.map(|(s, _)| s.id),
            Err(e) => return actix_web::ResponseError::error_response(&e),
        };
        found
            .into_iter()
            .filter(|p| own.as_deref() == Some(p.session_id.as_str()))
            .collect()
    };
    let ip = crate::client_ip(req, &state.settings);
    let mut others = Vec::new();
    let mut ended = 0;
    for p in &found {
        let (st, sid) = (state.clone(), p.session_id.clone());
        let Ok(Ok(Some((session, user)))) = web::block(move || -> Result<_, DbError> {
            sessions::find_with_user(&mut *st.db.conn()?, &sid)
        })
        .await
        else {
            continue;
        };
        match crate::session::logout::end_session(state, &session, &user, ip.clone()).await {
            Ok(session_end) => {
                ended += 1;
                others.extend(
                    session_end
                        .saml
                        .into_iter()
                        .filter(|o| o.sp_entity_id != sp.row.entity_id),
                );
            }
            Err(e) => return actix_web::ResponseError::error_response(&e),
        }
    }
    let event = Event::success(kind::LOGOUT_REQUEST)
        .actor(sp.row.entity_id.clone())
        .ip(ip)
        .details(
            json!({ "sp": sp.row.entity_id, "request": lr.common.id, "sessions_ended": ended }),
        );
    if let Err(e) = crate::audit::record(state, event).await {
        return actix_web::ResponseError::error_response(&e);
    }
    let mut resp = propagate_logout(
        state,
        others,
        LogoutFinish::Respond {
            sp: sp.row.entity_id.clone(),
            in_response_to: lr.common.id.clone(),
            relay,
            ended: ended > 0,
        },
    )
    .await;
    if ended > 0 {
        let _ = resp.add_cookie(&crate::session::removal_cookie(
            state.settings.secure_cookies,
        ));
    }
    resp
}

/// A LogoutResponse from an SP we told during a round.
async fn response_in(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    raw: &str,
    relay: Option<String>,
    binding: Binding,
) -> HttpResponse {
    let now = kuntalaistili_schema::now_utc();
    let Some(round_id) = relay.filter(|r| r.len() <= 128) else {
        let r = Refused::new("relay_state", "a LogoutResponse without our RelayState");
        return refuse(state, req, "LogoutResponse", None, &r, "saml.error_logout").await;
    };
    let (st, rid) = (state.clone(), round_id.clone());
    let round = match web::block(move || store::find_logout(&mut *st.db.conn()?, &rid, now)).await {
        Ok(Ok(Some(text))) => serde_json::from_str::<Round>(&text).ok(),
        Ok(Ok(None)) => None,
        _ => return actix_web::ResponseError::error_response(&WebError::Unavailable),
    };
    let Some(mut round) = round else {
        let r = Refused::new(
            "unknown_round",
            "no logout round in progress for this RelayState",
        );
        return refuse(state, req, "LogoutResponse", None, &r, "saml.error_logout").await;
    };
    let Some(told) = round.current.take() else {
        let r = Refused::new("unknown_round", "no LogoutRequest outstanding");
        return refuse(state, req, "LogoutResponse", None, &r, "saml.error_logout").await;
    };
    let confirmed = (|| -> Result<bool, Refused> {
        let root = xml::parse(raw, xml::MESSAGE).map_err(|e| refusal(&e.into()))?;
        let lr = request::logout_response(&root, now)?;
        if lr.common.issuer != told.sp || lr.in_response_to.as_deref() != Some(&told.request) {
            return Err(Refused::new(
                "in_response_to",
                "the LogoutResponse answers another request",
            ));
        }
        Ok(lr.status == response::STATUS_SUCCESS)
    })();
    // Signature: checked when the SP signs; an unverifiable answer counts as not confirmed.
    let verified = match &confirmed {
        Ok(true) => {
            let (st, spid) = (state.clone(), told.sp.clone());
            match web::block(move || sp_blocking(&st, &spid)).await {
                Ok(Ok(Some(sp))) => match xml::parse(raw, xml::MESSAGE) {
                    Ok(root) => {
                        matches!(
                            verified_root(raw, root, &binding, &sp.md.signing_certs),
                            Ok((_, true))
                        ) || sp.md.signing_certs.is_empty()
                    }
                    Err(_) => false,
                },
                _ => false,
            }
        }
        _ => false,
    };
    if !verified {
        round.partial = true;
    }
    let event = if verified {
        Event::success(kind::LOGOUT_PROPAGATED)
    } else {
        Event::failure(kind::LOGOUT_PROPAGATED)
    }
    .actor(told.sp.clone())
    .details(json!({
        "sp": told.sp,
        "request": told.request,
        "reason": match &confirmed { Err(r) => r.code, Ok(false) => "status", Ok(true) if !verified => "signature", _ => "confirmed" },
    }));
    if let Err(e) = crate::audit::record(state, event).await {
        return actix_web::ResponseError::error_response(&e);
    }
    step(state, &round_id, round)
        .await
        .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

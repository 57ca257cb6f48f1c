//! Single Logout: `/saml/slo` receives an SP's LogoutRequest (HTTP-Redirect or HTTP-POST), ends
//! the SSO session it names — OIDC relying parties hear of it back-channel — and tells every other
//! SAML SP of the session front-channel, one after another (the browser visits each SP's SLO
//! endpoint with a signed LogoutRequest and comes back with its LogoutResponse). The round ends
//! with a LogoutResponse to the SP that asked (status `PartialLogout` when an SP could not be
//! told or did not confirm), or on the logged-out page when the resident logged out here.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::saml::keys::SamlSigner;
use kuntalaistili_metadata::saml::metadata::BINDING_REDIRECT;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_schema::saml::{self as store, Participant};
use kuntalaistili_schema::sessions;
use kuntalaistili_schema::{audit, DbError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{self, Refused};
use super::response;
use super::sso::{post_xml, refusal, Binding, SamlForm, MAX_RELAY_STATE};
use super::{b64, kind, post_form, refuse, signer_blocking, sp_blocking, urls};
use crate::audit::Event;
use crate::error::WebError;
use crate::session::logout::{redirect, Ended, LogoutParty};
use crate::IdpState;

/// How long a logout round may take.
const ROUND_MINUTES: i64 = 10;

/// Where a logout round ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LogoutFinish {
    /// A page of ours (or a validated OIDC post-logout address).
    Page(String),
    /// A LogoutResponse to the SP that asked.
    Respond {
        sp: String,
        in_response_to: String,
        relay: Option<String>,
        /// Whether the request ended a session: never `Success` when it ended none.
        #[serde(default = "yes")]
        ended: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Told {
    sp: String,
    request: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Round {
    queue: Vec<(String, String, String, String)>,
    current: Option<Told>,
    partial: bool,
    finish: LogoutFinish,
}

/// SAML's part in logouts: the SPs of the ended session are told front-channel, one after
/// another, before the browser arrives where the logout ends.
pub struct SingleLogout;

impl LogoutParty for SingleLogout {
    fn front_channel<'a>(
        &'a self,
        state: &'a web::Data<IdpState>,
        ended: &'a Ended,
        done: &'a str,
    ) -> futures_util::future::LocalBoxFuture<'a, Option<HttpResponse>> {
        Box::pin(async move {
            let finish = LogoutFinish::Page(done.to_owned());
            Some(propagate_logout(state, ended.saml.clone(), finish).await)
        })
    }
}

/// Starts telling `participants` (front-channel) and ends at `finish`. With nobody to tell, the
/// answer is `finish` at once.
pub async fn propagate_logout(
    state: &web::Data<IdpState>,
    participants: Vec<Participant>,
    finish: LogoutFinish,
) -> HttpResponse {
    let round = Round {
        queue: participants
            .into_iter()
            .map(|p| (p.sp_entity_id, p.name_id, p.name_id_format, p.session_index))
            .collect(),
        current: None,
        partial: false,
        finish,
    };
    let id = kuntalaistili_metadata::crypto::random_token();
    step(state, &id, round)
        .await
        .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

/// Tells the next SP, or ends the round.
async fn step(
    state: &web::Data<IdpState>,
    round_id: &str,
    mut round: Round,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let rid = round_id.to_owned();
    let next = web::block(
        move || -> Result<(Round, Option<HttpResponseParts>), WebError> {
            let now = kuntalaistili_schema::now_utc();
            while let Some((sp_id, name_id, fmt, six)) = round.queue.pop() {
                let sp = sp_blocking(&st, &sp_id)?.filter(|s| s.trusted_at(now));
                let Some((sp, endpoint)) = sp.and_then(|s| {
                    let e = s.md.slo_endpoint().cloned();
                    e.map(|e| (s, e))
                }) else {
                    // No SLO endpoint (or no longer trusted): the SP cannot be told.
                    round.partial = true;
                    audit::append(
                        &mut *st.db.conn()?,
                        Event::failure(kind::LOGOUT_PROPAGATED)
                            .actor(sp_id.clone())
                            .details(json!({ "sp": sp_id, "reason": "no SingleLogoutService" }))
                            .into_new(),
                        now,
                    )?;
                    continue;
                };
                let signer = signer_blocking(&st)?;
                let request_id = response::new_id();
                let xml = response::logout_request(
                    &urls(&st).entity_id,
                    &endpoint.location,
                    &request_id,
                    response::LoggedOut {
                        name_id: &name_id,
                        name_id_format: &fmt,
                        sp: &sp.row.entity_id,
                        session_index: &six,
                    },
                    now,
                );
                let parts = outgoing(
                    &endpoint.binding,
                    &endpoint.location,
                    "SAMLRequest",
                    &xml,
                    &request_id,
                    Some(rid.clone()),
                    &signer,
                )?;
                round.current = Some(Told {
                    sp: sp.row.entity_id.clone(),
                    request: request_id,
                });
                let text = serde_json::to_string(&round).map_err(|_| WebError::Internal)?;
                store::save_logout(
                    &mut *st.db.conn()?,
                    &rid,
                    &text,
                    now + Duration::minutes(ROUND_MINUTES),
                )?;
                return Ok((round, Some(parts)));
            }
            Ok((round, None))
        },
    )
    .await??;
    match next {
        (_, Some(parts)) => Ok(parts.into_response(state)),
        (round, None) => finish(state, round_id, round).await,
    }
}

/// Where the browser goes next: a page or a Redirect-binding URL, or an auto-POST form carrying
/// `param` (`SAMLRequest` or `SAMLResponse`) and the relay state.
enum HttpResponseParts {
    Redirect(String),
    Post {
        to: String,
        param: &'static str,
        message: String,
        relay: Option<String>,
    },
}

impl HttpResponseParts {
    fn into_response(self, state: &IdpState) -> HttpResponse {
        match self {
            HttpResponseParts::Redirect(to) => redirect(&to),
            HttpResponseParts::Post {
                to,
                param,
                message,
                relay,
            } => {
                let mut fields = vec![(param, message)];
                if let Some(r) = relay {
                    fields.push(("RelayState", r));
                }
                post_form(state, &to, fields)
            }
        }
    }
}

/// Signs a message to an SP for the endpoint's binding: the query signature of the Redirect
/// binding, or an enveloped signature (right after the `Issuer`) for the POST binding. `xml` has
/// no signature yet and its root carries `ID="{id}"`.
fn outgoing(
    binding: &str,
    to: &str,
    param: &'static str,
    xml: &str,
    id: &str,
    relay: Option<String>,
    signer: &SamlSigner,
) -> Result<HttpResponseParts, WebError> {
    if binding == BINDING_REDIRECT {
        let q = sign::signed_redirect_query(param, xml, relay.as_deref(), signer)
            .map_err(|_| WebError::Internal)?;
        let sep = if to.contains('?') { '&' } else { '?' };
        return Ok(HttpResponseParts::Redirect(format!("{to}{sep}{q}")));
    }
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let with_template = xml.replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer>{}", sign::template(id, &cert)),
        1,
    );
    let signed = sign::sign_enveloped(&with_template, signer).map_err(|_| WebError::Internal)?;
    Ok(HttpResponseParts::Post {
        to: to.to_owned(),
        param,
        message: b64(&signed),
        relay,
    })
}

/// Ends a round: the page, or the LogoutResponse to the SP that asked.
async fn finish(
    state: &web::Data<IdpState>,
    round_id: &str,
    round: Round,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let rid = round_id.to_owned();
    let out = web::block(move || -> Result<HttpResponseParts, WebError> {
        store::delete_logout(&mut *st.db.conn()?, &rid)?;
        let (sp, in_response_to, relay, ended) = match round.finish {
            LogoutFinish::Page(p) => return Ok(HttpResponseParts::Redirect(p)),
            LogoutFinish::Respond {
                sp,
                in_response_to,
                relay,
                ended,
            } => (sp, in_response_to, relay, ended),
        };
        let now = kuntalaistili_schema::now_utc();
        // The SP that asked (even if it was disabled meanwhile: it gets its answer).
        let Some(endpoint) = sp_blocking(&st, &sp)?.and_then(|s| s.md.slo_endpoint().cloned())
        else {
            return Ok(HttpResponseParts::Redirect("/login?logged_out=1".into()));
        };
        let signer = signer_blocking(&st)?;
        let to = endpoint
            .response_location
            .clone()
            .unwrap_or(endpoint.location.clone());
        let id = response::new_id();
        let status = if !ended {
            // Nothing of the named principal was found to end: the SP must not believe the
            // resident is logged out here.
            (
                response::STATUS_REQUESTER,
                Some(response::STATUS_UNKNOWN_PRINCIPAL),
            )
        } else if round.partial {
            (
                response::STATUS_SUCCESS,
                Some(response::STATUS_PARTIAL_LOGOUT),
            )
        } else {
            (response::STATUS_SUCCESS, None)
        };
        let idp = urls(&st).entity_id;
        let xml = response::logout_response(&idp, &to, &in_response_to, &id, status, now);
        outgoing(
            &endpoint.binding,
            &to,
            "SAMLResponse",
            &xml,
            &id,
            relay,
            &signer,
        )
    })
    .await??;
    Ok(out.into_response(state))
}

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

/// Verifies a message's signature with the SP's keys; `Ok(false)` when unsigned. Returns the root
/// to read from (the verified content for POST).
fn verified_root(
    raw: &str,
    root: xml::Element,
    binding: &Binding,
    certs: &[Vec<u8>],
) -> Result<(xml::Element, bool), Refused> {
    match binding {
        Binding::Redirect(m) if m.is_signed() => {
            m.verify(certs).map_err(|e| refusal(&e))?;
            Ok((root, true))
        }
        Binding::Redirect(_) => Ok((root, false)),
        Binding::Post if root.child(xml::NS_DS, "Signature").is_some() => {
            let v = sign::verify_enveloped(raw, certs, xml::MESSAGE).map_err(|e| refusal(&e))?;
            Ok((v, true))
        }
        Binding::Post => Ok((root, false)),
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

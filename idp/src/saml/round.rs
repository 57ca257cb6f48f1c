//! A logout round: the SAML SPs of an ended session are told front-channel, one after another
//! (the browser visits each SP's SLO endpoint with a signed LogoutRequest and comes back to
//! `/saml/slo` with its LogoutResponse, [`super::slo`]). The round ends with a LogoutResponse to
//! the SP that asked (status `PartialLogout` when an SP could not be told or did not confirm), or
//! where the resident's logout here ends. SAML's part in every logout ([`SingleLogout`]).

use actix_web::{web, HttpResponse};
use chrono::Duration;
use kuntalaistili_metadata::saml::keys::SamlSigner;
use kuntalaistili_metadata::saml::metadata::BINDING_REDIRECT;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_schema::audit;
use kuntalaistili_schema::saml::{self as store, Participant};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::response;
use super::{b64, kind, post_form, signer_blocking, sp_blocking, urls};
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
pub(super) struct Told {
    pub(super) sp: String,
    pub(super) request: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Round {
    queue: Vec<(String, String, String, String)>,
    pub(super) current: Option<Told>,
    pub(super) partial: bool,
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
pub(super) async fn step(
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

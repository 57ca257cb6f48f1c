//! Web SSO: `/saml/sso` (AuthnRequest over HTTP-Redirect or HTTP-POST), the return from the login
//! page (`/saml/sso/resume`) and IdP-initiated SSO (`/saml/sso/init?sp=…&RelayState=…`).
//!
//! This file receives and checks requests and sees the resident logged in; what goes back to the
//! SP is issued in [`super::answer`].

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_metadata::saml::metadata::BINDING_POST;
use kuntalaistili_metadata::saml::sign::{self, SignError};
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_schema::saml as store;
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::DbError;
use serde::Deserialize;

use super::answer::{issue, status, Pending};
use super::binding::{post_xml, refusal, Binding, SamlForm, MAX_RELAY_STATE};
use super::request::{self, Refused};
use super::response;
use super::{refuse, sp_blocking, urls};
use crate::error::WebError;
use crate::IdpState;

/// `GET /saml/sso`: HTTP-Redirect binding.
pub async fn saml_sso_get(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    match sign::read_redirect(req.query_string(), "SAMLRequest") {
        Ok(m) => {
            let (xml, relay) = (m.xml.clone(), m.relay_state.clone());
            receive(&state, &req, &xml, relay, Binding::Redirect(m)).await
        }
        Err(e) => {
            refuse(
                &state,
                &req,
                "AuthnRequest",
                None,
                &refusal(&e),
                "saml.error_request",
            )
            .await
        }
    }
}

/// `POST /saml/sso`: HTTP-POST binding.
pub async fn saml_sso_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<SamlForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if req.query_string().contains("SAMLRequest") {
        let r = Refused::new(
            "ambiguous",
            "a SAMLRequest both in the query and in the form",
        );
        return refuse(&state, &req, "AuthnRequest", None, &r, "saml.error_request").await;
    }
    match post_xml(form.saml_request.as_deref()) {
        Ok(xml) => receive(&state, &req, &xml, form.relay_state, Binding::Post).await,
        Err(e) => {
            refuse(
                &state,
                &req,
                "AuthnRequest",
                None,
                &refusal(&e),
                "saml.error_request",
            )
            .await
        }
    }
}

/// Whether we can satisfy a `RequestedAuthnContext` (we authenticate with a password over TLS).
fn authn_context_ok(requested: &Option<(String, Vec<String>)>) -> bool {
    let Some((comparison, classes)) = requested else {
        return true;
    };
    let ours = [response::AC_PASSWORD_PROTECTED, response::AC_PASSWORD];
    match comparison.as_str() {
        "exact" | "maximum" | "minimum" => classes.iter().any(|c| ours.contains(&c.as_str())),
        // "better": stronger than the named class.
        "better" => classes.iter().all(|c| c == response::AC_PASSWORD),
        _ => false,
    }
}

async fn receive(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    raw: &str,
    relay: Option<String>,
    binding: Binding,
) -> HttpResponse {
    match check(state, raw, relay, binding).await {
        Ok(Checked::Go(p)) => proceed(state, req, p, None)
            .await
            .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e)),
        Ok(Checked::Status(p, second, msg)) => status(
            state,
            req,
            &p,
            response::STATUS_REQUESTER,
            Some(second),
            msg,
        )
        .await
        .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e)),
        Err((issuer, r)) => {
            let key = if r.code == "unknown_sp" {
                "saml.error_unknown_sp"
            } else {
                "saml.error_request"
            };
            refuse(state, req, "AuthnRequest", issuer.as_deref(), &r, key).await
        }
    }
}

enum Checked {
    Go(Pending),
    Status(Pending, &'static str, &'static str),
}

/// Everything that decides whether the request can be trusted; a refusal names the issuer when
/// it got that far.
async fn check(
    state: &web::Data<IdpState>,
    raw: &str,
    relay: Option<String>,
    binding: Binding,
) -> Result<Checked, (Option<String>, Refused)> {
    let now = kuntalaistili_schema::now_utc();
    let bad = |e: SignError| (None, refusal(&e));
    let root = xml::parse(raw, xml::MESSAGE).map_err(|e| bad(e.into()))?;
    let mut ar = request::authn_request(&root, now).map_err(|r| (None, r))?;
    let issuer = ar.common.issuer.clone();
    let fail = |r: Refused| (Some(issuer.clone()), r);
    let (st, id) = (state.clone(), issuer.clone());
    let sp = web::block(move || sp_blocking(&st, &id))
        .await
        .map_err(|_| fail(Refused::new("unavailable", "blocking pool")))?
        .map_err(|_| fail(Refused::new("unavailable", "database")))?
        .ok_or_else(|| {
            fail(Refused::new(
                "unknown_sp",
                format!("no SP {issuer:?} is registered"),
            ))
        })?;
    if !sp.trusted_at(now) {
        return Err(fail(Refused::new(
            "sp_not_trusted",
            "the SP is disabled or its metadata has expired",
        )));
    }
    let signed = match &binding {
        Binding::Redirect(m) if m.is_signed() => {
            m.verify(&sp.md.signing_certs)
                .map_err(|e| fail(refusal(&e)))?;
            true
        }
        Binding::Redirect(_) => false,
        Binding::Post if root.child(xml::NS_DS, "Signature").is_some() => {
            let verified = sign::verify_enveloped(raw, &sp.md.signing_certs, xml::MESSAGE)
                .map_err(|e| fail(refusal(&e)))?;
            // Read the request again from the verified content only.
            ar = request::authn_request(&verified, now).map_err(fail)?;
            true
        }
        Binding::Post => false,
    };
    if sp.requires_signed_requests() && !signed {
        return Err(fail(Refused::new(
            "unsigned",
            "this SP's requests must be signed",
        )));
    }
    request::check_destination(&ar.common, &urls(state).sso, signed).map_err(fail)?;
    if ar
        .protocol_binding
        .as_deref()
        .is_some_and(|b| b != BINDING_POST)
    {
        return Err(fail(Refused::new(
            "binding",
            "only the HTTP-POST binding is offered for responses",
        )));
    }
    let acs = sp
        .md
        .choose_acs(ar.acs_index, ar.acs_url.as_deref())
        .ok_or_else(|| {
            fail(Refused::new(
                "acs",
                "the AssertionConsumerService is not in the SP's metadata",
            ))
        })?
        .location
        .clone();
    if relay.as_ref().is_some_and(|r| r.len() > MAX_RELAY_STATE) {
        return Err(fail(Refused::new("relay_state", "RelayState is too long")));
    }
    let (st, key) = (
        state.clone(),
        format!("{}|{}", sp.row.entity_id, ar.common.id),
    );
    let fresh = web::block(move || -> Result<bool, DbError> {
        store::record_message_id(
            &mut *st.db.conn()?,
            &key,
            now + Duration::minutes(request::REPLAY_WINDOW_MINUTES),
        )
    })
    .await
    .map_err(|_| fail(Refused::new("unavailable", "blocking pool")))?
    .map_err(|_| fail(Refused::new("unavailable", "database")))?;
    if !fresh {
        return Err(fail(Refused::new(
            "replay",
            format!("request ID {} was already used", ar.common.id),
        )));
    }
    let pending = Pending {
        sp: sp.row.entity_id.clone(),
        id: Some(ar.common.id.clone()),
        acs,
        relay,
        fmt: ar.name_id_format.clone(),
        force: ar.force_authn,
        passive: ar.is_passive,
    };
    if !authn_context_ok(&ar.authn_context) {
        return Ok(Checked::Status(
            pending,
            response::STATUS_NO_AUTHN_CONTEXT,
            "the requested authentication context is not available",
        ));
    }
    Ok(Checked::Go(pending))
}

/// How long a request carried through the login page stays valid.
const CARRIED_MINUTES: i64 = 30;

/// The MAC purpose of SAML requests carried through the login page ([`crate::carry`]).
const CARRY_PURPOSE: &str = "saml-resume";

#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    r: Option<String>,
    m: Option<String>,
}

/// `GET /saml/sso/resume`: back from the login page.
pub async fn saml_sso_resume_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    q: web::Query<ResumeQuery>,
) -> Result<HttpResponse, WebError> {
    let (Some(r), Some(m)) = (&q.r, &q.m) else {
        return Err(WebError::BadRequest("saml.error_request"));
    };
    let (p, at) = crate::carry::uncarry(
        &state,
        CARRY_PURPOSE,
        r,
        m,
        Duration::minutes(CARRIED_MINUTES),
    )
    .ok_or(WebError::BadRequest("saml.error_request_expired"))?;
    proceed(&state, &req, p, Some(at)).await
}

#[derive(Debug, Deserialize)]
pub struct InitQuery {
    sp: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /saml/sso/init?sp=…&RelayState=…`: IdP-initiated SSO to a registered SP's default ACS.
pub async fn saml_sso_init_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    q: web::Query<InitQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let Some(entity) = q.sp.filter(|s| !s.is_empty() && s.len() <= 1024) else {
        return Err(WebError::BadRequest("saml.error_unknown_sp"));
    };
    let now = kuntalaistili_schema::now_utc();
    let (st, id) = (state.clone(), entity.clone());
    let sp = web::block(move || sp_blocking(&st, &id)).await??;
    let Some(sp) = sp.filter(|s| s.trusted_at(now)) else {
        return Ok(refuse(
            &state,
            &req,
            "IdP-initiated SSO",
            Some(&entity),
            &Refused::new("unknown_sp", "no trusted SP with this entity ID"),
            "saml.error_unknown_sp",
        )
        .await);
    };
    if q.relay_state
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE)
    {
        return Err(WebError::BadRequest("saml.error_request"));
    }
    let acs = sp
        .md
        .choose_acs(None, None)
        .map(|e| e.location.clone())
        .ok_or(WebError::BadRequest("saml.error_request"))?;
    let p = Pending {
        sp: sp.row.entity_id.clone(),
        id: None,
        acs,
        relay: q.relay_state,
        fmt: None,
        force: false,
        passive: false,
    };
    proceed(&state, &req, p, None).await
}

/// Logs the resident in when needed, then answers.
async fn proceed(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    p: Pending,
    since: Option<NaiveDateTime>,
) -> Result<HttpResponse, WebError> {
    let current = crate::session::current(state, req).await?;
    let fresh_enough = |s: &Session| !p.force || since.is_some_and(|t| s.auth_time >= t);
    match current {
        Some((s, u)) if fresh_enough(&s) => issue(state, req, p, s, u).await,
        _ if p.passive => {
            status(
                state,
                req,
                &p,
                response::STATUS_RESPONDER,
                Some(response::STATUS_NO_PASSIVE),
                "the resident is not logged in",
            )
            .await
        }
        _ => {
            let link =
                crate::carry::carried(state, CARRY_PURPOSE, super::paths::SSO_RESUME, &p, 2000)
                    .ok_or(WebError::BadRequest("saml.error_request"))?;
            let to: String = url::form_urlencoded::byte_serialize(link.as_bytes()).collect();
            Ok(crate::session::logout::redirect(&format!(
                "{}?next={to}",
                crate::paths::LOGIN
            )))
        }
    }
}

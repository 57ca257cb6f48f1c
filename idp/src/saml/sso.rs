//! Web SSO: `/saml/sso` (AuthnRequest over HTTP-Redirect or HTTP-POST), the return from the login
//! page (`/saml/sso/resume`) and IdP-initiated SSO (`/saml/sso/init?sp=…&RelayState=…`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_federation::saml::{Sp, ATTRIBUTES, NATIONAL_ID};
use kuntalaistili_metadata::saml::metadata::{
    BINDING_POST, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED,
};
use kuntalaistili_metadata::saml::sign::{self, SignError};
use kuntalaistili_metadata::saml::xml::{self, XmlError};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::saml::{self as store, Participant};
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, DbError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{self, Refused};
use super::response::{self, Attribute, Protection};
use super::{b64, kind, post_form, refuse, signer_blocking, sp_blocking, urls};
use crate::audit::Event;
use crate::error::WebError;
use crate::{client_ip, IdpState};

/// The form of the HTTP-POST binding.
#[derive(Debug, Deserialize)]
pub struct SamlForm {
    #[serde(rename = "SAMLRequest")]
    pub saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    pub saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

/// Longest RelayState carried (SAML asks SPs for at most 80 bytes; some send more).
pub const MAX_RELAY_STATE: usize = 1024;

/// A checked request waiting for the resident (carried through the login page, signed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub sp: String,
    /// The AuthnRequest ID (none for IdP-initiated SSO).
    pub id: Option<String>,
    pub acs: String,
    pub relay: Option<String>,
    pub fmt: Option<String>,
    pub force: bool,
    pub passive: bool,
}

/// The code recorded for a message that failed to read or verify.
pub(super) fn refusal(e: &SignError) -> Refused {
    let code = match e {
        SignError::Xml(XmlError::Doctype) => "doctype",
        SignError::Xml(XmlError::Entity(_)) => "entity",
        SignError::Xml(XmlError::TooLarge(_)) | SignError::Xml(XmlError::TooMany) => "too_large",
        SignError::Xml(XmlError::TooDeep(_)) => "too_deep",
        SignError::Xml(XmlError::DuplicateId(_)) => "duplicate_id",
        SignError::Xml(_) => "xml",
        SignError::Base64 => "encoding",
        SignError::Inflate => "inflate",
        SignError::InflateTooLarge(_) => "inflate_bomb",
        SignError::Unsigned => "unsigned",
        SignError::Algorithm(_) => "algorithm",
        SignError::DigestAlgorithm(_) => "digest_algorithm",
        SignError::BadSignature => "signature",
        SignError::NotRoot => "signature_wrapping",
        SignError::Repeated(_) => "repeated_parameter",
        SignError::Certificate(_) | SignError::Signing(_) => "signature",
    };
    Refused::new(code, e.to_string())
}

/// How a message arrived.
pub(super) enum Binding {
    Redirect(sign::RedirectMessage),
    Post,
}

/// Decodes the base64 of the HTTP-POST binding.
pub(super) fn post_xml(value: Option<&str>) -> Result<String, SignError> {
    use base64::Engine;
    let v = value.ok_or(SignError::Base64)?;
    let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SignError::Base64)?;
    String::from_utf8(raw).map_err(|_| SignError::Base64)
}

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

/// A signed status response (no assertion) to the SP's ACS, recorded in the audit log.
async fn status(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    p: &Pending,
    top: &'static str,
    second: Option<&'static str>,
    message: &'static str,
) -> Result<HttpResponse, WebError> {
    let (st, p2) = (state.clone(), p.clone());
    let ip = client_ip(req, &state.settings);
    let xml = web::block(move || -> Result<String, WebError> {
        let now = kuntalaistili_schema::now_utc();
        let signer = signer_blocking(&st)?;
        let xml = response::failure(
            &urls(&st).entity_id,
            &p2.acs,
            p2.id.as_deref(),
            top,
            second,
            message,
            &signer,
            now,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "signing a SAML status response");
            WebError::Internal
        })?;
        audit::append(
            &mut *st.db.conn()?,
            Event::failure(kind::STATUS_SENT)
                .actor(p2.sp.clone())
                .ip(ip)
                .details(json!({ "sp": p2.sp, "request": p2.id, "status": second.unwrap_or(top) }))
                .into_new(),
            now,
        )?;
        Ok(xml)
    })
    .await??;
    Ok(answer(state, &p.acs, &xml, p.relay.as_deref()))
}

fn answer(state: &IdpState, acs: &str, xml: &str, relay: Option<&str>) -> HttpResponse {
    let mut fields = vec![("SAMLResponse", b64(xml))];
    if let Some(r) = relay {
        fields.push(("RelayState", r.to_owned()));
    }
    post_form(state, acs, fields)
}

/// The NameID for this SP and format; `None` when the format cannot be given.
fn name_id(state: &IdpState, sp: &Sp, user: &User, format: &str) -> Option<String> {
    match format {
        NAMEID_PERSISTENT => Some(state.keys.pairwise_subject(&sp.row.entity_id, &user.id)),
        NAMEID_TRANSIENT => Some(response::new_id()),
        NAMEID_EMAIL => user.email.clone().filter(|e| !e.is_empty()),
        _ => None,
    }
}

/// The attributes released to `sp`, and whether the national id was among them. Blocking.
fn attributes(
    state: &IdpState,
    conn: &mut kuntalaistili_schema::AnyConnection,
    sp: &Sp,
    user: &User,
    now: NaiveDateTime,
) -> Result<(Vec<Attribute>, bool), DbError> {
    let mut out = Vec::new();
    let mut national_id = false;
    for friendly in sp.attributes() {
        let Some((f, name)) = ATTRIBUTES.iter().find(|(f, _)| *f == friendly) else {
            continue;
        };
        let values: Vec<String> = match *f {
            "uid" => vec![user.username.clone()],
            "cn" | "displayName" => vec![user.display_name()],
            "givenName" => user.given_name.clone().into_iter().collect(),
            "sn" => user.family_name.clone().into_iter().collect(),
            "mail" => user.email.clone().into_iter().collect(),
            "preferredLanguage" => vec![user.preferred_language.clone()],
            "municipalityCode" => user.home_municipality.clone().into_iter().collect(),
            NATIONAL_ID => match &user.national_id_enc {
                Some(enc) => match state.keys.decrypt_national_id(enc) {
                    Ok(id) => {
                        national_id = true;
                        vec![id]
                    }
                    Err(_) => {
                        tracing::error!(user = %user.id, "stored national id does not decrypt");
                        Vec::new()
                    }
                },
                None => Vec::new(),
            },
            "permissions" => state
                .authz
                .rights(conn, &user.id)?
                .released(&sp.row.release_permissions, now),
            _ => Vec::new(),
        };
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if !values.is_empty() {
            out.push(Attribute {
                name,
                friendly: f,
                values,
            });
        }
    }
    Ok((out, national_id))
}

/// Issues the assertion to the SP's ACS and records it.
async fn issue(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    p: Pending,
    session: Session,
    user: User,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let ip = client_ip(req, &state.settings);
    let p2 = p.clone();
    let outcome = web::block(move || -> Result<Result<String, &'static str>, WebError> {
        let now = kuntalaistili_schema::now_utc();
        let sp = sp_blocking(&st, &p2.sp)?
            .filter(|s| s.trusted_at(now))
            .ok_or(WebError::BadRequest("saml.error_unknown_sp"))?;
        let format = p2
            .fmt
            .clone()
            .filter(|f| f != NAMEID_UNSPECIFIED)
            .unwrap_or_else(|| sp.row.name_id_format.clone());
        let Some(nid) = name_id(&st, &sp, &user, &format) else {
            return Ok(Err(response::STATUS_INVALID_NAMEID_POLICY));
        };
        let mut conn = st.db.conn()?;
        let (attrs, national_id) = attributes(&st, &mut conn, &sp, &user, now)?;
        let signer = signer_blocking(&st)?;
        let six: String = st
            .keys
            .mac("saml-session-index", &session.id)
            .chars()
            .take(32)
            .collect();
        let idp = urls(&st).entity_id;
        let facts = response::AssertionFacts {
            idp_entity_id: &idp,
            sp_entity_id: &sp.row.entity_id,
            acs: &p2.acs,
            in_response_to: p2.id.as_deref(),
            name_id: &nid,
            name_id_format: &format,
            session_index: &six,
            auth_instant: session.auth_time,
            session_not_on_or_after: session.expires_at,
            attributes: &attrs,
            now,
        };
        let protection = Protection {
            sign_assertion: sp.signs_assertion(),
            sign_response: sp.row.sign_response,
            encrypt_for: sp.encryption_cert(),
        };
        let xml = response::success(&facts, protection, &signer).map_err(|e| {
            tracing::error!(error = %e, sp = %sp.row.entity_id, "building a SAML response");
            WebError::Internal
        })?;
        let released: Vec<&str> = attrs.iter().map(|a| a.friendly).collect();
        write_tx(&mut conn, |conn| -> Result<(), DbError> {
            store::record_participant(
                conn,
                &Participant {
                    session_id: session.id.clone(),
                    sp_entity_id: sp.row.entity_id.clone(),
                    name_id: nid.clone(),
                    name_id_format: format.clone(),
                    session_index: six.clone(),
                    created_at: now,
                },
            )?;
            audit::append_in_tx(
                conn,
                Event::success(kind::ASSERTION_ISSUED)
                    .actor(user.id.clone())
                    .subject(user.id.clone())
                    .ip(ip.clone())
                    .details(json!({
                        "sp": sp.row.entity_id,
                        "request": p2.id,
                        "name_id_format": format,
                        "attributes": released,
                        "signed_assertion": protection.sign_assertion,
                        "signed_response": protection.sign_response,
                        "encrypted": protection.encrypt_for.is_some(),
                    }))
                    .into_new(),
                now,
            )?;
            if national_id {
                audit::append_in_tx(
                    conn,
                    Event::success(kind::NATIONAL_ID_RELEASED)
                        .actor(sp.row.entity_id.clone())
                        .subject(user.id.clone())
                        .ip(ip.clone())
                        .details(json!({ "sp": sp.row.entity_id }))
                        .into_new(),
                    now,
                )?;
            }
            Ok(())
        })?;
        Ok(Ok(xml))
    })
    .await??;
    match outcome {
        Ok(xml) => Ok(answer(state, &p.acs, &xml, p.relay.as_deref())),
        Err(second) => {
            status(
                state,
                req,
                &p,
                response::STATUS_REQUESTER,
                Some(second),
                "the requested NameID format cannot be given for this resident",
            )
            .await
        }
    }
}

//! Web SSO's answers to the SP's AssertionConsumerService, once a request has been checked
//! ([`super::sso`]) and the resident is known: the signed (and, where the SP asks, encrypted)
//! assertion with the NameID and attributes released to the SP, or a signed status response.
//! Each is recorded in the audit log; an assertion also in the session's participants, for
//! Single Logout.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_federation::saml::{Sp, ATTRIBUTES, NATIONAL_ID};
use kuntalaistili_metadata::saml::metadata::{
    NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED,
};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::saml::{self as store, Participant};
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::{audit, DbError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::response::{self, Attribute, Protection};
use super::{b64, kind, post_form, signer_blocking, sp_blocking, urls};
use crate::audit::Event;
use crate::error::WebError;
use crate::{client_ip, IdpState};

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

/// A signed status response (no assertion) to the SP's ACS, recorded in the audit log.
pub(super) async fn status(
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
pub(super) async fn issue(
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

//! The messages the IdP writes: Response with Assertion (signed, and encrypted when the SP asks
//! for it), status-only responses, LogoutRequest and LogoutResponse. Every value that comes from
//! a user, an SP or the register is escaped.

use chrono::{Duration, NaiveDateTime};
use kuntalaistili_metadata::saml::keys::SamlSigner;
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign::{self, SignError};
use kuntalaistili_metadata::saml::xml::{esc, NS_SAML, NS_SAMLP};

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const STATUS_INVALID_NAMEID_POLICY: &str =
    "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
pub const STATUS_NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
pub const STATUS_UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";
pub const AC_PASSWORD_PROTECTED: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
pub const AC_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";

/// How long an assertion may be presented.
pub const ASSERTION_MINUTES: i64 = 5;

/// A fresh message ID: `_` and 160 random bits in hex.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    format!("_{}", hex::encode(b))
}

/// A released attribute: URI name, friendly name, values.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub friendly: &'static str,
    pub values: Vec<String>,
}

/// Everything an assertion states.
#[derive(Debug)]
pub struct AssertionFacts<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs: &'a str,
    pub in_response_to: Option<&'a str>,
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub session_index: &'a str,
    pub auth_instant: NaiveDateTime,
    pub session_not_on_or_after: NaiveDateTime,
    pub attributes: &'a [Attribute],
    pub now: NaiveDateTime,
}

/// How the response is protected for this SP.
#[derive(Debug, Clone, Copy)]
pub struct Protection<'a> {
    pub sign_assertion: bool,
    pub sign_response: bool,
    pub encrypt_for: Option<&'a [u8]>,
}

fn in_response_to(v: Option<&str>) -> String {
    v.map(|i| format!(r#" InResponseTo="{}""#, esc(i)))
        .unwrap_or_default()
}

/// The assertion in exclusive canonical form (see [`sign::sign_canonical`]): attributes in
/// canonical order, no empty-element tags, every value escaped for C14N, the `saml` namespace
/// declared once on the root. Attribute values carry no `xsi:type` (plain strings), so no
/// namespace is declared that canonicalization would drop.
fn assertion(f: &AssertionFacts<'_>, id: &str) -> String {
    use sign::{c14n_attr as a, c14n_text as t};
    let until = saml_time(f.now + Duration::minutes(ASSERTION_MINUTES));
    let mut attrs = String::new();
    for at in f.attributes {
        attrs.push_str(&format!(
            r#"<saml:Attribute FriendlyName="{}" Name="{}" NameFormat="{ATTRNAME_URI}">"#,
            a(at.friendly),
            a(at.name)
        ));
        for v in &at.values {
            attrs.push_str(&format!(
                "<saml:AttributeValue>{}</saml:AttributeValue>",
                t(v)
            ));
        }
        attrs.push_str("</saml:Attribute>");
    }
    let statement = if attrs.is_empty() {
        String::new()
    } else {
        format!("<saml:AttributeStatement>{attrs}</saml:AttributeStatement>")
    };
    let irt = f
        .in_response_to
        .map(|i| format!(r#" InResponseTo="{}""#, a(i)))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="{ns}" ID="{id}" IssueInstant="{now}" Version="2.0">"#,
            r#"<saml:Issuer>{idp_t}</saml:Issuer>"#,
            r#"<saml:Subject><saml:NameID Format="{fmt}" NameQualifier="{idp_a}" SPNameQualifier="{sp_a}">{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<saml:SubjectConfirmationData{irt} NotOnOrAfter="{until}" Recipient="{acs}"></saml:SubjectConfirmationData>"#,
            r#"</saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{before}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{sp_t}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{auth}" SessionIndex="{six}" SessionNotOnOrAfter="{snoa}">"#,
            r#"<saml:AuthnContext><saml:AuthnContextClassRef>{ac}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            "{statement}</saml:Assertion>"
        ),
        ns = NS_SAML,
        id = a(id),
        now = saml_time(f.now),
        idp_t = t(f.idp_entity_id),
        idp_a = a(f.idp_entity_id),
        fmt = a(f.name_id_format),
        sp_a = a(f.sp_entity_id),
        sp_t = t(f.sp_entity_id),
        name_id = t(f.name_id),
        irt = irt,
        until = until,
        acs = a(f.acs),
        before = saml_time(f.now - Duration::seconds(60)),
        auth = saml_time(f.auth_instant),
        six = a(f.session_index),
        snoa = saml_time(f.session_not_on_or_after),
        ac = AC_PASSWORD_PROTECTED,
        statement = statement,
    )
}

fn status(top: &str, second: Option<&str>, message: Option<&str>) -> String {
    let inner = second
        .map(|s| format!(r#"<samlp:StatusCode Value="{}"/>"#, esc(s)))
        .unwrap_or_default();
    let msg = message
        .map(|m| format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", esc(m)))
        .unwrap_or_default();
    format!(
        r#"<samlp:Status><samlp:StatusCode Value="{top}">{inner}</samlp:StatusCode>{msg}</samlp:Status>"#
    )
}

fn response_envelope(
    idp: &str,
    destination: &str,
    irt: Option<&str>,
    id: &str,
    now: NaiveDateTime,
    signature: &str,
    body: &str,
) -> String {
    format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="{p}" xmlns:saml="{a}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"{irt}>"#,
            r#"<saml:Issuer>{idp}</saml:Issuer>{sig}{body}</samlp:Response>"#
        ),
        p = NS_SAMLP,
        a = NS_SAML,
        id = id,
        now = saml_time(now),
        dest = esc(destination),
        irt = in_response_to(irt),
        idp = esc(idp),
        sig = signature,
        body = body,
    )
}

/// A successful Response carrying the assertion, protected as the SP asks.
pub fn success(
    f: &AssertionFacts<'_>,
    protection: Protection<'_>,
    signer: &SamlSigner,
) -> Result<String, SignError> {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let assertion_id = new_id();
    let mut assertion_xml = assertion(f, &assertion_id);
    if protection.sign_assertion {
        let signature = sign::sign_canonical(&assertion_xml, &assertion_id, signer)?;
        assertion_xml =
            assertion_xml.replacen("</saml:Issuer>", &format!("</saml:Issuer>{signature}"), 1);
    }
    if let Some(cert_der) = protection.encrypt_for {
        assertion_xml = sign::encrypt_assertion(&assertion_xml, cert_der)?;
    }
    let body = format!("{}{assertion_xml}", status(STATUS_SUCCESS, None, None));
    let response_id = new_id();
    if protection.sign_response {
        let template = sign::template(&response_id, &cert);
        let xml = response_envelope(
            f.idp_entity_id,
            f.acs,
            f.in_response_to,
            &response_id,
            f.now,
            &template,
            &body,
        );
        sign::sign_enveloped(&xml, signer)
    } else {
        Ok(response_envelope(
            f.idp_entity_id,
            f.acs,
            f.in_response_to,
            &response_id,
            f.now,
            "",
            &body,
        ))
    }
}

/// A signed Response with an error status and no assertion.
#[allow(clippy::too_many_arguments)]
pub fn failure(
    idp: &str,
    acs: &str,
    irt: Option<&str>,
    top: &str,
    second: Option<&str>,
    message: &str,
    signer: &SamlSigner,
    now: NaiveDateTime,
) -> Result<String, SignError> {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let id = new_id();
    let xml = response_envelope(
        idp,
        acs,
        irt,
        &id,
        now,
        &sign::template(&id, &cert),
        &status(top, second, Some(message)),
    );
    sign::sign_enveloped(&xml, signer)
}

/// Whom a LogoutRequest is about, as the SP knows them.
#[derive(Debug, Clone, Copy)]
pub struct LoggedOut<'a> {
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub sp: &'a str,
    pub session_index: &'a str,
}

/// A LogoutRequest to an SP (unsigned: the Redirect binding signs the query).
pub fn logout_request(
    idp: &str,
    destination: &str,
    id: &str,
    who: LoggedOut<'_>,
    now: NaiveDateTime,
) -> String {
    format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="{p}" xmlns:saml="{a}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" NotOnOrAfter="{until}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer><saml:NameID Format="{fmt}" NameQualifier="{idp}" SPNameQualifier="{sp}">{nid}</saml:NameID>"#,
            r#"<samlp:SessionIndex>{six}</samlp:SessionIndex></samlp:LogoutRequest>"#
        ),
        p = NS_SAMLP,
        a = NS_SAML,
        id = id,
        now = saml_time(now),
        until = saml_time(now + Duration::minutes(ASSERTION_MINUTES)),
        dest = esc(destination),
        idp = esc(idp),
        fmt = esc(who.name_id_format),
        sp = esc(who.sp),
        nid = esc(who.name_id),
        six = esc(who.session_index),
    )
}

/// A LogoutResponse to an SP (unsigned: the binding's signature is added on the way out).
pub fn logout_response(
    idp: &str,
    destination: &str,
    irt: &str,
    id: &str,
    (top, second): (&str, Option<&str>),
    now: NaiveDateTime,
) -> String {
    format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="{p}" xmlns:saml="{a}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer>{status}</samlp:LogoutResponse>"#
        ),
        p = NS_SAMLP,
        a = NS_SAML,
        id = id,
        now = saml_time(now),
        dest = esc(destination),
        irt = esc(irt),
        idp = esc(idp),
        status = status(top, second, None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuntalaistili_metadata::saml::xml::{parse, MESSAGE};

    #[test]
    fn values_are_escaped_and_the_assertion_is_signed() {
        let now = kuntalaistili_schema::now_utc();
        let signer = kuntalaistili_metadata::saml::keys::generate("idp", now)
            .unwrap()
            .0;
        let evil = "x</saml:AttributeValue><saml:AttributeValue>admin";
        let attrs = [Attribute {
            name: "urn:oid:2.5.4.3",
            friendly: "cn",
            values: vec![evil.to_owned()],
        }];
        let f = AssertionFacts {
            idp_entity_id: "https://idp/saml/metadata",
            sp_entity_id: "https://sp\"/>",
            acs: "https://sp/acs",
            in_response_to: Some("_r"),
            name_id: "n<1>",
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            session_index: "s1",
            auth_instant: now,
            session_not_on_or_after: now,
            attributes: &attrs,
            now,
        };
        let xml = success(
            &f,
            Protection {
                sign_assertion: true,
                sign_response: true,
                encrypt_for: None,
            },
            &signer,
        )
        .unwrap();
        let root = parse(&xml, MESSAGE).unwrap();
        let a = root.child(NS_SAML, "Assertion").unwrap();
        let values: Vec<_> = a
            .child(NS_SAML, "AttributeStatement")
            .unwrap()
            .child(NS_SAML, "Attribute")
            .unwrap()
            .children_named(NS_SAML, "AttributeValue")
            .collect();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].text, evil);
        // Both signatures verify: the response as a whole, and the assertion on its own.
        sign::verify_enveloped(&xml, std::slice::from_ref(&signer.cert_der), MESSAGE).unwrap();
        let a_start = xml.find("<saml:Assertion").unwrap();
        let a_end = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
        let standalone = &xml[a_start..a_end];
        sign::verify_enveloped(standalone, std::slice::from_ref(&signer.cert_der), MESSAGE)
            .unwrap();
    }
}

//! How SAML messages arrive: the HTTP-POST form, the binding a message came by, reading and
//! verifying it, and the refusal codes recorded when it does not read or verify. Shared by Web
//! SSO ([`super::sso`]) and Single Logout ([`super::slo`]).

use kuntalaistili_metadata::saml::sign::{self, SignError};
use kuntalaistili_metadata::saml::xml::{self, XmlError};
use serde::Deserialize;

use super::request::Refused;

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

/// Verifies a message's signature with the SP's keys; `Ok(false)` when unsigned. Returns the root
/// to read from (the verified content for POST).
pub(super) fn verified_root(
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

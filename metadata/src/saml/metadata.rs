//! SAML metadata: the IdP's own `EntityDescriptor`, and reading SPs' metadata (one entity or a
//! federation aggregate) into what the IdP needs — endpoints, keys by purpose, validity.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};

use super::keys::Published;
use super::xml::{self, esc, Element, NS_DS, NS_MD};

pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
pub const NAMEID_FORMATS: [&str; 3] = [NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_EMAIL];

/// SAML's time format (UTC, second precision).
pub fn saml_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An `xs:dateTime` as UTC.
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.naive_utc());
    }
    // No zone: UTC by SAML's rules.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// An `xs:duration` without years or months (`P1D`, `PT6H30M`, `PT3600S`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut secs: i64 = 0;
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                let n: f64 = num.parse().ok()?;
                secs = secs.checked_add((n * mult as f64) as i64)?;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800), ('D', 86_400)])?;
    take(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    Some(Duration::seconds(secs))
}

/// Where the IdP's endpoints are.
#[derive(Debug, Clone)]
pub struct IdpUrls {
    pub entity_id: String,
    pub sso: String,
    pub slo: String,
}

/// The IdP's metadata with a signature template (to be signed) when `signing` is given.
pub fn idp_metadata(
    urls: &IdpUrls,
    certs: &[Published],
    id: &str,
    valid_until: NaiveDateTime,
    cache_duration_secs: i64,
    signature_template: Option<&str>,
) -> String {
    let mut keys = String::new();
    for c in certs {
        keys.push_str(&format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:KeyName>{kid}</ds:KeyName><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            kid = esc(&c.kid),
            cert = c.cert_b64()
        ));
    }
    let formats: String = NAMEID_FORMATS
        .iter()
        .map(|f| format!("<md:NameIDFormat>{f}</md:NameIDFormat>"))
        .collect();
    let (sso, slo) = (esc(&urls.sso), esc(&urls.slo));
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" ID="{id}" entityID="{entity}" validUntil="{until}" cacheDuration="PT{cache}S">"#,
            "{sig}{algs}",
            r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            r#"<md:SingleLogoutService Binding="{redirect}" Location="{slo}"/>"#,
            r#"<md:SingleLogoutService Binding="{post}" Location="{slo}"/>"#,
            "{formats}",
            r#"<md:SingleSignOnService Binding="{redirect}" Location="{sso}"/>"#,
            r#"<md:SingleSignOnService Binding="{post}" Location="{sso}"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
        md = NS_MD,
        ds = NS_DS,
        id = esc(id),
        entity = esc(&urls.entity_id),
        until = saml_time(valid_until),
        cache = cache_duration_secs,
        sig = signature_template.unwrap_or_default(),
        algs = super::algorithms::metadata_extensions(),
        keys = keys,
        redirect = BINDING_REDIRECT,
        post = BINDING_POST,
        slo = slo,
        sso = sso,
        formats = formats,
    )
}

/// An endpoint of an SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
    pub response_location: Option<String>,
    pub index: Option<u32>,
    pub is_default: Option<bool>,
}

/// What the IdP uses of an SP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    pub entity_id: String,
    /// `validUntil` of the entity or of an enclosing aggregate, whichever is earliest.
    pub valid_until: Option<NaiveDateTime>,
    pub cache_duration: Option<Duration>,
    pub authn_requests_signed: bool,
    pub want_assertions_signed: bool,
    pub acs: Vec<Endpoint>,
    pub slo: Vec<Endpoint>,
    /// Keys for checking the SP's signatures (`use="signing"` or no `use`).
    pub signing_certs: Vec<Vec<u8>>,
    /// Keys for encrypting to the SP (`use="encryption"` or no `use`).
    pub encryption_certs: Vec<Vec<u8>>,
    pub name_id_formats: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    Xml(#[from] xml::XmlError),
    #[error("not SAML metadata: the root is neither EntityDescriptor nor EntitiesDescriptor")]
    NotMetadata,
    #[error("the entity has no entityID")]
    NoEntityId,
    #[error("{0} is not a service provider (no SPSSODescriptor for SAML 2.0)")]
    NotSp(String),
    #[error("{0} has no AssertionConsumerService with the HTTP-POST binding")]
    NoAcs(String),
    #[error("{entity}: endpoint {location:?} is not an https URL")]
    BadEndpoint { entity: String, location: String },
    #[error("{0}: a certificate in the metadata is not valid base64 DER")]
    BadCertificate(String),
    #[error("the metadata expired at {0}")]
    Expired(String),
    #[error("the aggregate has no service providers")]
    Empty,
}

fn flag(el: &Element, name: &str) -> bool {
    matches!(el.attr(name), Some("true") | Some("1"))
}

fn endpoints(sp: &Element, name: &str, entity: &str) -> Result<Vec<Endpoint>, MetadataError> {
    let mut out = Vec::new();
    for e in sp.children_named(NS_MD, name) {
        let (Some(binding), Some(location)) = (e.attr("Binding"), e.attr("Location")) else {
            continue;
        };
        let location = location.trim().to_owned();
        if !acceptable_url(&location) {
            return Err(MetadataError::BadEndpoint {
                entity: entity.to_owned(),
                location,
            });
        }
        out.push(Endpoint {
            binding: binding.to_owned(),
            location,
            response_location: e.attr("ResponseLocation").map(str::to_owned),
            index: e.attr("index").and_then(|i| i.trim().parse().ok()),
            is_default: e.attr("isDefault").map(|d| d == "true" || d == "1"),
        });
    }
    Ok(out)
}

/// Endpoints must be https (http only on the loopback interface, for development); never
/// `javascript:`, `data:` or the like.
pub fn acceptable_url(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return u.len() > 8 && !u.chars().any(|c| c.is_control() || c.is_whitespace());
    }
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            lower
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
        && !u.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// DER certificates for signing and for encryption.
type KeysByUse = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn certs(sp: &Element, entity: &str) -> Result<KeysByUse, MetadataError> {
    let (mut signing, mut encryption) = (Vec::new(), Vec::new());
    for kd in sp.children_named(NS_MD, "KeyDescriptor") {
        let usage = kd.attr("use");
        let Some(info) = kd.child(NS_DS, "KeyInfo") else {
            continue;
        };
        for data in info.children_named(NS_DS, "X509Data") {
            for c in data.children_named(NS_DS, "X509Certificate") {
                let compact: String = c.text.chars().filter(|c| !c.is_whitespace()).collect();
                let der = STANDARD
                    .decode(compact)
                    .map_err(|_| MetadataError::BadCertificate(entity.to_owned()))?;
                if openssl::x509::X509::from_der(&der).is_err() {
                    return Err(MetadataError::BadCertificate(entity.to_owned()));
                }
                if usage != Some("encryption") {
                    signing.push(der.clone());
                }
                if usage != Some("signing") {
                    encryption.push(der);
                }
            }
        }
    }
    Ok((signing, encryption))
}

fn min_time(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads one `EntityDescriptor` that describes an SP.
pub fn read_entity(
    el: &Element,
    inherited_valid_until: Option<NaiveDateTime>,
) -> Result<SpMetadata, MetadataError> {
    let entity_id = el
        .attr("entityID")
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.len() <= 1024)
        .ok_or(MetadataError::NoEntityId)?
        .to_owned();
    let sp = el
        .children_named(NS_MD, "SPSSODescriptor")
        .find(|d| {
            d.attr("protocolSupportEnumeration")
                .is_some_and(|p| p.split_whitespace().any(|p| p == xml::NS_SAMLP))
        })
        .ok_or_else(|| MetadataError::NotSp(entity_id.clone()))?;
    let valid_until = min_time(
        inherited_valid_until,
        min_time(
            el.attr("validUntil").and_then(parse_time),
            sp.attr("validUntil").and_then(parse_time),
        ),
    );
    let acs = endpoints(sp, "AssertionConsumerService", &entity_id)?;
    if !acs.iter().any(|e| e.binding == BINDING_POST) {
        return Err(MetadataError::NoAcs(entity_id));
    }
    let slo = endpoints(sp, "SingleLogoutService", &entity_id)?;
    let (signing_certs, encryption_certs) = certs(sp, &entity_id)?;
    Ok(SpMetadata {
        valid_until,
        cache_duration: el
            .attr("cacheDuration")
            .or(sp.attr("cacheDuration"))
            .and_then(parse_duration),
        authn_requests_signed: flag(sp, "AuthnRequestsSigned"),
        want_assertions_signed: flag(sp, "WantAssertionsSigned"),
        acs,
        slo,
        signing_certs,
        encryption_certs,
        name_id_formats: sp
            .children_named(NS_MD, "NameIDFormat")
            .map(|f| f.trimmed().to_owned())
            .collect(),
        entity_id,
    })
}

/// Every SP entity in a document (an `EntityDescriptor`, or an `EntitiesDescriptor` at any
/// depth), with the XML of each as a standalone document. Entities that are not SPs are skipped
/// in aggregates; a lone `EntityDescriptor` must be an SP.
pub fn read_document(root: &Element) -> Result<Vec<(SpMetadata, String)>, MetadataError> {
    if root.is(NS_MD, "EntityDescriptor") {
        let md = read_entity(root, None)?;
        return Ok(vec![(md, root.to_xml())]);
    }
    if !root.is(NS_MD, "EntitiesDescriptor") {
        return Err(MetadataError::NotMetadata);
    }
    let mut out = Vec::new();
    collect(root, None, &mut out);
    if out.is_empty() {
        return Err(MetadataError::Empty);
    }
    Ok(out)
}

fn collect(group: &Element, inherited: Option<NaiveDateTime>, out: &mut Vec<(SpMetadata, String)>) {
    let until = min_time(inherited, group.attr("validUntil").and_then(parse_time));
    for c in &group.children {
        if c.is(NS_MD, "EntitiesDescriptor") {
            collect(c, until, out);
        } else if c.is(NS_MD, "EntityDescriptor") {
            if let Ok(md) = read_entity(c, until) {
                let mut copy = c.clone();
                if let Some(u) = md.valid_until {
                    copy.attrs
                        .retain(|a| !(a.ns.is_empty() && a.name == "validUntil"));
                    copy.attrs.push(xml::Attr {
                        ns: String::new(),
                        name: "validUntil".into(),
                        value: saml_time(u),
                    });
                }
                out.push((md, copy.to_xml()));
            }
        }
    }
}

impl SpMetadata {
    /// The ACS to answer: by index, by URL (exact match with an HTTP-POST endpoint), or the
    /// default. `None` when the request names an endpoint the metadata does not have.
    pub fn choose_acs(&self, index: Option<u32>, url: Option<&str>) -> Option<&Endpoint> {
        let post = || self.acs.iter().filter(|e| e.binding == BINDING_POST);
        if let Some(u) = url {
            return post().find(|e| e.location == u);
        }
        if let Some(i) = index {
            return post().find(|e| e.index == Some(i));
        }
        post()
            .find(|e| e.is_default == Some(true))
            .or_else(|| post().find(|e| e.is_default.is_none()))
            .or_else(|| post().next())
    }

    /// The SP's Single Logout endpoint for a binding we send with (Redirect preferred).
    pub fn slo_endpoint(&self) -> Option<&Endpoint> {
        self.slo
            .iter()
            .find(|e| e.binding == BINDING_REDIRECT)
            .or_else(|| self.slo.iter().find(|e| e.binding == BINDING_POST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("PT6H"), Some(Duration::hours(6)));
        assert_eq!(
            parse_duration("P1DT30M"),
            Some(Duration::minutes(24 * 60 + 30))
        );
        assert_eq!(parse_duration("P1Y"), None);
        assert_eq!(
            parse_time("2026-01-02T03:04:05Z").map(saml_time).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            parse_time("2026-01-02T05:04:05.123+02:00")
                .map(saml_time)
                .as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
    }

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(acceptable_url("https://sp.example/acs"));
        assert!(acceptable_url("http://127.0.0.1:8000/acs"));
        assert!(!acceptable_url("http://sp.example/acs"));
        assert!(!acceptable_url("javascript:alert(1)"));
        assert!(!acceptable_url("http://127.0.0.1.evil.example/acs"));
        assert!(!acceptable_url("https://sp.example/a cs"));
    }
}

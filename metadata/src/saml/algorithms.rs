//! Which XML-signature algorithms the IdP accepts from SPs, said once: the check of an enveloped
//! signature's `SignedInfo` (so a refusal names the algorithm, not the key) and the IdP
//! metadata's `md:Extensions` of the SAML V2.0 Metadata Profile for Algorithm Support, which
//! tells SPs (Shibboleth among them) what to sign with. SHA-1 is in neither.

use super::xml::{self, Element};

/// The algorithm-support metadata namespace.
pub const NS_ALG: &str = "urn:oasis:names:tc:SAML:metadata:algsupport";

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// Signature methods accepted, most preferred first (SPs that read the metadata take the first
/// they support).
pub const SIGNING_METHODS: [&str; 3] = [RSA_SHA256, RSA_SHA384, RSA_SHA512];
/// Reference digest methods accepted in enveloped signatures, most preferred first.
pub const DIGEST_METHODS: [&str; 3] = [SHA256, SHA384, SHA512];

/// Why a signature's algorithms are not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `SignatureMethod` (or its absence) names another algorithm.
    Signature(String),
    /// A `Reference`'s `DigestMethod` (or its absence) names another algorithm.
    Digest(String),
}

fn shown(alg: Option<&str>) -> String {
    alg.unwrap_or("(none)").chars().take(100).collect()
}

/// Checks the algorithms a `ds:Signature` names in its `SignedInfo`, before any cryptography.
pub fn check_signed_info(signature: &Element) -> Result<(), Refusal> {
    let signed_info = signature.child(xml::NS_DS, "SignedInfo");
    let method = signed_info
        .and_then(|si| si.child(xml::NS_DS, "SignatureMethod"))
        .and_then(|m| m.attr("Algorithm"));
    if !method.is_some_and(|m| SIGNING_METHODS.contains(&m)) {
        return Err(Refusal::Signature(shown(method)));
    }
    for reference in signed_info
        .into_iter()
        .flat_map(|si| si.children_named(xml::NS_DS, "Reference"))
    {
        let digest = reference
            .child(xml::NS_DS, "DigestMethod")
            .and_then(|d| d.attr("Algorithm"));
        if !digest.is_some_and(|d| DIGEST_METHODS.contains(&d)) {
            return Err(Refusal::Digest(shown(digest)));
        }
    }
    Ok(())
}

/// The `md:Extensions` element listing what is accepted (for a role descriptor or the entity).
pub fn metadata_extensions() -> String {
    let mut out = format!(r#"<md:Extensions xmlns:alg="{NS_ALG}">"#);
    for d in DIGEST_METHODS {
        out.push_str(&format!(r#"<alg:DigestMethod Algorithm="{d}"/>"#));
    }
    for s in SIGNING_METHODS {
        out.push_str(&format!(r#"<alg:SigningMethod Algorithm="{s}"/>"#));
    }
    out.push_str("</md:Extensions>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(method: &str, digest: &str) -> Element {
        let doc = format!(
            concat!(
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
                r##"<ds:SignatureMethod Algorithm="{m}"/><ds:Reference URI="#x">"##,
                r#"<ds:DigestMethod Algorithm="{d}"/></ds:Reference></ds:SignedInfo></ds:Signature>"#
            ),
            m = method,
            d = digest
        );
        xml::parse(&doc, xml::MESSAGE).unwrap()
    }

    #[test]
    fn sha1_is_refused_naming_what_was_used() {
        assert_eq!(check_signed_info(&signature(RSA_SHA256, SHA256)), Ok(()));
        assert_eq!(check_signed_info(&signature(RSA_SHA512, SHA384)), Ok(()));
        let sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
        assert_eq!(
            check_signed_info(&signature(sha1, SHA256)),
            Err(Refusal::Signature(sha1.into()))
        );
        let dsha1 = "http://www.w3.org/2000/09/xmldsig#sha1";
        assert_eq!(
            check_signed_info(&signature(RSA_SHA256, dsha1)),
            Err(Refusal::Digest(dsha1.into()))
        );
    }

    #[test]
    fn metadata_lists_exactly_what_is_accepted() {
        let ext = metadata_extensions();
        let root = xml::parse(
            &format!(
                r#"<md:EntityDescriptor xmlns:md="{}">{ext}</md:EntityDescriptor>"#,
                xml::NS_MD
            ),
            xml::MESSAGE,
        )
        .unwrap();
        let ext = root.child(xml::NS_MD, "Extensions").unwrap();
        let algs = |name| -> Vec<&str> {
            ext.children_named(NS_ALG, name)
                .filter_map(|e| e.attr("Algorithm"))
                .collect()
        };
        assert_eq!(algs("SigningMethod"), SIGNING_METHODS);
        assert_eq!(algs("DigestMethod"), DIGEST_METHODS);
        assert!(!ext.to_xml().to_ascii_lowercase().contains("sha1"));
    }
}

//! Signatures and encryption for SAML messages.
//!
//! - Enveloped XML signatures (what we sign: assertions, responses, metadata; what SPs sign with the
//!   POST binding) go through xmlsec by way of samael. Verification keeps only what the signature
//!   covers and then requires that to be the **root** element the caller processes, so a signed
//!   element moved under an unsigned wrapper (signature wrapping) is refused.
//! - Redirect-binding signatures are checked over the **raw** query octets as received
//!   (`SAMLRequest`, `RelayState`, `SigAlg`, in that order), never over a re-encoding.
//! - Assertions are encrypted for an SP with AES-256-GCM under a fresh key wrapped with RSA-OAEP.
//!
//! Only keys pinned from trusted metadata verify anything; a `KeyInfo` in the message is ignored.
//!
//! Here the XML signatures; the Redirect binding in `redirect`, encryption in `encrypt`.

mod encrypt;
mod redirect;

pub use encrypt::encrypt_assertion;
pub use redirect::{
    deflate, inflate, read_redirect, signed_redirect_query, verify_detached, RedirectMessage,
    MAX_INFLATED,
};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use openssl::x509::X509;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode};

use super::keys::SamlSigner;
use super::xml::{self, esc, Element, Limits, XmlError};

use super::algorithms::{check_signed_info, Refusal};
pub use super::algorithms::{RSA_SHA256, RSA_SHA384, RSA_SHA512};
const ALLOWED: [AllowedSignatureAlgorithm; 3] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error("the message is not validly base64-encoded")]
    Base64,
    #[error("the message is not DEFLATE-compressed UTF-8 XML")]
    Inflate,
    #[error("the message inflates to more than {0} bytes")]
    InflateTooLarge(usize),
    #[error("the message is not signed")]
    Unsigned,
    #[error("signature algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("digest algorithm {0:?} is not accepted")]
    DigestAlgorithm(String),
    #[error("the signature does not verify with the sender's registered keys")]
    BadSignature,
    #[error("the signature does not cover the message's root element")]
    NotRoot,
    #[error("the query repeats {0}")]
    Repeated(&'static str),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

fn signing_err(e: impl std::fmt::Display) -> SignError {
    SignError::Signing(e.to_string())
}

/// An enveloped-signature template for the element with `ID="{id}"`: exclusive C14N, RSA-SHA256,
/// SHA-256 digest, our certificate in `KeyInfo`. Goes right after the element's `Issuer`.
pub fn template(id: &str, cert_b64: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r##"<ds:SignatureMethod Algorithm="{alg}"/><ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"#,
            r#"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        alg = RSA_SHA256,
        id = esc(id),
        cert = cert_b64
    )
}

/// Text content in canonical form (C14N 1.0 §2.3): `&`, `<`, `>` and CR escaped; characters XML
/// 1.0 does not allow are dropped.
pub fn c14n_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// An attribute value in canonical form: `&`, `<`, `"`, TAB, LF and CR escaped.
pub fn c14n_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Signs an element that the caller wrote **already in exclusive canonical form** (no XML
/// declaration, namespace declarations only where first used, attributes in canonical order,
/// start and end tags for empty elements, values escaped with [`c14n_text`]/[`c14n_attr`]) and
/// whose root carries `ID="{id}"`: the digest is taken over those bytes as they are, the signature
/// over the canonical `SignedInfo`, and the `ds:Signature` element is returned for the caller to
/// put right after the root's `Issuer` (the enveloped-signature transform removes it again).
/// The same signature xmlsec would make, without parsing the document or the key per call;
/// `sign_canonical_verifies_with_xmlsec` checks the equivalence.
pub fn sign_canonical(canonical: &str, id: &str, signer: &SamlSigner) -> Result<String, SignError> {
    use sha2::Digest;
    let digest = STANDARD.encode(sha2::Sha256::digest(canonical.as_bytes()));
    let signed_info = format!(
        concat!(
            r#"<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:CanonicalizationMethod>"#,
            r#"<ds:SignatureMethod Algorithm="{alg}"></ds:SignatureMethod><ds:Reference URI="{uri}"><ds:Transforms>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:Transform></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>"#,
            r#"<ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"#
        ),
        alg = RSA_SHA256,
        uri = c14n_attr(&format!("#{id}")),
        digest = digest
    );
    let value = Signer::new(MessageDigest::sha256(), &signer.key)
        .and_then(|mut s| s.sign_oneshot_to_vec(signed_info.as_bytes()))
        .map_err(signing_err)?;
    Ok(format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{si}<ds:SignatureValue>{sv}</ds:SignatureValue>"#,
            r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        si = signed_info,
        sv = STANDARD.encode(value),
        cert = STANDARD.encode(&signer.cert_der)
    ))
}

/// Fills in the first signature template of `xml` (in document order). Returns the document
/// without an XML declaration, so it can be embedded.
pub fn sign_enveloped(xml: &str, signer: &SamlSigner) -> Result<String, SignError> {
    let signed = samael::crypto::Crypto::sign_xml(xml, &signer.private_der).map_err(signing_err)?;
    Ok(strip_declaration(&signed).to_owned())
}

fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start();
    match t.strip_prefix("<?xml") {
        Some(rest) => rest
            .find("?>")
            .map_or(t, |end| rest[end + 2..].trim_start()),
        None => t,
    }
}

/// Verifies the enveloped signature of an untrusted document with the sender's certificates and
/// returns its root element as read from the verified content only. Refused: no signature, a
/// signature by another key or with another algorithm, a signature that covers anything other
/// than the root element, a root that differs from what was received.
pub fn verify_enveloped(
    raw: &str,
    certs: &[Vec<u8>],
    limits: Limits,
) -> Result<Element, SignError> {
    let received = xml::parse(raw, limits)?;
    let sig = received.single(xml::NS_DS, "Signature")?;
    let Some(sig) = sig else {
        return Err(SignError::Unsigned);
    };
    // Name a refused algorithm as such rather than as a key that does not verify.
    check_signed_info(sig).map_err(|r| match r {
        Refusal::Signature(a) => SignError::Algorithm(a),
        Refusal::Digest(a) => SignError::DigestAlgorithm(a),
    })?;
    let id = received.attr("ID").ok_or(SignError::NotRoot)?;
    // The one reference must name the root: `URI="#<root ID>"`.
    let reference_ok = sig
        .child(xml::NS_DS, "SignedInfo")
        .map(|si| {
            let refs: Vec<_> = si.children_named(xml::NS_DS, "Reference").collect();
            refs.len() == 1 && refs[0].attr("URI") == Some(&format!("#{id}"))
        })
        .unwrap_or(false);
    if !reference_ok {
        return Err(SignError::NotRoot);
    }
    if certs.is_empty() {
        return Err(SignError::BadSignature);
    }
    let certs: Vec<CertificateDer> = certs
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let reduced = samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        raw,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED),
    )
    .map_err(|_| SignError::BadSignature)?;
    let verified = xml::parse(&reduced, limits)?;
    if !verified.is(&received.ns, &received.name) || verified.attr("ID") != Some(id) {
        return Err(SignError::NotRoot);
    }
    Ok(verified)
}

/// A certificate given as PEM (or bare base64 DER), as DER.
pub fn cert_der_from_pem(text: &str) -> Result<Vec<u8>, SignError> {
    if text.contains("-----BEGIN") {
        let cert =
            X509::from_pem(text.as_bytes()).map_err(|e| SignError::Certificate(e.to_string()))?;
        return cert
            .to_der()
            .map_err(|e| SignError::Certificate(e.to_string()));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|_| SignError::Certificate("not base64".into()))?;
    X509::from_der(&der).map_err(|e| SignError::Certificate(e.to_string()))?;
    Ok(der)
}

/// A certificate's `notAfter` has passed.
pub fn cert_expired(der: &[u8]) -> bool {
    let Ok(cert) = X509::from_der(der) else {
        return true;
    };
    let Ok(now) = openssl::asn1::Asn1Time::days_from_now(0) else {
        return true;
    };
    cert.not_after() < now
}

#[cfg(test)]
mod tests {
    use super::redirect::form_encode;
    use super::*;
    use crate::saml::keys;
    use openssl::pkey::PKey;
    use openssl::rsa::Padding;

    fn signer() -> SamlSigner {
        keys::generate("idp.test", kuntalaistili_schema::now_utc())
            .unwrap()
            .0
    }

    fn request(id: &str, acs: &str, cert: &str) -> String {
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="2026-11-26T10:00:00Z" AssertionConsumerServiceURL="{acs}"><saml:Issuer>https://sp.test</saml:Issuer>{}</samlp:AuthnRequest>"#,
            template(id, cert)
        )
    }

    #[test]
    fn signed_by_us_verifies_and_tampering_fails() {
        let s = signer();
        let cert = STANDARD.encode(&s.cert_der);
        let signed = sign_enveloped(&request("_r1", "https://sp.test/acs", &cert), &s).unwrap();
        let root =
            verify_enveloped(&signed, std::slice::from_ref(&s.cert_der), xml::MESSAGE).unwrap();
        assert_eq!(
            root.attr("AssertionConsumerServiceURL"),
            Some("https://sp.test/acs")
        );
        let tampered = signed.replace("https://sp.test/acs", "https://evil.test/acs");
        assert!(matches!(
            verify_enveloped(&tampered, std::slice::from_ref(&s.cert_der), xml::MESSAGE),
            Err(SignError::BadSignature)
        ));
        // Another key.
        let other = signer();
        assert!(matches!(
            verify_enveloped(&signed, &[other.cert_der], xml::MESSAGE),
            Err(SignError::BadSignature)
        ));
        // Unsigned.
        let unsigned = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_u" Version="2.0"/>"#;
        assert!(matches!(
            verify_enveloped(unsigned, std::slice::from_ref(&s.cert_der), xml::MESSAGE),
            Err(SignError::Unsigned)
        ));
    }

    #[test]
    fn wrapped_signed_request_is_refused() {
        let s = signer();
        let cert = STANDARD.encode(&s.cert_der);
        let signed = sign_enveloped(&request("_r2", "https://sp.test/acs", &cert), &s).unwrap();
        // The signed request moved inside an unsigned one naming another ACS (S07).
        let wrapped = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0" AssertionConsumerServiceURL="https://evil.test/acs"><saml:Issuer>https://sp.test</saml:Issuer><samlp:Extensions>{signed}</samlp:Extensions></samlp:AuthnRequest>"#
        );
        assert!(
            verify_enveloped(&wrapped, std::slice::from_ref(&s.cert_der), xml::MESSAGE).is_err()
        );
        // The signature of the inner request copied up next to an evil root with the signed ID.
        let sig_start = signed.find("<ds:Signature").unwrap();
        let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let evil = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r2" Version="2.0" AssertionConsumerServiceURL="https://evil.test/acs"><saml:Issuer>https://sp.test</saml:Issuer>{}</samlp:AuthnRequest>"#,
            &signed[sig_start..sig_end]
        );
        assert!(verify_enveloped(&evil, std::slice::from_ref(&s.cert_der), xml::MESSAGE).is_err());
    }

    #[test]
    fn redirect_binding_signature_is_checked_over_raw_octets() {
        let s = signer();
        let certs = [s.cert_der.clone()];
        let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_l" Version="2.0"/>"#;
        let q = signed_redirect_query("SAMLRequest", xml, Some("state 1/2"), &s).unwrap();
        let m = read_redirect(&q, "SAMLRequest").unwrap();
        assert_eq!(m.xml, xml);
        assert_eq!(m.relay_state.as_deref(), Some("state 1/2"));
        m.verify(&certs).unwrap();
        // Another RelayState breaks the signature; so does another key.
        let evil = q.replace("RelayState=state", "RelayState=xtate");
        assert!(read_redirect(&evil, "SAMLRequest")
            .unwrap()
            .verify(&certs)
            .is_err());
        assert!(m.verify(&[signer().cert_der]).is_err());
        // Unsigned; a signature without SigAlg; a repeated parameter; an encoded name.
        let unsigned = format!("SAMLRequest={}", form_encode(&deflate(xml)));
        let u = read_redirect(&unsigned, "SAMLRequest").unwrap();
        assert!(!u.is_signed());
        assert!(matches!(u.verify(&certs), Err(SignError::Unsigned)));
        let cut = q.split("&SigAlg=").next().unwrap().to_owned() + "&Signature=AAAA";
        assert!(read_redirect(&cut, "SAMLRequest").is_err());
        let twice = format!("{q}&SAMLRequest=x");
        assert!(matches!(
            read_redirect(&twice, "SAMLRequest"),
            Err(SignError::Repeated("SAMLRequest"))
        ));
        assert!(read_redirect(
            &q.replacen("SAMLRequest", "%53AMLRequest", 1),
            "SAMLRequest"
        )
        .is_err());
        // SHA-1 is refused.
        assert!(matches!(
            verify_detached(
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                b"x",
                b"y",
                &certs
            ),
            Err(SignError::Algorithm(_))
        ));
    }

    #[test]
    fn inflation_is_bounded_and_garbage_refused() {
        let bomb = deflate(&" ".repeat(2 * 1024 * 1024));
        assert!(bomb.len() < 20_000);
        assert!(matches!(inflate(&bomb), Err(SignError::InflateTooLarge(_))));
        assert!(matches!(inflate("%%%"), Err(SignError::Base64)));
        assert!(matches!(
            inflate(&STANDARD.encode("<plain/>")),
            Err(SignError::Inflate)
        ));
    }

    #[test]
    fn encrypted_assertion_decrypts_with_the_sp_key() {
        let sp = signer();
        let out = encrypt_assertion("<saml:Assertion/>", &sp.cert_der).unwrap();
        let root = xml::parse(&out, xml::MESSAGE).unwrap();
        let data = root.child(xml::NS_XENC, "EncryptedData").unwrap();
        let values: Vec<&Element> = data
            .child(xml::NS_DS, "KeyInfo")
            .and_then(|k| k.child(xml::NS_XENC, "EncryptedKey"))
            .and_then(|k| k.child(xml::NS_XENC, "CipherData"))
            .and_then(|c| c.child(xml::NS_XENC, "CipherValue"))
            .into_iter()
            .chain(
                data.child(xml::NS_XENC, "CipherData")
                    .and_then(|c| c.child(xml::NS_XENC, "CipherValue")),
            )
            .collect();
        let wrapped = STANDARD.decode(&values[0].text).unwrap();
        let payload = STANDARD.decode(&values[1].text).unwrap();
        let key = PKey::private_key_from_pkcs8(&sp.private_der)
            .unwrap()
            .rsa()
            .unwrap();
        let mut aes = vec![0u8; key.size() as usize];
        let n = key
            .private_decrypt(&wrapped, &mut aes, Padding::PKCS1_OAEP)
            .unwrap();
        let (iv, rest) = payload.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let plain = openssl::symm::decrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            &aes[..n],
            Some(iv),
            &[],
            ct,
            tag,
        )
        .unwrap();
        assert_eq!(plain, b"<saml:Assertion/>");
    }

    #[test]
    fn sign_canonical_verifies_with_xmlsec() {
        let s = signer();
        let evil = "a&b<c>d\"e'f\tg\nh\ri\u{1}ä€𝄞 </saml:Issuer>";
        let canonical = format!(
            concat!(
                r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_c1" IssueInstant="2026-11-26T10:00:00Z" Version="2.0">"#,
                r#"<saml:Issuer>https://idp</saml:Issuer><saml:Subject><saml:NameID Format="f" SPNameQualifier="{a}">{t}</saml:NameID>"#,
                r#"<saml:SubjectConfirmation Method="m"><saml:SubjectConfirmationData Recipient="{a}"></saml:SubjectConfirmationData>"#,
                r#"</saml:SubjectConfirmation></saml:Subject></saml:Assertion>"#
            ),
            a = c14n_attr(evil),
            t = c14n_text(evil)
        );
        let sig = sign_canonical(&canonical, "_c1", &s).unwrap();
        let doc = canonical.replacen("</saml:Issuer>", &format!("</saml:Issuer>{sig}"), 1);
        let root = verify_enveloped(&doc, std::slice::from_ref(&s.cert_der), xml::MESSAGE).unwrap();
        let nid = root
            .child(xml::NS_SAML, "Subject")
            .unwrap()
            .child(xml::NS_SAML, "NameID")
            .unwrap();
        assert_eq!(nid.text, evil.replace('\u{1}', ""));
        // One changed byte breaks it.
        let tampered = doc.replace("https://idp", "https://idq");
        assert!(verify_enveloped(&tampered, &[s.cert_der], xml::MESSAGE).is_err());
    }
}

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

use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;
use openssl::sign::{Signer, Verifier};
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

/// The most a DEFLATE-compressed Redirect-binding message may inflate to.
pub const MAX_INFLATED: usize = 256 * 1024;

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

/// A Redirect-binding message as received: the decoded XML, the relay state, and the signature
/// (with the raw octets it covers), if any.
#[derive(Debug)]
pub struct RedirectMessage {
    pub xml: String,
    pub relay_state: Option<String>,
    signature: Option<(String, Vec<u8>, Vec<u8>)>,
}

impl RedirectMessage {
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Verifies the signature with the sender's certificates; an unsigned message fails.
    pub fn verify(&self, certs: &[Vec<u8>]) -> Result<(), SignError> {
        let (alg, octets, sig) = self.signature.as_ref().ok_or(SignError::Unsigned)?;
        verify_detached(alg, octets, sig, certs)
    }
}

fn url_decode(s: &str) -> Result<String, SignError> {
    let plus = s.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(plus.as_bytes()).ok_or(SignError::Base64)?;
    String::from_utf8(bytes).map_err(|_| SignError::Base64)
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Reads a Redirect-binding message from the raw query string (`param` = `SAMLRequest` or
/// `SAMLResponse`), keeping the raw octets its signature (if any) covers. Parameter names are
/// matched exactly as received: `%53AMLRequest` is not `SAMLRequest`.
pub fn read_redirect(raw_query: &str, param: &'static str) -> Result<RedirectMessage, SignError> {
    let (mut message, mut relay, mut sig_alg, mut signature) = (None, None, None, None);
    for pair in raw_query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, name) = match k {
            _ if k == param => (&mut message, param),
            "RelayState" => (&mut relay, "RelayState"),
            "SigAlg" => (&mut sig_alg, "SigAlg"),
            "Signature" => (&mut signature, "Signature"),
            _ => continue,
        };
        if slot.is_some() {
            return Err(SignError::Repeated(name));
        }
        *slot = Some(v);
    }
    let raw_message = message.ok_or(SignError::Base64)?;
    let signature = match (sig_alg, signature) {
        (Some(alg_raw), Some(sig_raw)) => {
            let mut octets = format!("{param}={raw_message}");
            if let Some(r) = relay {
                octets.push_str("&RelayState=");
                octets.push_str(r);
            }
            octets.push_str("&SigAlg=");
            octets.push_str(alg_raw);
            let sig = STANDARD
                .decode(url_decode(sig_raw)?.as_bytes())
                .map_err(|_| SignError::BadSignature)?;
            Some((url_decode(alg_raw)?, octets.into_bytes(), sig))
        }
        (None, None) => None,
        _ => return Err(SignError::BadSignature),
    };
    Ok(RedirectMessage {
        xml: inflate(&url_decode(raw_message)?)?,
        relay_state: relay.map(url_decode).transpose()?,
        signature,
    })
}

fn digest_of(alg: &str) -> Result<MessageDigest, SignError> {
    match alg {
        RSA_SHA256 => Ok(MessageDigest::sha256()),
        RSA_SHA384 => Ok(MessageDigest::sha384()),
        RSA_SHA512 => Ok(MessageDigest::sha512()),
        other => Err(SignError::Algorithm(other.chars().take(100).collect())),
    }
}

/// Verifies an RSA signature over `data` with any of `certs`; an error from the library counts as
/// a failed check (fail closed).
pub fn verify_detached(
    alg: &str,
    data: &[u8],
    sig: &[u8],
    certs: &[Vec<u8>],
) -> Result<(), SignError> {
    let md = digest_of(alg)?;
    for der in certs {
        let Ok(cert) = X509::from_der(der) else {
            continue;
        };
        let Ok(key) = cert.public_key() else {
            continue;
        };
        let ok = Verifier::new(md, &key)
            .and_then(|mut v| v.verify_oneshot(sig, data))
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
    }
    Err(SignError::BadSignature)
}

/// Base64-decodes and inflates a Redirect-binding message, stopping at [`MAX_INFLATED`] bytes.
pub fn inflate(b64: &str) -> Result<String, SignError> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = STANDARD.decode(compact).map_err(|_| SignError::Base64)?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| SignError::Inflate)?;
    if out.len() > MAX_INFLATED {
        return Err(SignError::InflateTooLarge(MAX_INFLATED));
    }
    String::from_utf8(out).map_err(|_| SignError::Inflate)
}

/// DEFLATE + base64 for an outgoing Redirect-binding message.
pub fn deflate(xml: &str) -> String {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(xml.as_bytes());
    STANDARD.encode(enc.finish().unwrap_or_default())
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The query string of a signed Redirect-binding message (`param` = `SAMLRequest` or
/// `SAMLResponse`), to append to the SP's endpoint URL.
pub fn signed_redirect_query(
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    signer: &SamlSigner,
) -> Result<String, SignError> {
    let mut q = format!("{param}={}", form_encode(&deflate(xml)));
    if let Some(r) = relay_state {
        q.push_str("&RelayState=");
        q.push_str(&form_encode(r));
    }
    q.push_str("&SigAlg=");
    q.push_str(&form_encode(RSA_SHA256));
    let sig = Signer::new(MessageDigest::sha256(), &signer.key)
        .and_then(|mut s| s.sign_oneshot_to_vec(q.as_bytes()))
        .map_err(signing_err)?;
    q.push_str("&Signature=");
    q.push_str(&form_encode(&STANDARD.encode(sig)));
    Ok(q)
}

/// Encrypts a (signed) assertion for the holder of `cert_der`: AES-256-GCM content encryption,
/// the key wrapped with RSA-OAEP (MGF1-SHA1), as `saml:EncryptedAssertion`.
pub fn encrypt_assertion(assertion_xml: &str, cert_der: &[u8]) -> Result<String, SignError> {
    let cert = X509::from_der(cert_der).map_err(|e| SignError::Certificate(e.to_string()))?;
    let rsa = cert
        .public_key()
        .and_then(|k| k.rsa())
        .map_err(|e| SignError::Certificate(e.to_string()))?;
    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut key).map_err(signing_err)?;
    openssl::rand::rand_bytes(&mut iv).map_err(signing_err)?;
    let mut tag = [0u8; 16];
    let ciphertext = openssl::symm::encrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        &key,
        Some(&iv),
        &[],
        assertion_xml.as_bytes(),
        &mut tag,
    )
    .map_err(signing_err)?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP)
        .map_err(signing_err)?;
    wrapped.truncate(n);
    let mut payload = Vec::with_capacity(iv.len() + ciphertext.len() + tag.len());
    payload.extend_from_slice(&iv);
    payload.extend_from_slice(&ciphertext);
    payload.extend_from_slice(&tag);
    Ok(format!(
        concat!(
            r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">"#,
            r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p">"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/></xenc:EncryptionMethod>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        key = STANDARD.encode(wrapped),
        data = STANDARD.encode(payload)
    ))
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
    use super::*;
    use crate::saml::keys;
    use openssl::pkey::PKey;

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

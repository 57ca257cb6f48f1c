//! The Redirect binding: a message DEFLATE-compressed, base64- and URL-encoded in the query, its
//! signature checked over the **raw** query octets as received (`SAMLRequest`, `RelayState`,
//! `SigAlg`, in that order), never over a re-encoding; and the signed query we send.

use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;

use super::super::keys::SamlSigner;
use super::{signing_err, SignError, RSA_SHA256, RSA_SHA384, RSA_SHA512};

/// The most a DEFLATE-compressed Redirect-binding message may inflate to.
pub const MAX_INFLATED: usize = 256 * 1024;

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

pub(super) fn form_encode(s: &str) -> String {
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

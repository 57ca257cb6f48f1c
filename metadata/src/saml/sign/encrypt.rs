//! Assertions encrypted for an SP: AES-256-GCM under a fresh key wrapped with RSA-OAEP.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::rsa::Padding;
use openssl::x509::X509;

use super::{signing_err, SignError};

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

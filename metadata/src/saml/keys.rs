//! The IdP's SAML signing key: RSA-2048 with a self-signed X.509 certificate (what SAML metadata
//! publishes), stored with the token-signing keys under the algorithm name `SAML` — private part
//! encrypted under the master key — and rotated the same way: the successor is published in the
//! metadata before it signs, and the old certificate stays published for a while after.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Datelike, Duration, NaiveDateTime};
use kuntalaistili_schema::pool::AnyConnection;
use kuntalaistili_schema::signing_keys::{self, SigningKey};
use serde_json::json;

use crate::crypto::MasterKeys;
use crate::keys::{self, Alg, KeysError, RotationPolicy};

/// The `alg` column value of SAML keys (never a JWS algorithm, so never in the JWKS).
pub use crate::keys::SAML_ALG as ALG;

/// How long the self-signed certificate is valid. SAML trusts the key in metadata, not the
/// certificate's dates, but some SPs check them; rotation replaces the key long before.
const CERT_YEARS: i32 = 10;

/// A certificate published in the metadata.
#[derive(Debug, Clone)]
pub struct Published {
    pub kid: String,
    pub cert_der: Vec<u8>,
    /// Signs now (the others are predecessors or the pre-published successor).
    pub signing: bool,
}

impl Published {
    /// The certificate as it appears in `ds:X509Certificate` (base64, no line breaks).
    pub fn cert_b64(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }
}

/// The key that signs now.
#[derive(Clone)]
pub struct SamlSigner {
    pub kid: String,
    pub cert_der: Vec<u8>,
    /// PKCS #8 DER.
    pub private_der: Vec<u8>,
    /// The same key, parsed once (OpenSSL 3 takes longer to parse a key than to sign with it).
    pub key: openssl::pkey::PKey<openssl::pkey::Private>,
}

fn parsed(der: &[u8]) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, KeysError> {
    openssl::pkey::PKey::private_key_from_pkcs8(der).map_err(crypto_err)
}

impl std::fmt::Debug for SamlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

fn crypto_err(e: impl std::fmt::Display) -> KeysError {
    KeysError::Crypto(e.to_string())
}

/// A self-signed certificate for a PKCS #8 RSA key: subject `CN=<common_name>`, serial from the
/// key id, valid from `now` for [`CERT_YEARS`].
fn certificate(
    der: &[u8],
    kid: &str,
    common_name: &str,
    now: NaiveDateTime,
) -> Result<Vec<u8>, KeysError> {
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types_der(der),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(crypto_err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(crypto_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let day = |t: NaiveDateTime, years: i32| {
        rcgen::date_time_ymd(t.year() + years, t.month() as u8, t.day().min(28) as u8)
    };
    params.not_before = day(now - Duration::days(1), 0);
    params.not_after = day(now, CERT_YEARS);
    let serial: Vec<u8> = kid.bytes().take(16).collect();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(crypto_err)?;
    Ok(cert.der().to_vec())
}

fn rustls_pki_types_der(der: &[u8]) -> rustls_pki_types::PrivatePkcs8KeyDer<'_> {
    rustls_pki_types::PrivatePkcs8KeyDer::from(der)
}

/// A new RSA-2048 key with its certificate, and its public JWK (with `x5c`).
pub fn generate(
    common_name: &str,
    now: NaiveDateTime,
) -> Result<(SamlSigner, serde_json::Value), KeysError> {
    let (mut jwk, der) = keys::generate(Alg::Rs256)?;
    let kid = jwk["kid"].as_str().unwrap_or_default().to_owned();
    let cert = certificate(&der, &kid, common_name, now)?;
    jwk["x5c"] = json!([STANDARD.encode(&cert)]);
    Ok((
        SamlSigner {
            kid,
            cert_der: cert,
            key: parsed(&der)?,
            private_der: der,
        },
        jwk,
    ))
}

fn new_row(
    master: &MasterKeys,
    common_name: &str,
    now: NaiveDateTime,
    activates_at: NaiveDateTime,
) -> Result<SigningKey, KeysError> {
    let (signer, jwk) = generate(common_name, now)?;
    Ok(SigningKey {
        kid: signer.kid,
        alg: ALG.to_owned(),
        public_jwk: jwk.to_string(),
        private_key_enc: master.wrap_private_key(&signer.private_der),
        created_at: now,
        activates_at,
        retires_at: None,
        expires_at: None,
    })
}

/// Creates the SAML key when none signs now (at start-up); returns its id.
pub fn ensure(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    common_name: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, KeysError> {
    let rows = signing_keys::published(conn, now)?;
    if keys::active_named(&rows, ALG, now).is_some() {
        return Ok(None);
    }
    let row = new_row(master, common_name, now, now)?;
    signing_keys::insert(conn, &row)?;
    tracing::info!(kid = %row.kid, "created SAML signing key");
    Ok(Some(row.kid))
}

/// Pre-publishes a successor that signs from `now + prepublish`.
pub fn rotate(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    common_name: &str,
    now: NaiveDateTime,
    policy: RotationPolicy,
) -> Result<SigningKey, KeysError> {
    let row = new_row(master, common_name, now, now + policy.prepublish)?;
    keys::install_successor(conn, row, now, policy)
}

fn cert_of(row: &SigningKey) -> Result<Vec<u8>, KeysError> {
    let jwk: serde_json::Value = serde_json::from_str(&row.public_jwk).map_err(crypto_err)?;
    let b64 = jwk["x5c"][0]
        .as_str()
        .ok_or_else(|| KeysError::Crypto(format!("SAML key {} has no certificate", row.kid)))?;
    STANDARD.decode(b64).map_err(crypto_err)
}

/// The certificates to publish at `now`, the signing one first.
pub fn published(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
) -> Result<Vec<Published>, KeysError> {
    let rows = signing_keys::published(conn, now)?;
    let active = keys::active_named(&rows, ALG, now).map(|k| k.kid.clone());
    let mut out = Vec::new();
    for row in rows.iter().filter(|k| k.alg == ALG) {
        out.push(Published {
            kid: row.kid.clone(),
            cert_der: cert_of(row)?,
            signing: active.as_deref() == Some(row.kid.as_str()),
        });
    }
    out.sort_by_key(|p| !p.signing);
    Ok(out)
}

/// The key that signs at `now`, decrypted.
pub fn signer(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    now: NaiveDateTime,
) -> Result<SamlSigner, KeysError> {
    let rows = signing_keys::published(conn, now)?;
    let row = keys::active_named(&rows, ALG, now).ok_or(KeysError::NoActiveKey(ALG))?;
    let der = master.unwrap_private_key(&row.private_key_enc)?;
    Ok(SamlSigner {
        kid: row.kid.clone(),
        cert_der: cert_of(row)?,
        key: parsed(&der)?,
        private_der: der,
    })
}

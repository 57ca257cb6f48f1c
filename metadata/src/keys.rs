//! Token-signing keys: ES256 (preferred) and RS256, stored with the private part encrypted under
//! the master key, published as a JWKS, rotated without a flag day. A rotation pre-publishes the
//! successor (relying parties fetch it with the JWKS), switches signing after a delay, and keeps
//! the old key published until the tokens it signed have expired. Every node reads the same rows,
//! so nodes sharing a database sign and publish alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::pool::{write_tx, AnyConnection};
use kuntalaistili_schema::signing_keys::{self, SigningKey};
use kuntalaistili_schema::DbError;
use ring::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::crypto::{KeyError, MasterKeys};

/// Signature algorithms we sign with. `none` and HMAC are never used for signing and never
/// accepted when verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::Es256, Alg::Rs256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("key material: {0}")]
    Crypto(String),
    #[error("no active {0} signing key")]
    NoActiveKey(&'static str),
}

impl From<kuntalaistili_schema::QueryError> for KeysError {
    fn from(e: kuntalaistili_schema::QueryError) -> Self {
        KeysError::Db(DbError::Query(e))
    }
}

fn crypto_err(e: impl std::fmt::Display) -> KeysError {
    KeysError::Crypto(e.to_string())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 thumbprint of a public JWK: the key id.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => json!({ "crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"] }),
        _ => json!({ "e": jwk["e"], "kty": "RSA", "n": jwk["n"] }),
    };
    // serde_json keeps object keys sorted (no preserve_order feature), as RFC 7638 requires.
    b64(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// A new key pair: the public JWK (with `kid`, `alg`, `use`) and the private key as PKCS#8 DER.
/// P-256 keys come from ring; RSA keys from the `rsa` crate (ring cannot generate them), but
/// every signature is made by ring.
pub fn generate(alg: Alg) -> Result<(Value, Vec<u8>), KeysError> {
    let (mut jwk, der) = match alg {
        Alg::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(crypto_err)?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
                    .map_err(crypto_err)?;
            // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(KeysError::Crypto("unexpected P-256 public key".into()));
            }
            (
                json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]) }),
                doc.as_ref().to_vec(),
            )
        }
        Alg::Rs256 => {
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(crypto_err)?;
            let jwk = json!({ "kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()) });
            let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).map_err(crypto_err)?;
            (jwk, der.as_bytes().to_vec())
        }
    };
    let kid = thumbprint(&jwk);
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg.as_str());
    jwk["use"] = json!("sig");
    Ok((jwk, der))
}

/// How rotation is timed.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    /// How long a new key is published before it signs (relying parties refresh their JWKS).
    pub prepublish: Duration,
    /// How long a retired key stays published after it stops signing (longest token lifetime).
    pub keep_after_retirement: Duration,
}

fn new_row(
    master: &MasterKeys,
    alg: Alg,
    now: NaiveDateTime,
    activates_at: NaiveDateTime,
) -> Result<SigningKey, KeysError> {
    let (jwk, der) = generate(alg)?;
    Ok(SigningKey {
        kid: jwk["kid"].as_str().unwrap_or_default().to_owned(),
        alg: alg.as_str().to_owned(),
        public_jwk: jwk.to_string(),
        private_key_enc: master.wrap_private_key(&der),
        created_at: now,
        activates_at,
        retires_at: None,
        expires_at: None,
    })
}

pub(crate) fn signs_at(k: &SigningKey, now: NaiveDateTime) -> bool {
    k.activates_at <= now && k.retires_at.is_none_or(|r| r > now)
}

/// Of `rows`, the key of `alg` that signs at `now`: the most recently activated one (ties by
/// kid, so every node picks the same).
pub fn active(rows: &[SigningKey], alg: Alg, now: NaiveDateTime) -> Option<&SigningKey> {
    active_named(rows, alg.as_str(), now)
}

/// [`active`] by the stored algorithm name (SAML keys are stored as `SAML`).
pub(crate) fn active_named<'a>(
    rows: &'a [SigningKey],
    alg: &str,
    now: NaiveDateTime,
) -> Option<&'a SigningKey> {
    rows.iter()
        .filter(|k| k.alg == alg && signs_at(k, now))
        .max_by(|a, b| {
            a.activates_at
                .cmp(&b.activates_at)
                .then_with(|| a.kid.cmp(&b.kid))
        })
}

/// Creates a signing key for every algorithm that has none in force; returns the new key ids.
/// Called at start-up, so a fresh installation signs at once.
pub fn ensure(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    now: NaiveDateTime,
) -> Result<Vec<String>, KeysError> {
    let published = signing_keys::published(conn, now)?;
    let mut created = Vec::new();
    for alg in Alg::ALL {
        if published
            .iter()
            .any(|k| k.alg == alg.as_str() && signs_at(k, now))
        {
            continue;
        }
        let row = new_row(master, alg, now, now)?;
        signing_keys::insert(conn, &row)?;
        tracing::info!(kid = %row.kid, alg = alg.as_str(), "created signing key");
        created.push(row.kid);
    }
    Ok(created)
}

/// Pre-publishes a successor for `alg` that signs from `now + prepublish`; the keys signing now
/// retire then and stay published for `keep_after_retirement` more.
pub fn rotate(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    alg: Alg,
    now: NaiveDateTime,
    policy: RotationPolicy,
) -> Result<SigningKey, KeysError> {
    let activates_at = now + policy.prepublish;
    let row = new_row(master, alg, now, activates_at)?;
    install_successor(conn, row, now, policy)
}

/// Stores `row` as the successor of the keys of its algorithm: they retire when it activates.
pub(crate) fn install_successor(
    conn: &mut AnyConnection,
    row: SigningKey,
    now: NaiveDateTime,
    policy: RotationPolicy,
) -> Result<SigningKey, KeysError> {
    let activates_at = row.activates_at;
    write_tx(conn, |conn| -> Result<(), KeysError> {
        for old in signing_keys::published(conn, now)? {
            if old.alg == row.alg
                && old.retires_at.is_none_or(|r| r > activates_at)
                && old.activates_at < activates_at
            {
                signing_keys::schedule_retirement(
                    conn,
                    &old.kid,
                    activates_at,
                    activates_at + policy.keep_after_retirement,
                )?;
            }
        }
        signing_keys::insert(conn, &row)?;
        Ok(())
    })?;
    tracing::info!(kid = %row.kid, alg = %row.alg, activates_at = %row.activates_at, "rotated signing key");
    Ok(row)
}

/// The `alg` column value of the IdP's SAML signing key (`crate::saml::keys`, which builds on this
/// module and re-exports it as `ALG`): never a JWS algorithm, so never in the JWKS.
pub const SAML_ALG: &str = "SAML";

/// The published keys as a JWKS document (public parts only).
pub fn jwks(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<Value, KeysError> {
    let keys: Vec<Value> = signing_keys::published(conn, now)?
        .iter()
        .filter(|k| k.alg != SAML_ALG)
        .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
        .collect();
    Ok(json!({ "keys": keys }))
}

enum Private {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A key that signs now.
pub struct Signer {
    pub kid: String,
    pub alg: Alg,
    key: Private,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The key of `alg` that signs at `now`: the most recently activated one.
pub fn signer(
    conn: &mut AnyConnection,
    master: &MasterKeys,
    alg: Alg,
    now: NaiveDateTime,
) -> Result<Signer, KeysError> {
    let rows = signing_keys::published(conn, now)?;
    let row = active(&rows, alg, now).ok_or(KeysError::NoActiveKey(alg.as_str()))?;
    signer_for(row, master)
}

/// The signer of one stored key (decrypts its private part).
pub fn signer_for(row: &SigningKey, master: &MasterKeys) -> Result<Signer, KeysError> {
    let alg = Alg::parse(&row.alg)
        .ok_or_else(|| KeysError::Crypto(format!("unknown algorithm {}", row.alg)))?;
    let der = master.unwrap_private_key(&row.private_key_enc)?;
    Ok(Signer {
        kid: row.kid.clone(),
        alg,
        key: private_from_pkcs8(alg, &der)?,
        rng: ring::rand::SystemRandom::new(),
    })
}

fn private_from_pkcs8(alg: Alg, der: &[u8]) -> Result<Private, KeysError> {
    Ok(match alg {
        Alg::Es256 => Private::Ec(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &ring::rand::SystemRandom::new(),
            )
            .map_err(crypto_err)?,
        ),
        Alg::Rs256 => Private::Rsa(RsaKeyPair::from_pkcs8(der).map_err(crypto_err)?),
    })
}

impl Signer {
    /// The raw JWS signature (ES256: r ‖ s, 64 bytes; RS256: PKCS #1 v1.5). Empty only if the
    /// system random source fails, which ring treats as unrecoverable.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Private::Ec(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Private::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                match k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    message,
                    &mut sig,
                ) {
                    Ok(()) => sig,
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    /// A compact JWS (JWT) over `claims` with this key's `kid`.
    pub fn sign_jwt(&self, claims: &Value) -> String {
        self.sign_jwt_typed(claims, "JWT")
    }

    /// As [`sign_jwt`](Self::sign_jwt) with another `typ` (e.g. `at+jwt` for access tokens).
    pub fn sign_jwt_typed(&self, claims: &Value, typ: &str) -> String {
        let header = json!({ "alg": self.alg.as_str(), "kid": self.kid, "typ": typ });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }
}

/// The `typ` of a compact JWS's header (unverified: combine with [`verify_jwt`]).
pub fn jwt_typ(token: &str) -> Option<String> {
    let h = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    header["typ"].as_str().map(str::to_owned)
}

/// Verifies a compact JWS against a JWKS and returns its claims. The header's `alg` must be one we
/// sign with and match the key's own `alg` (no `none`, no HMAC with a public key as the secret).
pub fn verify_jwt(jwks: &Value, token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let alg = Alg::parse(header["alg"].as_str()?)?;
    let keys = jwks["keys"].as_array()?;
    // By `kid`; a JWKS of one key without ids (as clients often publish) needs none.
    let jwk = match header["kid"].as_str() {
        Some(kid) => keys.iter().find(|k| k["kid"] == kid)?,
        None if keys.len() == 1 && keys[0].get("kid").is_none() => &keys[0],
        None => return None,
    };
    // The key decides the algorithm: its own `alg` when it names one, else its type.
    let fits = match jwk["alg"].as_str() {
        Some(a) => a == alg.as_str(),
        None => match alg {
            Alg::Es256 => jwk["kty"] == "EC" && jwk["crv"] == "P-256",
            Alg::Rs256 => jwk["kty"] == "RSA",
        },
    };
    if !fits || jwk.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
    let input = format!("{h}.{c}");
    if !verify_signature(jwk, alg, input.as_bytes(), &sig) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
}

fn verify_signature(jwk: &Value, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
    use ring::signature::{
        RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
        RSA_PKCS1_2048_8192_SHA256,
    };
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    match alg {
        Alg::Es256 => {
            let (Some(x), Some(y)) = (field("x"), field("y")) else {
                return false;
            };
            if x.len() != 32 || y.len() != 32 {
                return false;
            }
            let mut sec1 = vec![0x04];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, sec1)
                .verify(message, sig)
                .is_ok()
        }
        Alg::Rs256 => {
            let (Some(n), Some(e)) = (field("n"), field("e")) else {
                return false;
            };
            RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_and_refuse_tampering() {
        for alg in Alg::ALL {
            let (jwk, der) = generate(alg).unwrap();
            assert_eq!(jwk["kid"].as_str().unwrap(), thumbprint(&jwk));
            assert!(
                jwk.get("d").is_none() && jwk.get("p").is_none(),
                "public part only"
            );
            let master = MasterKeys::from_base64(&MasterKeys::generate_base64()).unwrap();
            let row = SigningKey {
                kid: jwk["kid"].as_str().unwrap().to_owned(),
                alg: alg.as_str().to_owned(),
                public_jwk: jwk.to_string(),
                private_key_enc: master.wrap_private_key(&der),
                created_at: chrono::Utc::now().naive_utc(),
                activates_at: chrono::Utc::now().naive_utc(),
                retires_at: None,
                expires_at: None,
            };
            let der = master.unwrap_private_key(&row.private_key_enc).unwrap();
            let key = private_from_pkcs8(alg, &der).unwrap();
            let signer = Signer {
                kid: row.kid.clone(),
                alg,
                key,
                rng: ring::rand::SystemRandom::new(),
            };
            let jwks = json!({ "keys": [jwk] });
            let token = signer.sign_jwt(&json!({ "sub": "x", "aud": "y" }));
            assert_eq!(verify_jwt(&jwks, &token).unwrap()["sub"], "x");
            // A changed payload, a stripped signature, alg=none and HS256 are all refused.
            let parts: Vec<&str> = token.split('.').collect();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                b64(br#"{"sub":"admin","aud":"y"}"#),
                parts[2]
            );
            assert!(verify_jwt(&jwks, &forged).is_none());
            assert!(verify_jwt(&jwks, &format!("{}.{}.", parts[0], parts[1])).is_none());
            for bad_alg in ["none", "HS256"] {
                let h = b64(json!({ "alg": bad_alg, "kid": row.kid })
                    .to_string()
                    .as_bytes());
                assert!(verify_jwt(&jwks, &format!("{h}.{}.{}", parts[1], parts[2])).is_none());
            }
        }
    }
}

//! The master key and what is derived from it: the CSRF key, the key that encrypts national
//! identification numbers, and the key of their look-up index. Random tokens and their hashes.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("master key must be 32 bytes encoded in base64 (generate one with `openssl rand -base64 32`)")]
    BadMasterKey,
    #[error("stored ciphertext is malformed or was encrypted with another master key")]
    Decrypt,
}

/// Keys derived from the 256-bit master key, one per purpose.
#[derive(Clone)]
pub struct MasterKeys {
    csrf: [u8; 32],
    national_id_enc: [u8; 32],
    national_id_index: [u8; 32],
    key_wrap: [u8; 32],
    pairwise: [u8; 32],
    builtin_clients: [u8; 32],
    mac: [u8; 32],
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKeys(…)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl MasterKeys {
    /// Parses a base64-encoded 32-byte master key.
    pub fn from_base64(encoded: &str) -> Result<MasterKeys, KeyError> {
        let raw = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeyError::BadMasterKey)?;
        let master: [u8; 32] = raw.try_into().map_err(|_| KeyError::BadMasterKey)?;
        Ok(MasterKeys {
            csrf: hmac(&master, b"kuntalaistili/csrf/v1"),
            national_id_enc: hmac(&master, b"kuntalaistili/national-id-enc/v1"),
            national_id_index: hmac(&master, b"kuntalaistili/national-id-index/v1"),
            key_wrap: hmac(&master, b"kuntalaistili/key-wrap/v1"),
            pairwise: hmac(&master, b"kuntalaistili/pairwise-subject/v1"),
            builtin_clients: hmac(&master, b"kuntalaistili/builtin-client-secret/v1"),
            mac: hmac(&master, b"kuntalaistili/mac/v1"),
        })
    }

    /// A fresh master key, base64-encoded.
    pub fn generate_base64() -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        STANDARD.encode(raw)
    }

    /// The CSRF form token that belongs to a CSRF cookie value.
    pub fn csrf_token(&self, cookie_value: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac(&self.csrf, cookie_value.as_bytes()))
    }

    /// Encrypts a national identification number (AES-256-GCM, random nonce): `v1:` + base64.
    pub fn encrypt_national_id(&self, national_id: &str) -> String {
        seal(&self.national_id_enc, national_id.as_bytes())
    }

    pub fn decrypt_national_id(&self, stored: &str) -> Result<String, KeyError> {
        String::from_utf8(open(&self.national_id_enc, stored)?).map_err(|_| KeyError::Decrypt)
    }

    /// Encrypts a private key for storage (its own derived key).
    pub fn wrap_private_key(&self, der: &[u8]) -> String {
        seal(&self.key_wrap, der)
    }

    pub fn unwrap_private_key(&self, stored: &str) -> Result<Vec<u8>, KeyError> {
        open(&self.key_wrap, stored)
    }

    /// A MAC over `data` for one `purpose` (its own key, apart from the CSRF key), URL-safe.
    pub fn mac(&self, purpose: &str, data: &str) -> String {
        let mut m = Vec::with_capacity(purpose.len() + data.len() + 1);
        m.extend_from_slice(purpose.as_bytes());
        m.push(0);
        m.extend_from_slice(data.as_bytes());
        URL_SAFE_NO_PAD.encode(hmac(&self.mac, &m))
    }

    /// The client secret of a built-in service (`kuntalaistili-portal`…): derived from the master
    /// key, so every node sharing the key computes the same secret without storing it in clear.
    pub fn builtin_client_secret(&self, client_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac(&self.builtin_clients, client_id.as_bytes()))
    }

    /// The pairwise subject identifier of a user for a sector (OIDC Core 8.1): stable per
    /// sector, unlinkable across sectors without the master key.
    pub fn pairwise_subject(&self, sector: &str, user_id: &str) -> String {
        let mut data = Vec::with_capacity(sector.len() + user_id.len() + 1);
        data.extend_from_slice(sector.as_bytes());
        data.push(0);
        data.extend_from_slice(user_id.as_bytes());
        URL_SAFE_NO_PAD.encode(hmac(&self.pairwise, &data))
    }

    /// Deterministic keyed index of a national id, so a person can be found by it without the
    /// database holding it in clear.
    pub fn national_id_index(&self, national_id: &str) -> String {
        hex::encode(hmac(&self.national_id_index, national_id.as_bytes()))
    }
}

/// AES-256-GCM with a random nonce: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
fn seal(key: &[u8; 32], plain: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Encryption with a valid key and nonce cannot fail for inputs this small.
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), plain)
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    format!("v1:{}", STANDARD.encode(out))
}

fn open(key: &[u8; 32], stored: &str) -> Result<Vec<u8>, KeyError> {
    let raw = stored
        .strip_prefix("v1:")
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or(KeyError::Decrypt)?;
    if raw.len() < 12 + 16 {
        return Err(KeyError::Decrypt);
    }
    let (nonce, ct) = raw.split_at(12);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), ct)
        .map_err(|_| KeyError::Decrypt)
}

/// 256 random bits, URL-safe base64 (session tokens, CSRF cookies).
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// SHA-256 in hex: how high-entropy secrets are stored.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time string equality.
pub fn ct_eq(a: &str, b: &str) -> bool {
    ct_eq_bytes(a.as_bytes(), b.as_bytes())
}

/// Constant-time byte equality (the length is not secret).
pub fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MasterKeys {
        MasterKeys::from_base64(&MasterKeys::generate_base64()).unwrap()
    }

    #[test]
    fn national_id_round_trips_and_is_not_stored_in_clear() {
        let k = keys();
        let enc = k.encrypt_national_id("131052-308T");
        assert!(!enc.contains("131052"));
        assert_eq!(k.decrypt_national_id(&enc).unwrap(), "131052-308T");
        // Another key cannot read it.
        assert_eq!(keys().decrypt_national_id(&enc), Err(KeyError::Decrypt));
        assert_eq!(
            k.national_id_index("131052-308T"),
            k.national_id_index("131052-308T")
        );
    }

    #[test]
    fn bad_master_keys_are_refused() {
        assert!(MasterKeys::from_base64("not base64!").is_err());
        assert!(MasterKeys::from_base64(&STANDARD.encode([1u8; 16])).is_err());
    }

    #[test]
    fn csrf_token_depends_on_cookie() {
        let k = keys();
        assert_ne!(k.csrf_token("a"), k.csrf_token("b"));
        assert!(ct_eq(&k.csrf_token("a"), &k.csrf_token("a")));
    }
}

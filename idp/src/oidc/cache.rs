//! Short-lived in-memory copies of hot, rarely changing rows (clients, signing keys), so a token
//! request needs no database read. Entries expire after [`TTL`], so a change (made by the CLI or on
//! another node) is seen within that time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use kuntalaistili_metadata::crypto::MasterKeys;
use kuntalaistili_metadata::keys::{self, Alg, KeysError, Signer};
use kuntalaistili_schema::oidc_clients::{self, OidcClient};
use kuntalaistili_schema::signing_keys::SigningKey;
use kuntalaistili_schema::{Db, DbError};

pub const TTL: Duration = Duration::from_secs(30);

/// A cached client (or the fact that there is none) and when it was read.
type ClientEntry = (Instant, Option<Arc<OidcClient>>);

/// The published keys and, at the same index, their decrypted signers.
struct KeyEntries {
    rows: Vec<SigningKey>,
    signers: Vec<Arc<Signer>>,
}

impl KeyEntries {
    fn active(&self, alg: Alg, now: NaiveDateTime) -> Option<Arc<Signer>> {
        let row = keys::active(&self.rows, alg, now)?;
        let i = self.rows.iter().position(|r| r.kid == row.kid)?;
        self.signers.get(i).cloned()
    }
}

#[derive(Default)]
pub struct Caches {
    clients: RwLock<HashMap<String, ClientEntry>>,
    signers: RwLock<Option<(Instant, Arc<KeyEntries>)>>,
    jwks: RwLock<Option<(Instant, Arc<String>)>>,
    /// Access tokens whose signature was verified: SHA-256 of the token → (its `exp`, claims).
    /// Saves the signature check on every repeated bearer call; expiry and revocation are still
    /// checked on every call by the caller.
    verified: RwLock<HashMap<[u8; 32], VerifiedToken>>,
}

/// A verified access token's `exp` and claims.
type VerifiedToken = (i64, Arc<serde_json::Value>);

/// Verified access tokens kept at most (the map is emptied when full: it refills from calls).
const MAX_VERIFIED: usize = 50_000;

impl Caches {
    /// The claims of `token` when its signature was verified before and it has not expired.
    pub fn verified_token(&self, token: &str, now: i64) -> Option<Arc<serde_json::Value>> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let map = self.verified.read().ok()?;
        map.get(&key)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, c)| c.clone())
    }

    /// Remembers the verified claims of `token` until its `exp`.
    pub fn remember_token(&self, token: &str, claims: Arc<serde_json::Value>) {
        use sha2::Digest;
        let Some(exp) = claims["exp"].as_i64() else {
            return;
        };
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Ok(mut map) = self.verified.write() {
            if map.len() >= MAX_VERIFIED {
                map.clear();
            }
            map.insert(key, (exp, claims));
        }
    }

    /// The client when a fresh copy is in memory (`Some(None)`: known not to exist). Never
    /// touches the database, so handlers try this before going to the blocking pool.
    pub fn client_if_fresh(&self, client_id: &str) -> Option<Option<Arc<OidcClient>>> {
        let map = self.clients.read().ok()?;
        map.get(client_id)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, c)| c.clone())
    }

    /// Drops this node's copy of a client after a change made here (other nodes see the change
    /// within [`TTL`]).
    pub fn forget_client(&self, client_id: &str) {
        if let Ok(mut map) = self.clients.write() {
            map.remove(client_id);
        }
    }

    /// The client, from memory when fresh, else from the database. Blocking.
    pub fn client(&self, db: &Db, client_id: &str) -> Result<Option<Arc<OidcClient>>, DbError> {
        if let Some(c) = self.client_if_fresh(client_id) {
            return Ok(c);
        }
        let found = oidc_clients::find(&mut *db.conn()?, client_id)?.map(Arc::new);
        if let Ok(mut map) = self.clients.write() {
            // Bound the memory that made-up client ids can cost: at most 10 000 entries.
            if map.len() >= 10_000 {
                map.retain(|_, (at, c)| at.elapsed() < TTL && c.is_some());
                if map.len() >= 10_000 {
                    map.clear();
                }
            }
            map.insert(client_id.to_owned(), (Instant::now(), found.clone()));
        }
        Ok(found)
    }

    /// The JWKS document when a fresh copy is in memory; never touches the database.
    pub fn jwks_if_fresh(&self) -> Option<Arc<String>> {
        let guard = self.jwks.read().ok()?;
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, d)| d.clone())
    }

    /// The JWKS document (serialised), read from the database when the copy is stale. Blocking.
    /// A pre-published key appears within [`TTL`], far inside any pre-publication period.
    pub fn jwks(&self, db: &Db) -> Result<Arc<String>, KeysError> {
        if let Some(d) = self.jwks_if_fresh() {
            return Ok(d);
        }
        let doc =
            Arc::new(keys::jwks(&mut *db.conn()?, kuntalaistili_schema::now_utc())?.to_string());
        if let Ok(mut g) = self.jwks.write() {
            *g = Some((Instant::now(), doc.clone()));
        }
        Ok(doc)
    }

    fn fresh_keys(&self) -> Option<Arc<KeyEntries>> {
        let guard = self.signers.read().ok()?;
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    /// The signer of `alg` when the key list in memory is fresh; never touches the database.
    pub fn signer_if_fresh(&self, alg: Alg) -> Option<Arc<Signer>> {
        self.fresh_keys()?
            .active(alg, kuntalaistili_schema::now_utc())
    }

    /// The key of `alg` that signs now, chosen from the published keys (read and decrypted once
    /// per cache period, not per token). Blocking.
    pub fn signer(&self, db: &Db, master: &MasterKeys, alg: Alg) -> Result<Arc<Signer>, KeysError> {
        let now = kuntalaistili_schema::now_utc();
        let list = match self.fresh_keys() {
            Some(l) => l,
            None => {
                let mut rows =
                    kuntalaistili_schema::signing_keys::published(&mut *db.conn()?, now)?;
                // SAML keys sign XML, never tokens.
                rows.retain(|r| r.alg != kuntalaistili_metadata::saml::keys::ALG);
                let signers = rows
                    .iter()
                    .map(|r| keys::signer_for(r, master).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()?;
                let list = KeyEntries { rows, signers };
                let list = Arc::new(list);
                if let Ok(mut g) = self.signers.write() {
                    *g = Some((Instant::now(), list.clone()));
                }
                list
            }
        };
        list.active(alg, now)
            .ok_or(KeysError::NoActiveKey(alg.as_str()))
    }
}

/// A cached value without leaving the async worker when `fresh` has it, else `load` on the
/// blocking pool. A failed load is logged (`what`) and answered `temporarily_unavailable`.
pub async fn fresh_or_load<T, E>(
    fresh: Option<T>,
    load: impl FnOnce() -> Result<T, E> + Send + 'static,
    what: &'static str,
) -> Result<T, super::error::OAuthError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    if let Some(v) = fresh {
        return Ok(v);
    }
    match actix_web::web::block(load).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, what, "loading into the OIDC cache failed");
            Err(super::error::OAuthError::unavailable())
        }
        Err(_) => Err(super::error::OAuthError::unavailable()),
    }
}

/// The JWKS document (serialised) from memory when fresh, else loaded on the blocking pool.
pub async fn jwks_doc(
    state: &actix_web::web::Data<crate::IdpState>,
) -> Result<Arc<String>, super::error::OAuthError> {
    let st = state.clone();
    fresh_or_load(
        state.oidc_cache.jwks_if_fresh(),
        move || st.oidc_cache.jwks(&st.db),
        "JWKS",
    )
    .await
}

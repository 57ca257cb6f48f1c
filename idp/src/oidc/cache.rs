//! Short-lived in-memory copies of hot, rarely changing rows (clients, signing keys), so a token
//! request needs no database read. Entries expire after [`TTL`]; a change made on another node is
//! therefore seen within that time, and a change made here is invalidated at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kuntalaistili_metadata::crypto::MasterKeys;
use kuntalaistili_metadata::keys::{self, Alg, KeysError, Signer};
use kuntalaistili_schema::oidc_clients::{self, OidcClient};
use kuntalaistili_schema::Db;

pub const TTL: Duration = Duration::from_secs(30);

/// A cached client (or the fact that there is none) and when it was read.
type ClientEntry = (Instant, Option<Arc<OidcClient>>);

/// A published key: signs from, signs until, and its decrypted signer.
type KeyEntry = (
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    Arc<Signer>,
);

#[derive(Default)]
pub struct Caches {
    clients: RwLock<HashMap<String, ClientEntry>>,
    signers: RwLock<Option<(Instant, Arc<Vec<KeyEntry>>)>>,
}

impl Caches {
    /// The client, from memory when fresh (an unknown id is remembered too). Blocking.
    pub fn client(
        &self,
        db: &Db,
        client_id: &str,
    ) -> Result<Option<Arc<OidcClient>>, kuntalaistili_schema::DbError> {
        if let Ok(map) = self.clients.read() {
            if let Some((at, c)) = map.get(client_id) {
                if at.elapsed() < TTL {
                    return Ok(c.clone());
                }
            }
        }
        let found = oidc_clients::find(&mut *db.conn()?, client_id)?.map(Arc::new);
        if let Ok(mut map) = self.clients.write() {
            // Bound the memory an attacker can make us spend on made-up client ids.
            if map.len() > 10_000 {
                map.retain(|_, (at, _)| at.elapsed() < TTL);
            }
            map.insert(client_id.to_owned(), (Instant::now(), found.clone()));
        }
        Ok(found)
    }

    /// Forget everything (after a local change).
    pub fn invalidate(&self) {
        if let Ok(mut m) = self.clients.write() {
            m.clear();
        }
        if let Ok(mut s) = self.signers.write() {
            *s = None;
        }
    }

    /// The key of `alg` that signs now, chosen from the cached published keys. Blocking.
    pub fn signer(&self, db: &Db, master: &MasterKeys, alg: Alg) -> Result<Arc<Signer>, KeysError> {
        let now = kuntalaistili_schema::now_utc();
        let fresh = self.signers.read().ok().and_then(|g| {
            g.as_ref()
                .filter(|(at, _)| at.elapsed() < TTL)
                .map(|(_, v)| v.clone())
        });
        let list = match fresh {
            Some(l) => l,
            None => {
                let mut conn = db.conn()?;
                let rows = kuntalaistili_schema::signing_keys::published(&mut conn, now)?;
                let mut list = Vec::new();
                for r in &rows {
                    // Each key is decrypted once per cache period, not per token.
                    let s = keys::signer_for(r, master)?;
                    list.push((r.activates_at, r.retires_at, Arc::new(s)));
                }
                let list = Arc::new(list);
                if let Ok(mut g) = self.signers.write() {
                    *g = Some((Instant::now(), list.clone()));
                }
                list
            }
        };
        list.iter()
            .filter(|(from, until, s)| {
                s.alg == alg && *from <= now && until.is_none_or(|u| u > now)
            })
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.kid.cmp(&b.2.kid)))
            .map(|(_, _, s)| s.clone())
            .ok_or(KeysError::NoActiveKey(alg.as_str()))
    }
}

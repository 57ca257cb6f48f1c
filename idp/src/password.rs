//! Argon2id password hashing. Hashing is CPU- and memory-heavy by design: callers run it on the
//! blocking pool, never on an async worker.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};

/// Argon2id cost. Defaults are OWASP's minimum recommendation (19 MiB, t=2, p=1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordParams {
    /// Memory per hash in KiB.
    pub memory_kib: u32,
    /// Iterations (time cost).
    pub iterations: u32,
    /// Lanes (parallelism).
    pub parallelism: u32,
    /// Threads that hash passwords for the server; 0 means one per core.
    pub threads: usize,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            threads: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords with fixed parameters; holds a dummy hash so that a login for
/// an unknown account costs the same as one for a known account.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(p: PasswordParams) -> Result<PasswordHasher, PasswordError> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = PasswordHasher {
            argon,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash("kuntalaistili dummy password for timing")?;
        Ok(hasher)
    }

    /// A PHC-format Argon2id hash with a random salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Checks `password` against `stored`; with `None` it spends the same time on the dummy hash
    /// and returns false. A malformed stored hash is a failed login, not an error page.
    /// Allocates the Argon2 memory for this one call; servers use [`HashPool`] instead.
    pub fn verify(&self, stored: Option<&str>, password: &str) -> bool {
        self.verify_with(stored, password, &mut Vec::new())
    }

    /// [`verify`](Self::verify) with a caller-owned Argon2 memory buffer that is reused between
    /// calls: no 19 MiB allocation and page-faulting per login, and memory stays bounded by the
    /// number of hashing threads.
    pub fn verify_with(
        &self,
        stored: Option<&str>,
        password: &str,
        blocks: &mut Vec<Block>,
    ) -> bool {
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (self.dummy_hash.as_str(), false),
        };
        verify_phc(phc, password, blocks) && real
    }
}

/// Verifies an Argon2id PHC string with the parameters stored in it (older hashes keep working
/// after a parameter change), in constant time over the output.
fn verify_phc(phc: &str, password: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = [0u8; 64];
    if expected.len() > out.len() {
        return false;
    }
    let out = &mut out[..expected.len()];
    let need = params.block_count();
    if blocks.len() != need {
        blocks.clear();
        blocks.resize(need, Block::default());
    }
    let argon = Argon2::new(Algorithm::Argon2id, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks.as_mut_slice())
        .is_err()
    {
        return false;
    }
    crate::crypto::ct_eq_bytes(out, expected)
}

type Job = Box<dyn FnOnce(&PasswordHasher, &mut Vec<Block>) + Send>;

/// A fixed set of hashing threads (one per core by default), each with its own reusable Argon2
/// memory. More concurrent hashes than cores would only add context switches and memory, so
/// requests queue here instead of occupying the general blocking pool.
pub struct HashPool {
    tx: std::sync::mpsc::Sender<Job>,
    threads: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl HashPool {
    pub fn new(
        hasher: std::sync::Arc<PasswordHasher>,
        threads: usize,
    ) -> std::io::Result<HashPool> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = threads.max(1);
        for i in 0..threads {
            let (rx, hasher) = (rx.clone(), hasher.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut blocks = Vec::new();
                    loop {
                        // The lock is held only while taking a job, never while hashing.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&hasher, &mut blocks),
                            Err(_) => return, // every sender dropped: shut down
                        }
                    }
                })?;
        }
        Ok(HashPool { tx, threads })
    }

    /// Verifies on the pool; `None` for the stored hash verifies against the dummy hash.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<bool, PasswordError> {
        self.run(move |h, blocks| h.verify_with(stored.as_deref(), &password, blocks))
            .await
    }

    /// Hashes a new password on the pool.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move |h, _| h.hash(&password)).await?
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PasswordHasher, &mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |h, blocks| {
            let _ = reply.send(f(h, blocks));
        });
        self.tx
            .send(job)
            .map_err(|_| PasswordError::Hash("hashing pool stopped".into()))?;
        answer
            .await
            .map_err(|_| PasswordError::Hash("hashing thread failed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            threads: 1,
        })
        .unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let h = fast();
        let stored = h.hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(h.verify(Some(&stored), "correct horse"));
        assert!(!h.verify(Some(&stored), "wrong horse"));
        assert!(!h.verify(None, "kuntalaistili dummy password for timing"));
        assert!(!h.verify(Some("garbage"), "x"));
        // The reused buffer gives the same answers, also when the parameters change between calls.
        let mut blocks = Vec::new();
        for _ in 0..2 {
            assert!(h.verify_with(Some(&stored), "correct horse", &mut blocks));
            assert!(!h.verify_with(Some(&stored), "correct horsf", &mut blocks));
        }
        let other = PasswordHasher::new(PasswordParams {
            memory_kib: 2048,
            iterations: 2,
            parallelism: 2,
            threads: 1,
        })
        .unwrap();
        let stored2 = other.hash("pw2").unwrap();
        assert!(h.verify_with(Some(&stored2), "pw2", &mut blocks));
        assert!(h.verify_with(Some(&stored), "correct horse", &mut blocks));
        // argon2i/argon2d hashes are not accepted as Argon2id.
        let argon2i = stored.replace("$argon2id$", "$argon2i$");
        assert!(!h.verify_with(Some(&argon2i), "correct horse", &mut blocks));
    }

    #[tokio::test]
    async fn pool_verifies_and_hashes() {
        let pool = HashPool::new(std::sync::Arc::new(fast()), 2).unwrap();
        let stored = pool.hash("salasana1".into()).await.unwrap();
        assert!(pool
            .verify(Some(stored.clone()), "salasana1".into())
            .await
            .unwrap());
        assert!(!pool.verify(Some(stored), "salasana2".into()).await.unwrap());
        assert!(!pool.verify(None, "salasana1".into()).await.unwrap());
    }

    #[test]
    fn default_params_meet_owasp_minimum() {
        let p = PasswordParams::default();
        assert!(p.memory_kib >= 19 * 1024 && p.iterations >= 2 && p.parallelism >= 1);
    }
}

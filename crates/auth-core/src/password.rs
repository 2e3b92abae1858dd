//! Passwords: argon2id PHC strings (RustCrypto `argon2`), with configurable cost (spec §5.1).
//!
//! [`Argon2Hasher`] hashes on the calling thread; the server wraps it in a bounded pool so hashing never
//! blocks the async runtime and an overload answers "busy" instead of queueing without bound.
//! Every hasher also carries a dummy hash made with its own parameters: verifying an unknown user's
//! password against it costs exactly what a real verification costs.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash as Phc, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;

use crate::primitives::{Rng, RngExt};
use crate::secret::SecretString;
use crate::upstream::{UpstreamHash, UpstreamRealm};

/// Why the password hasher could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hashing queue is full; the caller should answer "busy".
    #[error("password hashing queue is full")]
    Busy,
    /// The stored hash is not a PHC string this hasher understands.
    #[error("stored password hash is malformed")]
    Malformed,
    /// Anything else.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Password hashing as the service sees it (a port): asynchronous, because production hashing runs on
/// a pool of threads of its own. The same three operations, under the same names, as [`BlockingHasher`].
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password into a PHC string.
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError>;
    /// Verifies a password against a PHC string, in time independent of where it differs.
    async fn verify(&self, password: &SecretString, hash: &PasswordHash)
    -> Result<bool, HashError>;
    /// A hash of an unguessable password made with this hasher's own parameters, so that verifying an
    /// unknown user's password against it costs what a real verification costs.
    fn dummy_hash(&self) -> PasswordHash;
    /// Verifies a password against an imported upstream hash (spec §5.1), on the same threads and
    /// under the same queue limit as `verify`.
    async fn verify_upstream(
        &self,
        password: &SecretString,
        hash: &UpstreamHash,
        realm: &UpstreamRealm,
    ) -> Result<bool, HashError>;
    /// Whether `hash` was made with other parameters than this hasher's (or another algorithm), so a
    /// successful login should replace it (spec §5.1).
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
    /// Whether a verification asked for now would be answered [`HashError::Busy`] (a bounded queue
    /// that is full). The service asks before a password login's store work — the lookup and both
    /// throttle writes — so that a flood's excess costs the server its parsing and nothing more,
    /// and the cores stay on the logins that can be served. Only a hint: a verification asked for
    /// after a `false` may still be refused, and is handled as before. A hasher without a queue
    /// is never saturated.
    fn saturated(&self) -> bool {
        false
    }
}

/// Password hashing on the calling thread, for a pool's threads (and for tests and benchmarks).
///
/// `verify` computes in `memory`, which it grows to the hash's size and the caller keeps for the next
/// call: a verification at the default cost fills 19 MiB, and allocating that afresh each time means an
/// `mmap`, thousands of page faults and an `munmap` per login. A thread that keeps its buffer avoids all
/// three, which makes each verification cheaper and caps the memory at one buffer per thread.
pub trait BlockingHasher: Send + Sync + 'static {
    /// Hashes a new password into a PHC string.
    fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError>;
    /// Verifies a password against a PHC string, computing in `memory`.
    fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
        memory: &mut HashMemory,
    ) -> Result<bool, HashError>;
    /// As [`PasswordHasher::dummy_hash`].
    fn dummy_hash(&self) -> PasswordHash;
    /// As [`PasswordHasher::verify_upstream`]: the upstream algorithm is the same on every hasher.
    fn verify_upstream(
        &self,
        password: &SecretString,
        hash: &UpstreamHash,
        realm: &UpstreamRealm,
    ) -> Result<bool, HashError> {
        Ok(hash.verify(realm, password))
    }
    /// As [`PasswordHasher::needs_rehash`].
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
}

/// A hashing thread's reusable argon2 work memory (see [`Argon2Hasher::verify_with_memory`]).
pub type HashMemory = Vec<Block>;

/// A password hash as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string (checked when used).
    pub fn from_phc(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not the password, but it is still offline-attackable material.
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for HashParams {
    /// OWASP's recommendation: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 }
    }
}

impl HashParams {
    /// The smallest parameters argon2 allows, for tests only: never use them in a server.
    pub fn insecure_for_tests() -> Self {
        Self { m_cost_kib: 8, t_cost: 1, p_cost: 1 }
    }
}

/// argon2id on the calling thread.
pub struct Argon2Hasher {
    argon: Argon2<'static>,
    params: HashParams,
    rng: Arc<dyn Rng>,
    dummy: PasswordHash,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher").field("params", self.argon.params()).finish_non_exhaustive()
    }
}

impl Argon2Hasher {
    /// A hasher with these parameters; salts come from `rng`.
    pub fn new(params: HashParams, rng: Arc<dyn Rng>) -> Result<Self, HashError> {
        let p = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None)
            .map_err(|e| HashError::Failed(format!("invalid argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut me = Self { argon, params, rng, dummy: PasswordHash(String::new()) };
        let filler: [u8; 16] = me.rng.bytes();
        me.dummy =
            BlockingHasher::hash(&me, &SecretString::new(data_encoding::HEXLOWER.encode(&filler)))?;
        Ok(me)
    }
}

impl BlockingHasher for Argon2Hasher {
    fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        let salt_bytes: [u8; 16] = self.rng.bytes();
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| HashError::Failed(e.to_string()))?;
        let phc = self
            .argon
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(PasswordHash(phc.to_string()))
    }

    fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
        memory: &mut HashMemory,
    ) -> Result<bool, HashError> {
        let phc = Phc::new(&hash.0).map_err(|_| HashError::Malformed)?;
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Err(HashError::Malformed);
        };
        let algorithm = Algorithm::try_from(phc.algorithm).map_err(|_| HashError::Malformed)?;
        let version = match phc.version {
            Some(v) => Version::try_from(v).map_err(|_| HashError::Malformed)?,
            None => Version::default(),
        };
        let params = Params::try_from(&phc).map_err(|_| HashError::Malformed)?;
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).map_err(|_| HashError::Malformed)?;
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let mut out = zeroize::Zeroizing::new(vec![0u8; expected.len()]);
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                salt,
                &mut out,
                memory.get_mut(..blocks).unwrap_or_default(),
            )
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(crate::crypto::ct_eq(&out, expected.as_bytes()))
    }

    fn dummy_hash(&self) -> PasswordHash {
        self.dummy.clone()
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        outdated(hash, self.params)
    }
}

/// Whether a PHC string is anything but argon2id v19 with exactly `params` (an unreadable one
/// included: a successful verification of it would be a surprise worth replacing).
pub fn outdated(hash: &PasswordHash, params: HashParams) -> bool {
    let Ok(phc) = Phc::new(&hash.0) else {
        return true;
    };
    let Ok(p) = Params::try_from(&phc) else {
        return true;
    };
    phc.algorithm != Algorithm::Argon2id.ident()
        || phc.version != Some(Version::V0x13 as u32)
        || p.m_cost() != params.m_cost_kib
        || p.t_cost() != params.t_cost
        || p.p_cost() != params.p_cost
}

/// Hashing inline on the async caller's thread: for tests and tools, never for a server (a
/// verification would stall the runtime; the server runs a pool of threads instead).
#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        BlockingHasher::hash(self, password)
    }

    async fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        BlockingHasher::verify(self, password, hash, &mut HashMemory::new())
    }

    fn dummy_hash(&self) -> PasswordHash {
        self.dummy.clone()
    }

    async fn verify_upstream(
        &self,
        password: &SecretString,
        hash: &UpstreamHash,
        realm: &UpstreamRealm,
    ) -> Result<bool, HashError> {
        BlockingHasher::verify_upstream(self, password, hash, realm)
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        outdated(hash, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SeqRng;

    #[test]
    fn hash_then_verify() {
        let h =
            Argon2Hasher::new(HashParams::insecure_for_tests(), Arc::new(SeqRng::new(9))).unwrap();
        let pw = SecretString::new("correct horse");
        let mut memory = HashMemory::new();
        let hash = BlockingHasher::hash(&h, &pw).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert!(BlockingHasher::verify(&h, &pw, &hash, &mut memory).unwrap());
        assert!(
            !BlockingHasher::verify(&h, &SecretString::new("wrong"), &hash, &mut memory).unwrap()
        );
        assert!(
            !BlockingHasher::verify(&h, &pw, &BlockingHasher::dummy_hash(&h), &mut memory).unwrap()
        );
        assert!(matches!(
            BlockingHasher::verify(&h, &pw, &PasswordHash::from_phc("nonsense"), &mut memory),
            Err(HashError::Malformed)
        ));
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    }

    #[test]
    fn hashes_with_other_parameters_are_outdated() {
        let rng: Arc<dyn Rng> = Arc::new(SeqRng::new(3));
        let small = HashParams::insecure_for_tests();
        let h = Argon2Hasher::new(small, rng.clone()).unwrap();
        let hash = BlockingHasher::hash(&h, &SecretString::new("pw")).unwrap();
        assert!(!BlockingHasher::needs_rehash(&h, &hash));
        let bigger = Argon2Hasher::new(HashParams { m_cost_kib: 16, ..small }, rng).unwrap();
        assert!(BlockingHasher::needs_rehash(&bigger, &hash));
        assert!(outdated(
            &PasswordHash::from_phc("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"),
            small
        ));
        assert!(outdated(&PasswordHash::from_phc("nonsense"), small));
    }

    #[test]
    fn default_parameters_are_owasp() {
        assert_eq!(HashParams::default(), HashParams { m_cost_kib: 19456, t_cost: 2, p_cost: 1 });
    }
}

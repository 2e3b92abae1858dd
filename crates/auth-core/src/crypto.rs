//! The server key ring and what is derived from it: keyed hashes of codes and sealing of stored secrets.
//!
//! The operator keeps a *ring* of 32-byte keys in a 0600 file, each with a small id (1, 2, …; never
//! reused). The newest key seals; every key of the ring opens what it sealed, so a rotation never
//! makes a stored value unreadable (spec §13 "Key rotation"). A sealed value names the key that made
//! it: `version ‖ key id ‖ nonce ‖ ciphertext` (ChaCha20-Poly1305, the header and the purpose bound as
//! associated data). A value from before the ring carries no header (`nonce ‖ ciphertext`) and is read
//! as sealed by key 1; since a random nonce may start like a header, the header reading is tried first
//! and the old reading second, and AEAD authentication makes the two unambiguous.
//!
//! Keyed hashes (SMS and backup codes, login keys in throttle keys, device cookies, OAuth codes,
//! upstream realm ids) are HMAC-SHA256 under a separate *hash key* ([`HashKey`]): a data key stored in
//! the database, sealed under the ring (`keys::HASH_KEY_META`), so rotating or retiring ring keys never
//! changes a stored hash or a throttle key. For a deployment that predates the ring the first hash key
//! is exactly the sub-key that was always derived from key 1, so every stored hash stays valid.
//! Sub-keys are derived with HMAC(key, purpose), so one purpose can never be used to attack another.
//!
//! What this file deliberately does not do: read or write the ring file (auth-server's `keyfile`), or
//! store anything (the `keys` module does that through the store ports).

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::primitives::{Rng, RngExt};

type HmacSha256 = Hmac<Sha256>;

/// The id of a key: of the ring (1, 2, …, never reused) or of the hash key.
pub type KeyId = u32;

/// Every purpose the server key is used for, in one place: each keyed hash and each sealed value names
/// its purpose, so one can never be mistaken for (or used to attack) another.
///
/// The labels are stored data's own: changing one makes every value made under it unreadable.
/// A new sealed value in the store must also be known to `keys::reseal` (its column and the contexts
/// it is sealed with), or a reseal leaves it under an old key and a retire refuses to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyContext {
    /// Keyed hash of an SMS code, bound to its user and phone.
    SmsCode,
    /// Keyed hash of a backup code, bound to its user.
    BackupCode,
    /// A sealed TOTP secret, bound to its user.
    TotpSecret,
    /// The sealed one-time reveal of a user's new backup codes.
    BackupReveal,
    /// A sealed SMS text waiting in the outbox.
    SmsOutbox,
    /// The keyed hash that names, in throttle keys, a typed login that matches no user.
    LoginKey,
    /// The MAC of an `asc_device` cookie (a known client, spec §5.1).
    DeviceCookie,
    /// The keyed hash an exchanged `codeOAuth` is remembered under (spec §5.4).
    OAuthCode,
    /// The check value of the key itself, stored in the database so that a node started with
    /// another key refuses to run.
    KeyCheck,
    /// A sealed upstream realm (machine key, salt, cost) of imported password hashes (spec §11).
    UpstreamRealm,
    /// The keyed hash that names an upstream realm in stored hashes.
    UpstreamRealmId,
    /// A sealed job of the outbox's e-mail channel (a reset request or a rendered notice).
    MailOutbox,
    /// The keyed hash a password-reset key is stored under (spec §14).
    ResetKey,
    /// The hash key, sealed under the ring in the database, bound to its id.
    HashKey,
}

impl KeyContext {
    /// The label that separates this purpose from the others.
    pub const fn label(self) -> &'static [u8] {
        match self {
            KeyContext::SmsCode => b"sms-code",
            KeyContext::BackupCode => b"backup-code",
            KeyContext::TotpSecret => b"totp-secret:",
            KeyContext::BackupReveal => b"backup-reveal:",
            KeyContext::SmsOutbox => b"sms-outbox",
            KeyContext::KeyCheck => b"key-check",
            KeyContext::LoginKey => b"login-key",
            KeyContext::DeviceCookie => b"device-cookie",
            KeyContext::OAuthCode => b"oauth-code",
            KeyContext::UpstreamRealm => b"upstream-realm",
            KeyContext::UpstreamRealmId => b"upstream-realm-id",
            KeyContext::MailOutbox => b"mail-outbox",
            KeyContext::ResetKey => b"reset-key",
            KeyContext::HashKey => b"hash-key",
        }
    }

    /// The associated data a sealed value of this purpose is bound to: the header (empty for a value
    /// from before the ring), the label, then `binding` (the owner's id, or nothing).
    fn aad(self, header: &[u8], binding: &[u8]) -> Vec<u8> {
        [header, self.label(), binding].concat()
    }
}

/// Why sealed data could not be opened, or a ring could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Too short, tampered with, sealed under another key or for another context.
    #[error("sealed data cannot be opened (wrong key or tampered)")]
    Unseal,
    /// The cipher refused to seal (never expected).
    #[error("sealing failed")]
    Seal,
    /// A ring needs at least one key, ids from 1 up, each once.
    #[error("invalid key ring: {0}")]
    Ring(&'static str),
}

/// The version byte of a sealed value that names its key.
const SEALED_V2: u8 = 0x02;
/// Version byte and key id.
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 12;

fn derive(master: &[u8; 32], purpose: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the code panic-free.
    if let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(master) {
        mac.update(purpose);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// HMAC-SHA256 under `key` of the parts, each length-prefixed so that no two part lists collide.
fn hmac_parts<'a>(key: &[u8; 32], parts: impl Iterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) {
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// The sub-key every keyed hash was made with before the ring: the first hash key of a deployment.
const FIRST_HASH_PURPOSE: &[u8] = b"auth-core/v1/keyed-hash";

/// One key of the ring, as the sub-keys derived from it.
#[derive(Clone)]
struct RingKey {
    id: KeyId,
    seal_key: Zeroizing<[u8; 32]>,
    /// What this key's check value is made with.
    check_key: Zeroizing<[u8; 32]>,
    /// The hash key this key gives a deployment that started with it (used for key 1 only).
    first_hash: Zeroizing<[u8; 32]>,
}

impl RingKey {
    fn new(id: KeyId, master: &[u8; 32]) -> Self {
        Self {
            id,
            seal_key: derive(master, b"auth-core/v1/seal"),
            check_key: derive(master, b"auth-core/v2/key-check"),
            first_hash: derive(master, FIRST_HASH_PURPOSE),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.seal_key.as_ref()))
    }
}

/// Which key opened a sealed value, and in which format it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedBy {
    /// The ring key that opened it.
    pub key: KeyId,
    /// True for a value from before the ring (no header): read as sealed by key 1.
    pub legacy: bool,
}

/// The keys of a ring: never empty, by construction.
struct Ring {
    /// By id, ascending.
    older: Vec<RingKey>,
    /// The highest id: the key that seals.
    newest: RingKey,
}

impl Ring {
    fn from_sorted(mut keys: Vec<RingKey>) -> Result<Self, CryptoError> {
        let newest = keys.pop().ok_or(CryptoError::Ring("no key"))?;
        Ok(Self { older: keys, newest })
    }

    fn iter(&self) -> impl Iterator<Item = &RingKey> {
        self.older.iter().chain(std::iter::once(&self.newest))
    }
}

/// The operator's key ring: the newest key seals, every key opens. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<Ring>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(ids {:?}, <redacted>)", self.ids())
    }
}

impl KeyRing {
    /// A ring of these keys (id, bytes).
    ///
    /// # Errors
    /// [`CryptoError::Ring`] when there is no key, an id is 0, or an id appears twice.
    pub fn new(keys: &[(KeyId, [u8; 32])]) -> Result<Self, CryptoError> {
        let mut ring: Vec<RingKey> = keys.iter().map(|(id, k)| RingKey::new(*id, k)).collect();
        ring.sort_by_key(|k| k.id);
        if ring.first().is_some_and(|k| k.id == 0) {
            return Err(CryptoError::Ring("key ids start at 1"));
        }
        if ring.windows(2).any(|w| matches!(w, [a, b] if a.id == b.id)) {
            return Err(CryptoError::Ring("a key id appears twice"));
        }
        Ok(Self { keys: Arc::new(Ring::from_sorted(ring)?) })
    }

    /// The ring of one key, id 1: what a `server.key` from before the ring is.
    pub fn single(master: [u8; 32]) -> Self {
        let master = Zeroizing::new(master);
        Self { keys: Arc::new(Ring { older: Vec::new(), newest: RingKey::new(1, &master) }) }
    }

    /// The ids, ascending.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// The key that seals: the newest (highest id).
    fn sealing(&self) -> &RingKey {
        &self.keys.newest
    }

    /// The id of the key that seals.
    pub fn sealing_id(&self) -> KeyId {
        self.sealing().id
    }

    fn key(&self, id: KeyId) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Whether the ring holds key `id`.
    pub fn holds(&self, id: KeyId) -> bool {
        self.key(id).is_some()
    }

    /// The same ring with only the keys whose ids `keep` admits.
    ///
    /// # Errors
    /// [`CryptoError::Ring`] when no key stays.
    pub fn retain(&self, keep: impl Fn(KeyId) -> bool) -> Result<Self, CryptoError> {
        let keys = self.keys.iter().filter(|k| keep(k.id)).cloned().collect();
        Ok(Self { keys: Arc::new(Ring::from_sorted(keys)?) })
    }

    /// A value that identifies the whole ring without revealing a key, stored in the database so that
    /// a node whose ring differs (an old key only, a key missing, another key) refuses to start.
    ///
    /// The ring of key 1 alone gives exactly the check value of the single server key from before the
    /// ring (a keyed hash of a fixed text), so an existing database accepts its key unchanged. Any other
    /// ring gives SHA-256 over each key's id and its own check (an HMAC under a sub-key of that key),
    /// followed by the ids in text (`1,2`), so a refusal can say which keys the database expects.
    pub fn check_value(&self) -> Vec<u8> {
        if self.keys.older.is_empty() && self.keys.newest.id == 1 {
            let parts = [KeyContext::KeyCheck.label(), b"auth-server key check v1".as_slice()];
            return hmac_parts(&self.keys.newest.first_hash, parts.into_iter()).to_vec();
        }
        let mut digest = Sha256::new();
        digest.update(b"auth-server key ring check v2");
        for k in self.keys.iter() {
            let id = k.id.to_be_bytes();
            let parts = [KeyContext::KeyCheck.label(), b"ring key".as_slice(), id.as_slice()];
            digest.update(id);
            digest.update(hmac_parts(&k.check_key, parts.into_iter()));
        }
        let mut out: Vec<u8> = digest.finalize().to_vec();
        out.extend_from_slice(ids_text(&self.ids()).as_bytes());
        out
    }

    /// The ids a stored check value names: `[1]` for the check of the single key from before the
    /// ring, the listed ids for a ring's; `None` when the value is neither.
    pub fn ids_in_check(stored: &[u8]) -> Option<Vec<KeyId>> {
        match stored.split_at_checked(32) {
            Some((_, [])) => Some(vec![1]),
            Some((_, text)) => std::str::from_utf8(text)
                .ok()?
                .split(',')
                .map(|id| id.parse::<KeyId>().ok())
                .collect(),
            None => None,
        }
    }

    /// The hash key of a deployment that started with key 1 of this ring: the sub-key every keyed hash
    /// was made with before the ring. `None` when the ring no longer holds key 1.
    pub fn first_hash_key(&self) -> Option<HashKey> {
        self.key(1).map(|k| HashKey { id: 1, key: k.first_hash.clone() })
    }

    /// Seals `plaintext` under the newest key for a purpose and its owner (`binding`, such as the user
    /// id's bytes; empty for none): `0x02 ‖ key id ‖ nonce ‖ ciphertext`, authenticated and bound to
    /// the header, the purpose and the owner.
    ///
    /// # Errors
    /// [`CryptoError::Seal`] when the cipher refuses (never expected).
    pub fn seal(
        &self,
        rng: &dyn Rng,
        context: KeyContext,
        binding: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.sealing();
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + 16);
        out.push(SEALED_V2);
        out.extend_from_slice(&key.id.to_be_bytes());
        let nonce: [u8; NONCE_LEN] = rng.bytes();
        let aad = context.aad(&out, binding);
        let ct = key
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| CryptoError::Seal)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what any key of the ring sealed for the same purpose and owner (or, without a header,
    /// what key 1 sealed before the ring), and says which key it was.
    ///
    /// # Errors
    /// [`CryptoError::Unseal`] when no key of the ring opens it.
    pub fn open(
        &self,
        context: KeyContext,
        binding: &[u8],
        sealed: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, SealedBy), CryptoError> {
        if let Some(v2) = split_v2(sealed)
            && let Some(key) = self.key(v2.id)
        {
            let aad = context.aad(v2.header, binding);
            let payload = Payload { msg: v2.ct, aad: &aad };
            if let Ok(plain) = key.cipher().decrypt(Nonce::from_slice(v2.nonce), payload) {
                return Ok((Zeroizing::new(plain), SealedBy { key: v2.id, legacy: false }));
            }
        }
        let key = self.key(1).ok_or(CryptoError::Unseal)?;
        let (nonce, ct) = sealed.split_at_checked(NONCE_LEN).ok_or(CryptoError::Unseal)?;
        let aad = context.aad(&[], binding);
        key.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(|plain| (Zeroizing::new(plain), SealedBy { key: 1, legacy: true }))
            .map_err(|_| CryptoError::Unseal)
    }

    /// Whether `sealed` has the header of a key newer than any of this ring's: what a node still
    /// running with an older ring sees of a value sealed by a node with the newer one.
    pub fn names_newer_key(&self, sealed: &[u8]) -> bool {
        split_v2(sealed).is_some_and(|v2| v2.id > self.sealing_id())
    }
}

/// The parts of a value in the format that names its key.
struct V2<'a> {
    id: KeyId,
    header: &'a [u8],
    nonce: &'a [u8],
    ct: &'a [u8],
}

/// A value in the format that names its key, split, or `None` when it does not start like one.
fn split_v2(sealed: &[u8]) -> Option<V2<'_>> {
    let (header, rest) = sealed.split_at_checked(HEADER_LEN)?;
    let (nonce, ct) = rest.split_at_checked(NONCE_LEN)?;
    match header {
        [SEALED_V2, a, b, c, d] => {
            Some(V2 { id: KeyId::from_be_bytes([*a, *b, *c, *d]), header, nonce, ct })
        }
        _ => None,
    }
}

/// Ids as `1,2,3`.
pub fn ids_text(ids: &[KeyId]) -> String {
    ids.iter().map(KeyId::to_string).collect::<Vec<_>>().join(",")
}

/// The key every keyed hash is made with: a data key with its own id, stored sealed under the ring.
#[derive(Clone)]
pub struct HashKey {
    id: KeyId,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashKey({}, <redacted>)", self.id)
    }
}

impl HashKey {
    /// Wraps a stored hash key's id and bytes.
    pub fn from_bytes(id: KeyId, bytes: [u8; 32]) -> Self {
        Self { id, key: Zeroizing::new(bytes) }
    }

    /// Its id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Its bytes, for sealing it under the ring (never for anything else).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

/// What every part of the service holds: the ring (sealing) and the hash key (keyed hashes).
#[derive(Clone)]
pub struct ServerKey {
    ring: KeyRing,
    hash: HashKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

impl ServerKey {
    /// One key from before the ring: the ring of key 1, with the hash key derived from it.
    pub fn from_bytes(master: [u8; 32]) -> Self {
        let master = Zeroizing::new(master);
        let key = RingKey::new(1, &master);
        let hash = HashKey { id: 1, key: key.first_hash.clone() };
        Self { ring: KeyRing { keys: Arc::new(Ring { older: Vec::new(), newest: key }) }, hash }
    }

    /// A ring and the hash key opened from the database (see `keys::unlock`).
    pub fn new(ring: KeyRing, hash: HashKey) -> Self {
        Self { ring, hash }
    }

    /// The ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The id of the hash key.
    pub fn hash_key_id(&self) -> KeyId {
        self.hash.id
    }

    /// HMAC-SHA256 under the hash key of the purpose's label and the parts, each length-prefixed so
    /// that no two part lists collide.
    pub fn keyed_hash(&self, context: KeyContext, parts: &[&[u8]]) -> [u8; 32] {
        hmac_parts(&self.hash.key, std::iter::once(context.label()).chain(parts.iter().copied()))
    }

    /// The ring's check value (see [`KeyRing::check_value`]).
    pub fn check_value(&self) -> Vec<u8> {
        self.ring.check_value()
    }

    /// Seals under the newest key of the ring (see [`KeyRing::seal`]).
    ///
    /// # Errors
    /// [`CryptoError::Seal`] when the cipher refuses (never expected).
    pub fn seal(
        &self,
        rng: &dyn Rng,
        context: KeyContext,
        binding: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.ring.seal(rng, context, binding, plaintext)
    }

    /// Opens what [`ServerKey::seal`] sealed for the same purpose and owner, under any key of the ring.
    ///
    /// # Errors
    /// [`CryptoError::Unseal`] when no key of the ring opens it.
    pub fn open(
        &self,
        context: KeyContext,
        binding: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.ring.open(context, binding, sealed).map(|(plain, _)| plain)
    }
}

/// A value sealed the way every value was before the ring: `nonce ‖ ciphertext` under the seal sub-key
/// of `master`, the associated data the label and the binding (for tests of the old format).
#[cfg(test)]
pub(crate) fn legacy_seal_for_tests(
    master: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    context: KeyContext,
    binding: &[u8],
    msg: &[u8],
) -> Vec<u8> {
    let key = RingKey::new(1, master);
    let aad = context.aad(&[], binding);
    let ct = key.cipher().encrypt(Nonce::from_slice(&nonce), Payload { msg, aad: &aad });
    [nonce.as_slice(), &ct.unwrap_or_default()].concat()
}

/// Plain SHA-256 (tokens are 256 random bits, so no key is needed to make their hash useless).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testkit::SeqRng;

    /// The format from before the ring, written out here rather than through the ring's own code.
    fn legacy_seal(
        master: &[u8; 32],
        nonce: [u8; 12],
        ctx: KeyContext,
        binding: &[u8],
        msg: &[u8],
    ) -> Vec<u8> {
        let seal_key = derive(master, b"auth-core/v1/seal");
        let cipher = ChaCha20Poly1305::new(Key::from_slice(seal_key.as_ref()));
        let aad = [ctx.label(), binding].concat();
        let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg, aad: &aad }).unwrap();
        let sealed = [nonce.as_slice(), &ct].concat();
        assert_eq!(sealed, legacy_seal_for_tests(master, nonce, ctx, binding, msg));
        sealed
    }

    fn ring(keys: &[(KeyId, u8)]) -> KeyRing {
        let keys: Vec<(KeyId, [u8; 32])> = keys.iter().map(|(id, b)| (*id, [*b; 32])).collect();
        KeyRing::new(&keys).unwrap()
    }

    #[test]
    fn seal_round_trips_and_binds_context() {
        let key = ServerKey::from_bytes([7; 32]);
        let rng = SeqRng::new(1);
        let ctx = KeyContext::TotpSecret;
        let sealed = key.seal(&rng, ctx, b"owner", b"secret bytes").unwrap();
        assert_eq!(key.open(ctx, b"owner", &sealed).unwrap().as_slice(), b"secret bytes");
        assert_eq!(key.open(ctx, b"other", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(KeyContext::BackupReveal, b"owner", &sealed), Err(CryptoError::Unseal));
        let other = ServerKey::from_bytes([8; 32]);
        assert_eq!(other.open(ctx, b"owner", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(ctx, b"owner", &sealed[..5]), Err(CryptoError::Unseal));
        assert_eq!(&sealed[..5], &[SEALED_V2, 0, 0, 0, 1], "names key 1");
    }

    /// Each case: the ring that seals (None: the format from before the ring, under key 1), the ring
    /// that opens, and which key it then says opened it (None: it must not open).
    #[test]
    fn which_ring_opens_what() {
        let check = |sealer: Option<&[(KeyId, u8)]>,
                     opener: &[(KeyId, u8)],
                     want: Option<SealedBy>| {
            let rng = SeqRng::new(3);
            let ctx = KeyContext::BackupReveal;
            let sealed = match sealer {
                Some(keys) => ring(keys).seal(&rng, ctx, b"u", b"codes").unwrap(),
                None => legacy_seal(&[1; 32], [9; 12], ctx, b"u", b"codes"),
            };
            let got = ring(opener).open(ctx, b"u", &sealed);
            match want {
                Some(by) => {
                    let (plain, opened_by) =
                        got.unwrap_or_else(|e| panic!("{sealer:?} → {opener:?}: {e}"));
                    assert_eq!(
                        (plain.as_slice(), opened_by),
                        (b"codes".as_slice(), by),
                        "{sealer:?} → {opener:?}"
                    );
                }
                None => assert_eq!(got.err(), Some(CryptoError::Unseal), "{sealer:?} → {opener:?}"),
            }
        };
        let legacy = Some(SealedBy { key: 1, legacy: true });
        let by = |key| Some(SealedBy { key, legacy: false });
        check(None, &[(1, 1)], legacy);
        check(None, &[(1, 1), (2, 2)], legacy);
        check(None, &[(2, 2)], None);
        check(None, &[(1, 7)], None);
        check(Some(&[(1, 1)]), &[(1, 1), (2, 2)], by(1));
        check(Some(&[(1, 1), (2, 2)]), &[(1, 1), (2, 2)], by(2));
        check(Some(&[(1, 1), (2, 2)]), &[(2, 2)], by(2));
        check(Some(&[(1, 1), (2, 2)]), &[(1, 1)], None);
        // The same bytes under another id are another key.
        check(Some(&[(1, 1), (2, 2)]), &[(1, 1), (3, 2)], None);
        check(Some(&[(2, 2), (5, 5)]), &[(5, 5)], by(5));
    }

    #[test]
    fn the_header_is_authenticated() {
        let r = ring(&[(1, 1), (2, 1)]);
        let rng = SeqRng::new(5);
        let mut sealed = r.seal(&rng, KeyContext::SmsOutbox, b"", b"Code: 1").unwrap();
        assert!(r.open(KeyContext::SmsOutbox, b"", &sealed).is_ok());
        // Keys 1 and 2 have the same bytes here: only the header's id differs, and it is bound.
        sealed[4] = 1;
        assert_eq!(r.open(KeyContext::SmsOutbox, b"", &sealed).err(), Some(CryptoError::Unseal));
    }

    /// A value from before the ring whose random nonce happens to look like a header naming a key of
    /// the ring still opens: the header reading fails authentication, the old reading follows.
    #[test]
    fn a_legacy_nonce_that_looks_like_a_header_still_opens() {
        for nonce in [[2, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9], [2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]] {
            let sealed = legacy_seal(&[1; 32], nonce, KeyContext::TotpSecret, b"id", b"secret");
            let (plain, by) =
                ring(&[(1, 1), (2, 2)]).open(KeyContext::TotpSecret, b"id", &sealed).unwrap();
            assert_eq!(
                (plain.as_slice(), by),
                (b"secret".as_slice(), SealedBy { key: 1, legacy: true })
            );
        }
    }

    #[test]
    fn names_newer_key_sees_only_headers_above_the_ring() {
        let rng = SeqRng::new(8);
        let new = ring(&[(1, 1), (2, 2)]).seal(&rng, KeyContext::SmsOutbox, b"", b"x").unwrap();
        assert!(ring(&[(1, 1)]).names_newer_key(&new));
        assert!(!ring(&[(1, 1), (2, 2)]).names_newer_key(&new));
        let old = legacy_seal(&[1; 32], [0; 12], KeyContext::SmsOutbox, b"", b"x");
        assert!(!ring(&[(1, 1)]).names_newer_key(&old));
    }

    #[test]
    fn keyed_hash_separates_parts_contexts_and_keys() {
        let key = ServerKey::from_bytes([1; 32]);
        let c = KeyContext::SmsCode;
        assert_ne!(key.keyed_hash(c, &[b"ab", b"c"]), key.keyed_hash(c, &[b"a", b"bc"]));
        assert_ne!(key.keyed_hash(c, &[b"x"]), key.keyed_hash(KeyContext::BackupCode, &[b"x"]));
        let other = ServerKey::from_bytes([2; 32]);
        assert_ne!(key.keyed_hash(c, &[b"x"]), other.keyed_hash(c, &[b"x"]));
        assert_eq!(key.keyed_hash(c, &[b"x"]), key.keyed_hash(c, &[b"x"]));
    }

    /// Keyed hashes depend on the hash key alone: a rotated ring with the first hash key hashes as the
    /// single key from before the ring did.
    #[test]
    fn keyed_hashes_survive_rotation() {
        let before = ServerKey::from_bytes([1; 32]);
        let rotated = ring(&[(1, 1), (2, 2)]);
        let hash = rotated.first_hash_key().unwrap();
        let after = ServerKey::new(rotated.retain(|id| id == 2).unwrap(), hash);
        let c = KeyContext::BackupCode;
        assert_eq!(before.keyed_hash(c, &[b"u", b"code"]), after.keyed_hash(c, &[b"u", b"code"]));
        assert_eq!(after.hash_key_id(), 1);
        assert!(ring(&[(2, 2)]).first_hash_key().is_none());
    }

    #[test]
    fn check_values_tell_rings_apart() {
        let a = ServerKey::from_bytes([1; 32]);
        assert_eq!(a.check_value(), ServerKey::from_bytes([1; 32]).check_value());
        assert_ne!(a.check_value(), ServerKey::from_bytes([2; 32]).check_value());
        assert_eq!(
            a.check_value(),
            ring(&[(1, 1)]).check_value(),
            "a ring of key 1 is the old key"
        );
        let rings: [&[(KeyId, u8)]; 6] = [
            &[(1, 1)],
            &[(1, 1), (2, 2)],
            &[(2, 2)],
            &[(1, 1), (2, 3)],
            &[(1, 1), (3, 2)],
            &[(1, 2)],
        ];
        for (i, x) in rings.iter().enumerate() {
            for (j, y) in rings.iter().enumerate() {
                assert_eq!(
                    ring(x).check_value() == ring(y).check_value(),
                    i == j,
                    "{x:?} vs {y:?}"
                );
            }
        }
        assert_eq!(KeyRing::ids_in_check(&ring(&[(1, 1)]).check_value()), Some(vec![1]));
        assert_eq!(KeyRing::ids_in_check(&ring(&[(1, 1), (2, 2)]).check_value()), Some(vec![1, 2]));
        assert_eq!(KeyRing::ids_in_check(&ring(&[(2, 2)]).check_value()), Some(vec![2]));
        assert_eq!(KeyRing::ids_in_check(b"short"), None);
    }

    /// Stored hashes, sealed values and the check value predate the ring: the label is the first hashed
    /// part and the prefix of the associated data, exactly as the literal contexts were, and the check
    /// value of a single key is the keyed hash of the fixed text.
    #[test]
    fn contexts_keep_the_stored_formats() {
        let key = ServerKey::from_bytes([3; 32]);
        let hash_key = derive(&[3; 32], b"auth-core/v1/keyed-hash");
        let raw = hmac_parts(&hash_key, [b"sms-code".as_slice(), b"u", b"p"].into_iter());
        assert_eq!(key.keyed_hash(KeyContext::SmsCode, &[b"u", b"p"]), raw);
        assert_eq!(
            key.check_value(),
            key.keyed_hash(KeyContext::KeyCheck, &[b"auth-server key check v1"]).to_vec()
        );
        assert_eq!(KeyContext::TotpSecret.aad(b"", b"id"), b"totp-secret:id");
        assert_eq!(KeyContext::SmsOutbox.aad(b"", b""), b"sms-outbox");
    }

    #[test]
    fn rings_refuse_bad_ids() {
        assert_eq!(KeyRing::new(&[]).err(), Some(CryptoError::Ring("no key")));
        assert!(KeyRing::new(&[(0, [1; 32])]).is_err());
        assert!(KeyRing::new(&[(1, [1; 32]), (1, [2; 32])]).is_err());
        assert_eq!(ring(&[(3, 3), (1, 1)]).ids(), vec![1, 3]);
        assert_eq!(ring(&[(3, 3), (1, 1)]).sealing_id(), 3);
        assert!(ring(&[(1, 1)]).retain(|id| id == 2).is_err());
    }

    proptest! {
        /// Any ring opens what it sealed, says its newest key did, and nothing else opens it: not another
        /// purpose, owner or ring; an older ring without that key neither.
        #[test]
        fn sealed_values_open_only_where_they_should(
            masters in proptest::collection::vec(any::<[u8; 32]>(), 1..4),
            other in any::<[u8; 32]>(),
            msg in proptest::collection::vec(any::<u8>(), 0..64),
            binding in proptest::collection::vec(any::<u8>(), 0..20),
            seed in any::<u64>(),
        ) {
            let keys: Vec<(KeyId, [u8; 32])> =
                masters.iter().enumerate().map(|(i, m)| (i as KeyId + 1, *m)).collect();
            let r = KeyRing::new(&keys).unwrap();
            let rng = SeqRng::new(seed);
            let sealed = r.seal(&rng, KeyContext::TotpSecret, &binding, &msg).unwrap();
            let (plain, by) = r.open(KeyContext::TotpSecret, &binding, &sealed).unwrap();
            prop_assert_eq!(plain.as_slice(), msg.as_slice());
            prop_assert_eq!(by, SealedBy { key: r.sealing_id(), legacy: false });
            prop_assert!(r.open(KeyContext::BackupReveal, &binding, &sealed).is_err());
            let mut wrong = binding.clone();
            wrong.push(0);
            prop_assert!(r.open(KeyContext::TotpSecret, &wrong, &sealed).is_err());
            prop_assume!(masters.iter().all(|m| *m != other));
            let strangers: Vec<(KeyId, [u8; 32])> = keys.iter().map(|(id, _)| (*id, other)).collect();
            prop_assert!(KeyRing::new(&strangers).unwrap().open(KeyContext::TotpSecret, &binding, &sealed).is_err());
            if let Ok(older) = r.retain(|id| id != r.sealing_id()) {
                prop_assert!(older.open(KeyContext::TotpSecret, &binding, &sealed).is_err());
            }
            for cut in [0, 5, 17, sealed.len() - 1] {
                prop_assert!(r.open(KeyContext::TotpSecret, &binding, &sealed[..cut]).is_err());
            }
        }

        /// A value from before the ring opens under every ring that holds key 1, whatever its nonce,
        /// and under no ring without it.
        #[test]
        fn legacy_values_open_with_key_one(
            master in any::<[u8; 32]>(),
            newer in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            header_like in any::<bool>(),
            msg in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut nonce = nonce;
            if header_like {
                nonce[..5].copy_from_slice(&[SEALED_V2, 0, 0, 0, 1]);
            }
            let sealed = legacy_seal(&master, nonce, KeyContext::UpstreamRealm, b"r", &msg);
            for r in [KeyRing::single(master), KeyRing::new(&[(1, master), (2, newer)]).unwrap()] {
                let (plain, by) = r.open(KeyContext::UpstreamRealm, b"r", &sealed).unwrap();
                prop_assert_eq!(plain.as_slice(), msg.as_slice());
                prop_assert_eq!(by, SealedBy { key: 1, legacy: true });
                prop_assert!(r.open(KeyContext::UpstreamRealmId, b"r", &sealed).is_err());
            }
            prop_assume!(newer != master);
            prop_assert!(KeyRing::new(&[(2, newer)]).unwrap().open(KeyContext::UpstreamRealm, b"r", &sealed).is_err());
        }
    }
}

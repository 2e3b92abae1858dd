//! The key ring against the database (spec §13 "Key rotation", issue 17): the start-up check that a
//! node's ring is the deployment's, the hash key kept sealed in the meta table, and the walk over every
//! sealed value that `key reseal` (rewrite it under the newest key) and `key retire` (make sure no value
//! still needs an older key) do.
//!
//! The check value in the database covers the whole ring (`KeyRing::check_value`), so a node holding an
//! old key only, a key too few or another key refuses to start, and after every ring change the
//! database names the ring that may run. The hash key is a data key of its own (see `crypto`): it is
//! stored sealed under the ring, rewritten by a reseal like any sealed value, and never rotated here.
//!
//! What this module deliberately does not do: read or write the ring file (auth-server's `keyfile`), or
//! decide when a ring changes (the `key` commands do, and call [`replace_ring`]).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, HashKey, KeyContext, KeyId, KeyRing, SealedBy, ServerKey, ct_eq};
use crate::ports::{Rng, SealedColumn, SealedOwner, SealedSwap, Store, StoreError};
use crate::service::{REALM_META_PREFIX, totp_binding};

/// The meta entry holding the ring's check value.
pub const KEY_CHECK_META: &str = "server_key_check";

/// The meta entry holding the hash key: its id (4 bytes, big-endian), then the key sealed under the
/// ring for [`KeyContext::HashKey`], bound to the id.
pub const HASH_KEY_META: &str = "hash_key";

/// Every purpose an outbox row's text may be sealed for: a reseal tries each, and seals again for the
/// one that opened it. A new kind of outbox message sealed for another purpose belongs here.
pub const OUTBOX_CONTEXTS: &[KeyContext] = &[KeyContext::SmsOutbox, KeyContext::MailOutbox];

/// Why the ring cannot be used with this database.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The database's check value is not this ring's: another key, an old ring, a key missing.
    #[error(
        "the key ring (keys {}) is not the one this database was set up with{}",
        crate::crypto::ids_text(held),
        match expected {
            Some(ids) => format!(" (it expects keys {})", crate::crypto::ids_text(ids)),
            None => String::new(),
        }
    )]
    Mismatch {
        /// The ids the database's check value names, when it names any.
        expected: Option<Vec<KeyId>>,
        /// The ids of the ring that was checked.
        held: Vec<KeyId>,
    },
    /// The hash key in the database was sealed under a key this ring does not hold.
    #[error("the hash key stored in the database cannot be opened with this key ring")]
    HashKeyUnreadable,
    /// The database has no hash key yet, and the ring no key 1 to derive the first one from.
    #[error(
        "the database holds no hash key, and the key ring has no key 1 to derive the first one from"
    )]
    NoHashKey,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Sealing failed (never expected).
    #[error("{0}")]
    Crypto(#[from] CryptoError),
}

/// Checks that `ring` is the database's, storing its check value when the database has none yet.
///
/// # Errors
/// [`KeyringError::Mismatch`] when the database expects another ring; `Store` when it cannot answer.
pub async fn check_ring(store: &dyn Store, ring: &KeyRing) -> Result<(), KeyringError> {
    let mine = ring.check_value();
    let stored = store.init_meta(KEY_CHECK_META, &mine).await?;
    if ct_eq(&stored, &mine) {
        return Ok(());
    }
    Err(KeyringError::Mismatch { expected: KeyRing::ids_in_check(&stored), held: ring.ids() })
}

/// What a node runs with: checks the ring ([`check_ring`]) and opens the hash key ([`hash_key`]).
///
/// # Errors
/// As [`check_ring`] and [`hash_key`].
pub async fn unlock(
    store: &dyn Store,
    ring: KeyRing,
    rng: &dyn Rng,
) -> Result<ServerKey, KeyringError> {
    check_ring(store, &ring).await?;
    let (hash, _) = hash_key(store, &ring, rng).await?;
    Ok(ServerKey::new(ring, hash))
}

/// The hash key stored in the database and the ring key it is sealed under. A database without one
/// gets the first: the keyed-hash sub-key of key 1, which every stored hash from before the ring was
/// made with (of concurrent first calls, one stores it and all of them open what it stored).
///
/// # Errors
/// [`KeyringError::HashKeyUnreadable`] when no key of the ring opens it, [`KeyringError::NoHashKey`]
/// when there is none and the ring lacks key 1, `Store` when the store fails.
pub async fn hash_key(
    store: &dyn Store,
    ring: &KeyRing,
    rng: &dyn Rng,
) -> Result<(HashKey, SealedBy), KeyringError> {
    let stored = match store.meta(HASH_KEY_META).await? {
        Some(v) => v,
        None => {
            let first = ring.first_hash_key().ok_or(KeyringError::NoHashKey)?;
            let sealed = seal_hash_key(ring, rng, &first)?;
            store.init_meta(HASH_KEY_META, &sealed).await?
        }
    };
    open_hash_key(ring, &stored).map_err(|_| KeyringError::HashKeyUnreadable)
}

/// The hash key stored in the database and the ring key it is sealed under, without storing one
/// (for listings); `None` when the database has none yet.
///
/// # Errors
/// [`KeyringError::HashKeyUnreadable`] when no key of the ring opens it, `Store` when the store fails.
pub async fn stored_hash_key(
    store: &dyn Store,
    ring: &KeyRing,
) -> Result<Option<(HashKey, SealedBy)>, KeyringError> {
    match store.meta(HASH_KEY_META).await? {
        Some(v) => open_hash_key(ring, &v).map(Some).map_err(|_| KeyringError::HashKeyUnreadable),
        None => Ok(None),
    }
}

/// Moves the database's check value from `old`'s ring to `new`'s, only while it is still `old`'s
/// (compare and set): false when the database's ring changed meanwhile.
///
/// # Errors
/// `Store` when the store fails.
pub async fn replace_ring(
    store: &dyn Store,
    old: &KeyRing,
    new: &KeyRing,
) -> Result<bool, KeyringError> {
    Ok(store.replace_meta(KEY_CHECK_META, &old.check_value(), &new.check_value()).await?)
}

/// The check value stored in the database, if any (read only; see [`KeyRing::ids_in_check`]).
///
/// # Errors
/// When the store fails.
pub async fn stored_check(store: &dyn Store) -> Result<Option<Vec<u8>>, StoreError> {
    store.meta(KEY_CHECK_META).await
}

fn seal_hash_key(ring: &KeyRing, rng: &dyn Rng, key: &HashKey) -> Result<Vec<u8>, CryptoError> {
    let id = key.id().to_be_bytes();
    let sealed = ring.seal(rng, KeyContext::HashKey, &id, key.bytes())?;
    Ok([id.as_slice(), &sealed].concat())
}

fn open_hash_key(ring: &KeyRing, stored: &[u8]) -> Result<(HashKey, SealedBy), CryptoError> {
    let (id, sealed) = stored.split_first_chunk::<4>().ok_or(CryptoError::Unseal)?;
    let (plain, by) = ring.open(KeyContext::HashKey, id, sealed)?;
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(plain.as_slice().try_into().map_err(|_| CryptoError::Unseal)?);
    Ok((HashKey::from_bytes(KeyId::from_be_bytes(*id), *bytes), by))
}

/// How the value of one owner of a column is sealed.
enum Spec {
    /// Sealed for one of these purposes, bound to `binding`.
    Plain { contexts: &'static [KeyContext], binding: Vec<u8> },
    /// The hash key's entry ([`HASH_KEY_META`]).
    HashKey,
    /// Not a sealed value (a meta entry such as the check value).
    NotSealed,
}

fn spec(column: SealedColumn, owner: &SealedOwner) -> Spec {
    match (column, owner) {
        (SealedColumn::TotpSecret, SealedOwner::User(u)) => {
            Spec::Plain { contexts: &[KeyContext::TotpSecret], binding: totp_binding(*u).to_vec() }
        }
        (SealedColumn::BackupReveal, SealedOwner::User(u)) => Spec::Plain {
            contexts: &[KeyContext::BackupReveal],
            binding: totp_binding(*u).to_vec(),
        },
        (SealedColumn::OutboxText, SealedOwner::Message(_)) => {
            Spec::Plain { contexts: OUTBOX_CONTEXTS, binding: Vec::new() }
        }
        (SealedColumn::Meta, SealedOwner::Name(name)) if name == HASH_KEY_META => Spec::HashKey,
        (SealedColumn::Meta, SealedOwner::Name(name)) => match name.strip_prefix(REALM_META_PREFIX)
        {
            Some(id) => Spec::Plain {
                contexts: &[KeyContext::UpstreamRealm],
                binding: id.as_bytes().to_vec(),
            },
            None => Spec::NotSealed,
        },
        _ => Spec::NotSealed,
    }
}

/// What one stored value is.
enum Examined {
    NotSealed,
    Unreadable,
    /// Opened by this key; `current` when in the newest format under the sealing key.
    Opened {
        by: SealedBy,
        current: bool,
    },
}

fn current(ring: &KeyRing, by: SealedBy) -> bool {
    !by.legacy && by.key == ring.sealing_id()
}

fn examine(ring: &KeyRing, spec: &Spec, stored: &[u8]) -> Examined {
    let by = match spec {
        Spec::NotSealed => return Examined::NotSealed,
        Spec::HashKey => open_hash_key(ring, stored).ok().map(|(_, by)| by),
        Spec::Plain { contexts, binding } => {
            contexts.iter().find_map(|c| ring.open(*c, binding, stored).ok()).map(|(_, by)| by)
        }
    };
    match by {
        Some(by) => Examined::Opened { by, current: current(ring, by) },
        None => Examined::Unreadable,
    }
}

/// The value sealed again under the newest key, or `None` when it needs no reseal or cannot be read.
fn seal_again(
    ring: &KeyRing,
    rng: &dyn Rng,
    spec: &Spec,
    stored: &[u8],
) -> Result<Option<Vec<u8>>, CryptoError> {
    match spec {
        Spec::NotSealed => Ok(None),
        Spec::HashKey => match open_hash_key(ring, stored) {
            Ok((key, by)) if !current(ring, by) => seal_hash_key(ring, rng, &key).map(Some),
            _ => Ok(None),
        },
        Spec::Plain { contexts, binding } => {
            for c in contexts.iter() {
                if let Ok((plain, by)) = ring.open(*c, binding, stored) {
                    if current(ring, by) {
                        return Ok(None);
                    }
                    return ring.seal(rng, *c, binding, &plain).map(Some);
                }
            }
            Ok(None)
        }
    }
}

/// What a reseal did to one column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResealCounts {
    /// Rewritten under the newest key.
    pub resealed: u64,
    /// Already under the newest key.
    pub current: u64,
    /// Rewritten by someone else between the read and the swap, so left as they wrote it.
    pub changed: u64,
    /// Opened by no key of the ring (left alone).
    pub unreadable: u64,
}

/// What a reseal did, column by column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Per column.
    pub columns: BTreeMap<SealedColumn, ResealCounts>,
}

/// Rewrites every sealed value that is not under the newest key of `ring` (values from before the
/// ring included) in batches of `batch`: each batch is one read and one short transaction of
/// compare-and-set swaps, so servers keep serving, and a value they rewrite meanwhile is kept as they
/// wrote it (counted as changed). The caller has checked the ring ([`unlock`]).
///
/// # Errors
/// `Store` when the store fails (what was swapped before stays swapped; running it again continues).
pub async fn reseal(
    store: &dyn Store,
    ring: &KeyRing,
    rng: &dyn Rng,
    batch: u32,
) -> Result<ResealReport, KeyringError> {
    let batch = batch.max(1);
    let mut report = ResealReport::default();
    for column in SealedColumn::ALL {
        let mut counts = ResealCounts::default();
        let mut after: Option<SealedOwner> = None;
        loop {
            let page = store.sealed_values(column, after.as_ref(), batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.owner.clone());
            let mut swaps = Vec::new();
            for v in &page {
                let spec = spec(column, &v.owner);
                match examine(ring, &spec, &v.sealed) {
                    Examined::NotSealed => {}
                    Examined::Unreadable => counts.unreadable += 1,
                    Examined::Opened { current: true, .. } => counts.current += 1,
                    Examined::Opened { current: false, .. } => {
                        if let Some(new) = seal_again(ring, rng, &spec, &v.sealed)? {
                            swaps.push(SealedSwap {
                                owner: v.owner.clone(),
                                old: v.sealed.clone(),
                                new,
                            });
                        }
                    }
                }
            }
            if !swaps.is_empty() {
                for done in store.swap_sealed(column, &swaps).await? {
                    if done {
                        counts.resealed += 1;
                    } else {
                        counts.changed += 1;
                    }
                }
            }
            if page.len() < batch as usize {
                break;
            }
        }
        report.columns.insert(column, counts);
    }
    Ok(report)
}

/// Which key every sealed value needs, column by column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// How many values each ring key opens (values from before the ring count for key 1).
    pub by_key: BTreeMap<SealedColumn, BTreeMap<KeyId, u64>>,
    /// How many values no key of the ring opens.
    pub unreadable: BTreeMap<SealedColumn, u64>,
}

impl Survey {
    /// How many readable values need another key than `keep`.
    pub fn needing_other_than(&self, keep: KeyId) -> u64 {
        self.by_key
            .values()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| **k != keep)
            .map(|(_, n)| n)
            .sum()
    }

    /// How many values no key opens.
    pub fn unreadable_total(&self) -> u64 {
        self.unreadable.values().sum()
    }
}

/// Reads every sealed value in batches of `batch` and counts which key of `ring` opens it: what
/// `key retire` checks before it drops the older keys.
///
/// # Errors
/// `Store` when the store fails.
pub async fn survey(store: &dyn Store, ring: &KeyRing, batch: u32) -> Result<Survey, KeyringError> {
    let batch = batch.max(1);
    let mut survey = Survey::default();
    for column in SealedColumn::ALL {
        let mut after: Option<SealedOwner> = None;
        loop {
            let page = store.sealed_values(column, after.as_ref(), batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.owner.clone());
            for v in &page {
                match examine(ring, &spec(column, &v.owner), &v.sealed) {
                    Examined::NotSealed => {}
                    Examined::Unreadable => *survey.unreadable.entry(column).or_default() += 1,
                    Examined::Opened { by, .. } => {
                        *survey.by_key.entry(column).or_default().entry(by.key).or_default() += 1;
                    }
                }
            }
            if page.len() < batch as usize {
                break;
            }
        }
    }
    Ok(survey)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::crypto::legacy_seal_for_tests;
    use crate::model::{PortalId, UserId};
    use crate::ports::{MetaStore, NewOutboxMessage, OutboxStore, SealedStore, TotpStore};
    use crate::testkit::{MemStore, SeqRng};

    fn ring(keys: &[(KeyId, u8)]) -> KeyRing {
        let keys: Vec<(KeyId, [u8; 32])> = keys.iter().map(|(id, b)| (*id, [*b; 32])).collect();
        KeyRing::new(&keys).unwrap()
    }

    fn user(n: u8) -> UserId {
        UserId::from_random_bytes([n; 16])
    }

    /// What the store holds before the ring: a TOTP secret in the old format, one sealed by key 1
    /// with a header, a reveal, an SMS in the outbox and an upstream realm.
    async fn populate(store: &MemStore, rng: &SeqRng) {
        let one = ring(&[(1, 1)]);
        let b = |u| totp_binding(user(u));
        let old = legacy_seal_for_tests(&[1; 32], [4; 12], KeyContext::TotpSecret, &b(1), b"s1");
        store.create_totp(user(1), &old).await.unwrap();
        let new = one.seal(rng, KeyContext::TotpSecret, &b(2), b"s2").unwrap();
        store.create_totp(user(2), &new).await.unwrap();
        let reveal = one.seal(rng, KeyContext::BackupReveal, &b(2), b"codes").unwrap();
        store.activate_totp(user(2), &[[7; 32]], &reveal).await.unwrap();
        let text = one.seal(rng, KeyContext::SmsOutbox, b"", b"Code: 123456").unwrap();
        let msg = NewOutboxMessage {
            portal: PortalId::from_random_bytes([9; 16]),
            to: "79123456789".into(),
            sealed_text: text,
            created_at: Timestamp::UNIX_EPOCH,
        };
        store.enqueue_sms(&msg).await.unwrap();
        let realm = one.seal(rng, KeyContext::UpstreamRealm, b"abc", b"realm").unwrap();
        store.init_meta("upstream_realm:abc", &realm).await.unwrap();
    }

    /// Every sealed value of `populate` opens with `ring`, to its plaintext.
    async fn all_open(store: &MemStore, ring: &KeyRing) {
        let b = |u| totp_binding(user(u));
        let totp = |u| async move { store.totp(user(u)).await.unwrap().unwrap().sealed_secret };
        let open = |c, binding: &[u8], v: &[u8]| ring.open(c, binding, v).unwrap().0.to_vec();
        assert_eq!(open(KeyContext::TotpSecret, &b(1), &totp(1).await), b"s1");
        assert_eq!(open(KeyContext::TotpSecret, &b(2), &totp(2).await), b"s2");
        let page = store.sealed_values(SealedColumn::BackupReveal, None, 10).await.unwrap();
        assert_eq!(open(KeyContext::BackupReveal, &b(2), &page[0].sealed), b"codes");
        let msgs = store.recent_sms(10).await.unwrap();
        assert_eq!(open(KeyContext::SmsOutbox, b"", &msgs[0].sealed_text), b"Code: 123456");
        let realm = store.meta("upstream_realm:abc").await.unwrap().unwrap();
        assert_eq!(open(KeyContext::UpstreamRealm, b"abc", &realm), b"realm");
    }

    #[tokio::test]
    async fn a_fresh_database_takes_the_ring_and_the_first_hash_key() {
        let store = MemStore::new();
        let rng = SeqRng::new(1);
        let key = unlock(&store, ring(&[(1, 1)]), &rng).await.unwrap();
        let before = ServerKey::from_bytes([1; 32]);
        let c = KeyContext::BackupCode;
        assert_eq!(key.keyed_hash(c, &[b"x"]), before.keyed_hash(c, &[b"x"]));
        assert_eq!(store.meta(KEY_CHECK_META).await.unwrap(), Some(before.check_value()));
        assert!(store.meta(HASH_KEY_META).await.unwrap().is_some());
        // A second start opens what the first stored.
        let again = unlock(&store, ring(&[(1, 1)]), &rng).await.unwrap();
        assert_eq!(again.keyed_hash(c, &[b"x"]), before.keyed_hash(c, &[b"x"]));

        let e = unlock(&store, ring(&[(1, 2)]), &rng).await.unwrap_err();
        assert!(
            matches!(&e, KeyringError::Mismatch { expected: Some(x), held } if x == &[1] && held == &[1]),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn rotate_reseal_retire_keeps_every_value_and_every_hash() {
        let store = MemStore::new();
        let rng = SeqRng::new(2);
        let one = ring(&[(1, 1)]);
        let key1 = unlock(&store, one.clone(), &rng).await.unwrap();
        populate(&store, &rng).await;
        let hashed = key1.keyed_hash(KeyContext::SmsCode, &[b"u", b"p"]);

        // Rotate: the database takes the new ring only in place of the old one.
        let both = ring(&[(1, 1), (2, 2)]);
        assert!(!replace_ring(&store, &ring(&[(1, 9)]), &both).await.unwrap());
        assert!(replace_ring(&store, &one, &both).await.unwrap());
        let e = unlock(&store, one.clone(), &rng).await.unwrap_err();
        assert!(
            matches!(&e, KeyringError::Mismatch { expected: Some(x), .. } if x == &[1, 2]),
            "{e}"
        );
        let key12 = unlock(&store, both.clone(), &rng).await.unwrap();
        assert_eq!(key12.keyed_hash(KeyContext::SmsCode, &[b"u", b"p"]), hashed);
        all_open(&store, &both).await;
        let s = survey(&store, &both, 2).await.unwrap();
        assert_eq!(s.needing_other_than(2), 6, "{s:?}");

        // Reseal, in batches of two: everything is under key 2, the hash key too.
        let report = reseal(&store, &both, &rng, 2).await.unwrap();
        let counts = |c| report.columns[&c];
        assert_eq!(counts(SealedColumn::TotpSecret).resealed, 2);
        assert_eq!(counts(SealedColumn::BackupReveal).resealed, 1);
        assert_eq!(counts(SealedColumn::OutboxText).resealed, 1);
        assert_eq!(counts(SealedColumn::Meta).resealed, 2, "the realm and the hash key");
        let s = survey(&store, &both, 2).await.unwrap();
        assert_eq!((s.needing_other_than(2), s.unreadable_total()), (0, 0), "{s:?}");
        let again = reseal(&store, &both, &rng, 100).await.unwrap();
        assert_eq!(again.columns[&SealedColumn::TotpSecret].current, 2);
        assert!(again.columns.values().all(|c| c.resealed == 0));

        // Retire: key 1 is gone, and everything still opens and hashes as before.
        let two = both.retain(|id| id == 2).unwrap();
        assert!(replace_ring(&store, &both, &two).await.unwrap());
        let key2 = unlock(&store, two.clone(), &rng).await.unwrap();
        assert_eq!(key2.keyed_hash(KeyContext::SmsCode, &[b"u", b"p"]), hashed);
        assert_eq!(key2.hash_key_id(), 1);
        all_open(&store, &two).await;
        for stale in [one, both] {
            assert!(matches!(
                unlock(&store, stale, &rng).await,
                Err(KeyringError::Mismatch { expected: Some(x), .. }) if x == [2]
            ));
        }
    }

    #[tokio::test]
    async fn values_no_key_opens_are_counted_and_left_alone() {
        let store = MemStore::new();
        let rng = SeqRng::new(3);
        let both = ring(&[(1, 1), (2, 2)]);
        let stranger = ring(&[(1, 7)]);
        let junk =
            stranger.seal(&rng, KeyContext::TotpSecret, &totp_binding(user(5)), b"x").unwrap();
        store.create_totp(user(5), &junk).await.unwrap();
        store.init_meta("not_sealed", b"plain").await.unwrap();
        let report = reseal(&store, &both, &rng, 10).await.unwrap();
        assert_eq!(report.columns[&SealedColumn::TotpSecret].unreadable, 1);
        assert_eq!(report.columns[&SealedColumn::Meta], ResealCounts::default());
        assert_eq!(store.totp(user(5)).await.unwrap().unwrap().sealed_secret, junk);
        assert_eq!(survey(&store, &both, 10).await.unwrap().unreadable_total(), 1);
    }

    #[tokio::test]
    async fn a_database_without_a_hash_key_needs_key_one() {
        let store = MemStore::new();
        let rng = SeqRng::new(4);
        let two = ring(&[(2, 2)]);
        store.init_meta(KEY_CHECK_META, &two.check_value()).await.unwrap();
        assert!(matches!(unlock(&store, two, &rng).await, Err(KeyringError::NoHashKey)));
    }
}

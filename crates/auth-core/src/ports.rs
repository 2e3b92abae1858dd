//! The ports: every way auth-core touches the world.
//!
//! auth-core never does I/O. Stores, the SMS gateway, social providers, the password hasher, the clock
//! and randomness all come in through these traits, which adapters implement (auth-sqlite for the
//! stores, auth-server for the clock, randomness and gateways). All async ports use `async-trait`
//! so they can be held as `Arc<dyn …>`.
//!
//! Each method documents its contract. The atomicity promises (marked MUST) are what keep the
//! security limits exact when several server processes share one database: an adapter that breaks
//! one fails the conformance suite in `testkit::conformance`.

use std::net::IpAddr;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditEvent, AuditFilter};
use crate::model::{Credential, Portal, PortalId, User, UserId};
pub use crate::observe::{NoObserver, Observer};
use crate::password::PasswordHash;
pub use crate::password::{HashError, PasswordHasher};
pub use crate::primitives::{Clock, Rng, RngExt};
use crate::secret::SecretString;
use crate::throttle::{Acquire, AcquireThen, Rule, Slot};

/// Why a store call failed. Absence is `Option`, never an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate e-mail in a portal, duplicate host).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store could not answer (I/O error, database locked, disk full, read-only). Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored data could not be read back (corruption, newer schema).
    #[error("store data invalid: {0}")]
    Corrupt(String),
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Users of all portals.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new user. MUST return `Conflict` when the portal already has a user with the same
    /// e-mail (compared case-insensitively) or the id exists.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user of `portal` whose lower-cased e-mail is `email_lower`.
    async fn user_by_email(&self, portal: PortalId, email_lower: &str)
    -> StoreResult<Option<User>>;
    /// Users of one portal (or of all), oldest first.
    async fn list_users(&self, portal: Option<PortalId>) -> StoreResult<Vec<User>>;
    /// How many users exist in all portals.
    async fn count_users(&self) -> StoreResult<u64>;
    /// Replaces the password hash and ends the user's tokens. MUST, in one transaction: write the hash,
    /// bump the user's `revision` and delete every token of the user. False when the user does not exist.
    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool>;
    /// As [`UserStore::set_password_hash`], but the token with hash `keep` survives (the user changed
    /// their own password with it; spec §14 "ends the user's other tokens").
    async fn set_password_hash_keeping(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: &[u8; 32],
    ) -> StoreResult<bool>;
    /// Disables (MUST, in one transaction: set the flag, bump `revision`, delete the user's tokens) or
    /// enables (the flag alone). False when the user does not exist.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    /// Sets (or clears) the phone and its activation flag unconditionally (admin reset).
    async fn set_phone(
        &self,
        id: UserId,
        phone: Option<&str>,
        activated: bool,
    ) -> StoreResult<bool>;
    /// Stores `phone` as not activated, MUST only succeed while the current phone is not activated
    /// (one statement: check and write together). False when it is activated or the user is missing.
    async fn set_phone_if_unactivated(&self, id: UserId, phone: &str) -> StoreResult<bool>;
    /// Marks the phone activated, MUST only when the stored phone still equals `phone`.
    async fn activate_phone(&self, id: UserId, phone: &str) -> StoreResult<bool>;
    /// Replaces the credential with an argon2id hash of the same password (an upgrade at login, spec
    /// §5.1). MUST only when the stored credential is still `old` (compare and set in one statement),
    /// and leaves the revision and the tokens alone: the password did not change. True when replaced.
    async fn upgrade_credential(
        &self,
        id: UserId,
        old: &Credential,
        new: &PasswordHash,
    ) -> StoreResult<bool>;
    /// Rewrites the profile of an existing user from another source (a directory, an import): e-mail,
    /// names, admin flag, phone and its activation, and the credential. The id, portal, disabled flag,
    /// creation time, revision and tokens stay. MUST return `Conflict` when the new e-mail belongs to
    /// another user of the portal. False when the user does not exist.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;
    /// Inserts many new users in one transaction (a bulk import): a user whose id exists, or whose
    /// e-mail the portal already has, is left out. One flag per user, in order: true when inserted.
    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>>;
}

/// Portals (tenants).
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Inserts a portal. MUST return `Conflict` when one of its hosts belongs to another portal.
    async fn insert_portal(&self, portal: &Portal) -> StoreResult<()>;
    /// Inserts `portal` only when the store holds no portal at all, and answers the oldest portal:
    /// `portal` itself, or the one that was already there. MUST decide and insert in one
    /// transaction that excludes a concurrent call from any process or node, so two first starts
    /// (or two admin commands on a fresh database) make one default portal, not two.
    async fn insert_first_portal(&self, portal: &Portal) -> StoreResult<Portal>;
    /// Replaces name, hosts and settings. MUST, in one transaction: write them, bump the portal's
    /// `revision`, and when `end_tokens` delete every token of the portal. False when it does not exist.
    /// `Conflict` as for insert. (`portal.revision` is ignored: the store owns it.)
    async fn update_portal(&self, portal: &Portal, end_tokens: bool) -> StoreResult<bool>;
    /// All portals, oldest first.
    async fn list_portals(&self) -> StoreResult<Vec<Portal>>;
}

/// One SMS code as stored: only its keyed hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsCodeRecord {
    /// Whose code.
    pub user: UserId,
    /// The phone (digits) it was sent to.
    pub phone: String,
    /// Keyed hash of the code.
    pub code_hash: [u8; 32],
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

/// Outstanding SMS codes.
#[async_trait]
pub trait SmsCodeStore: Send + Sync {
    /// Adds a code. In the same transaction it MUST drop the user's expired codes (at `now`) and then
    /// the oldest ones beyond `max_outstanding`, so no more than that many are ever outstanding.
    async fn insert_sms_code(
        &self,
        code: &SmsCodeRecord,
        max_outstanding: u32,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The newest code of `user` for `phone` not expired at `now`.
    async fn newest_sms_code(
        &self,
        user: UserId,
        phone: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SmsCodeRecord>>;
    /// If an unexpired code of `user` for `phone` has this hash, deletes ALL codes of the user and
    /// returns true; else changes nothing and returns false. MUST be atomic: of any number of
    /// concurrent calls with the same code, exactly one returns true.
    async fn consume_sms_code(
        &self,
        user: UserId,
        phone: &str,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes every code of the user.
    async fn burn_sms_codes(&self, user: UserId) -> StoreResult<()>;
}

/// A user's TOTP state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    /// The 20-byte secret sealed with the server key.
    pub sealed_secret: Vec<u8>,
    /// Whether a first code was accepted.
    pub activated: bool,
    /// The newest time step that was accepted; no step at or before it validates again.
    pub last_step: Option<u64>,
}

/// One backup code as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupCodeRecord {
    /// Keyed hash of the normalised code.
    pub code_hash: [u8; 32],
    /// Whether it has been used.
    pub used: bool,
}

/// TOTP secrets, used steps and backup codes.
#[async_trait]
pub trait TotpStore: Send + Sync {
    /// The user's TOTP state.
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>>;
    /// Creates a not-activated record with this secret, MUST only when the user has none
    /// (concurrent first logins then agree on one secret). True when created.
    async fn create_totp(&self, user: UserId, sealed_secret: &[u8]) -> StoreResult<bool>;
    /// Records `step` as used, MUST only when it is later than the last used step (compare and set in
    /// one statement). True when recorded; of concurrent calls with one step exactly one is true.
    async fn use_totp_step(&self, user: UserId, step: u64) -> StoreResult<bool>;
    /// Marks the app activated, MUST only when it was not; in the same transaction replaces the
    /// backup codes with `backup_hashes` and stores `reveal` (the sealed plaintext, shown once).
    /// True when this call activated it.
    async fn activate_totp(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: &[u8],
    ) -> StoreResult<bool>;
    /// Removes the TOTP state, the backup codes and any pending reveal.
    async fn delete_totp(&self, user: UserId) -> StoreResult<()>;
    /// The backup codes in issue order.
    async fn backup_codes(&self, user: UserId) -> StoreResult<Vec<BackupCodeRecord>>;
    /// Replaces the backup codes and the pending reveal in one transaction.
    async fn replace_backup_codes(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: Option<&[u8]>,
    ) -> StoreResult<()>;
    /// Marks the unused code with this hash used. MUST be atomic: exactly one of concurrent calls
    /// with one code returns true.
    async fn use_backup_code(&self, user: UserId, code_hash: &[u8; 32]) -> StoreResult<bool>;
    /// Returns and deletes the pending reveal, atomically (shown once).
    async fn take_backup_reveal(&self, user: UserId) -> StoreResult<Option<Vec<u8>>>;
    /// Stores an imported enrolment (spec §11): the sealed secret, whether it is activated, and its
    /// backup codes with their used flags, in one transaction. MUST only when the user has no TOTP
    /// record (an enrolment made here is never replaced). True when stored.
    async fn import_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        activated: bool,
        codes: &[BackupCodeRecord],
    ) -> StoreResult<bool>;
    /// Marks used the user's codes with these hashes (an import carrying upstream's used flags; a
    /// used code is never made unused again). Returns how many changed.
    async fn mark_backup_codes_used(&self, user: UserId, hashes: &[[u8; 32]]) -> StoreResult<u64>;
}

/// An issued token as stored: only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token's text.
    pub hash: [u8; 32],
    /// Whose token.
    pub user: UserId,
    /// Which portal it was issued by.
    pub portal: PortalId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
    /// The token's public id (spec §13 sessions): a random number below 2^53 that the core draws at
    /// issue, so the sessions list can name a token without anything that derives or proves it.
    /// MUST be unique across the store: an insert whose id another token holds fails with
    /// `Conflict` (and the core draws again). Tokens issued before ids existed were numbered by the
    /// migration that added them.
    pub id: i64,
    /// When the token was last presented, to the precision of the core's coalescing (it starts at
    /// `issued_at` and is moved forward only by [`TokenStore::touch_tokens`]).
    pub last_used_at: Timestamp,
    /// The client address of the login that issued it (`None` for tokens issued before it was kept).
    pub client_ip: Option<IpAddr>,
    /// The `User-Agent` of that login, truncated as the audit trail truncates it.
    pub user_agent: Option<String>,
}

/// The revisions a login read, which a new token must still match (see [`TokenStore::insert_token`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revisions {
    /// The user's `revision`.
    pub user: u64,
    /// The portal's `revision`.
    pub portal: u64,
}

/// What [`TokenStore::finish_sign_in`] writes.
#[derive(Clone, Copy, Debug)]
pub struct SignInWrite<'a> {
    /// The new token.
    pub token: &'a TokenRecord,
    /// The revisions the token must still match.
    pub expect: Revisions,
    /// The audit event of its issue.
    pub event: &'a AuditEvent,
    /// The throttle slots the attempt held (none, one or two).
    pub release: &'a [Slot],
    /// The client that completed the login, to be remembered as known.
    pub known: Option<KnownClient<'a>>,
}

/// A known-client counter key to record once a sign-in succeeds (see
/// [`crate::throttle::keys::known_ip`]). Such keys are only ever recorded and counted, never
/// acquired, so no throttle decision depends on the order of their events, and two sign-ins at
/// once may both record one.
#[derive(Clone, Copy, Debug)]
pub struct KnownClient<'a> {
    /// The counter key.
    pub key: &'a str,
    /// An event at or after this instant makes a new one unnecessary.
    pub since: Timestamp,
    /// The key's rule (its retention bounds the prune, as for [`CounterStore::record`]).
    pub rule: Rule,
}

/// Issued tokens. Revocation deletes, so a revoked token is unknown to every process at once.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token, MUST only while the user's and the portal's revisions are still the ones
    /// given (checked and written in one statement or transaction), so a login that read the user or
    /// the portal before a change that ended their tokens gets no token that survives it. False when a
    /// revision moved (or the user or portal is gone). MUST be durable when it returns true.
    async fn insert_token(&self, token: &TokenRecord, expect: Revisions) -> StoreResult<bool>;
    /// A password sign-in's last write, in one transaction (one commit instead of three): the
    /// attempt's throttle slots given back (as [`CounterStore::release_all`]) whatever else
    /// happens; the token stored MUST only as [`TokenStore::insert_token`] would store it; and,
    /// exactly when the token is stored, `event` appended to the audit trail (as
    /// [`AuditStore::append_audit`]) and the known-client key, if any, recorded (as
    /// [`CounterStore::record`] at the token's `issued_at`) unless it already has an event at or
    /// after its `since`. So a token never exists without the record of its issue, and a refused
    /// token still frees the slots. False, with neither event, exactly when `insert_token` would
    /// answer false (the slots are still given back); a `Conflict` (a taken public id) leaves
    /// nothing at all, slots included. MUST be durable when it returns.
    async fn finish_sign_in(&self, write: &SignInWrite<'_>) -> StoreResult<bool>;
    /// The token with this hash (expired ones may still be returned; the core checks).
    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>>;
    /// The token with this hash together with its user, in one round trip: the hot path of every
    /// authenticated request. `None` when either is missing. MUST agree with `token_by_hash`
    /// followed by `user_by_id`.
    async fn session_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(TokenRecord, User)>>;
    /// Revokes one token; true when it existed.
    async fn revoke_token(&self, hash: &[u8; 32]) -> StoreResult<bool>;
    /// Revokes every token of a user and bumps the user's `revision` (one transaction); returns how
    /// many tokens.
    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<u64>;
    /// Revokes every token of a user but `keep` and bumps the user's `revision` (one transaction), so
    /// logins in flight get no token either; returns how many tokens.
    async fn revoke_user_tokens_except(&self, user: UserId, keep: &[u8; 32]) -> StoreResult<u64>;
    /// Revokes every token of a portal; returns how many.
    async fn revoke_portal_tokens(&self, portal: PortalId) -> StoreResult<u64>;
    /// Deletes tokens expired before `now`; returns how many.
    async fn purge_expired_tokens(&self, now: Timestamp) -> StoreResult<u64>;
    /// Every token of the user (expired ones may still be returned; the core checks), oldest first
    /// (by `issued_at`, then `id`).
    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes the token with public id `id`, MUST only when it belongs to `user` (checked and
    /// deleted in one statement): a token of another user is left alone and answers false, exactly
    /// like an unknown id. True when a token was revoked.
    async fn revoke_user_token(&self, user: UserId, id: i64) -> StoreResult<bool>;
    /// Records when tokens were last used: for each `(hash, at)`, sets `last_used_at` to `at` where
    /// the stored value is earlier (it never moves back); unknown hashes are skipped. One transaction
    /// for the whole batch; returns how many tokens changed.
    async fn touch_tokens(&self, touches: &[([u8; 32], Timestamp)]) -> StoreResult<u64>;
}

/// Sliding-window counters for every throttle (see [`crate::throttle`]).
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// MUST, in one transaction: drop the key's events older than `rule.retention()`; if the key's
    /// block is later than `now`, refuse with it; if `rule.refused_until(now, events)` refuses, store
    /// that block and refuse; else record an event at `now` and grant its slot.
    async fn acquire(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Acquire>;
    /// Two acquires in a row, the second only when the first granted. Each behaves exactly as
    /// [`CounterStore::acquire`]
    /// (a refused second leaves the first granted; the caller releases it if it must). The default
    /// makes two calls; a store SHOULD override it with one transaction, because a login takes both
    /// of its throttles this way and every commit costs a sync of the log on a durable store.
    ///
    /// Unlike every other write of the ports, its commit MAY answer before it is flushed to disk
    /// (SQLite: not synced; PostgreSQL: `synchronous_commit = off`), provided it reaches the disk
    /// no later than the next flushed commit of the same store (both logs are written in order).
    /// What it writes is an attempt in flight, and callers keep to this: every outcome of the
    /// attempt that must outlive a crash (a failure that counts, its audit event, a token, a
    /// release) is itself a flushed write made after it, before the answer; and a refusal repeats
    /// what the flushed events already say. A crash before that loses only attempts nobody was
    /// answered for.
    async fn acquire_then(
        &self,
        first: (&str, &Rule),
        second: (&str, &Rule),
        now: Timestamp,
    ) -> StoreResult<AcquireThen> {
        match self.acquire(first.0, first.1, now).await? {
            Acquire::Refused { until } => Ok(AcquireThen::Refused { until }),
            Acquire::Granted(slot) => {
                Ok(AcquireThen::Granted(slot, self.acquire(second.0, second.1, now).await?))
            }
        }
    }
    /// Deletes the event of a granted slot (the attempt turned out not to count).
    async fn release(&self, slot: Slot) -> StoreResult<()>;
    /// [`CounterStore::release`] for several slots. The default releases them one by one; a store
    /// SHOULD override it with one statement or transaction, for the reason given at
    /// [`CounterStore::acquire_then`].
    async fn release_all(&self, slots: &[Slot]) -> StoreResult<()> {
        for s in slots {
            self.release(*s).await?;
        }
        Ok(())
    }
    /// Records an event at `now` without any check (it counts for later acquires).
    async fn record(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<()>;
    /// Forgets every event and block of the key.
    async fn reset(&self, key: &str) -> StoreResult<()>;
    /// How many events of the key were recorded at or after `since` (blocks aside).
    async fn count_since(&self, key: &str, since: Timestamp) -> StoreResult<u64>;
    /// Housekeeping: deletes every event recorded before `before` and every block that ended before
    /// it, across all keys, so keys that are never used again (a spray of made-up logins) do not pile
    /// up; except that the events of keys starting with [`crate::throttle::keys::KNOWN_PREFIX`] (the known clients,
    /// remembered for weeks) go only when recorded before `known_before`. The caller passes instants
    /// older than any rule's retention, so no decision changes. Returns how many events were deleted.
    async fn purge_counters(&self, before: Timestamp, known_before: Timestamp) -> StoreResult<u64>;
}

/// The audit trail (append only).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The newest events matching the filter, newest first, at most `limit`.
    async fn recent_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// Retention (spec §13): of the `limit` oldest events, deletes those older than `before`, in one
    /// short statement; returns how many. Called in a loop until it deletes fewer than `limit`, so
    /// no purge holds the write lock for long.
    async fn purge_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
    /// One page of an export (spec §13 `audit --since --until`): at most `limit` events matching the
    /// filter with `since <= at < until`, oldest first (by `at`, then append order), strictly after
    /// `after` when given; each with the cursor that resumes after it. A page is one short read, so
    /// an export of any size holds no lock for long and needs no more memory than a page.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        since: Timestamp,
        until: Timestamp,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditCursor, AuditEvent)>>;
}

/// Where a paged read of the audit trail resumes: just after the event with this time and this
/// store-assigned append number. Opaque to everyone but the store that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditCursor {
    /// The event's time.
    pub at: Timestamp,
    /// The event's append number in the store (unique, increasing).
    pub seq: i64,
}

/// What an outbox message travels by: each channel has its own worker, which claims only its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A text message through the SMS gateway.
    Sms,
    /// An e-mail through the mailer (spec §14).
    Email,
}

impl Channel {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }

    /// The channel of a stored name.
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "sms" => Some(Channel::Sms),
            "email" => Some(Channel::Email),
            _ => None,
        }
    }
}

/// A message (an SMS or an e-mail) waiting in (or gone through) the durable outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Store-assigned id.
    pub id: i64,
    /// The channel it goes by.
    pub channel: Channel,
    /// The portal that sent it.
    pub portal: PortalId,
    /// Recipient digits (SMS) or address (e-mail).
    pub to: String,
    /// The text sealed with the server key (it holds a code).
    pub sealed_text: Vec<u8>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried before this (also the claim lease).
    pub next_attempt_at: Timestamp,
    /// When the gateway accepted it.
    pub sent_at: Option<Timestamp>,
    /// The last delivery error, for operators.
    pub last_error: Option<String>,
}

/// A message to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// The portal that sends it.
    pub portal: PortalId,
    /// Recipient digits.
    pub to: String,
    /// The text sealed with the server key.
    pub sealed_text: Vec<u8>,
    /// When it was enqueued (and first due).
    pub created_at: Timestamp,
}

/// What the outbox still has to deliver, for the metrics (`auth_outbox_depth` and
/// `auth_outbox_oldest_age_seconds`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Messages neither sent nor given up (a message given up has `next_attempt_at` at
    /// [`Timestamp::MAX`]), whatever their channel.
    pub pending: u64,
    /// When the oldest of them was enqueued; `None` when there is none.
    pub oldest: Option<Timestamp>,
}

/// The durable outbox of SMS and e-mail: an accepted send is never lost, and is delivered once.
/// Every method but the enqueues and claims works on messages of either channel (by id).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Enqueues an SMS; MUST be durable when it returns. Returns the id.
    async fn enqueue_sms(&self, msg: &NewOutboxMessage) -> StoreResult<i64>;
    /// Enqueues an e-mail (`to` is the address), as [`OutboxStore::enqueue_sms`] does an SMS.
    async fn enqueue_mail(&self, msg: &NewOutboxMessage) -> StoreResult<i64>;
    /// Claims up to `limit` unsent messages of `channel` due at `now` for the claimant `claim` (a
    /// random number the caller chose for this claim), MUST atomically move their `next_attempt_at`
    /// to `now + lease` and record `claim` on them, so that no other process claims them meanwhile.
    async fn claim_due(
        &self,
        channel: Channel,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
        claim: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// [`OutboxStore::claim_due`] of the SMS channel.
    async fn claim_due_sms(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
        claim: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.claim_due(Channel::Sms, now, lease, limit, claim).await
    }
    /// Extends the lease of a message to `until`, MUST only while it is unsent and still carries
    /// `claim` (another claimant took it after the lease ran out otherwise): the worker calls it just
    /// before each send, so a message is never sent under a lost lease. False when the claim is lost.
    async fn renew_sms_claim(&self, id: i64, claim: i64, until: Timestamp) -> StoreResult<bool>;
    /// Marks a message delivered, MUST only while it still carries `claim`; false otherwise.
    async fn mark_sms_sent(&self, id: i64, claim: i64, at: Timestamp) -> StoreResult<bool>;
    /// Records a failed attempt and when to try next, MUST only while it still carries `claim`;
    /// false otherwise.
    async fn mark_sms_failed(
        &self,
        id: i64,
        claim: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool>;
    /// The newest messages of both channels, newest first.
    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<OutboxMessage>>;
    /// How many messages wait (neither sent nor given up) and when the oldest of them was enqueued.
    /// Read at scrape time, so it MUST be one cheap read over the waiting messages (the index of due
    /// messages), never a scan of the delivered ones that retention keeps.
    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;
    /// Retention (spec §13 `[retention] outbox_days`): deletes up to `limit` of the messages created
    /// before `before` that are done with, oldest first, in one short statement; returns how many.
    /// Done means delivered (`sent_at` set) or given up (unsent with `next_attempt_at` at
    /// `Timestamp::MAX`, as the outbox worker marks it); an unsent message that may still be tried
    /// MUST never be deleted, however old. Called in a loop until it deletes fewer than `limit`.
    async fn purge_outbox(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
}

/// An account link (spec §5.4): the identity `(provider, subject)` at a social provider is this user
/// of this portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLink {
    /// The portal.
    pub portal: PortalId,
    /// The provider's configured name, lower-case.
    pub provider: String,
    /// The provider's stable subject identifier of the account.
    pub subject: String,
    /// The linked user.
    pub user: UserId,
    /// When the link was made.
    pub created_at: Timestamp,
}

/// What an exchanged `codeOAuth` proved, remembered under a keyed hash of the code for a few minutes so
/// step 2 of a 2FA login may send the same code again (a code is exchanged once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RememberedCode {
    /// The provider's configured name, lower-case.
    pub provider: String,
    /// The subject the code proved.
    pub subject: String,
    /// The e-mail the provider gave, if any.
    pub email: Option<String>,
    /// Whether the provider says the e-mail is verified.
    pub email_verified: bool,
    /// When it is forgotten.
    pub expires_at: Timestamp,
}

/// Account links and remembered OAuth codes.
#[async_trait]
pub trait SocialStore: Send + Sync {
    /// Stores a link. MUST be atomic against concurrent links: `(portal, provider, subject)` is unique
    /// (false when it is already linked, to anyone) and so is `(portal, provider, user)` (false when
    /// the user already has a link at that provider).
    async fn insert_link(&self, link: &AccountLink) -> StoreResult<bool>;
    /// The link of an identity.
    async fn link_by_subject(
        &self,
        portal: PortalId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<AccountLink>>;
    /// The user's links, oldest first.
    async fn links_of(&self, user: UserId) -> StoreResult<Vec<AccountLink>>;
    /// Removes the user's link at `provider`; true when there was one.
    async fn delete_link(&self, user: UserId, provider: &str) -> StoreResult<bool>;
    /// Remembers what a code proved, under `code_hash` (a keyed hash of the code, never the code).
    /// A second call with the same hash keeps the first (one exchange, one identity).
    async fn remember_code(&self, code_hash: &[u8; 32], code: &RememberedCode) -> StoreResult<()>;
    /// What the code with this hash proved, unless it expired by `now`.
    async fn recall_code(
        &self,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<RememberedCode>>;
    /// Housekeeping: forgets codes expired before `now`; returns how many.
    async fn purge_codes(&self, now: Timestamp) -> StoreResult<u64>;
}

/// An outstanding password-reset key (spec §14), stored under a keyed hash of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetKey {
    /// Whose password it resets.
    pub user: UserId,
    /// The portal it was sent for (it works on that portal's page only).
    pub portal: PortalId,
    /// The user's `revision` when it was made: a key outlives no change that ended the user's
    /// tokens (a password set since, a disable), so an old mail cannot undo a newer change.
    pub revision: u64,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working (one hour after it was made).
    pub expires_at: Timestamp,
}

/// Password-reset keys.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Stores a key under `hash` (a keyed hash of the key, never the key). MUST be durable when it
    /// returns.
    async fn insert_reset_key(&self, hash: &[u8; 32], key: &ResetKey) -> StoreResult<()>;
    /// Takes the key with this hash: MUST delete it and return it in one statement, so that of
    /// concurrent takes exactly one gets it (single use). An expired key is deleted and returned
    /// too; the caller checks `expires_at`.
    async fn take_reset_key(&self, hash: &[u8; 32]) -> StoreResult<Option<ResetKey>>;
    /// Housekeeping: deletes the keys expired before `now`; returns how many.
    async fn purge_reset_keys(&self, now: Timestamp) -> StoreResult<u64>;
}

/// Small named values the deployment as a whole must agree on (such as the check value of the server
/// key, so two nodes with different keys cannot both run).
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// The value stored under `name`, storing `value` first when there is none (MUST be atomic: of
    /// concurrent first calls, one value wins and all of them get it back).
    async fn init_meta(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
    /// The value stored under `name`, if any.
    async fn meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Replaces the value under `name` by `new`, MUST only while it is still `old` (compare and set in
    /// one statement): how a key rotation moves the check value without losing a concurrent one.
    /// False when the value is another or there is none.
    async fn replace_meta(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}

/// A column that holds values sealed with the server key (spec §13 "Key rotation": `key reseal`
/// rewrites each of them under the newest key of the ring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedColumn {
    /// [`TotpRecord::sealed_secret`], owned by [`SealedOwner::User`].
    TotpSecret,
    /// The pending reveal of a user's backup codes, owned by [`SealedOwner::User`].
    BackupReveal,
    /// [`OutboxMessage::sealed_text`] of every outbox row, whatever it carries, owned by
    /// [`SealedOwner::Message`].
    OutboxText,
    /// Every meta entry ([`MetaStore`]), owned by [`SealedOwner::Name`]; the core knows which names
    /// hold sealed values.
    Meta,
}

impl SealedColumn {
    /// Every column, in the order a reseal walks them.
    pub const ALL: [SealedColumn; 4] = [
        SealedColumn::TotpSecret,
        SealedColumn::BackupReveal,
        SealedColumn::OutboxText,
        SealedColumn::Meta,
    ];

    /// A name for operators.
    pub const fn name(self) -> &'static str {
        match self {
            SealedColumn::TotpSecret => "TOTP secrets",
            SealedColumn::BackupReveal => "backup-code reveals",
            SealedColumn::OutboxText => "outbox texts",
            SealedColumn::Meta => "database values",
        }
    }
}

/// Whose sealed value: the row of its column. Owners of one column are ordered as the store orders
/// them: user ids by their 16 bytes, message ids as numbers, names byte by byte.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SealedOwner {
    /// A user (TOTP secrets, backup-code reveals).
    User(UserId),
    /// An outbox message by its id.
    Message(i64),
    /// A meta entry by its name.
    Name(String),
}

/// One sealed value and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// Its row.
    pub owner: SealedOwner,
    /// The sealed bytes as stored.
    pub sealed: Vec<u8>,
}

/// A compare-and-set of one sealed value: `old` as read, `new` the same plaintext sealed again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSwap {
    /// Its row.
    pub owner: SealedOwner,
    /// The bytes read.
    pub old: Vec<u8>,
    /// The bytes to store instead.
    pub new: Vec<u8>,
}

/// Sealed values column by column, for `key reseal` and `key retire`, which walk them in bounded
/// batches while servers keep serving.
#[async_trait]
pub trait SealedStore: Send + Sync {
    /// Up to `limit` values of `column` whose owners come after `after` (from the first when `None`),
    /// in owner order. Reading page after page from the last owner seen visits every value that
    /// exists throughout, once; a page is read in one statement and holds no lock afterwards.
    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&SealedOwner>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>>;
    /// Applies each swap to `column`: the owner's value becomes `new`, MUST only while it is still
    /// `old` (compare and set per row, so a value a server rewrote meanwhile is never overwritten with
    /// a stale one). Nothing else of the row changes. One flag per swap, in order: true when
    /// replaced; false when the value is another, the row is gone or the owner is not of the column's
    /// kind. The swaps of one call are one short transaction (the caller bounds how many).
    async fn swap_sealed(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> StoreResult<Vec<bool>>;
}

/// Every store port at once; one adapter usually implements them all.
pub trait Store:
    UserStore
    + PortalStore
    + SmsCodeStore
    + TotpStore
    + TokenStore
    + CounterStore
    + AuditStore
    + OutboxStore
    + MetaStore
    + SocialStore
    + RecoveryStore
    + SealedStore
{
}

impl<T> Store for T where
    T: UserStore
        + PortalStore
        + SmsCodeStore
        + TotpStore
        + TokenStore
        + CounterStore
        + AuditStore
        + OutboxStore
        + MetaStore
        + SocialStore
        + RecoveryStore
        + SealedStore
{
}

/// A rendered SMS.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The outbox message's id: gateways send it as an idempotency key, so a repeated delivery of
    /// one message is recognisable as such.
    pub id: i64,
    /// Recipient digits.
    pub to: String,
    /// The text (holds a code: never log it).
    pub text: SecretString,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsMessage")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("text", &"<redacted>")
            .finish()
    }
}

/// Why a gateway did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway refused this message for good (bad number…); it will not be retried.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The gateway could not be reached or failed; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Delivers SMS (file, webhook, a provider). Called by the outbox, never directly by requests.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// Hands one message to the provider.
    async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError>;
}

/// A rendered e-mail (spec §14): a password-reset link or a security notice.
#[derive(Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// The outbox message's id: mailers make the `Message-ID` from it, so a repeated delivery of
    /// one message is recognisable as such by the recipient's mail system.
    pub id: i64,
    /// Recipient address.
    pub to: String,
    /// The subject line (in the portal's language; holds nothing secret).
    pub subject: String,
    /// The plain-text body (a reset mail holds a one-time key: never log it).
    pub text: SecretString,
    /// The same content as simple HTML, every interpolated value escaped.
    pub html: SecretString,
}

impl std::fmt::Debug for MailMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailMessage")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &"<redacted>")
            .field("html", &"<redacted>")
            .finish()
    }
}

/// Why a mailer did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server refused this message for good (a 5xx reply: bad address…); not retried.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The server could not be reached, failed the TLS handshake, or answered 4xx; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Delivers e-mail (SMTP in the server). Called by the outbox, never directly by requests.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands one message to the mail server.
    async fn deliver(&self, mail: &MailMessage) -> Result<(), MailError>;
}

/// What a social provider says about the holder of a proof (spec §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialIdentity {
    /// The provider's stable, unique identifier of the account (`sub`, `id`, …): what links key on.
    pub subject: String,
    /// The e-mail the provider gives, if any.
    pub email: Option<String>,
    /// Whether the provider says that e-mail is verified (only then may it link an account).
    pub email_verified: bool,
    /// Given name, if the provider gives one.
    pub first_name: Option<String>,
    /// Family name, if the provider gives one.
    pub last_name: Option<String>,
}

/// Why a social provider gave no identity.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    /// No provider of that name is configured for the portal.
    #[error("unknown social provider")]
    UnknownProvider,
    /// The provider (or the local verification of an ID token) refused the proof: a bad, expired,
    /// tampered or revoked token, a code that is not valid. Answered like a wrong password.
    #[error("social proof refused: {0}")]
    Rejected(String),
    /// The provider could not be asked: unreachable, timed out, or answering 5xx. Answered 503.
    #[error("social provider unavailable: {0}")]
    Unavailable(String),
}

/// Social login (spec §5.4): which providers a portal offers, and what a proof proves. An
/// `accessToken` is verified (an ID token locally against the provider's keys, any other token at
/// its user-info endpoint); a `codeOAuth` is exchanged at the token endpoint first. Remembering an
/// exchanged code for step 2 is the core's job, not the port's.
#[async_trait]
pub trait SocialProvider: Send + Sync {
    /// The names (lower-case) of the providers `portal` offers, in configuration order.
    fn offered(&self, portal: &Portal) -> Vec<String>;
    /// Whether an unlinked identity of `provider` may be linked to the user with its e-mail, when
    /// the provider says the e-mail is verified (off unless configured).
    fn links_by_verified_email(&self, provider: &str) -> bool;
    /// The identity behind the proof. `access_token` wins over `code` when both are given.
    async fn identify(
        &self,
        portal: &Portal,
        provider: &str,
        access_token: Option<&SecretString>,
        code: Option<&SecretString>,
    ) -> Result<SocialIdentity, SocialError>;

    /// [`SocialProvider::identify`] for a code from an authorization request that used PKCE: the
    /// exchange carries `code_verifier`. The default ignores the verifier (a provider that never
    /// builds authorization URLs never sees one).
    async fn identify_code_with_verifier(
        &self,
        portal: &Portal,
        provider: &str,
        code: &SecretString,
        code_verifier: &SecretString,
    ) -> Result<SocialIdentity, SocialError> {
        let _ = code_verifier;
        self.identify(portal, provider, None, Some(code)).await
    }

    /// Where a browser starts the authorization-code flow at `provider` for `portal`: its
    /// authorization endpoint with `response_type=code`, `client_id`, the configured `redirect_uri`,
    /// `scope`, `state` and the PKCE `code_challenge` (S256). `Ok(None)` when the provider has no
    /// authorization endpoint or no redirect URI, or is not offered on the portal.
    ///
    /// # Errors
    /// [`SocialError::Unavailable`] when the endpoint must be discovered and the provider does not
    /// answer.
    async fn authorization_url(
        &self,
        portal: &Portal,
        provider: &str,
        state: &str,
        code_challenge: &str,
    ) -> Result<Option<String>, SocialError> {
        let _ = (portal, provider, state, code_challenge);
        Ok(None)
    }
}

/// A social provider port with no providers: every social login fails as unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSocialProviders;

#[async_trait]
impl SocialProvider for NoSocialProviders {
    fn offered(&self, _portal: &Portal) -> Vec<String> {
        Vec::new()
    }

    fn links_by_verified_email(&self, _provider: &str) -> bool {
        false
    }

    async fn identify(
        &self,
        _portal: &Portal,
        _provider: &str,
        _access_token: Option<&SecretString>,
        _code: Option<&SecretString>,
    ) -> Result<SocialIdentity, SocialError> {
        Err(SocialError::UnknownProvider)
    }
}

/// A user as a directory has it (spec §5.9), from a successful bind or a sync listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The directory's configured name.
    pub directory: String,
    /// The entry's distinguished name.
    pub dn: String,
    /// E-mail address as the directory has it (the core lower-cases it for lookups).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Mobile number as the directory has it; the core normalises it (spec §5.2).
    pub mobile: Option<String>,
    /// Disabled in the directory (Active Directory's `userAccountControl` bit 2, or a flag attribute).
    pub disabled: bool,
}

/// Why a directory gave no user.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The search found no entry (or more than one) for the login.
    #[error("login unknown to the directory")]
    UnknownLogin,
    /// The bind as the found entry failed.
    #[error("directory refused the password")]
    WrongPassword,
    /// The entry is not a member of the required group.
    #[error("not a member of the required group")]
    NotInGroup,
    /// The entry is disabled in the directory.
    #[error("disabled in the directory")]
    Disabled,
    /// The directory could not be asked: unreachable, timed out, TLS failure, service bind refused.
    /// Answered 503, and says nothing about the client.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

/// LDAP / Active Directory (spec §5.9): which directory a portal signs in against, and what a bind
/// proves. The port searches with its service account and binds as the found entry; it never
/// compares passwords itself. The core refuses an empty password before calling it.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The name of the directory `portal` signs in against, if any.
    fn directory_for(&self, portal: &Portal) -> Option<String>;
    /// The entry behind `login` (a directory login or e-mail) when `password` binds as it, it is in
    /// the required group and not disabled. An unknown login still costs a search.
    async fn authenticate(
        &self,
        directory: &str,
        login: &str,
        password: &SecretString,
    ) -> Result<DirectoryEntry, DirectoryError>;
    /// Every entry the directory's user filter admits (members of the required group only, when one
    /// is set), disabled ones included, for `ldap sync`.
    async fn entries(&self, directory: &str) -> Result<Vec<DirectoryEntry>, DirectoryError>;
}

/// A directory port with no directories: no portal signs in against one.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDirectories;

#[async_trait]
impl Directory for NoDirectories {
    fn directory_for(&self, _portal: &Portal) -> Option<String> {
        None
    }

    async fn authenticate(
        &self,
        _directory: &str,
        _login: &str,
        _password: &SecretString,
    ) -> Result<DirectoryEntry, DirectoryError> {
        Err(DirectoryError::UnknownLogin)
    }

    async fn entries(&self, directory: &str) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        Err(DirectoryError::Unavailable(format!("no directory named {directory:?}")))
    }
}

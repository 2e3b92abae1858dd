//! An in-memory implementation of every store port, keeping every atomicity promise with one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditEvent, AuditFilter};
use crate::later;
use crate::model::{Credential, Portal, PortalId, User, UserId};
use crate::password::PasswordHash;
use crate::ports::{
    AccountLink, AuditCursor, AuditStore, BackupCodeRecord, Channel, CounterStore, MetaStore,
    NewOutboxMessage, OutboxMessage, OutboxStats, OutboxStore, PortalStore, RecoveryStore,
    RememberedCode, ResetKey, Revisions, SealedColumn, SealedOwner, SealedStore, SealedSwap,
    SealedValue, SignInWrite, SmsCodeRecord, SmsCodeStore, SocialStore, StoreError, StoreResult,
    TokenRecord, TokenStore, TotpRecord, TotpStore, UserStore,
};
use crate::throttle::{Acquire, Rule, Slot, keys};

#[derive(Default)]
struct Counter {
    events: Vec<(i64, Timestamp)>,
    blocked_until: Option<Timestamp>,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    portals: Vec<Portal>,
    sms_codes: Vec<SmsCodeRecord>,
    totp: HashMap<UserId, TotpRecord>,
    backup: HashMap<UserId, Vec<BackupCodeRecord>>,
    reveals: HashMap<UserId, Vec<u8>>,
    tokens: HashMap<[u8; 32], TokenRecord>,
    counters: HashMap<String, Counter>,
    slots: HashMap<i64, String>,
    next_id: i64,
    /// The trail, in append order, each event with its append number.
    audit: Vec<(i64, AuditEvent)>,
    outbox: BTreeMap<i64, OutboxMessage>,
    /// The claimant of each claimed outbox message.
    claims: HashMap<i64, i64>,
    meta: HashMap<String, Vec<u8>>,
    links: Vec<AccountLink>,
    codes: HashMap<[u8; 32], RememberedCode>,
    reset_keys: HashMap<[u8; 32], ResetKey>,
    /// When set, every call fails as unavailable (to test fault handling above the store).
    down: bool,
    /// Calls still to fail, by method name ([`MemStore::fail_next`]).
    faults: HashMap<&'static str, usize>,
}

/// Every store port in memory.
#[derive(Default)]
pub struct MemStore(Mutex<State>);

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemStore")
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail as `Unavailable` (or work again).
    pub fn set_down(&self, down: bool) {
        if let Ok(mut s) = self.0.lock() {
            s.down = down;
        }
    }

    /// Makes the next `times` calls of one method fail as `Unavailable`, the rest of the store
    /// working: a fault in the middle of a flow, after its earlier store calls succeeded. The
    /// methods of a sign-in's second half check it (any other name never fails):
    /// `finish_sign_in`, `insert_token`, `use_totp_step`, `use_backup_code`, `activate_totp`,
    /// `consume_sms_code` and `activate_phone`.
    pub fn fail_next(&self, method: &'static str, times: usize) {
        if let Ok(mut s) = self.0.lock() {
            s.faults.insert(method, times);
        }
    }

    /// [`MemStore::state`] for a method that [`MemStore::fail_next`] may make fail.
    fn state_for(&self, method: &'static str) -> StoreResult<MutexGuard<'_, State>> {
        let mut s = self.state()?;
        if let Some(left) = s.faults.get_mut(method)
            && *left > 0
        {
            *left -= 1;
            return Err(StoreError::Unavailable(format!("{method} fails (test)")));
        }
        Ok(s)
    }

    fn enqueue(&self, channel: Channel, msg: &NewOutboxMessage) -> StoreResult<i64> {
        let mut s = self.state()?;
        let id = s.id();
        s.outbox.insert(
            id,
            OutboxMessage {
                id,
                channel,
                portal: msg.portal,
                to: msg.to.clone(),
                sealed_text: msg.sealed_text.clone(),
                created_at: msg.created_at,
                attempts: 0,
                next_attempt_at: msg.created_at,
                sent_at: None,
                last_error: None,
            },
        );
        Ok(id)
    }

    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        let s = self.0.lock().map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        if s.down {
            return Err(StoreError::Unavailable("store is down (test)".into()));
        }
        Ok(s)
    }
}

impl State {
    fn user_mut(&mut self, id: UserId) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    /// Deletes the user's tokens (but `keep`) and bumps the user's revision; how many were deleted.
    fn end_user_tokens(&mut self, user: UserId, keep: Option<&[u8; 32]>) -> u64 {
        if let Some(u) = self.user_mut(user) {
            u.revision += 1;
        }
        let before = self.tokens.len();
        self.tokens.retain(|h, t| t.user != user || Some(h) == keep);
        (before - self.tokens.len()) as u64
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// `TokenStore::insert_token` under the lock the caller holds.
    fn insert_token(&mut self, token: &TokenRecord, expect: Revisions) -> StoreResult<bool> {
        let user_ok = self.users.iter().any(|u| u.id == token.user && u.revision == expect.user);
        let portal_ok =
            self.portals.iter().any(|p| p.id == token.portal && p.revision == expect.portal);
        if !(user_ok && portal_ok) {
            return Ok(false);
        }
        if self.tokens.values().any(|t| t.id == token.id && t.hash != token.hash) {
            return Err(StoreError::Conflict(format!("token id {} is taken", token.id)));
        }
        self.tokens.insert(token.hash, token.clone());
        Ok(true)
    }

    /// `CounterStore::release` under the lock the caller holds.
    fn release(&mut self, slot: Slot) {
        if let Some(key) = self.slots.remove(&slot.0)
            && let Some(c) = self.counters.get_mut(&key)
        {
            c.events.retain(|(id, _)| *id != slot.0);
        }
    }

    /// `CounterStore::record` under the lock the caller holds.
    fn record(&mut self, key: &str, rule: &Rule, now: Timestamp) {
        let id = self.id();
        let c = self.counters.entry(key.to_owned()).or_default();
        let horizon = later(now, -rule.retention());
        c.events.retain(|(_, at)| *at > horizon);
        c.events.push((id, now));
        self.slots.insert(id, key.to_owned());
    }

    /// `CounterStore::count_since` under the lock the caller holds.
    fn count_since(&self, key: &str, since: Timestamp) -> u64 {
        self.counters.get(key).map_or(0, |c| c.events.iter().filter(|(_, t)| *t >= since).count())
            as u64
    }

    fn host_taken(&self, portal: &Portal) -> bool {
        self.portals
            .iter()
            .any(|p| p.id != portal.id && p.hosts.iter().any(|h| portal.hosts.contains(h)))
    }
}

#[async_trait]
impl UserStore for MemStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut s = self.state()?;
        let email = user.email_key();
        if s.users
            .iter()
            .any(|u| u.id == user.id || (u.portal == user.portal && u.email_key() == email))
        {
            return Err(StoreError::Conflict("user exists".into()));
        }
        s.users.push(user.clone());
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.state()?.users.iter().find(|u| u.id == id).cloned())
    }

    async fn user_by_email(
        &self,
        portal: PortalId,
        email_lower: &str,
    ) -> StoreResult<Option<User>> {
        Ok(self
            .state()?
            .users
            .iter()
            .find(|u| u.portal == portal && u.email_key() == email_lower)
            .cloned())
    }

    async fn list_users(&self, portal: Option<PortalId>) -> StoreResult<Vec<User>> {
        Ok(self
            .state()?
            .users
            .iter()
            .filter(|u| portal.is_none_or(|p| p == u.portal))
            .cloned()
            .collect())
    }

    async fn count_users(&self) -> StoreResult<u64> {
        Ok(self.state()?.users.len() as u64)
    }

    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool> {
        let mut s = self.state()?;
        let Some(u) = s.user_mut(id) else { return Ok(false) };
        u.credential = Credential::Password(hash.clone());
        s.end_user_tokens(id, None);
        Ok(true)
    }

    async fn set_password_hash_keeping(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: &[u8; 32],
    ) -> StoreResult<bool> {
        let mut s = self.state()?;
        let Some(u) = s.user_mut(id) else { return Ok(false) };
        u.credential = Credential::Password(hash.clone());
        s.end_user_tokens(id, Some(keep));
        Ok(true)
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let mut s = self.state()?;
        let Some(u) = s.user_mut(id) else { return Ok(false) };
        u.disabled = disabled;
        if disabled {
            s.end_user_tokens(id, None);
        }
        Ok(true)
    }

    async fn set_phone(
        &self,
        id: UserId,
        phone: Option<&str>,
        activated: bool,
    ) -> StoreResult<bool> {
        Ok(self
            .state()?
            .user_mut(id)
            .map(|u| {
                u.phone = phone.map(str::to_owned);
                u.phone_activated = activated && phone.is_some();
            })
            .is_some())
    }

    async fn set_phone_if_unactivated(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        let mut s = self.state()?;
        match s.user_mut(id) {
            Some(u) if !u.phone_activated => {
                u.phone = Some(phone.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn activate_phone(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        let mut s = self.state_for("activate_phone")?;
        match s.user_mut(id) {
            Some(u) if u.phone.as_deref() == Some(phone) => {
                u.phone_activated = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn upgrade_credential(
        &self,
        id: UserId,
        old: &Credential,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        let mut s = self.state()?;
        match s.user_mut(id) {
            Some(u) if u.credential.encode() == old.encode() => {
                u.credential = Credential::Password(new.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let mut s = self.state()?;
        let email = user.email_key();
        let Some(portal) = s.users.iter().find(|u| u.id == user.id).map(|u| u.portal) else {
            return Ok(false);
        };
        if s.users.iter().any(|u| u.id != user.id && u.portal == portal && u.email_key() == email) {
            return Err(StoreError::Conflict("e-mail taken".into()));
        }
        let Some(u) = s.user_mut(user.id) else { return Ok(false) };
        u.email = user.email.clone();
        u.first_name = user.first_name.clone();
        u.last_name = user.last_name.clone();
        u.is_admin = user.is_admin;
        u.phone = user.phone.clone();
        u.phone_activated = user.phone_activated && user.phone.is_some();
        u.credential = user.credential.clone();
        Ok(true)
    }

    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>> {
        let mut s = self.state()?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            let email = user.email_key();
            let taken = s
                .users
                .iter()
                .any(|u| u.id == user.id || (u.portal == user.portal && u.email_key() == email));
            if !taken {
                s.users.push(user.clone());
            }
            out.push(!taken);
        }
        Ok(out)
    }
}

#[async_trait]
impl PortalStore for MemStore {
    async fn insert_portal(&self, portal: &Portal) -> StoreResult<()> {
        let mut s = self.state()?;
        if s.portals.iter().any(|p| p.id == portal.id) || s.host_taken(portal) {
            return Err(StoreError::Conflict("portal or host exists".into()));
        }
        s.portals.push(portal.clone());
        Ok(())
    }

    async fn insert_first_portal(&self, portal: &Portal) -> StoreResult<Portal> {
        let mut s = self.state()?;
        if let Some(first) = s.portals.first() {
            return Ok(first.clone());
        }
        s.portals.push(portal.clone());
        Ok(portal.clone())
    }

    async fn update_portal(&self, portal: &Portal, end_tokens: bool) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.host_taken(portal) {
            return Err(StoreError::Conflict("host belongs to another portal".into()));
        }
        let Some(p) = s.portals.iter_mut().find(|p| p.id == portal.id) else { return Ok(false) };
        let revision = p.revision + 1;
        *p = Portal { revision, ..portal.clone() };
        if end_tokens {
            s.tokens.retain(|_, t| t.portal != portal.id);
        }
        Ok(true)
    }

    async fn list_portals(&self) -> StoreResult<Vec<Portal>> {
        Ok(self.state()?.portals.clone())
    }
}

#[async_trait]
impl SmsCodeStore for MemStore {
    async fn insert_sms_code(
        &self,
        code: &SmsCodeRecord,
        max_outstanding: u32,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut s = self.state()?;
        s.sms_codes.retain(|c| c.user != code.user || c.expires_at > now);
        s.sms_codes.push(code.clone());
        let mut mine: Vec<(Timestamp, usize)> = s
            .sms_codes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.user == code.user)
            .map(|(i, c)| (c.issued_at, i))
            .collect();
        if mine.len() > max_outstanding as usize {
            mine.sort();
            let drop: Vec<usize> =
                mine.iter().take(mine.len() - max_outstanding as usize).map(|(_, i)| *i).collect();
            let mut i = 0;
            s.sms_codes.retain(|_| {
                let keep = !drop.contains(&i);
                i += 1;
                keep
            });
        }
        Ok(())
    }

    async fn newest_sms_code(
        &self,
        user: UserId,
        phone: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SmsCodeRecord>> {
        Ok(self
            .state()?
            .sms_codes
            .iter()
            .filter(|c| c.user == user && c.phone == phone && c.expires_at > now)
            .max_by_key(|c| c.issued_at)
            .cloned())
    }

    async fn consume_sms_code(
        &self,
        user: UserId,
        phone: &str,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.state_for("consume_sms_code")?;
        let hit = s.sms_codes.iter().any(|c| {
            c.user == user && c.phone == phone && c.expires_at > now && c.code_hash == *code_hash
        });
        if hit {
            s.sms_codes.retain(|c| c.user != user);
        }
        Ok(hit)
    }

    async fn burn_sms_codes(&self, user: UserId) -> StoreResult<()> {
        self.state()?.sms_codes.retain(|c| c.user != user);
        Ok(())
    }
}

#[async_trait]
impl TotpStore for MemStore {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>> {
        Ok(self.state()?.totp.get(&user).cloned())
    }

    async fn create_totp(&self, user: UserId, sealed_secret: &[u8]) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.totp.contains_key(&user) {
            return Ok(false);
        }
        s.totp.insert(
            user,
            TotpRecord { sealed_secret: sealed_secret.to_vec(), activated: false, last_step: None },
        );
        Ok(true)
    }

    async fn use_totp_step(&self, user: UserId, step: u64) -> StoreResult<bool> {
        let mut s = self.state_for("use_totp_step")?;
        match s.totp.get_mut(&user) {
            Some(r) if r.last_step.is_none_or(|last| step > last) => {
                r.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn activate_totp(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: &[u8],
    ) -> StoreResult<bool> {
        let mut s = self.state_for("activate_totp")?;
        match s.totp.get_mut(&user) {
            Some(r) if !r.activated => r.activated = true,
            _ => return Ok(false),
        }
        s.backup.insert(
            user,
            backup_hashes.iter().map(|h| BackupCodeRecord { code_hash: *h, used: false }).collect(),
        );
        s.reveals.insert(user, reveal.to_vec());
        Ok(true)
    }

    async fn delete_totp(&self, user: UserId) -> StoreResult<()> {
        let mut s = self.state()?;
        s.totp.remove(&user);
        s.backup.remove(&user);
        s.reveals.remove(&user);
        Ok(())
    }

    async fn backup_codes(&self, user: UserId) -> StoreResult<Vec<BackupCodeRecord>> {
        Ok(self.state()?.backup.get(&user).cloned().unwrap_or_default())
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: Option<&[u8]>,
    ) -> StoreResult<()> {
        let mut s = self.state()?;
        s.backup.insert(
            user,
            backup_hashes.iter().map(|h| BackupCodeRecord { code_hash: *h, used: false }).collect(),
        );
        match reveal {
            Some(r) => s.reveals.insert(user, r.to_vec()),
            None => s.reveals.remove(&user),
        };
        Ok(())
    }

    async fn import_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        activated: bool,
        codes: &[BackupCodeRecord],
    ) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.totp.contains_key(&user) {
            return Ok(false);
        }
        s.totp.insert(
            user,
            TotpRecord { sealed_secret: sealed_secret.to_vec(), activated, last_step: None },
        );
        s.backup.insert(user, codes.to_vec());
        Ok(true)
    }

    async fn mark_backup_codes_used(&self, user: UserId, hashes: &[[u8; 32]]) -> StoreResult<u64> {
        let mut s = self.state()?;
        let Some(codes) = s.backup.get_mut(&user) else { return Ok(0) };
        let mut n = 0;
        for c in codes.iter_mut().filter(|c| !c.used && hashes.contains(&c.code_hash)) {
            c.used = true;
            n += 1;
        }
        Ok(n)
    }

    async fn use_backup_code(&self, user: UserId, code_hash: &[u8; 32]) -> StoreResult<bool> {
        let mut s = self.state_for("use_backup_code")?;
        let Some(codes) = s.backup.get_mut(&user) else { return Ok(false) };
        match codes.iter_mut().find(|c| !c.used && c.code_hash == *code_hash) {
            Some(c) => {
                c.used = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn take_backup_reveal(&self, user: UserId) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.state()?.reveals.remove(&user))
    }
}

#[async_trait]
impl TokenStore for MemStore {
    async fn insert_token(&self, token: &TokenRecord, expect: Revisions) -> StoreResult<bool> {
        self.state_for("insert_token")?.insert_token(token, expect)
    }

    async fn finish_sign_in(&self, w: &SignInWrite<'_>) -> StoreResult<bool> {
        // One lock over all of it, as one transaction would be. The insert changes nothing when it
        // fails, and comes first, so a `Conflict` leaves the slots held.
        let mut s = self.state_for("finish_sign_in")?;
        let stored = s.insert_token(w.token, w.expect)?;
        for slot in w.release {
            s.release(*slot);
        }
        if stored {
            let seq = s.id();
            s.audit.push((seq, w.event.clone()));
            if let Some(k) = w.known
                && s.count_since(k.key, k.since) == 0
            {
                s.record(k.key, &k.rule, w.token.issued_at);
            }
        }
        Ok(stored)
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        Ok(self.state()?.tokens.get(hash).cloned())
    }

    async fn session_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        let s = self.state()?;
        let Some(t) = s.tokens.get(hash) else { return Ok(None) };
        Ok(s.users.iter().find(|u| u.id == t.user).map(|u| (t.clone(), u.clone())))
    }

    async fn revoke_token(&self, hash: &[u8; 32]) -> StoreResult<bool> {
        Ok(self.state()?.tokens.remove(hash).is_some())
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<u64> {
        Ok(self.state()?.end_user_tokens(user, None))
    }

    async fn revoke_user_tokens_except(&self, user: UserId, keep: &[u8; 32]) -> StoreResult<u64> {
        Ok(self.state()?.end_user_tokens(user, Some(keep)))
    }

    async fn revoke_portal_tokens(&self, portal: PortalId) -> StoreResult<u64> {
        let mut s = self.state()?;
        let before = s.tokens.len();
        s.tokens.retain(|_, t| t.portal != portal);
        Ok((before - s.tokens.len()) as u64)
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.state()?;
        let before = s.tokens.len();
        s.tokens.retain(|_, t| t.expires_at > now);
        Ok((before - s.tokens.len()) as u64)
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        let s = self.state()?;
        let mut list: Vec<TokenRecord> =
            s.tokens.values().filter(|t| t.user == user).cloned().collect();
        list.sort_by_key(|t| (t.issued_at, t.id));
        Ok(list)
    }

    async fn revoke_user_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        let mut s = self.state()?;
        let before = s.tokens.len();
        s.tokens.retain(|_, t| !(t.user == user && t.id == id));
        Ok(s.tokens.len() < before)
    }

    async fn touch_tokens(&self, touches: &[([u8; 32], Timestamp)]) -> StoreResult<u64> {
        let mut s = self.state()?;
        let mut n = 0;
        for (hash, at) in touches {
            if let Some(t) = s.tokens.get_mut(hash)
                && t.last_used_at < *at
            {
                t.last_used_at = *at;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[async_trait]
impl CounterStore for MemStore {
    async fn acquire(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Acquire> {
        let mut s = self.state()?;
        let id = s.id();
        let c = s.counters.entry(key.to_owned()).or_default();
        let horizon = later(now, -rule.retention());
        c.events.retain(|(_, at)| *at > horizon);
        if let Some(until) = c.blocked_until.filter(|u| *u > now) {
            return Ok(Acquire::Refused { until });
        }
        let times: Vec<Timestamp> = c.events.iter().map(|(_, at)| *at).collect();
        if let Some(until) = rule.refused_until(now, &times) {
            c.blocked_until = Some(until);
            return Ok(Acquire::Refused { until });
        }
        c.events.push((id, now));
        s.slots.insert(id, key.to_owned());
        Ok(Acquire::Granted(Slot(id)))
    }

    async fn release(&self, slot: Slot) -> StoreResult<()> {
        self.state()?.release(slot);
        Ok(())
    }

    async fn record(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<()> {
        self.state()?.record(key, rule, now);
        Ok(())
    }

    async fn purge_counters(&self, before: Timestamp, known_before: Timestamp) -> StoreResult<u64> {
        let mut s = self.state()?;
        let mut purged = 0u64;
        let mut gone = Vec::new();
        for (key, c) in s.counters.iter_mut() {
            let before = if key.starts_with(keys::KNOWN_PREFIX) { known_before } else { before };
            let n = c.events.len();
            c.events.retain(|(id, at)| {
                let keep = *at >= before;
                if !keep {
                    gone.push(*id);
                }
                keep
            });
            purged += (n - c.events.len()) as u64;
            if c.blocked_until.is_some_and(|u| u < before) {
                c.blocked_until = None;
            }
        }
        s.counters.retain(|_, c| !c.events.is_empty() || c.blocked_until.is_some());
        for id in gone {
            s.slots.remove(&id);
        }
        Ok(purged)
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        let mut s = self.state()?;
        s.counters.remove(key);
        s.slots.retain(|_, k| k != key);
        Ok(())
    }

    async fn count_since(&self, key: &str, since: Timestamp) -> StoreResult<u64> {
        Ok(self.state()?.count_since(key, since))
    }
}

#[async_trait]
impl AuditStore for MemStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let mut s = self.state()?;
        let seq = s.id();
        s.audit.push((seq, event.clone()));
        Ok(())
    }

    async fn recent_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        Ok(self
            .state()?
            .audit
            .iter()
            .rev()
            .map(|(_, e)| e)
            .filter(|e| filter.matches(e))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn purge_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut s = self.state()?;
        let oldest = s.audit.len().min(limit as usize);
        let doomed = s.audit.iter().take(oldest).filter(|(_, e)| e.at < before).count();
        let mut seen = 0;
        s.audit.retain(|(_, e)| {
            seen += 1;
            !(seen <= oldest && e.at < before)
        });
        Ok(doomed as u64)
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        since: Timestamp,
        until: Timestamp,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditCursor, AuditEvent)>> {
        let s = self.state()?;
        let mut page: Vec<(AuditCursor, AuditEvent)> = s
            .audit
            .iter()
            .map(|(seq, e)| (AuditCursor { at: e.at, seq: *seq }, e))
            .filter(|(c, e)| {
                e.at >= since && e.at < until && filter.matches(e) && after.is_none_or(|a| *c > a)
            })
            .map(|(c, e)| (c, e.clone()))
            .collect();
        page.sort_by_key(|(c, _)| *c);
        page.truncate(limit as usize);
        Ok(page)
    }
}

#[async_trait]
impl SocialStore for MemStore {
    async fn insert_link(&self, link: &AccountLink) -> StoreResult<bool> {
        let mut s = self.state()?;
        let taken = s.links.iter().any(|l| {
            l.portal == link.portal
                && l.provider == link.provider
                && (l.subject == link.subject || l.user == link.user)
        });
        if taken {
            return Ok(false);
        }
        s.links.push(link.clone());
        Ok(true)
    }

    async fn link_by_subject(
        &self,
        portal: PortalId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<AccountLink>> {
        let s = self.state()?;
        Ok(s.links
            .iter()
            .find(|l| l.portal == portal && l.provider == provider && l.subject == subject)
            .cloned())
    }

    async fn links_of(&self, user: UserId) -> StoreResult<Vec<AccountLink>> {
        Ok(self.state()?.links.iter().filter(|l| l.user == user).cloned().collect())
    }

    async fn delete_link(&self, user: UserId, provider: &str) -> StoreResult<bool> {
        let mut s = self.state()?;
        let before = s.links.len();
        s.links.retain(|l| !(l.user == user && l.provider == provider));
        Ok(s.links.len() < before)
    }

    async fn remember_code(&self, code_hash: &[u8; 32], code: &RememberedCode) -> StoreResult<()> {
        self.state()?.codes.entry(*code_hash).or_insert_with(|| code.clone());
        Ok(())
    }

    async fn recall_code(
        &self,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<RememberedCode>> {
        Ok(self.state()?.codes.get(code_hash).filter(|c| c.expires_at > now).cloned())
    }

    async fn purge_codes(&self, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.state()?;
        let before = s.codes.len();
        s.codes.retain(|_, c| c.expires_at > now);
        Ok((before - s.codes.len()) as u64)
    }
}

#[async_trait]
impl MetaStore for MemStore {
    async fn init_meta(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let mut s = self.state()?;
        Ok(s.meta.entry(name.to_owned()).or_insert_with(|| value.to_vec()).clone())
    }

    async fn meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.state()?.meta.get(name).cloned())
    }

    async fn replace_meta(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let mut s = self.state()?;
        match s.meta.get_mut(name) {
            Some(v) if v.as_slice() == old => {
                *v = new.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl State {
    /// Every value of a sealed column with its owner, in owner order.
    fn sealed_column(&self, column: SealedColumn) -> Vec<SealedValue> {
        let mut out: Vec<SealedValue> = match column {
            SealedColumn::TotpSecret => self
                .totp
                .iter()
                .map(|(u, t)| SealedValue {
                    owner: SealedOwner::User(*u),
                    sealed: t.sealed_secret.clone(),
                })
                .collect(),
            SealedColumn::BackupReveal => self
                .reveals
                .iter()
                .map(|(u, r)| SealedValue { owner: SealedOwner::User(*u), sealed: r.clone() })
                .collect(),
            SealedColumn::OutboxText => self
                .outbox
                .values()
                .map(|m| SealedValue {
                    owner: SealedOwner::Message(m.id),
                    sealed: m.sealed_text.clone(),
                })
                .collect(),
            SealedColumn::Meta => self
                .meta
                .iter()
                .map(|(n, v)| SealedValue {
                    owner: SealedOwner::Name(n.clone()),
                    sealed: v.clone(),
                })
                .collect(),
        };
        out.sort_by(|a, b| a.owner.cmp(&b.owner));
        out
    }

    /// The stored value of a sealed column's owner, for a swap.
    fn sealed_slot(&mut self, column: SealedColumn, owner: &SealedOwner) -> Option<&mut Vec<u8>> {
        match (column, owner) {
            (SealedColumn::TotpSecret, SealedOwner::User(u)) => {
                self.totp.get_mut(u).map(|t| &mut t.sealed_secret)
            }
            (SealedColumn::BackupReveal, SealedOwner::User(u)) => self.reveals.get_mut(u),
            (SealedColumn::OutboxText, SealedOwner::Message(id)) => {
                self.outbox.get_mut(id).map(|m| &mut m.sealed_text)
            }
            (SealedColumn::Meta, SealedOwner::Name(n)) => self.meta.get_mut(n),
            _ => None,
        }
    }
}

#[async_trait]
impl SealedStore for MemStore {
    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&SealedOwner>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>> {
        let s = self.state()?;
        Ok(s.sealed_column(column)
            .into_iter()
            .filter(|v| after.is_none_or(|a| v.owner > *a))
            .take(limit as usize)
            .collect())
    }

    async fn swap_sealed(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> StoreResult<Vec<bool>> {
        let mut s = self.state()?;
        Ok(swaps
            .iter()
            .map(|w| match s.sealed_slot(column, &w.owner) {
                Some(v) if *v == w.old => {
                    v.clone_from(&w.new);
                    true
                }
                _ => false,
            })
            .collect())
    }
}

#[async_trait]
impl OutboxStore for MemStore {
    async fn enqueue_sms(&self, msg: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Sms, msg)
    }

    async fn enqueue_mail(&self, msg: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Email, msg)
    }

    async fn claim_due(
        &self,
        channel: Channel,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
        claim: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let mut s = self.state()?;
        let mut out = Vec::new();
        for m in s.outbox.values_mut() {
            if out.len() >= limit as usize {
                break;
            }
            if m.channel == channel && m.sent_at.is_none() && m.next_attempt_at <= now {
                m.next_attempt_at = later(now, lease);
                out.push(m.clone());
            }
        }
        for m in &out {
            s.claims.insert(m.id, claim);
        }
        Ok(out)
    }

    async fn renew_sms_claim(&self, id: i64, claim: i64, until: Timestamp) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.claims.get(&id) != Some(&claim) {
            return Ok(false);
        }
        match s.outbox.get_mut(&id) {
            Some(m) if m.sent_at.is_none() => {
                m.next_attempt_at = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_sms_sent(&self, id: i64, claim: i64, at: Timestamp) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.claims.get(&id) != Some(&claim) {
            return Ok(false);
        }
        match s.outbox.get_mut(&id) {
            Some(m) if m.sent_at.is_none() => {
                m.sent_at = Some(at);
                m.attempts += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_sms_failed(
        &self,
        id: i64,
        claim: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.claims.get(&id) != Some(&claim) {
            return Ok(false);
        }
        match s.outbox.get_mut(&id) {
            Some(m) if m.sent_at.is_none() => {
                m.attempts += 1;
                m.next_attempt_at = next_attempt_at;
                m.last_error = Some(error.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        Ok(self.state()?.outbox.values().rev().take(limit as usize).cloned().collect())
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let s = self.state()?;
        let waiting =
            s.outbox.values().filter(|m| m.sent_at.is_none() && m.next_attempt_at < Timestamp::MAX);
        Ok(waiting.fold(OutboxStats::default(), |acc, m| OutboxStats {
            pending: acc.pending + 1,
            oldest: Some(acc.oldest.map_or(m.created_at, |o| o.min(m.created_at))),
        }))
    }

    async fn purge_outbox(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut s = self.state()?;
        let mut doomed: Vec<(Timestamp, i64)> = s
            .outbox
            .values()
            .filter(|m| {
                m.created_at < before
                    && (m.sent_at.is_some() || m.next_attempt_at == Timestamp::MAX)
            })
            .map(|m| (m.created_at, m.id))
            .collect();
        doomed.sort_unstable();
        doomed.truncate(limit as usize);
        for (_, id) in &doomed {
            s.outbox.remove(id);
            s.claims.remove(id);
        }
        Ok(doomed.len() as u64)
    }
}

#[async_trait]
impl RecoveryStore for MemStore {
    async fn insert_reset_key(&self, hash: &[u8; 32], key: &ResetKey) -> StoreResult<()> {
        self.state()?.reset_keys.insert(*hash, key.clone());
        Ok(())
    }

    async fn take_reset_key(&self, hash: &[u8; 32]) -> StoreResult<Option<ResetKey>> {
        Ok(self.state()?.reset_keys.remove(hash))
    }

    async fn purge_reset_keys(&self, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.state()?;
        let before = s.reset_keys.len();
        s.reset_keys.retain(|_, k| k.expires_at >= now);
        Ok((before - s.reset_keys.len()) as u64)
    }
}

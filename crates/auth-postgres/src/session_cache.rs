//! The per-node cache of `session_by_token_hash` (issue 18): the token and its user, kept in this
//! process so that most authenticated requests cost no database round trip, and still exact across
//! nodes. It does not cache misses, any other lookup, or anything a login reads.
//!
//! # Why it stays exact
//!
//! Every change that could make a cached answer wrong (a token deleted, any update of a user row, a
//! portal update) sends `NOTIFY auth_sessions` *in the same transaction*, with a payload naming what
//! changed ([`Change`]); PostgreSQL delivers it at commit, in commit order, to every listening
//! session, and only if the change commits. Each node keeps one connection of its own listening on
//! the channel; a notification drops the matching entries.
//!
//! Delivery takes a moment, so exactness "on the next request" needs both sides to agree on a bound:
//!
//! - The listener asks a trivial query (`SELECT 1`) every [`PROBE_EVERY`]. PostgreSQL sends a
//!   listening session's pending notifications before the answer to its next query, and the listener
//!   applies each notification before it sees the answer that follows it. So when the probe sent at
//!   instant `s` is answered, every change committed before `s` has been applied. A cache entry is
//!   served only while the newest answered probe was sent less than [`LEASE`] ago (the *lease*);
//!   otherwise the lookup goes to the database as if there were no cache.
//! - The writer of a change that ends tokens (or that touches a user who has tokens) waits
//!   [`SETTLE`] (> [`LEASE`]) after its commit before it returns (`PgStore::changed`). A request that
//!   reaches any node after that answer was given can only be served from a cache whose probe was
//!   sent after the commit, and so has applied the notification.
//!
//! A node whose listener is slow or gone just stops serving from its cache. When the listening
//! connection drops, the whole cache is flushed and nothing is cached until a new connection is
//! listening; on reconnect it is flushed again, because notifications sent meanwhile are lost.
//!
//! A lookup that missed reads the database and then stores what it read, unless any invalidation or
//! flush happened while it was reading (the *epoch* moved): the row it read may predate a change
//! whose notification was applied before the row arrived, and storing it would bring the change back.
//!
//! Entries also expire after [`MAX_AGE`], a backstop for changes made behind the store's back (an
//! operator's hand-written SQL: `NOTIFY auth_sessions, '*'` flushes every node) and for nodes of an
//! older build during a rolling upgrade, which change rows without notifying. Expired tokens are
//! never purged from the cache by notification: `purge_expired_tokens` does not notify, because the
//! core refuses an expired token whatever the store answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use auth_core::ports::TokenRecord;
use auth_core::{PortalId, User, UserId};
use deadpool_postgres::Transaction;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Config, Socket};

use crate::error::DbResult;
use crate::store::PgStore;

/// The notification channel.
pub(crate) const CHANNEL: &str = "auth_sessions";
/// Entries kept per node; beyond it, an arbitrary entry makes room (a few hundred bytes each).
pub(crate) const CAPACITY: usize = 16_384;
/// How often the listener proves it is caught up.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(20);
/// How long a probe's answer lets the cache serve: from the probe's send time.
pub(crate) const LEASE: Duration = Duration::from_millis(100);
/// How long a writer waits after committing a change that a cache may hold. Longer than
/// [`LEASE`] by a margin for clocks that tick at slightly different rates on different machines.
pub(crate) const SETTLE: Duration = Duration::from_millis(110);
/// The longest an entry is served, whatever the notifications say.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);
/// A probe unanswered for this long means the connection is dead: reconnect.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to (re)connect the listener.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What changed, as a notification payload names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// One token (deleted).
    Token([u8; 32]),
    /// A user's row (any column) or every token of the user.
    User(UserId),
    /// A portal, or every token of the portal.
    Portal(PortalId),
    /// Anything: drop everything.
    All,
}

impl Change {
    /// The payload: `t:<hex of the hash>`, `u:<uuid>`, `p:<uuid>` or `*`.
    pub(crate) fn payload(&self) -> String {
        match self {
            Change::Token(hash) => {
                let mut s = String::with_capacity(66);
                s.push_str("t:");
                for b in hash {
                    s.push(hex_digit(b >> 4));
                    s.push(hex_digit(b & 0xf));
                }
                s
            }
            Change::User(id) => format!("u:{}", id.0),
            Change::Portal(id) => format!("p:{}", id.0),
            Change::All => "*".to_owned(),
        }
    }

    /// Reads a payload; anything unreadable means "everything", which is always safe.
    pub(crate) fn parse(payload: &str) -> Change {
        let parsed = match payload.split_once(':') {
            Some(("t", hex)) => parse_hash(hex).map(Change::Token),
            Some(("u", id)) => uuid::Uuid::parse_str(id).ok().map(|u| Change::User(UserId(u))),
            Some(("p", id)) => uuid::Uuid::parse_str(id).ok().map(|u| Change::Portal(PortalId(u))),
            _ => None,
        };
        parsed.unwrap_or(Change::All)
    }
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// What the cache knows and how sure it is of it.
pub(crate) struct SessionCache {
    /// The origin of the instants kept as integers below.
    base: Instant,
    /// Nanoseconds after `base` (plus one; zero means "none") of the send time of the newest probe
    /// answered on the current listening connection.
    lease_from: AtomicU64,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    closed: AtomicBool,
    wake: tokio::sync::Notify,
}

struct Inner {
    /// Moves with every invalidation and flush; a lookup stores its row only if it has not moved.
    epoch: u64,
    /// Whether a connection is listening (entries may be stored).
    listening: bool,
    entries: HashMap<[u8; 32], Entry>,
    /// The cached tokens of each user, so a user's change drops them without a scan.
    by_user: HashMap<UserId, Vec<[u8; 32]>>,
}

struct Entry {
    token: TokenRecord,
    user: User,
    stored: Instant,
}

/// A lookup that missed, and may store what it reads.
pub(crate) struct Ticket {
    epoch: u64,
}

/// Counters of a node's cache, for tests and the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to the database.
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
    /// Whether the lease is valid now (a listening connection answered a probe within the lease).
    pub serving: bool,
}

impl SessionCache {
    pub(crate) fn new() -> SessionCache {
        SessionCache {
            base: Instant::now(),
            lease_from: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                epoch: 0,
                listening: false,
                entries: HashMap::new(),
                by_user: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps are consistent after every statement that changes them, so a panic elsewhere
        // while the lock was held leaves nothing half-done.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    /// Whether the lease holds now.
    fn serving(&self, now: Instant) -> bool {
        // Acquire: the invalidations applied before the probe's answer are visible to the lock below.
        let from = self.lease_from.load(Ordering::Acquire);
        from != 0
            && self.nanos(now).saturating_sub(from)
                < u64::try_from(LEASE.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The cached session, or a ticket to store what the database answers (`None`: do not store).
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Result<(TokenRecord, User), Option<Ticket>> {
        let now = Instant::now();
        let serving = self.serving(now);
        let inner = self.lock();
        if serving
            && let Some(e) = inner.entries.get(hash)
            && now.saturating_duration_since(e.stored) < MAX_AGE
        {
            let found = (e.token.clone(), e.user.clone());
            drop(inner);
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        let ticket = inner.listening.then_some(Ticket { epoch: inner.epoch });
        drop(inner);
        self.misses.fetch_add(1, Ordering::Relaxed);
        Err(ticket)
    }

    /// Stores a row read under `ticket`, unless something was invalidated since.
    pub(crate) fn put(&self, ticket: Ticket, token: &TokenRecord, user: &User) {
        let mut inner = self.lock();
        if !inner.listening || inner.epoch != ticket.epoch {
            return;
        }
        if !inner.entries.contains_key(&token.hash) && inner.entries.len() >= CAPACITY {
            // Any entry will do: the cache is a shortcut, and an evicted token is read again.
            if let Some(victim) = inner.entries.keys().next().copied() {
                inner.remove(&victim);
            }
        }
        inner.remove(&token.hash);
        inner.entries.insert(
            token.hash,
            Entry { token: token.clone(), user: user.clone(), stored: Instant::now() },
        );
        inner.by_user.entry(user.id).or_default().push(token.hash);
    }

    /// Drops what `change` may have made wrong.
    pub(crate) fn apply(&self, change: Change) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        match change {
            Change::Token(hash) => inner.remove(&hash),
            Change::User(user) => {
                for hash in inner.by_user.remove(&user).unwrap_or_default() {
                    inner.entries.remove(&hash);
                }
            }
            Change::Portal(portal) => {
                let gone: Vec<[u8; 32]> = inner
                    .entries
                    .iter()
                    .filter(|(_, e)| e.token.portal == portal || e.user.portal == portal)
                    .map(|(h, _)| *h)
                    .collect();
                for hash in gone {
                    inner.remove(&hash);
                }
            }
            Change::All => {
                inner.entries.clear();
                inner.by_user.clear();
            }
        }
    }

    /// The listener is (`true`) or is no longer (`false`) listening: flush either way.
    fn set_listening(&self, listening: bool) {
        if !listening {
            self.lease_from.store(0, Ordering::Release);
        }
        let mut inner = self.lock();
        inner.listening = listening;
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.clear();
        inner.by_user.clear();
    }

    /// A probe sent at `sent` was answered: every change committed before it has been applied.
    fn renew(&self, sent: Instant) {
        self.lease_from.fetch_max(self.nanos(sent), Ordering::Release);
    }

    pub(crate) fn stats(&self) -> SessionCacheStats {
        let entries = self.lock().entries.len();
        SessionCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            serving: self.serving(Instant::now()),
        }
    }

    /// Stops the listener and serves nothing more.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.set_listening(false);
        self.wake.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Inner {
    fn remove(&mut self, hash: &[u8; 32]) {
        let Some(e) = self.entries.remove(hash) else { return };
        if let Some(list) = self.by_user.get_mut(&e.user.id) {
            list.retain(|h| h != hash);
            if list.is_empty() {
                self.by_user.remove(&e.user.id);
            }
        }
    }
}

/// The cached session for `hash`, or what to hand to [`keep`] after reading the database.
pub(crate) fn cached(
    store: &PgStore,
    hash: &[u8; 32],
) -> Result<(TokenRecord, User), Option<Ticket>> {
    match store.session_cache() {
        Some(cache) => cache.get(hash),
        None => Err(None),
    }
}

/// Keeps what the database answered under `ticket` (a miss is not kept).
pub(crate) fn keep(store: &PgStore, ticket: Option<Ticket>, found: Option<&(TokenRecord, User)>) {
    if let (Some(cache), Some(ticket), Some((token, user))) = (store.session_cache(), ticket, found)
    {
        cache.put(ticket, token, user);
    }
}

/// The parameters of `pg_notify` for `change`: the channel and the payload.
pub(crate) fn notification(change: &Change) -> (&'static str, String) {
    (CHANNEL, change.payload())
}

/// Notifies every node's session cache of `change` when `tx` commits (and never if it does not).
pub(crate) async fn notify(tx: &Transaction<'_>, change: Change) -> DbResult<()> {
    let st = tx.prepare_cached("SELECT pg_notify($1, $2)::TEXT").await?;
    tx.execute(&st, &[&CHANNEL, &change.payload()]).await?;
    Ok(())
}

/// Starts the listener of `cache` on its own connection; it ends when the cache is closed or dropped.
pub(crate) fn spawn_listener<T>(cache: &Arc<SessionCache>, config: Config, tls: T)
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let weak = Arc::downgrade(cache);
    tokio::spawn(async move {
        loop {
            let result = listen(&weak, &config, tls.clone()).await;
            let Some(cache) = weak.upgrade() else { return };
            cache.set_listening(false);
            if cache.is_closed() {
                return;
            }
            match result {
                Err(e) => tracing::warn!(
                    error = %e,
                    "the session cache's listening connection failed; lookups go to the database until it is back"
                ),
                Ok(()) => tracing::warn!(
                    "the session cache's listening connection closed; lookups go to the database until it is back"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_AFTER) => {}
                () = cache.wake.notified() => {}
            }
            drop(cache);
            match weak.upgrade() {
                Some(cache) if !cache.is_closed() => {}
                _ => return,
            }
        }
    });
}

/// One listening connection, until it fails or the cache goes away.
async fn listen<T>(
    weak: &Weak<SessionCache>,
    config: &Config,
    tls: T,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
{
    let (client, mut connection) = config.connect(tls).await?;
    // Until LISTEN has committed nothing may be stored, and afterwards every later commit notifies.
    // A notification that arrives before LISTEN's answer is dropped: the flush below covers it.
    {
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        loop {
            tokio::select! {
                done = &mut listen => { done?; break; }
                msg = std::future::poll_fn(|cx| connection.poll_message(cx)) => match msg {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
            }
        }
    }
    match weak.upgrade() {
        Some(cache) if !cache.is_closed() => cache.set_listening(true),
        _ => return Ok(()),
    }
    let mut next_probe = Box::pin(probe(&client, Duration::ZERO));
    loop {
        tokio::select! {
            msg = std::future::poll_fn(|cx| connection.poll_message(cx)) => match msg {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let Some(cache) = weak.upgrade() else { return Ok(()) };
                    if n.channel() == CHANNEL {
                        cache.apply(Change::parse(n.payload()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            answered = &mut next_probe => {
                let Some(cache) = weak.upgrade() else { return Ok(()) };
                if cache.is_closed() {
                    return Ok(());
                }
                match answered {
                    Some(sent) => cache.renew(sent?),
                    // No answer in time: the connection is as good as dead.
                    None => return Ok(()),
                }
                drop(cache);
                next_probe = Box::pin(probe(&client, PROBE_EVERY));
            }
        }
    }
}

/// Waits `after`, then sends a trivial query; its send time once answered, or `None` on timeout.
async fn probe(
    client: &tokio_postgres::Client,
    after: Duration,
) -> Option<Result<Instant, tokio_postgres::Error>> {
    tokio::time::sleep(after).await;
    let sent = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, client.simple_query("SELECT 1")).await {
        Ok(Ok(_)) => Some(Ok(sent)),
        Ok(Err(e)) => Some(Err(e)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_mean_everything() {
        let mut hash = [0u8; 32];
        for (i, b) in hash.iter_mut().enumerate() {
            *b = u8::try_from(i * 7).unwrap();
        }
        let user = UserId(uuid::Uuid::from_bytes([3; 16]));
        let portal = PortalId(uuid::Uuid::from_bytes([4; 16]));
        for change in [Change::Token(hash), Change::User(user), Change::Portal(portal), Change::All]
        {
            assert_eq!(Change::parse(&change.payload()), change, "{}", change.payload());
        }
        for junk in ["", "t:", "t:zz", "u:not-a-uuid", "x:1", "t:0123"] {
            assert_eq!(Change::parse(junk), Change::All, "{junk}");
        }
    }
}

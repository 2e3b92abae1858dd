//! The per-process cache of `session_by_token_hash` (issue 18): the token and its user, kept in
//! memory so that most authenticated requests open no read transaction, and still exact across every
//! process on the database file (servers, the admin CLI). It does not cache misses or anything else.
//!
//! # Why it stays exact
//!
//! Two files beside the database count the changes that can make a cached answer wrong: `-begun`
//! and `-ended`, each grown by one byte per change with `O_APPEND` (an append is atomic, so no
//! process loses another's count; the size *is* the count, read with one `fstat`). Which changes
//! count is decided by the database itself: triggers (migration 0006) bump `session_epoch` on every
//! update or delete of a user, every deleted token and every change of a token's identity, and each
//! write transaction of this adapter compares the epoch before and after its work
//! ([`SqliteStore::write`](crate::SqliteStore)). When it moved, the transaction appends to `-begun`
//! *before* it commits (still holding SQLite's write lock) and to `-ended` after the commit.
//!
//! - An entry remembers the size of `-begun` when it was stored, and is served only while the size
//!   is still that: any change that committed since began (and appended) after the entry was stored,
//!   and every one acknowledged to a caller had appended before its commit. So a revocation from
//!   any process fails the very next lookup in every process.
//! - A lookup that missed reads `-ended` *before* its read transaction and `-begun` after it, and
//!   stores what it read only when the two are equal: then no change was in flight meanwhile and
//!   every change begun before had committed before the read began, so the row read is current.
//! - A process killed between its two appends leaves `-begun` ahead for good: nothing is stored
//!   any more (every lookup reads the database, correct and slower) until a process opens the
//!   database alone, which starts both files again from zero ([`SessionCache::open`]).
//! - Changes made behind the adapter's back (hand-written SQL in the `sqlite3` shell) move the
//!   epoch but append nothing, so entries also expire after [`MAX_AGE`]: such a change is seen
//!   within that time, never later.
//!
//! An in-memory database has one connection in one process; it has no cache.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_core::User;
use auth_core::ports::TokenRecord;

/// The longest an entry is served, whatever the counters say (see the module's last point).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);
/// Entries kept per process; beyond it, an arbitrary entry makes room (a few hundred bytes each).
const CAPACITY: usize = 16_384;

/// One cached answer.
struct Entry {
    record: TokenRecord,
    user: User,
    /// The size of `-begun` when the entry was stored.
    begun: u64,
    stored: Instant,
}

/// What a missed lookup remembers until it has read the database.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    ended: u64,
}

/// The cache of one process (shared by the clones of its store).
pub(crate) struct SessionCache {
    begun: File,
    ended: File,
    max_age: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("max_age", &self.max_age).finish_non_exhaustive()
    }
}

/// The two counter files of the database at `db`.
pub(crate) fn paths(db: &Path) -> [PathBuf; 2] {
    ["-sessions-begun", "-sessions-ended"].map(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

fn open_counter(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

impl SessionCache {
    /// Opens (creating) the counter files of `db`. `alone` says that no other process has the
    /// database open (the caller holds its lock file exclusively): then both counters start again
    /// from zero, which clears what a killed process may have left half-counted.
    pub(crate) fn open(db: &Path, alone: bool, max_age: Duration) -> std::io::Result<Self> {
        let [begun, ended] = paths(db);
        let (begun, ended) = (open_counter(&begun)?, open_counter(&ended)?);
        if alone {
            begun.set_len(0)?;
            ended.set_len(0)?;
        }
        Ok(Self {
            begun,
            ended,
            max_age,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    fn begun(&self) -> Option<u64> {
        self.begun.metadata().ok().map(|m| m.len())
    }

    fn ended(&self) -> Option<u64> {
        self.ended.metadata().ok().map(|m| m.len())
    }

    /// The cached answer for `hash`, or the ticket to store the database's answer with.
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Result<(TokenRecord, User), Option<Ticket>> {
        let begun = self.begun();
        if let (Some(begun), Ok(mut entries)) = (begun, self.entries.lock()) {
            match entries.get(hash) {
                Some(e) if e.begun == begun && e.stored.elapsed() < self.max_age => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((e.record.clone(), e.user.clone()));
                }
                Some(_) => {
                    entries.remove(hash);
                }
                None => {}
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        // Read before the database is: see the module's second point.
        Err(self.ended().map(|ended| Ticket { ended }))
    }

    /// Stores what a missed lookup read, if nothing changed while it read. Misses are not stored.
    pub(crate) fn keep(
        &self,
        ticket: Ticket,
        hash: &[u8; 32],
        found: Option<&(TokenRecord, User)>,
    ) {
        let Some((record, user)) = found else { return };
        let Some(begun) = self.begun() else { return };
        if begun != ticket.ended {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY
            && !entries.contains_key(hash)
            && let Some(victim) = entries.keys().next().copied()
        {
            entries.remove(&victim);
        }
        let entry =
            Entry { record: record.clone(), user: user.clone(), begun, stored: Instant::now() };
        entries.insert(*hash, entry);
    }

    /// Counts a change as begun; called before the commit, under SQLite's write lock. An error
    /// must abort the transaction: a change committed uncounted could be served stale.
    pub(crate) fn begin_change(&self) -> std::io::Result<()> {
        (&self.begun).write_all(&[0])
    }

    /// Counts a change as ended (committed or rolled back); called after the commit. An error here
    /// leaves `-begun` ahead, which only stops the caching (see the module's third point).
    pub(crate) fn end_change(&self) {
        let _ = (&self.ended).write_all(&[0]);
    }

    /// Brings the cached "last used" of the tokens just written up to date, so a cached token does
    /// not look unused and get queued again on every request.
    pub(crate) fn touched(&self, touches: &[([u8; 32], auth_core::Timestamp)]) {
        let Ok(mut entries) = self.entries.lock() else { return };
        for (hash, at) in touches {
            if let Some(e) = entries.get_mut(hash) {
                e.record.last_used_at = e.record.last_used_at.max(*at);
            }
        }
    }

    /// Lookups answered from the cache and from the database, since the store was opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

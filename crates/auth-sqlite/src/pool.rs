//! A small pool of SQLite connections, used only from blocking threads.
//!
//! Why a pool of equal connections and not one writer thread plus readers: the writers that matter
//! are not only ours. Several server processes may share the file, so write serialisation has to
//! happen in SQLite's lock anyway (`BEGIN IMMEDIATE` plus `busy_timeout`); a private writer thread
//! would add a second queue without removing the first. With WAL, reads on the other connections go
//! on while one connection writes, so token checks are not stuck behind a login's writes. Each job
//! borrows one connection for its whole duration and never two, so the pool cannot deadlock;
//! connections are opened lazily up to the limit and kept, with their prepared-statement caches.
//!
//! An in-memory database exists only inside its one connection, so that pool has exactly one,
//! opened eagerly and never dropped.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use auth_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

/// Prepared statements kept per connection (the store has about eighty distinct statements).
const STATEMENT_CACHE: usize = 96;

#[derive(Debug)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

#[derive(Default)]
struct Idle {
    conns: Vec<Connection>,
    open: usize,
}

pub(crate) struct Pool {
    target: Target,
    max: usize,
    busy_timeout: Duration,
    idle: Mutex<Idle>,
    returned: Condvar,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("target", &self.target).field("max", &self.max).finish()
    }
}

/// Opens one connection and sets the per-connection pragmas.
///
/// `journal_mode` is a property of the file and is set once by `SqliteStore::open`; the rest are
/// per connection and must be set on every one.
pub(crate) fn connect(target: &Target, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = match target {
        Target::File(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
        Target::Memory => Connection::open_in_memory()?,
    };
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: in WAL mode this syncs the WAL on every commit, so commits survive a power cut too.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Statement journals (every job of a group commit runs in a savepoint of its own) stay in
    // memory. With temporary files allowed, one that outgrew SQLite's 64 KiB spill threshold was
    // written to a new file, created and unlinked inside the transaction: five system calls and a
    // file's worth of writes on about every second login (docs/PERFORMANCE.md, round eight). The
    // journal holds only the pages one transaction changes, so memory stays small.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The WAL is truncated back to this size after checkpoints instead of keeping its peak size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("connection pool lock poisoned".into())
}

impl Pool {
    /// A pool over `target` with at most `max` connections, starting with `first`.
    pub(crate) fn new(
        target: Target,
        max: usize,
        busy_timeout: Duration,
        first: Connection,
    ) -> Self {
        let max = match target {
            Target::Memory => 1,
            Target::File(_) => max.max(1),
        };
        Self {
            target,
            max,
            busy_timeout,
            idle: Mutex::new(Idle { conns: vec![first], open: 1 }),
            returned: Condvar::new(),
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            Target::Memory => None,
        }
    }

    /// Runs `job` on a borrowed connection and gives the connection back afterwards, also when
    /// `job` panics (the guard's drop runs during unwinding).
    pub(crate) fn with<T>(&self, job: impl FnOnce(&mut Connection) -> T) -> StoreResult<T> {
        let mut lease = Lease { pool: self, conn: Some(self.take()?) };
        match lease.conn.as_mut() {
            Some(conn) => Ok(job(conn)),
            None => Err(StoreError::Unavailable("connection lease empty".into())),
        }
    }

    /// Takes a connection: an idle one, a new one while under the limit, or the next one returned.
    /// Waits at most the busy timeout, then answers `Unavailable` like a locked database would.
    fn take(&self) -> StoreResult<Connection> {
        // A timeout too long to add to the clock waits, in effect, for ever (an hour per wake-up).
        let deadline = Instant::now().checked_add(self.busy_timeout);
        let mut idle: MutexGuard<'_, Idle> = self.idle.lock().map_err(poisoned)?;
        loop {
            if let Some(conn) = idle.conns.pop() {
                return Ok(conn);
            }
            if idle.open < self.max {
                idle.open += 1;
                drop(idle);
                // Opening touches the file system, so it happens outside the lock.
                return connect(&self.target, self.busy_timeout).map_err(|e| {
                    self.forget_one();
                    crate::error::from_sqlite(&e)
                });
            }
            let left = deadline
                .map_or(Duration::from_secs(3600), |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(StoreError::Unavailable("no database connection free".into()));
            }
            idle = self.returned.wait_timeout(idle, left).map_err(poisoned)?.0;
        }
    }

    fn forget_one(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.open = idle.open.saturating_sub(1);
        }
        self.returned.notify_one();
    }

    fn give_back(&self, conn: Connection) {
        // A job that failed between BEGIN and COMMIT leaves its transaction to rusqlite's rollback on
        // drop; if that did not happen, roll back here so the next borrower starts clean. A connection
        // that cannot get back to autocommit is closed, except the in-memory one, which is the data.
        let clean = conn.is_autocommit() || {
            let _ = conn.execute_batch("ROLLBACK");
            conn.is_autocommit()
        };
        if !clean && matches!(self.target, Target::File(_)) {
            drop(conn);
            self.forget_one();
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.conns.push(conn);
        }
        self.returned.notify_one();
    }
}

/// A borrowed connection, given back to the pool when dropped.
struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Target, connect};

    /// Temporary storage (statement journals, sorts, temporary tables) is kept in memory on every
    /// connection the store opens, so a transaction never creates and unlinks a file of its own.
    #[test]
    fn connections_keep_temporary_storage_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::File(dir.path().join("auth.db"));
        let conn = connect(&target, Duration::from_millis(100)).unwrap();
        let mode: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 2, "2 is MEMORY (0 is the compile-time default, 1 FILE)");
    }
}

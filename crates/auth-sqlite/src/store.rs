//! [`SqliteStore`]: opening a database (pragmas, migrations) and running jobs off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{DbError, DbResult, SqliteError};
use crate::group::{Flush, Job, Queued, WriteQueue};
use crate::migrate::migrate;
use crate::pool::{Pool, Target, connect};
use crate::session_cache::SessionCache;

/// Tuning of a [`SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Connections per process (opened lazily). Four lets a handful of reads run beside a write on
    /// a small machine; SQLite admits one writer at a time whatever this is.
    pub max_connections: usize,
    /// How long a call waits for a lock held by another connection or process (and for a free
    /// connection of this pool) before answering `Unavailable`.
    pub busy_timeout: Duration,
    /// Read-only connections for the hot-path lookups that run without a thread hop (see
    /// `SqliteStore::run_read_inline`); 0 sends every read through the blocking pool.
    pub inline_readers: usize,
    /// How long a cached session lookup may be served at most (`session_cache.rs`); zero turns the
    /// cache off. It bounds only changes made behind the store's back: every change made through a
    /// store, in any process, ends the cached entries at once.
    pub session_cache_max_age: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            inline_readers: 2,
            session_cache_max_age: crate::session_cache::MAX_AGE,
        }
    }
}

/// Every store port of auth-core on one SQLite database. Cheap to clone (the clones share the pool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: Arc<Pool>,
    lanes: Arc<Lanes>,
    /// Write jobs waiting for the write lane, run in batches by whoever holds it (`group.rs`).
    queue: Arc<WriteQueue>,
    inline: Arc<Vec<Mutex<Connection>>>,
    /// The session lookups of this process (`None` in memory or when turned off).
    pub(crate) sessions: Option<Arc<SessionCache>>,
    /// The shared lock on `<file>.lock`, held while any clone lives (see `backup.rs`).
    _lock: Option<Arc<std::fs::File>>,
}

/// Admission to the blocking pool: one job that may write at a time (SQLite admits one writer
/// anyway; queueing here, asynchronously and in order, replaces the busy handler's sleep-and-retry
/// inside the process), and the other connections for pure reads, which WAL lets run beside the
/// writer. A job holds its permit until its blocking work ends, so at most `max_connections`
/// blocking threads ever exist and none waits for a connection.
#[derive(Debug)]
struct Lanes {
    write: Arc<tokio::sync::Semaphore>,
    read: Arc<tokio::sync::Semaphore>,
}

impl Lanes {
    fn new(max_connections: usize) -> Arc<Lanes> {
        let readers = max_connections.saturating_sub(1).max(1);
        Arc::new(Lanes {
            write: Arc::new(tokio::sync::Semaphore::new(1)),
            read: Arc::new(tokio::sync::Semaphore::new(readers)),
        })
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` with the default options, and migrates
    /// it to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION). Blocks: call it at start-up, or from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, SqliteError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |e: rusqlite::Error| SqliteError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        // Alone on the file (nobody holds even a shared lock on it), the session counters may start
        // again from zero; then the lock is shared like every other store's.
        let alone = crate::backup::exclusive_lock(&path)?;
        let sessions = if options.session_cache_max_age.is_zero() {
            None
        } else {
            let cache = SessionCache::open(&path, alone.is_some(), options.session_cache_max_age)
                .map_err(|e| SqliteError::Open {
                path: path.display().to_string(),
                message: format!("cannot open the session counters: {e}"),
            })?;
            Some(Arc::new(cache))
        };
        drop(alone);
        let lock = crate::backup::shared_lock(&path)?;
        let target = Target::File(path.clone());
        let mut conn = connect(&target, options.busy_timeout).map_err(open_err)?;
        // WAL is remembered by the file; setting it again is a no-op. It needs a file system with
        // shared memory, so a file that cannot switch is refused rather than run in rollback mode,
        // which would block readers during writes.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::Open {
                path: path.display().to_string(),
                message: format!("cannot switch to WAL journal mode (got {mode:?})"),
            });
        }
        migrate(&mut conn)?;
        let inline = (0..options.inline_readers)
            .map(|_| connect_inline(&target, options.busy_timeout).map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(open_err)?;
        Ok(Self {
            pool: Arc::new(Pool::new(target, options.max_connections, options.busy_timeout, conn)),
            lanes: Lanes::new(options.max_connections),
            queue: Arc::default(),
            inline: Arc::new(inline),
            sessions,
            _lock: Some(Arc::new(lock)),
        })
    }

    /// A private in-memory database (one connection), for tests and throw-away tools.
    pub fn open_in_memory() -> Result<Self, SqliteError> {
        let open_err = |e: rusqlite::Error| SqliteError::Open {
            path: ":memory:".into(),
            message: e.to_string(),
        };
        let options = SqliteOptions::default();
        let mut conn = connect(&Target::Memory, options.busy_timeout).map_err(open_err)?;
        migrate(&mut conn)?;
        Ok(Self {
            pool: Arc::new(Pool::new(Target::Memory, 1, options.busy_timeout, conn)),
            lanes: Lanes::new(1),
            queue: Arc::default(),
            inline: Arc::new(Vec::new()),
            sessions: None,
            _lock: None,
        })
    }

    /// How many session lookups this process's cache answered and how many went to the database,
    /// since the store was opened; `None` when there is no cache (in memory, or turned off).
    pub fn session_cache_stats(&self) -> Option<(u64, u64)> {
        self.sessions.as_deref().map(SessionCache::stats)
    }

    /// Write jobs run and the transactions (commits) they shared since the store was opened: under
    /// concurrent writes the second is the smaller (group commit, `group.rs`).
    pub fn write_stats(&self) -> (u64, u64) {
        self.queue.stats()
    }

    /// Of [`SqliteStore::write_stats`]'s commits, how many were not synced because every write of
    /// theirs was deferred (the throttle slots of attempts in flight, `CounterStore::acquire_then`).
    pub fn unsynced_commits(&self) -> u64 {
        self.queue.unsynced()
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.pool.path()
    }

    /// Answers when the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> StoreResult<()> {
        self.run_read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// Copies the WAL into the database file and truncates the WAL (`wal_checkpoint(TRUNCATE)`),
    /// e.g. before a file-level backup or at shutdown. `Unavailable` when readers kept it from
    /// completing.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        // Not in a transaction: a checkpoint cannot run inside one.
        self.run_in(Lane::Write, |c| {
            let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy != 0 {
                return Err(StoreError::Unavailable("checkpoint blocked by readers".into()).into());
            }
            Ok(())
        })
        .await
    }

    /// Runs `job` on a pooled connection on tokio's blocking pool.
    ///
    /// Outside a tokio runtime (another executor, or a plain `block_on`) the job runs on the calling
    /// thread instead of panicking for want of a runtime.
    ///
    /// If the returned future is dropped (a cancelled request), the job still runs to its commit or
    /// rollback on the blocking thread: cancellation can lose an answer, never half a transaction.
    ///
    /// The job may write, so it waits for the write lane (one such job at a time in this process);
    /// use [`SqliteStore::run_read`] for jobs that only read.
    ///
    /// The job runs in a `BEGIN IMMEDIATE` transaction (see [`SqliteStore::write`]), so that a
    /// change it makes to a session is counted for every process's cache before it commits. Jobs
    /// that queue while another transaction commits share the next one, each in a savepoint of its
    /// own (group commit, `group.rs`): one fsync for all of them, and each answers after that commit.
    pub(crate) async fn run<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.run_queued(Box::new(Queued::new(job, reply)), answer).await
    }

    /// [`SqliteStore::write`] for a job whose commit need not be synced before it answers
    /// ([`Queued::deferred`]): what it writes is on disk once any later synced commit is.
    pub(crate) async fn write_deferred<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.run_queued(Box::new(Queued::deferred(move |c: &mut Connection| job(c), reply)), answer)
            .await
    }

    /// Queues `job`, whose answer comes on `answer`, and drains the queue once it holds the lane.
    async fn run_queued<T>(
        &self,
        job: Box<dyn Job>,
        mut answer: tokio::sync::oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
    {
        self.queue.push(job);
        let gone = || StoreError::Unavailable("the write job was dropped unanswered".into());
        let (pool, queue, sessions) =
            (Arc::clone(&self.pool), Arc::clone(&self.queue), self.sessions.clone());
        let work = move || {
            pool.with(|c| {
                queue.drain(c, |c, flush, jobs| batch(c, sessions.as_deref(), flush, jobs))
            })
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime: the queue is drained on the calling thread, this job included.
            work()?;
            return answer.try_recv().map_err(|_| gone())?;
        };
        // Dropped while waiting here (a cancelled request), the job is skipped: its answer channel
        // is closed. Once a batch has taken it, it runs to that batch's commit or rollback.
        let permit = Arc::clone(&self.lanes.write)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("store closed".into()))?;
        // The batch before this one may have run the job already.
        if let Ok(done) = answer.try_recv() {
            return done;
        }
        let ran = rt
            .spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task did not complete: {e}")));
        // Holding the lane, the drain ran every job queued before it, this one included; if it
        // could not start (no connection), dropping `answer` keeps a later batch from running it.
        match answer.try_recv() {
            Ok(done) => done,
            Err(_) => {
                ran??;
                Err(gone())
            }
        }
    }

    /// [`SqliteStore::run`] for a job that only reads: it runs beside a writer instead of after it.
    pub(crate) async fn run_read<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        self.run_in(Lane::Read, job).await
    }

    /// A read on the hot path (the token lookup of every authenticated request) that runs on the
    /// calling thread when it cannot wait, and in the read lane when it could.
    ///
    /// The inline connections are read-only and have no busy timeout: in WAL mode a reader never
    /// waits for a writer, so the statement either answers from the page cache in microseconds or
    /// reports `SQLITE_BUSY` (a checkpoint or recovery holding the index) at once, and then the job
    /// goes to the blocking pool like any other. A connection already in use by another task is
    /// not waited for either. What this saves is the thread hop of the blocking pool, which was
    /// half the cost of `GET people/@self` (docs/PERFORMANCE.md; docs/decisions/0002).
    pub(crate) async fn run_read_inline<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> DbResult<T> + Clone + Send + 'static,
    {
        for slot in self.inline.iter() {
            let Ok(mut conn) = slot.try_lock() else { continue };
            match job(&mut conn) {
                Ok(v) => return Ok(v),
                Err(DbError::Sql(e)) if would_wait(&e) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.run_read(job).await
    }

    async fn run_in<T, F>(&self, lane: Lane, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.pool);
        let work = move || -> StoreResult<T> { pool.with(job)?.map_err(StoreError::from) };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let lane = match lane {
                    Lane::Write => &self.lanes.write,
                    Lane::Read => &self.lanes.read,
                };
                let permit = Arc::clone(lane)
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::Unavailable("store closed".into()))?;
                // The permit travels with the job, so a cancelled caller does not free its lane
                // while the job still runs.
                let done = move || {
                    let _permit = permit;
                    work()
                };
                rt.spawn_blocking(done).await.map_err(|e| {
                    StoreError::Unavailable(format!("store task did not complete: {e}"))
                })?
            }
            Err(_) => work(),
        }
    }

    /// Runs `job` as one `BEGIN IMMEDIATE` transaction: it holds the write lock from its first
    /// read, so what it reads cannot change before it writes, in this process or any other.
    /// Committed when `job` succeeds, rolled back otherwise. It is [`SqliteStore::run`] for a job
    /// that needs only a shared borrow of the connection.
    pub(crate) async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.run(move |c| job(c)).await
    }

    /// Runs `job` in one read transaction, so several queries see one snapshot.
    pub(crate) async fn read<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> DbResult<T> + Send + 'static,
    {
        self.run_read(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = job(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

/// A write transaction's view of the session epoch (migration 0006): read at its start, compared
/// at its end, and when it moved, counted for every process's session cache around the commit.
struct Watch<'c> {
    sessions: Option<&'c SessionCache>,
    before: i64,
}

fn session_epoch(c: &Connection) -> DbResult<i64> {
    Ok(c.prepare_cached("SELECT n FROM session_epoch WHERE id = 1")?.query_row([], |r| r.get(0))?)
}

impl<'c> Watch<'c> {
    fn start(c: &Connection, sessions: Option<&'c SessionCache>) -> DbResult<Self> {
        let before = match sessions {
            Some(_) => session_epoch(c)?,
            None => 0,
        };
        Ok(Self { sessions, before })
    }

    /// Called just before the commit: when the transaction changed the epoch, counts the change as
    /// begun and answers the cache whose `end_change` must follow the commit (whatever its outcome).
    /// On an error the caller rolls back, so nothing uncounted is ever committed.
    fn count(self, c: &Connection) -> DbResult<Option<&'c SessionCache>> {
        let Some(sessions) = self.sessions else { return Ok(None) };
        if session_epoch(c)? == self.before {
            return Ok(None);
        }
        sessions
            .begin_change()
            .map_err(|e| StoreError::Unavailable(format!("cannot count a session change: {e}")))?;
        Ok(Some(sessions))
    }
}

/// One batch of write jobs (`group.rs`) in one `BEGIN IMMEDIATE` transaction, with the session
/// epoch watched across all of them: committed when the transaction is still whole after the last
/// job, rolled back otherwise.
fn batch(
    c: &mut Connection,
    sessions: Option<&SessionCache>,
    flush: Flush,
    jobs: &mut dyn FnMut(&mut Connection) -> DbResult<()>,
) -> DbResult<()> {
    // SQLite refuses to change `synchronous` inside a transaction, so it is set before each one:
    // FULL for an ordinary batch (also after a deferred batch whose reset below failed), NORMAL
    // for a deferred one, set back to FULL whatever its transaction did. A synced batch after a
    // deferred one syncs that one's frames of the WAL with its own.
    match flush {
        Flush::Sync => {
            c.execute_batch("PRAGMA synchronous = FULL")?;
            transaction(c, sessions, jobs)
        }
        Flush::Defer => {
            c.execute_batch("PRAGMA synchronous = NORMAL")?;
            let out = transaction(c, sessions, jobs);
            let restored = c.execute_batch("PRAGMA synchronous = FULL");
            out?;
            Ok(restored?)
        }
    }
}

/// One `BEGIN IMMEDIATE` … `COMMIT` around `jobs`, counting a change of sessions for the caches.
fn transaction(
    c: &mut Connection,
    sessions: Option<&SessionCache>,
    jobs: &mut dyn FnMut(&mut Connection) -> DbResult<()>,
) -> DbResult<()> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    let out = Watch::start(c, sessions).and_then(|w| {
        jobs(c)?;
        w.count(c)
    });
    match out {
        Ok(counted) => {
            let done = c.execute_batch("COMMIT");
            if let Some(s) = counted {
                s.end_change();
            }
            Ok(done?)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Lane {
    Write,
    Read,
}

/// A connection for [`SqliteStore::run_read_inline`]: read-only, and never waiting for a lock.
///
/// Setting it up reads the schema, which another process may hold the file's lock against for a
/// moment (the last connection of a process that exits checkpoints and removes the WAL), so it
/// waits up to `busy_timeout` like every other connection until it is set up, and only then stops
/// waiting.
fn connect_inline(target: &Target, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = connect(target, busy_timeout)?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.busy_timeout(Duration::ZERO)?;
    Ok(conn)
}

/// Whether an error means "the statement would have had to wait".
fn would_wait(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;

    use super::{Target, connect_inline};

    /// An inline reader is opened (its pragmas read the schema) while another process may hold the
    /// file's lock for a moment, as the last connection of a process that exits does for its
    /// checkpoint: it must wait like every other connection while it is set up, and only then stop
    /// waiting. Admin commands run in parallel on a fresh data dir failed with "database is locked"
    /// when it did not.
    #[test]
    fn an_inline_reader_waits_for_a_held_lock_while_it_is_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let setup = Connection::open(&path).unwrap();
        setup.pragma_update(None, "journal_mode", "WAL").unwrap();
        setup.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        drop(setup);
        let holder = Connection::open(&path).unwrap();
        holder.pragma_update(None, "locking_mode", "EXCLUSIVE").unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE; COMMIT").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(holder);
        });
        let conn = connect_inline(&Target::File(path), Duration::from_secs(5));
        release.join().unwrap();
        let conn = conn.expect("the inline reader MUST wait for the lock while it is set up");
        let timeout: i64 = conn.pragma_query_value(None, "busy_timeout", |r| r.get(0)).unwrap();
        assert_eq!(timeout, 0, "once set up, an inline reader MUST never wait");
    }
}

//! Group commit: the write jobs that queue up while one transaction commits share the next one.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and on a small machine the
//! fsync, not the SQL, is most of a write's cost (docs/PERFORMANCE.md). Jobs are queued here before
//! they wait for the write lane; whoever holds the lane next runs every job queued by then in one
//! `BEGIN IMMEDIATE` transaction, each job in a savepoint of its own, and commits once. A job that
//! fails is rolled back to its savepoint and answers its own error; the others are unaffected. A
//! job answers only after the commit that holds its writes, so nothing is acknowledged before it
//! is durable, and a failed commit fails every job of the batch.
//!
//! A job whose caller went away before the job ran (a cancelled request) is skipped, as it would
//! have been without grouping; one that has started always runs to the batch's commit or rollback.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use auth_core::ports::{StoreError, StoreResult};
use rusqlite::Connection;

use crate::error::{DbError, DbResult};

/// At most this many jobs share one transaction, so that a long queue (a bulk import beside
/// logins) does not hold SQLite's write lock for long.
pub(crate) const MAX_BATCH: usize = 64;

/// A write job, type-erased so that jobs of any result type share a batch.
pub(crate) trait Job: Send {
    /// Whether the caller still waits for the answer.
    fn wanted(&self) -> bool;
    /// Runs the job on `c`, inside the batch's transaction, and keeps its result for [`Job::answer`].
    fn run(&mut self, c: &mut Connection);
    /// Whether [`Job::run`] failed (its savepoint is then rolled back).
    fn failed(&self) -> bool;
    /// Sends the answer: the job's own result if it failed, else `batch` (the commit's outcome).
    fn answer(self: Box<Self>, batch: Result<(), &StoreError>);
    /// How the job's commit must reach the disk before it answers (see [`Queued::deferred`]).
    fn flush(&self) -> Flush;
}

/// A job with its answer channel.
pub(crate) struct Queued<T, F> {
    job: Option<F>,
    result: Option<DbResult<T>>,
    reply: Option<tokio::sync::oneshot::Sender<StoreResult<T>>>,
    flush: Flush,
}

impl<T, F> Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
{
    pub(crate) fn new(job: F, reply: tokio::sync::oneshot::Sender<StoreResult<T>>) -> Self {
        Self { job: Some(job), result: None, reply: Some(reply), flush: Flush::Sync }
    }

    /// A job whose commit need not reach the disk before it answers: a batch of such jobs only
    /// commits with `synchronous=NORMAL` (written to the WAL, not synced), and the next synced
    /// commit (any batch with one ordinary job) syncs it too, because the WAL is one file written in
    /// order. For writes whose every consequence is itself written durably later (the throttle
    /// slots of an attempt in flight, `CounterStore::acquire_then`).
    pub(crate) fn deferred(job: F, reply: tokio::sync::oneshot::Sender<StoreResult<T>>) -> Self {
        Self { flush: Flush::Defer, ..Self::new(job, reply) }
    }
}

impl<T, F> Job for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
{
    fn wanted(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| !r.is_closed())
    }

    fn run(&mut self, c: &mut Connection) {
        if let Some(job) = self.job.take() {
            self.result = Some(job(c));
        }
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn answer(mut self: Box<Self>, batch: Result<(), &StoreError>) {
        let answer = match (self.result.take(), batch) {
            (Some(Err(e)), _) => Err(StoreError::from(e)),
            (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(copy(e)),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(StoreError::Unavailable("the write job did not run".into())),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have gone meanwhile; the outcome stands either way.
            let _ = reply.send(answer);
        }
    }

    fn flush(&self) -> Flush {
        self.flush
    }
}

/// The same error again, for every job of a batch that failed as a whole.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

/// How a job, and so the batch it is in, commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// With the connection's `synchronous=FULL`: the WAL is synced before the commit returns.
    Sync,
    /// A [`Queued::deferred`] job, or a batch of nothing else: written to the WAL without a sync.
    Defer,
}

/// The jobs waiting for the write lane.
#[derive(Default)]
pub(crate) struct WriteQueue {
    jobs: Mutex<VecDeque<Box<dyn Job>>>,
    /// Jobs run and transactions they ran in, since the store was opened.
    ran: AtomicU64,
    batches: AtomicU64,
    /// Of those transactions, the ones committed without a sync (every job deferred).
    unsynced: AtomicU64,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteQueue")
    }
}

impl WriteQueue {
    pub(crate) fn push(&self, job: Box<dyn Job>) {
        self.lock().push_back(job);
    }

    /// Write jobs run and the transactions they shared, since the store was opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.ran.load(Ordering::Relaxed), self.batches.load(Ordering::Relaxed))
    }

    /// Of [`WriteQueue::stats`]'s transactions, how many committed without a sync.
    pub(crate) fn unsynced(&self) -> u64 {
        self.unsynced.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Box<dyn Job>>> {
        // A job never panics while the queue is locked (it is locked only to push and to take), so
        // a poisoned lock still holds a consistent queue.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Up to [`MAX_BATCH`] jobs whose callers still wait; the others are dropped (answering no one).
    fn take(&self) -> Vec<Box<dyn Job>> {
        let mut q = self.lock();
        let mut out = Vec::new();
        while out.len() < MAX_BATCH {
            let Some(job) = q.pop_front() else { break };
            if job.wanted() {
                out.push(job);
            }
        }
        out
    }

    /// Runs every queued job in batches on `c`, which holds this process's write lane. `batch`
    /// runs one batch's jobs inside a transaction it opens and commits (see `SqliteStore::run`),
    /// synced when its [`Flush`] says so; `Err` is the transaction's failure, which every job of the
    /// batch then answers.
    pub(crate) fn drain(
        &self,
        c: &mut Connection,
        mut batch: impl FnMut(
            &mut Connection,
            Flush,
            &mut dyn FnMut(&mut Connection) -> DbResult<()>,
        ) -> DbResult<()>,
    ) {
        loop {
            let mut jobs = self.take();
            if jobs.is_empty() {
                return;
            }
            self.ran.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            self.batches.fetch_add(1, Ordering::Relaxed);
            // One job that must be on disk when it answers makes the whole commit synced.
            let flush = if jobs.iter().any(|j| j.flush() == Flush::Sync) {
                Flush::Sync
            } else {
                self.unsynced.fetch_add(1, Ordering::Relaxed);
                Flush::Defer
            };
            let outcome = batch(c, flush, &mut |c: &mut Connection| run_all(c, &mut jobs));
            let outcome = outcome.map_err(StoreError::from);
            for job in jobs {
                job.answer(outcome.as_ref().map(|_| ()));
            }
        }
    }
}

/// Runs `jobs` in order, each in a savepoint: a failed one is rolled back alone. `Err` when the
/// transaction itself is gone (SQLite rolls the whole transaction back on some errors, such as a
/// full disk), so that the batch fails as a whole rather than committing half of it.
fn run_all(c: &mut Connection, jobs: &mut [Box<dyn Job>]) -> DbResult<()> {
    for job in jobs.iter_mut() {
        c.execute_batch("SAVEPOINT job")?;
        job.run(c);
        if c.is_autocommit() {
            return Err(DbError::from(StoreError::Unavailable(
                "the transaction was rolled back by the database".into(),
            )));
        }
        if job.failed() {
            c.execute_batch("ROLLBACK TO job")?;
        }
        c.execute_batch("RELEASE job")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)").unwrap();
        c
    }

    fn rows(c: &Connection) -> Vec<i64> {
        let mut st = c.prepare("SELECT v FROM t ORDER BY v").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    fn insert(v: i64) -> impl FnOnce(&mut Connection) -> DbResult<i64> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok(v)
        }
    }

    fn queue<T: Send + 'static>(
        q: &WriteQueue,
        job: impl FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    ) -> oneshot::Receiver<StoreResult<T>> {
        let (tx, rx) = oneshot::channel();
        q.push(Box::new(Queued::new(job, tx)));
        rx
    }

    /// The transaction `SqliteStore::run` wraps a batch in, without the session counting.
    fn plain(
        c: &mut Connection,
        _: Flush,
        jobs: &mut dyn FnMut(&mut Connection) -> DbResult<()>,
    ) -> DbResult<()> {
        c.execute_batch("BEGIN IMMEDIATE")?;
        match jobs(c) {
            Ok(()) => Ok(c.execute_batch("COMMIT")?),
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Three jobs in one transaction: the one that fails after writing is undone alone and answers
    /// its own error; the others commit and answer their results.
    #[test]
    fn a_failed_job_is_rolled_back_alone() {
        let mut c = db();
        let q = WriteQueue::default();
        let a = queue(&q, insert(1));
        let b = queue(&q, |c: &mut Connection| -> DbResult<i64> {
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(StoreError::Conflict("refused after writing".into()).into())
        });
        let d = queue(&q, insert(3));
        q.drain(&mut c, plain);
        assert_eq!(a.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(b.blocking_recv().unwrap(), Err(StoreError::Conflict(_))));
        assert_eq!(d.blocking_recv().unwrap().unwrap(), 3);
        assert_eq!(rows(&c), vec![1, 3]);
        assert_eq!(q.stats(), (3, 1), "three jobs, one transaction");
    }

    /// A job whose caller went away before it ran is not run at all.
    #[test]
    fn a_job_nobody_waits_for_is_skipped() {
        let mut c = db();
        let q = WriteQueue::default();
        drop(queue(&q, insert(1)));
        let b = queue(&q, insert(2));
        q.drain(&mut c, plain);
        assert_eq!(b.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(rows(&c), vec![2]);
    }

    /// When the transaction itself is lost in the middle of a batch, no job of it commits and every
    /// one answers an error: a job that had succeeded must not be acknowledged.
    #[test]
    fn a_lost_transaction_fails_the_whole_batch() {
        let mut c = db();
        let q = WriteQueue::default();
        let a = queue(&q, insert(1));
        let b = queue(&q, |c: &mut Connection| -> DbResult<()> {
            // What SQLite does by itself on a full disk or an I/O error.
            c.execute_batch("ROLLBACK")?;
            Ok(())
        });
        let d = queue(&q, insert(3));
        q.drain(&mut c, plain);
        assert!(a.blocking_recv().unwrap().is_err(), "its write was rolled back with the rest");
        assert!(b.blocking_recv().unwrap().is_err());
        assert!(d.blocking_recv().unwrap().is_err());
        assert!(rows(&c).is_empty());
    }

    /// A failed commit fails every job of the batch, and nothing is half-written.
    #[test]
    fn a_failed_commit_fails_every_job() {
        let mut c = db();
        let q = WriteQueue::default();
        let a = queue(&q, insert(1));
        let b = queue(&q, insert(2));
        q.drain(&mut c, |c, _, jobs| {
            c.execute_batch("BEGIN IMMEDIATE")?;
            jobs(c)?;
            let _ = c.execute_batch("ROLLBACK");
            Err(StoreError::Unavailable("disk full".into()).into())
        });
        for r in [a, b] {
            assert!(
                matches!(r.blocking_recv().unwrap(), Err(StoreError::Unavailable(m)) if m == "disk full")
            );
        }
        assert!(rows(&c).is_empty());
    }

    /// A long queue is cut into batches of at most `MAX_BATCH` jobs, all of which run.
    #[test]
    fn a_long_queue_runs_in_several_batches() {
        let mut c = db();
        let q = WriteQueue::default();
        let n = i64::try_from(MAX_BATCH).unwrap() * 2 + 1;
        let answers: Vec<_> = (0..n).map(|v| queue(&q, insert(v))).collect();
        q.drain(&mut c, plain);
        for (v, a) in (0..n).zip(answers) {
            assert_eq!(a.blocking_recv().unwrap().unwrap(), v);
        }
        assert_eq!(rows(&c).len(), usize::try_from(n).unwrap());
        assert_eq!(q.stats(), (u64::try_from(n).unwrap(), 3));
    }

    /// A batch of deferred jobs alone commits without a sync; one ordinary job among them makes the
    /// batch synced, so nothing it acknowledges waits for a later sync.
    #[test]
    fn only_a_batch_of_deferred_jobs_skips_the_sync() {
        let mut c = db();
        let q = WriteQueue::default();
        let mut seen = Vec::new();
        let mut record = |c: &mut Connection,
                          flush: Flush,
                          jobs: &mut dyn FnMut(&mut Connection) -> DbResult<()>|
         -> DbResult<()> {
            seen.push(flush);
            plain(c, flush, jobs)
        };
        let deferred = |v: i64| {
            let (tx, rx) = oneshot::channel();
            q.push(Box::new(Queued::deferred(insert(v), tx)));
            rx
        };
        let a = deferred(1);
        let b = deferred(2);
        q.drain(&mut c, &mut record);
        let d = deferred(3);
        let e = queue(&q, insert(4));
        q.drain(&mut c, &mut record);
        for (v, r) in [(1, a), (2, b), (3, d), (4, e)] {
            assert_eq!(r.blocking_recv().unwrap().unwrap(), v);
        }
        assert_eq!(seen, vec![Flush::Defer, Flush::Sync]);
        assert_eq!(q.stats(), (4, 2));
        assert_eq!(q.unsynced(), 1);
    }
}

//! The password hashing pool: argon2id on a fixed set of dedicated threads behind a bounded queue.
//!
//! An argon2id verification takes tens of milliseconds of CPU and 19 MiB of memory by default. Run on
//! the async runtime it would stall every other request; run on tokio's blocking pool it would pile up
//! without bound under a login flood. Here `workers` OS threads take jobs from a queue holding at most
//! `queue` waiting jobs; when the queue is full, [`PooledHasher`] answers [`HashError::Busy`] at once
//! (the transport turns that into 503 with `Retry-After`), so memory and latency stay bounded.
//! Results come back to the awaiting task through a oneshot channel; no async thread ever blocks.
//!
//! The pool reports its queue on `/metrics` ([`HashingMetrics`]): how many jobs wait for a thread,
//! and how long each waited before a thread took it, which is what a login flood shows first.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use auth_core::password::{BlockingHasher, HashError, HashMemory, PasswordHash, PasswordHasher};
use auth_core::secret::SecretString;
use auth_core::upstream::{UpstreamHash, UpstreamRealm};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

/// Wait bounds, in seconds: from a job taken at once to one that waited behind a full queue of
/// default-cost hashes on a small machine.
const WAIT_BUCKETS: [f64; 13] =
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The pool's queue as `/metrics` shows it, and as the runtime's flood pause reads it
/// ([`crate::runtime::FloodPause`]).
///
/// Made before the pool (the binary makes it before the runtime, whose workers read it), it reads
/// as an empty queue of no capacity until a pool starts with it.
#[derive(Clone, Debug)]
pub struct HashingMetrics {
    depth: Gauge,
    wait: Histogram,
    workers: Gauge,
    capacity: Gauge,
    flood_pauses: Counter,
}

impl Default for HashingMetrics {
    fn default() -> Self {
        Self {
            depth: Gauge::default(),
            wait: Histogram::new(WAIT_BUCKETS),
            workers: Gauge::default(),
            capacity: Gauge::default(),
            flood_pauses: Counter::default(),
        }
    }
}

impl HashingMetrics {
    /// Adds the pool's families to the server's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_hashing_queue_depth",
            "Password hashing jobs waiting for a thread",
            self.depth.clone(),
        );
        registry.register(
            "auth_hashing_queue_capacity",
            "Password hashing jobs that may wait before logins are answered busy",
            self.capacity.clone(),
        );
        registry.register("auth_hashing_workers", "Password hashing threads", self.workers.clone());
        registry.register(
            "auth_hashing_wait_seconds",
            "Time a password hashing job waited in the queue before a thread took it",
            self.wait.clone(),
        );
        registry.register(
            "auth_hashing_flood_pauses",
            "Times a runtime worker paused before waiting for work because the hashing queue was \
             full (runtime.flood_pause_ms)",
            self.flood_pauses.clone(),
        );
    }

    /// Whether the queue of a started pool is full: every further login would be answered busy.
    pub fn saturated(&self) -> bool {
        let capacity = self.capacity.get();
        capacity > 0 && self.depth.get() >= capacity
    }

    /// Counts one pause of a runtime worker under a flood.
    pub fn note_flood_pause(&self) {
        self.flood_pauses.inc();
    }

    /// How many pauses [`HashingMetrics::note_flood_pause`] counted.
    pub fn flood_pauses(&self) -> u64 {
        self.flood_pauses.get()
    }

    /// Metrics that read as a pool with `depth` jobs waiting in a queue of `capacity`, for the
    /// flood pause's tests (the real pool's reading is tested with a real pool).
    #[cfg(test)]
    pub(crate) fn with_queue(depth: i64, capacity: i64) -> Self {
        let m = Self::default();
        m.depth.set(depth);
        m.capacity.set(capacity);
        m
    }
}

/// A job and when it was queued.
struct Queued {
    job: Job,
    at: Instant,
}

enum Job {
    Hash(SecretString, oneshot::Sender<Result<PasswordHash, HashError>>),
    Verify(SecretString, PasswordHash, oneshot::Sender<Result<bool, HashError>>),
    /// An imported upstream hash (spec §5.1): PBKDF2 as slow as an argon2id verification, so it
    /// takes a place in the same queue.
    VerifyUpstream(
        SecretString,
        Box<(UpstreamHash, UpstreamRealm)>,
        oneshot::Sender<Result<bool, HashError>>,
    ),
}

/// A [`PasswordHasher`] that runs a [`BlockingHasher`] on a bounded pool of threads.
pub struct PooledHasher {
    queue: SyncSender<Queued>,
    inner: Arc<dyn BlockingHasher>,
    workers: usize,
    metrics: HashingMetrics,
}

impl std::fmt::Debug for PooledHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledHasher").field("workers", &self.workers).finish_non_exhaustive()
    }
}

impl PooledHasher {
    /// Starts `workers` threads (at least one) fed by a queue of `queue` waiting jobs (at least one).
    /// The threads end when the hasher is dropped.
    pub fn start(
        inner: Arc<dyn BlockingHasher>,
        workers: usize,
        queue: usize,
    ) -> std::io::Result<Self> {
        Self::start_with_metrics(inner, workers, queue, HashingMetrics::default())
    }

    /// [`PooledHasher::start`], reporting the queue through `metrics`.
    pub fn start_with_metrics(
        inner: Arc<dyn BlockingHasher>,
        workers: usize,
        queue: usize,
        metrics: HashingMetrics,
    ) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let queue = queue.max(1);
        metrics.workers.set(i64::try_from(workers).unwrap_or(i64::MAX));
        metrics.capacity.set(i64::try_from(queue).unwrap_or(i64::MAX));
        let (tx, rx) = sync_channel::<Queued>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let inner = Arc::clone(&inner);
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, inner.as_ref(), &metrics))?;
        }
        Ok(Self { queue: tx, inner, workers, metrics })
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        // Counted before it is sent, so the thread that takes it never counts below zero.
        self.metrics.depth.inc();
        match self.queue.try_send(Queued { job, at: Instant::now() }) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.depth.dec();
                match e {
                    TrySendError::Full(_) => Err(HashError::Busy),
                    TrySendError::Disconnected(_) => {
                        Err(HashError::Failed("the hashing threads have stopped".to_owned()))
                    }
                }
            }
        }
    }
}

fn worker(rx: &Mutex<Receiver<Queued>>, inner: &dyn BlockingHasher, metrics: &HashingMetrics) {
    // Each thread keeps its argon2 memory from one verification to the next (19 MiB at the
    // default cost): no allocation, no page faults, and memory bounded by one buffer per thread.
    let mut memory = HashMemory::new();
    loop {
        // Only the wait for the next job holds the lock; the hashing itself runs unlocked, so the
        // threads hash in parallel and idle ones queue up on the lock.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(Queued { job, at }) = job else { return };
        metrics.depth.dec();
        metrics.wait.observe(at.elapsed().as_secs_f64());
        // A caller that gave up (its request was cancelled) has dropped its receiver; the answer is
        // simply discarded.
        match job {
            Job::Hash(password, reply) => {
                let _ = reply.send(inner.hash(&password));
            }
            Job::Verify(password, hash, reply) => {
                let _ = reply.send(inner.verify(&password, &hash, &mut memory));
            }
            Job::VerifyUpstream(password, job, reply) => {
                let (hash, realm) = *job;
                let _ = reply.send(inner.verify_upstream(&password, &hash, &realm));
            }
        }
    }
}

fn lost() -> HashError {
    HashError::Failed("a hashing thread stopped before answering".to_owned())
}

#[async_trait]
impl PasswordHasher for PooledHasher {
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Hash(password.clone(), tx))?;
        rx.await.map_err(|_| lost())?
    }

    async fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Verify(password.clone(), hash.clone(), tx))?;
        rx.await.map_err(|_| lost())?
    }

    fn dummy_hash(&self) -> PasswordHash {
        self.inner.dummy_hash()
    }

    async fn verify_upstream(
        &self,
        password: &SecretString,
        hash: &UpstreamHash,
        realm: &UpstreamRealm,
    ) -> Result<bool, HashError> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new((hash.clone(), realm.clone()));
        self.submit(Job::VerifyUpstream(password.clone(), job, tx))?;
        rx.await.map_err(|_| lost())?
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        self.inner.needs_rehash(hash)
    }

    fn saturated(&self) -> bool {
        // The depth counts every job sent and not yet taken by a thread (and, for a moment, one
        // being sent), which is what the channel's bound is checked against; the metrics hold
        // both, and the runtime's flood pause asks them the same question.
        self.metrics.saturated()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use auth_core::password::{Argon2Hasher, HashParams};

    use super::*;
    use crate::rng::OsRng;

    /// A hasher whose calls block until the test lets them go, and that says when one started.
    struct Gate {
        started: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl BlockingHasher for Gate {
        fn hash(&self, _: &SecretString) -> Result<PasswordHash, HashError> {
            self.started.lock().unwrap().send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
            Ok(PasswordHash::from_phc("$gate$"))
        }

        fn verify(
            &self,
            p: &SecretString,
            _: &PasswordHash,
            _: &mut HashMemory,
        ) -> Result<bool, HashError> {
            self.hash(p).map(|_| true)
        }

        fn dummy_hash(&self) -> PasswordHash {
            PasswordHash::from_phc("$dummy$")
        }

        fn needs_rehash(&self, _: &PasswordHash) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gate =
            Arc::new(Gate { started: Mutex::new(started_tx), release: Mutex::new(release_rx) });
        let metrics = HashingMetrics::default();
        assert!(!metrics.saturated(), "metrics without a pool read as an empty queue");
        let pool = Arc::new(PooledHasher::start_with_metrics(gate, 1, 1, metrics.clone()).unwrap());
        let pw = SecretString::new("password");

        // The one worker takes the first job and blocks in it; a job being hashed leaves the
        // queue with room.
        let (first_tx, first) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), first_tx)).unwrap();
        started.recv().unwrap();
        assert!(!pool.saturated());
        assert!(!metrics.saturated());
        // The second job waits in the queue, which then is full, and says so before anyone asks
        // (the metrics too, which the runtime's flood pause reads).
        let (second_tx, second) = oneshot::channel();
        pool.submit(Job::Verify(pw.clone(), PasswordHash::from_phc("x"), second_tx)).unwrap();
        assert!(pool.saturated());
        assert!(metrics.saturated());
        assert!(matches!(pool.hash(&pw).await, Err(HashError::Busy)));
        assert!(matches!(pool.verify(&pw, &pool.dummy_hash()).await, Err(HashError::Busy)));
        assert!(pool.saturated(), "a refused job does not count");

        // Letting the worker go drains the queue and answers both callers.
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().as_str(), "$gate$");
        started.recv().unwrap();
        assert!(!pool.saturated(), "the waiting job was taken");
        assert!(!metrics.saturated());
        release.send(()).unwrap();
        assert!(second.await.unwrap().unwrap());
        assert_eq!(pool.dummy_hash().as_str(), "$dummy$");
    }

    /// Issue 17: the queue depth counts the jobs that wait (not the ones being hashed), and every
    /// job taken records its wait.
    #[tokio::test]
    async fn the_queue_depth_and_wait_are_reported() {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gate =
            Arc::new(Gate { started: Mutex::new(started_tx), release: Mutex::new(release_rx) });
        let metrics = HashingMetrics::default();
        let pool = PooledHasher::start_with_metrics(gate, 1, 2, metrics.clone()).unwrap();
        let render = || {
            let mut registry = Registry::default();
            metrics.register(&mut registry);
            let mut out = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
            out
        };
        let pw = SecretString::new("password");
        let (first_tx, first) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), first_tx)).unwrap();
        started.recv().unwrap();
        let (second_tx, second) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), second_tx)).unwrap();
        assert_eq!(metrics.depth.get(), 1, "one job hashing, one waiting");
        let out = render();
        for line in [
            "auth_hashing_queue_depth 1\n",
            "auth_hashing_queue_capacity 2\n",
            "auth_hashing_workers 1\n",
            "auth_hashing_wait_seconds_count 1\n",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        started.recv().unwrap();
        release.send(()).unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(metrics.depth.get(), 0);
        assert!(render().contains("auth_hashing_wait_seconds_count 2\n"));
        // A refused job is not left counted.
        let (full_tx, full_rx) = mpsc::channel();
        let (keep, keep_rx) = mpsc::channel::<()>();
        let stuck = Arc::new(Gate { started: Mutex::new(full_tx), release: Mutex::new(keep_rx) });
        let small = HashingMetrics::default();
        let pool = PooledHasher::start_with_metrics(stuck, 1, 1, small.clone()).unwrap();
        let (a, _a) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), a)).unwrap();
        full_rx.recv().unwrap();
        let (b, _b) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), b)).unwrap();
        assert!(matches!(pool.hash(&pw).await, Err(HashError::Busy)));
        assert_eq!(small.depth.get(), 1);
        // Let both jobs finish, so the thread ends cleanly with the pool.
        keep.send(()).unwrap();
        full_rx.recv().unwrap();
        keep.send(()).unwrap();
    }

    #[tokio::test]
    async fn hashes_and_verifies_with_argon2() {
        let argon = Argon2Hasher::new(HashParams::insecure_for_tests(), Arc::new(OsRng)).unwrap();
        let pool = PooledHasher::start(Arc::new(argon), 2, 4).unwrap();
        let pw = SecretString::new("correct horse");
        let hash = pool.hash(&pw).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(pool.verify(&pw, &hash).await.unwrap());
        assert!(!pool.verify(&SecretString::new("wrong"), &hash).await.unwrap());
        assert!(!pool.verify(&pw, &pool.dummy_hash()).await.unwrap());
    }
}

//! The password hashing pool: argon2id on a fixed set of dedicated threads behind a bounded queue.
//!
//! An argon2id verification takes tens of milliseconds of CPU and 19 MiB of memory by default. Run on
//! the async runtime it would stall every other request; run on tokio's blocking pool it would pile up
//! without bound under a login flood. Here `workers` OS threads take jobs from a queue holding at most
//! `queue` waiting jobs; when the queue is full, [`PooledHasher`] answers [`HashError::Busy`] at once
//! (the transport turns that into 503 with `Retry-After`), so memory and latency stay bounded.
//! Results come back to the awaiting task through a oneshot channel; no async thread ever blocks.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::password::{BlockingHasher, HashError, HashMemory, PasswordHash, PasswordHasher};
use auth_core::secret::SecretString;
use auth_core::upstream::{UpstreamHash, UpstreamRealm};
use tokio::sync::oneshot;

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
    queue: SyncSender<Job>,
    inner: Arc<dyn BlockingHasher>,
    workers: usize,
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
        let workers = workers.max(1);
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, inner.as_ref()))?;
        }
        Ok(Self { queue: tx, inner, workers })
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(HashError::Failed("the hashing threads have stopped".to_owned()))
            }
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, inner: &dyn BlockingHasher) {
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
        let Ok(job) = job else { return };
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
        let pool = Arc::new(PooledHasher::start(gate, 1, 1).unwrap());
        let pw = SecretString::new("password");

        // The one worker takes the first job and blocks in it.
        let (first_tx, first) = oneshot::channel();
        pool.submit(Job::Hash(pw.clone(), first_tx)).unwrap();
        started.recv().unwrap();
        // The second job waits in the queue, which then is full.
        let (second_tx, second) = oneshot::channel();
        pool.submit(Job::Verify(pw.clone(), PasswordHash::from_phc("x"), second_tx)).unwrap();
        assert!(matches!(pool.hash(&pw).await, Err(HashError::Busy)));
        assert!(matches!(pool.verify(&pw, &pool.dummy_hash()).await, Err(HashError::Busy)));

        // Letting the worker go drains the queue and answers both callers.
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().as_str(), "$gate$");
        started.recv().unwrap();
        release.send(()).unwrap();
        assert!(second.await.unwrap().unwrap());
        assert_eq!(pool.dummy_hash().as_str(), "$dummy$");
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

//! The `hash` scenario: argon2id verifications per second in this process, on every core, with the
//! server's parameters. It is the physical limit the login scenarios are compared with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use auth_core::password::{Argon2Hasher, BlockingHasher, HashMemory, HashParams, PasswordHash};
use auth_core::ports::Rng;
use auth_core::secret::SecretString;

/// Salt bytes for the benchmark's own hashes; their quality does not change the cost.
struct CounterRng(AtomicU64);

impl Rng for CounterRng {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let n = self.0.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(n.get(..chunk.len()).unwrap_or_default());
        }
    }
}

/// What the hash scenario measured.
pub(crate) struct HashResult {
    pub(crate) threads: usize,
    pub(crate) per_s: f64,
    /// Time of one verification on an otherwise idle core, in ms (from the single-thread warm-up).
    pub(crate) single_ms: f64,
    /// Per-verification latency quantiles over all threads, in ms.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) ops: u64,
}

/// Verifies a correct password on `threads` threads for `warmup + duration`, counting the
/// verifications that complete inside the window.
pub(crate) fn run(
    params: HashParams,
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<HashResult> {
    let hasher = Arc::new(
        Argon2Hasher::new(params, Arc::new(CounterRng(AtomicU64::new(1))))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let password = SecretString::new("correct horse battery staple");
    let hash: PasswordHash = hasher.hash(&password).map_err(|e| anyhow::anyhow!("{e}"))?;

    let t = Instant::now();
    let ok = hasher
        .verify(&password, &hash, &mut HashMemory::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(ok, "the benchmark's own hash does not verify");
    let single_ms = t.elapsed().as_secs_f64() * 1000.0;

    let start = Instant::now();
    let from = start + warmup;
    let until = from + duration;
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let (hasher, password, hash) = (Arc::clone(&hasher), password.clone(), hash.clone());
        let stop = Arc::clone(&stop);
        handles.push(std::thread::spawn(move || {
            let mut lat = Vec::new();
            // The same routine the server's hashing threads run: one reused argon2 buffer per thread.
            let mut memory = HashMemory::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let ok = hasher.verify(&password, &hash, &mut memory).unwrap_or(false);
                let t1 = Instant::now();
                if t1 >= until {
                    break;
                }
                if ok && t1 >= from {
                    lat.push(t1 - t0);
                }
            }
            lat
        }));
    }
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().ok().context("a hashing thread panicked")?);
    }
    all.sort();
    let q = |p: f64| {
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len().max(1)) - 1;
        all.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    // Verifications that complete inside the window count, wherever they started (the same rule as
    // the load generator's), so neither end of the window biases the rate.
    let ops = all.len() as u64;
    Ok(HashResult {
        threads,
        per_s: ops as f64 / duration.as_secs_f64(),
        single_ms,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        ops,
    })
}

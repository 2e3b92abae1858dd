//! The async runtime the `auth-server` binary runs on: its workers, and the pause they take while
//! the password hashing queue is full (`runtime.flood_pause_ms`, decision 0011).
//!
//! Under a login flood the hashing threads fill every core, and what the runtime does beside them
//! is many small requests (refusals, health checks, token lookups), each arriving alone. A worker
//! that runs out of work sleeps in the kernel and is woken by the next arrival, which takes a core
//! from a hashing thread for a context switch and the wake-up's bookkeeping each time: under the
//! benchmark's flood those wake-ups, not the requests' own work, were most of what the server spent
//! beside its hashes (docs/PERFORMANCE.md, rounds five and ten). So while the queue is full, a
//! worker about to wait for work first pauses for a bounded time; what arrives meanwhile waits in
//! the kernel's socket buffers and is served in one batch on one wake-up, and the cores hash in
//! between. It is the same trade as a network card's interrupt coalescing: at most the pause's
//! length of latency for every request during the flood, for logins the cores would otherwise not
//! have hashed. When the queue has room there is no pause at all.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::hashing::HashingMetrics;

/// The longest pause the configuration accepts: it is added to every request's latency during a
/// flood, and a refused login must still be answered well within 50 ms (issue 6's goal).
pub const MAX_FLOOD_PAUSE: Duration = Duration::from_millis(50);

/// The pause of a worker about to wait for work while the hashing queue is full.
#[derive(Clone, Debug)]
pub struct FloodPause {
    hashing: HashingMetrics,
    pause: Duration,
}

impl FloodPause {
    /// Pauses for `pause` while the queue `hashing` reports is full; a zero `pause` never pauses.
    pub fn new(hashing: HashingMetrics, pause: Duration) -> Self {
        Self { hashing, pause }
    }

    /// How long a worker about to wait for work should pause first, if at all.
    pub fn due(&self) -> Option<Duration> {
        (!self.pause.is_zero() && self.hashing.saturated()).then_some(self.pause)
    }

    /// Runs on a worker just before it waits for work (tokio's `on_thread_park`): blocking here is
    /// the point, since the worker has nothing to do and the cores are better spent hashing.
    fn before_park(&self) {
        if let Some(pause) = self.due() {
            self.hashing.note_flood_pause();
            std::thread::sleep(pause);
        }
    }
}

/// The multi-threaded runtime with `config`'s workers and flood pause, reading the queue of the
/// pool that will be started with `hashing`.
pub fn build(
    config: &Config,
    hashing: &HashingMetrics,
) -> std::io::Result<tokio::runtime::Runtime> {
    let pause = Arc::new(FloodPause::new(hashing.clone(), config.runtime_flood_pause));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime_workers)
        .enable_all()
        .on_thread_park(move || pause.before_park())
        .build()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Overrides;

    fn config(pause_ms: u64) -> Config {
        let env = [
            ("AUTH_RUNTIME__WORKERS".to_owned(), "1".to_owned()),
            ("AUTH_RUNTIME__FLOOD_PAUSE_MS".to_owned(), pause_ms.to_string()),
        ];
        Config::load(None, env, &Overrides::default()).unwrap()
    }

    /// Three timer waits in a row on the runtime's one worker, and how long they took.
    fn three_short_waits(rt: &tokio::runtime::Runtime) -> Duration {
        rt.block_on(async {
            // Spawned, so that it runs on the worker (not on the thread that blocks on it).
            tokio::spawn(async {
                let start = Instant::now();
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                start.elapsed()
            })
            .await
            .unwrap()
        })
    }

    #[test]
    fn pauses_only_while_the_queue_is_full_and_a_pause_is_set() {
        let pause = Duration::from_millis(5);
        let full = HashingMetrics::with_queue(64, 64);
        assert_eq!(FloodPause::new(full.clone(), pause).due(), Some(pause));
        assert_eq!(FloodPause::new(full, Duration::ZERO).due(), None, "0 turns it off");
        let room = HashingMetrics::with_queue(63, 64);
        assert_eq!(FloodPause::new(room, pause).due(), None);
        // Metrics no pool has started with read as no queue at all (the admin commands' runtime).
        assert_eq!(FloodPause::new(HashingMetrics::default(), pause).due(), None);
    }

    /// The pause happens on the runtime's worker before each wait for work, and is counted.
    #[test]
    fn a_worker_pauses_before_waiting_while_the_queue_is_full() {
        let full = HashingMetrics::with_queue(2, 2);
        let rt = build(&config(40), &full).unwrap();
        let took = three_short_waits(&rt);
        // Each of the three waits parks the worker, and each park first pauses 40 ms.
        assert!(took >= Duration::from_millis(120), "three waits took {took:?}");
        assert!(full.flood_pauses() >= 3, "{} pauses counted", full.flood_pauses());
    }

    #[test]
    fn a_worker_does_not_pause_with_room_in_the_queue() {
        let room = HashingMetrics::with_queue(1, 2);
        let rt = build(&config(40), &room).unwrap();
        three_short_waits(&rt);
        assert_eq!(room.flood_pauses(), 0);
    }
}

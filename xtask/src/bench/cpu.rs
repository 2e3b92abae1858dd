//! CPU accounting (issue 18): how much processor time the server, the load generator and the database
//! spent while a scenario's window was open, from `/proc/<pid>/stat` (user + system time of every
//! thread of the process, in clock ticks). Divided by the requests of the window, it is what a
//! request costs, whatever rate a one-thread generator manages to send. Linux only; elsewhere the
//! figures are absent.
//!
//! It deliberately measures whole processes: a thread of the server's blocking pool that exits is
//! still counted, because the kernel folds a finished thread's time into its process. The server's
//! hashing threads (`argon2-N`, long-lived) are also summed on their own, so that what a login costs
//! beside its password hash can be told from the hash itself.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The processes one scenario is measured on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meter {
    /// The server process(es) under load.
    pub(crate) server: Vec<u32>,
    /// The database's postmaster, whose children (the backends) are counted too; `None` for SQLite.
    pub(crate) db_postmaster: Option<u32>,
}

/// Accumulated CPU time of each party at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    pub(crate) server: Duration,
    /// The part of `server` spent by its hashing threads.
    pub(crate) hashing: Duration,
    pub(crate) generator: Duration,
    pub(crate) db: Duration,
}

/// CPU spent in a window: the difference of two samples.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spent {
    pub(crate) server: Duration,
    /// The part of `server` spent by its password-hashing threads.
    pub(crate) hashing: Duration,
    pub(crate) generator: Duration,
    /// `None` when there is no separate database process.
    pub(crate) db: Option<Duration>,
}

impl Spent {
    /// The CPU of two windows together.
    pub(crate) fn plus(self, other: Spent) -> Spent {
        Spent {
            server: self.server + other.server,
            hashing: self.hashing + other.hashing,
            generator: self.generator + other.generator,
            db: match (self.db, other.db) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }
}

impl Meter {
    /// The accumulated CPU times now (zero for a process that cannot be read).
    pub(crate) fn sample(&self) -> Sample {
        let server = self.server.iter().map(|p| process_cpu(&format!("/proc/{p}/stat"))).sum();
        let hashing = self.server.iter().map(|p| hashing_cpu(*p)).sum();
        let db = self.db_postmaster.map_or(Duration::ZERO, database_cpu);
        Sample { server, hashing, generator: process_cpu("/proc/self/stat"), db }
    }

    /// What was spent from `a` to `b`.
    pub(crate) fn spent(&self, a: Sample, b: Sample) -> Spent {
        Spent {
            server: b.server.saturating_sub(a.server),
            hashing: b.hashing.saturating_sub(a.hashing),
            generator: b.generator.saturating_sub(a.generator),
            db: self.db_postmaster.map(|_| b.db.saturating_sub(a.db)),
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux in practice).
fn ticks_per_s() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// The fields of a `/proc/<pid>/stat` line after the command name (which may contain spaces and
/// parentheses, so the line is split at the last `)`): field 3 of stat(5) is the first of these.
fn fields(path: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// User + system time of a process (fields 14 and 15 of stat(5)).
fn process_cpu(path: &str) -> Duration {
    let Some(f) = fields(path) else { return Duration::ZERO };
    let ticks: u64 =
        [11usize, 12].iter().filter_map(|i| f.get(*i).and_then(|v| v.parse::<u64>().ok())).sum();
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / ticks_per_s())
}

/// The time of the threads of `pid` whose name starts `argon2-` (the server's hashing pool).
fn hashing_cpu(pid: u32) -> Duration {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let mut total = Duration::ZERO;
    for entry in dir.flatten() {
        let path = entry.path();
        let named = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|comm| comm.starts_with("argon2-"));
        if named {
            total += process_cpu(&path.join("stat").to_string_lossy());
        }
    }
    total
}

/// The postmaster's time and that of every child of it (backends, checkpointer, WAL writer …).
fn database_cpu(postmaster: u32) -> Duration {
    let mut total = process_cpu(&format!("/proc/{postmaster}/stat"));
    let Ok(dir) = std::fs::read_dir("/proc") else { return total };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let path = format!("/proc/{pid}/stat");
        // Field 4 of stat(5), the parent's pid.
        let parent = fields(&path).and_then(|f| f.get(1).and_then(|v| v.parse::<u32>().ok()));
        if parent == Some(postmaster) {
            total += process_cpu(&path);
        }
    }
    total
}

/// The parent of `pid` (for the postmaster of a backend).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    fields(&format!("/proc/{pid}/stat"))?.get(1)?.parse().ok()
}

/// Whether `/proc` can be read here.
pub(crate) fn available() -> bool {
    Path::new("/proc/self/stat").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_spends_cpu_and_has_a_parent() {
        if !available() {
            return;
        }
        let meter = Meter { server: vec![std::process::id()], db_postmaster: None };
        let a = meter.sample();
        // Spin until the kernel has counted some of it (on a busy machine the wall clock runs
        // ahead of this process's CPU time), within a generous bound.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        let mut spent = meter.spent(a, meter.sample());
        while spent.server < Duration::from_millis(30) && start.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
            spent = meter.spent(a, meter.sample());
        }
        std::hint::black_box(x);
        assert!(spent.server >= Duration::from_millis(30), "{spent:?}");
        assert!(spent.generator >= Duration::from_millis(30), "the generator is this process too");
        assert!(spent.db.is_none());
        assert!(parent_of(std::process::id()).is_some());
    }
}

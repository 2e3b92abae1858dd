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
//!
//! Beside the times it counts context switches from each thread's `/proc/<pid>/task/<tid>/status`:
//! the voluntary ones of every thread but the hashing ones (each is a thread going to sleep, so one
//! wake-up later), and the involuntary ones of the hashing threads (each a hash preempted by
//! something else). On a machine whose cores the hashing threads fill, a cheap request's cost is
//! mostly its wake-ups (docs/PERFORMANCE.md, "Round six"). A thread that has exited takes its
//! switches with it, so these are lower bounds.

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
    /// Voluntary context switches of the server's threads but the hashing ones.
    pub(crate) wakeups: u64,
    /// Involuntary context switches of the server's hashing threads.
    pub(crate) preempted: u64,
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
    /// See [`Sample::wakeups`].
    pub(crate) wakeups: u64,
    /// See [`Sample::preempted`].
    pub(crate) preempted: u64,
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
            wakeups: self.wakeups + other.wakeups,
            preempted: self.preempted + other.preempted,
        }
    }
}

impl Meter {
    /// The accumulated CPU times now (zero for a process that cannot be read).
    pub(crate) fn sample(&self) -> Sample {
        let server = self.server.iter().map(|p| process_cpu(&format!("/proc/{p}/stat"))).sum();
        let threads =
            self.server.iter().map(|p| threads(*p)).fold(Threads::default(), Threads::plus);
        let db = self.db_postmaster.map_or(Duration::ZERO, database_cpu);
        Sample {
            server,
            hashing: threads.hashing,
            generator: process_cpu("/proc/self/stat"),
            db,
            wakeups: threads.wakeups,
            preempted: threads.preempted,
        }
    }

    /// What was spent from `a` to `b`.
    pub(crate) fn spent(&self, a: Sample, b: Sample) -> Spent {
        Spent {
            server: b.server.saturating_sub(a.server),
            hashing: b.hashing.saturating_sub(a.hashing),
            generator: b.generator.saturating_sub(a.generator),
            db: self.db_postmaster.map(|_| b.db.saturating_sub(a.db)),
            wakeups: b.wakeups.saturating_sub(a.wakeups),
            preempted: b.preempted.saturating_sub(a.preempted),
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

/// What the threads of one server process add up to.
#[derive(Clone, Copy, Debug, Default)]
struct Threads {
    /// The time of the threads whose name starts `argon2-` (the server's hashing pool).
    hashing: Duration,
    /// Voluntary switches of the other threads.
    wakeups: u64,
    /// Involuntary switches of the hashing threads.
    preempted: u64,
}

impl Threads {
    fn plus(self, other: Threads) -> Threads {
        Threads {
            hashing: self.hashing + other.hashing,
            wakeups: self.wakeups + other.wakeups,
            preempted: self.preempted + other.preempted,
        }
    }
}

/// One field of a `/proc/…/status` file, such as `voluntary_ctxt_switches`.
fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn threads(pid: u32) -> Threads {
    let mut total = Threads::default();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return total };
    for entry in dir.flatten() {
        let path = entry.path();
        let hashing = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|comm| comm.starts_with("argon2-"));
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        if hashing {
            total.hashing += process_cpu(&path.join("stat").to_string_lossy());
            total.preempted += status_field(&status, "nonvoluntary_ctxt_switches");
        } else {
            total.wakeups += status_field(&status, "voluntary_ctxt_switches");
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
    fn status_fields_are_read_by_exact_name() {
        let status = "voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(status_field(status, "voluntary_ctxt_switches"), 12);
        assert_eq!(status_field(status, "nonvoluntary_ctxt_switches"), 3);
        assert_eq!(status_field(status, "Threads"), 0);
    }

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
        // Sleeping is a voluntary switch of this (non-hashing) thread.
        let a = meter.sample();
        std::thread::sleep(Duration::from_millis(5));
        assert!(meter.spent(a, meter.sample()).wakeups >= 1);
    }
}

//! The CPU scheduling policy of the serving process (`hashing.scheduling`).
//!
//! When password hashing keeps every core busy, each request thread that wakes up (a request
//! arriving, a store job or a hash finishing) preempts a hashing thread at once under Linux's
//! default policy. With many cheap requests beside the logins (refusals under a flood, session
//! checks) that is several preemptions per login, each a thread switch and a refill of the hashing
//! thread's caches. Under `SCHED_BATCH` a woken thread does not preempt: it runs at the next
//! scheduler tick, or at once on an idle core. The process keeps its fair share of the machine and
//! its nice value; only the wake-up preemption goes. The cost is that a cheap request may wait up to
//! one tick (a few milliseconds) longer while the cores hash, and nothing at all when they are idle
//! (docs/decisions/0010-batch-scheduling.md has the measurements).
//!
//! The policy is set on the calling thread before the runtime starts, so that every thread the
//! server creates afterwards (the runtime's workers and blocking threads, the hashing pool) inherits
//! it, as Linux threads inherit their creator's policy.

use std::fmt;
use std::str::FromStr;

/// How the serving process's threads are scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheduling {
    /// `SCHED_BATCH` on Linux: no wake-up preemption (the default; see the module comment).
    #[default]
    Batch,
    /// The operating system's default policy, untouched.
    Normal,
}

impl fmt::Display for Scheduling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheduling::Batch => "batch",
            Scheduling::Normal => "normal",
        })
    }
}

/// A `hashing.scheduling` value that is neither `batch` nor `normal`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither \"batch\" nor \"normal\"")]
pub struct UnknownScheduling(pub String);

impl FromStr for Scheduling {
    type Err = UnknownScheduling;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "batch" => Ok(Scheduling::Batch),
            "normal" => Ok(Scheduling::Normal),
            other => Err(UnknownScheduling(other.to_owned())),
        }
    }
}

/// The policy could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// The kernel refused (a seccomp filter, for instance).
    #[error("cannot set SCHED_BATCH: {0}")]
    Refused(std::io::Error),
    /// This operating system has no such policy.
    #[error("SCHED_BATCH exists on Linux only")]
    Unsupported,
}

/// What [`apply`] did, for the start-up log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The calling thread now runs under `SCHED_BATCH`.
    Batch,
    /// Nothing was changed.
    Unchanged,
}

/// Sets `policy` on the calling thread; threads it creates afterwards inherit it. Call it before
/// the runtime is built. [`Scheduling::Normal`] changes nothing.
///
/// # Errors
/// [`SchedError`] when the kernel refuses or the platform has no batch policy; the thread keeps the
/// policy it had, and the server can run on with it.
pub fn apply(policy: Scheduling) -> Result<Applied, SchedError> {
    match policy {
        Scheduling::Normal => Ok(Applied::Unchanged),
        Scheduling::Batch => set_batch().map(|()| Applied::Batch),
    }
}

#[cfg(target_os = "linux")]
fn set_batch() -> Result<(), SchedError> {
    // Static priority 0 is the only one the normal policies take; the nice value is kept.
    let param = uapi::c::sched_param { sched_priority: 0 };
    // Pid 0 is the calling thread (Linux schedules threads, not processes).
    uapi::sched_setscheduler(0, uapi::c::SCHED_BATCH, &param)
        .map(|_| ())
        .map_err(|e| SchedError::Refused(std::io::Error::from_raw_os_error(e.0)))
}

#[cfg(not(target_os = "linux"))]
fn set_batch() -> Result<(), SchedError> {
    Err(SchedError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's policy number as the kernel reports it (`/proc/thread-self/sched`).
    #[cfg(target_os = "linux")]
    fn policy_now() -> u32 {
        let text = std::fs::read_to_string("/proc/thread-self/sched").expect("sched file");
        let line = text.lines().find(|l| l.starts_with("policy")).expect("policy line");
        line.rsplit(':').next().expect("value").trim().parse().expect("a number")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn batch_is_set_on_the_thread_and_inherited_by_threads_it_starts() {
        // In a thread of its own, so the test harness's threads keep their policy.
        std::thread::spawn(|| {
            assert_eq!(policy_now(), 0, "a test thread starts under SCHED_OTHER");
            assert_eq!(
                apply(Scheduling::Batch).expect("SCHED_BATCH needs no privilege"),
                Applied::Batch
            );
            assert_eq!(policy_now(), 3, "SCHED_BATCH is policy 3");
            let child = std::thread::spawn(policy_now).join().expect("child thread");
            assert_eq!(child, 3, "a thread started afterwards inherits the policy");
        })
        .join()
        .expect("test thread");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn normal_changes_nothing() {
        std::thread::spawn(|| {
            assert_eq!(apply(Scheduling::Normal).expect("nothing to refuse"), Applied::Unchanged);
            assert_eq!(policy_now(), 0);
        })
        .join()
        .expect("test thread");
    }

    #[test]
    fn values_parse_and_print_back() {
        for p in [Scheduling::Batch, Scheduling::Normal] {
            assert_eq!(p.to_string().parse::<Scheduling>(), Ok(p));
        }
        assert_eq!(" batch ".parse::<Scheduling>(), Ok(Scheduling::Batch));
        assert_eq!("fifo".parse::<Scheduling>(), Err(UnknownScheduling("fifo".into())));
        assert_eq!(Scheduling::default(), Scheduling::Batch);
    }
}

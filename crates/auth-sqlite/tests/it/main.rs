//! Integration tests of the SQLite store, in one test binary: the auth-core conformance suite, the
//! store's own port checks (including a differential run against the in-memory reference store),
//! several processes on one file, SIGKILL at random moments, and a scan of the file for secrets.
//!
//! The multi-process tests re-invoke this binary as their child processes: `child_process_entry`
//! is an ordinary test that does nothing unless the environment names a child role.

/// Child-process plumbing and fixtures shared by the modules below.
mod common;
/// The auth-core conformance suite, run against this store.
mod conformance;
/// SIGKILL at random moments: integrity and durability of every reported commit.
mod crash;
/// Two OS processes racing on one database file: limits hold exactly across them.
mod multiprocess;
/// This store's own checks: differential run against `MemStore`, open/migrate refusals, error mapping.
mod ports;
/// A full `AuthService` flow, then a scan of the database files for secrets in any encoding.
mod secrets;
/// The per-process session cache: exact across stores on one file, bounded behind their back.
mod session_cache;

#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(common::CHILD_ROLE) else { return };
    match role.as_str() {
        "hammer" => multiprocess::child(),
        "writer" => crash::child(),
        other => panic!("unknown child role {other:?}"),
    }
}

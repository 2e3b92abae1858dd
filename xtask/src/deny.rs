//! `cargo xtask deny`: licences, bans and sources of every dependency, per `deny.toml`.
//!
//! The RustSec advisory database is a git clone that this network cannot fetch, so the advisories
//! check runs only when a copy is already on disk, and otherwise says plainly that it was not run.

use std::path::PathBuf;

use anyhow::Context;

use crate::{available, cargo, run as run_cmd};

/// The cargo-deny release whose config format `deny.toml` follows; `.ci/run` installs the same one.
pub(crate) const VERSION: &str = "0.20.2";

pub(crate) fn installed() -> bool {
    available(cargo().arg("deny"))
}

pub(crate) fn install_hint() -> String {
    format!("install it with `cargo install --locked cargo-deny@{VERSION}`")
}

pub(crate) fn run() -> anyhow::Result<()> {
    anyhow::ensure!(installed(), "cargo-deny is not installed; {}", install_hint());
    run_cmd(cargo().args(["deny", "check", "bans", "licenses", "sources"]))?;

    match advisory_db() {
        Some(db) => {
            println!("advisory database found at {}; checking advisories offline", db.display());
            // `--offline` (cargo-deny 0.20's replacement for `check --disable-fetch`) uses the copy on disk
            // instead of trying to update it from a network that cannot reach it.
            run_cmd(cargo().args(["deny", "--offline", "check", "advisories"]))
                .context("advisories check failed")?;
        }
        None => println!(
            "advisories: not checked, the advisory database is not available on this network \
             (run `cargo deny fetch` where it is reachable, then `cargo xtask deny` again)"
        ),
    }
    Ok(())
}

/// The directory cargo-deny clones advisory databases into, if it holds at least one.
///
/// This is cargo-deny's default `db-path`, `$CARGO_HOME/advisory-dbs`; `deny.toml` does not override it.
fn advisory_db() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let dbs = cargo_home.join("advisory-dbs");
    let mut entries = std::fs::read_dir(&dbs).ok()?;
    entries.any(|entry| entry.is_ok_and(|e| e.path().is_dir())).then_some(dbs)
}

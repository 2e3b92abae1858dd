//! `cargo xtask bench`: the load benchmark of issue 6, not written yet.
//!
//! It will build the release server, drive it with a Rust load generator and write
//! `target/bench/summary.json`; until then it fails loudly rather than pretending to measure anything.

pub(crate) fn run() -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench` is not implemented yet (issue 6)")
}

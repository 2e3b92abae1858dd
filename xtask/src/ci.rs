//! `cargo xtask ci`: the definition of green, run the same way locally and by `.ci/run`.
//!
//! Every job runs even after an earlier one fails, so one CI log shows every problem at once;
//! the summary at the end says which jobs passed, failed or were skipped, and the exit code is non-zero
//! if any failed.

use std::time::Instant;

use clap::ValueEnum;

use crate::{cargo, deny, layering, run as run_cmd, tidy};

/// One CI job; with no `--job`, all of them run in declaration order.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Job {
    /// `cargo fmt --all -- --check`: formatting is not a review topic.
    Fmt,
    /// `cargo clippy --workspace --all-targets -- -D warnings`: lints are warnings locally and errors here.
    Clippy,
    /// `cargo test --workspace`: the README's test command, including xtask's own tidy test. Under
    /// `CI=true` it refuses to start without `AUTH_TEST_POSTGRES_URL`, so the PostgreSQL tests cannot
    /// pass by skipping.
    Test,
    /// `cargo xtask layering`: the crate graph keeps its shape.
    Layering,
    /// `cargo xtask tidy`: source conventions that no compiler lint covers.
    Tidy,
    /// `cargo xtask deny`: licences, bans and sources of every dependency.
    Deny,
    /// `cargo check` of the fuzz targets (their own workspace), so they cannot rot between fuzz runs.
    Fuzz,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Fmt => "fmt",
            Job::Clippy => "clippy",
            Job::Test => "test",
            Job::Layering => "layering",
            Job::Tidy => "tidy",
            Job::Deny => "deny",
            Job::Fuzz => "fuzz-check",
        }
    }
}

enum Outcome {
    Passed,
    Failed(anyhow::Error),
    Skipped(String),
}

pub(crate) fn run(only: Option<Job>, require_deny: bool) -> anyhow::Result<()> {
    let jobs: Vec<Job> = match only {
        Some(job) => vec![job],
        None => Job::value_variants().to_vec(),
    };
    let mut results = Vec::new();
    for (i, &job) in jobs.iter().enumerate() {
        println!("\n==> [{}/{}] {}", i + 1, jobs.len(), job.name());
        // Wall time per job goes into the summary; xtask is not auth-core, so the real clock is fine here.
        let started = Instant::now();
        let outcome = match run_job(job, require_deny) {
            Ok(outcome) => outcome,
            Err(err) => Outcome::Failed(err),
        };
        match &outcome {
            Outcome::Passed => {}
            Outcome::Failed(err) => println!("error: {} failed: {err:#}", job.name()),
            Outcome::Skipped(why) => println!("skipped: {why}"),
        }
        results.push((job, outcome, started.elapsed()));
    }

    println!("\n==> ci summary");
    let mut failed = Vec::new();
    for (job, outcome, took) in &results {
        let status = match outcome {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed(_) => {
                failed.push(job.name());
                "FAILED".to_owned()
            }
            Outcome::Skipped(why) => format!("skipped ({why})"),
        };
        println!("  {:<9} {:>7.1}s  {status}", job.name(), took.as_secs_f64());
    }
    if !failed.is_empty() {
        anyhow::bail!("ci failed: {}", failed.join(", "));
    }
    println!("ci: all jobs passed");
    Ok(())
}

fn run_job(job: Job, require_deny: bool) -> anyhow::Result<Outcome> {
    match job {
        Job::Fmt => run_cmd(cargo().args(["fmt", "--all", "--", "--check"]))?,
        Job::Clippy => {
            run_cmd(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
        }
        Job::Test => {
            require_real_components()?;
            run_cmd(cargo().args(["test", "--workspace"]))?;
        }
        Job::Fuzz => {
            // The fuzz crate is its own workspace (libfuzzer-sys needs nightly flags only to run).
            run_cmd(cargo().args(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins"]))?;
        }
        Job::Layering => layering::run()?,
        Job::Tidy => tidy::run()?,
        Job::Deny => {
            // A developer without cargo-deny can still get a green local run; CI must not skip it.
            if !deny::installed() {
                let hint = deny::install_hint();
                if require_deny {
                    anyhow::bail!("cargo-deny is not installed; {hint}");
                }
                return Ok(Outcome::Skipped(format!("cargo-deny not installed; {hint}")));
            }
            deny::run()?;
        }
    }
    Ok(Outcome::Passed)
}

/// The variables that name the real components the tests start or use; under `CI=true` a missing one
/// is a failure, not a skip (a skipped test there would pass without proving anything).
const REAL_COMPONENTS: &[(&str, &str)] =
    &[("AUTH_TEST_POSTGRES_URL", "source .ci/postgres.sh (it starts a throwaway cluster)")];

fn require_real_components() -> anyhow::Result<()> {
    if std::env::var("CI").as_deref() != Ok("true") {
        return Ok(());
    }
    let missing: Vec<String> = REAL_COMPONENTS
        .iter()
        .filter(|(var, _)| std::env::var_os(var).is_none_or(|v| v.is_empty()))
        .map(|(var, how)| format!("{var} is not set: {how}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "CI=true, but the tests would skip real components:\n  {}",
            missing.join("\n  ")
        )
    }
}

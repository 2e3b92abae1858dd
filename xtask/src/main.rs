//! `cargo xtask`: the project's automation, so CI and developers run the same commands.
//!
//! Each subcommand lives in its own module; this file only parses arguments and holds the
//! small helpers for running other programs from the project root.
//! Most subcommands need only `clap` and `anyhow`; `bench` adds the load generator's (tokio, hyper,
//! hdrhistogram, auth-core for argon2 and TOTP), which lengthens the first build of xtask.

// xtask talks to a person at a terminal, so printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod deny;
mod fuzz;
mod layering;
mod tidy;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation; `cargo xtask ci` is the definition of green."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every CI job in order (fmt, clippy, test, layering, tidy, deny), or one with `--job`.
    Ci {
        /// Run only this job.
        #[arg(long, value_enum)]
        job: Option<ci::Job>,
        /// Fail instead of skipping when cargo-deny is not installed (implied by CI=true).
        #[arg(long)]
        require_deny: bool,
    },
    /// Check the crate graph: auth-core and auth-wire stay free of transport, storage and each other.
    Layering,
    /// Check source conventions: `//!` headers, no ignored tests or leftovers, no ambient clock in auth-core.
    Tidy,
    /// Run `cargo deny check bans licenses sources`, plus advisories when the database is available.
    Deny,
    /// Run cargo-fuzz targets from `fuzz/` (stable toolchain via RUSTC_BOOTSTRAP, no sanitizer).
    Fuzz {
        /// Run only this target (default: every `[[bin]]` in `fuzz/Cargo.toml`).
        #[arg(long)]
        target: Option<String>,
        /// Time budget per target, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Load-test the real server (release build, production hash cost) and write target/bench/summary.json.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Ci { job, require_deny } => ci::run(job, require_deny || in_ci()),
        Cmd::Layering => layering::run(),
        Cmd::Tidy => tidy::run(),
        Cmd::Deny => deny::run(),
        Cmd::Fuzz { target, seconds } => fuzz::run(target.as_deref(), seconds),
        Cmd::Bench(args) => bench::run(args),
    };
    // The error chain is the message; a backtrace into xtask itself would only bury it.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root; xtask's manifest sits one level below it, so this works from any directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Whether we run under CI, which makes optional tools mandatory so a green run means the same everywhere.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A `cargo` command in the project root.
///
/// It uses the cargo that launched us (`$CARGO`) so the toolchain stays the same as the one running xtask.
fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root());
    cmd
}

/// Renders a command the way a person would type it, for logs and error messages.
fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(|| cmd.get_program().to_string_lossy(), |name| name.to_string_lossy());
    let mut line = program.into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs a command with inherited output, echoing it first so logs show what ran, and fails on a non-zero exit.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd.status().with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its stdout; stderr is kept for the error message on failure.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = display(cmd);
    let out = cmd.output().with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed invalid UTF-8"))
}

/// Whether a program answers `--version`; used to detect optional tools without failing.
fn available(cmd: &mut Command) -> bool {
    cmd.arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

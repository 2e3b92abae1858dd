//! `cargo xtask fuzz`: runs the cargo-fuzz targets under `fuzz/` for a fixed time each, then minimises each
//! target's corpus (`cargo fuzz cmin`) into `fuzz/corpus/<target>/`, which is committed.
//!
//! cargo-fuzz wants a nightly toolchain only for the sanitizer flags (`-Zsanitizer=…`). The coverage
//! instrumentation it uses (`-Cpasses=sancov-module`, `-Cllvm-args=…`) is stable, so by default this runs
//! on the ordinary stable toolchain with `--sanitizer none` and `RUSTC_BOOTSTRAP=1` (cargo-fuzz passes a
//! few `-Z` flags to cargo). Our crates forbid `unsafe`, so AddressSanitizer would watch only dependencies;
//! set `AUTH_FUZZ_SANITIZER=address` to use it where a nightly toolchain is installed.
//!
//! This is for developers and for the documented long runs (docs/SECURITY.md), not for `cargo xtask ci`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::{available, project_root, run as run_cmd};

/// What one target's run reported.
struct Outcome {
    target: String,
    runs: Option<u64>,
    seconds: Option<u64>,
    corpus: usize,
}

pub(crate) fn run(only: Option<&str>, seconds: u64) -> anyhow::Result<()> {
    let manifest = project_root().join("fuzz").join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("no fuzz crate yet: cannot read {}", manifest.display()))?;
    let all = bin_names(&text);
    let targets: Vec<String> = match only {
        Some(target) if all.iter().any(|t| t == target) => vec![target.to_owned()],
        Some(target) => bail!("unknown fuzz target `{target}`; known: {}", all.join(", ")),
        None => all,
    };
    if targets.is_empty() {
        bail!("{} declares no [[bin]] targets", manifest.display());
    }

    let sanitizer = std::env::var("AUTH_FUZZ_SANITIZER").unwrap_or_else(|_| "none".to_owned());
    // `cargo` here is the rustup proxy, which understands `+nightly`; `$CARGO` would be one toolchain's
    // binary. With no sanitizer, the default (stable) toolchain is enough.
    let toolchain: &[&str] = if sanitizer == "none" { &[] } else { &["+nightly"] };
    if !toolchain.is_empty() && !available(Command::new("cargo").args(toolchain)) {
        bail!(
            "AUTH_FUZZ_SANITIZER={sanitizer} needs a nightly toolchain, which is not installed; \
             unset it to fuzz on stable without a sanitizer"
        );
    }
    if !available(Command::new("cargo").args(toolchain).arg("fuzz")) {
        println!("cargo-fuzz is not installed; installing it");
        run_cmd(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    let fuzz = |sub: &str| {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(project_root())
            .args(toolchain)
            .args(["fuzz", sub, "--sanitizer", &sanitizer])
            // Stable rustc accepts cargo-fuzz's few `-Z` flags only with this.
            .env("RUSTC_BOOTSTRAP", "1");
        cmd
    };

    let mut outcomes = Vec::new();
    for target in &targets {
        println!("\n==> fuzz {target} for {seconds}s (sanitizer: {sanitizer})");
        let corpus = project_root().join("fuzz").join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let mut cmd = fuzz("run");
        cmd.arg(target)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1");
        let (runs, secs) = run_reporting(&mut cmd, target)?;

        println!("==> minimising the corpus of {target}");
        run_cmd(fuzz("cmin").arg(target))?;
        let files = std::fs::read_dir(&corpus).map(Iterator::count).unwrap_or(0);
        outcomes.push(Outcome { target: target.clone(), runs, seconds: secs, corpus: files });
    }

    println!("\n{:<24} {:>8} {:>14} {:>10}", "target", "seconds", "executions", "corpus");
    for o in &outcomes {
        let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        println!("{:<24} {:>8} {:>14} {:>10}", o.target, show(o.seconds), show(o.runs), o.corpus);
    }
    println!("fuzz: {} target(s) ran {seconds}s each with no crash", outcomes.len());
    Ok(())
}

/// Runs a `cargo fuzz run`, passing its output through, and returns libFuzzer's final
/// `Done N runs in S second(s)` numbers. A crash (non-zero exit) is an error naming the target.
fn run_reporting(cmd: &mut Command, target: &str) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    println!("$ cargo fuzz run … {target}");
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start cargo fuzz for {target}"))?;
    let mut done = (None, None);
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if let Some(parsed) = parse_done(&line) {
                done = parsed;
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "fuzz target `{target}` failed ({status}): the crashing input is under \
             fuzz/artifacts/{target}/; reproduce with `cargo fuzz run {target} <file>`"
        );
    }
    Ok(done)
}

/// Reads libFuzzer's closing line, `Done 123 runs in 60 second(s)`.
fn parse_done(line: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = line.strip_prefix("Done ")?;
    let mut words = rest.split_whitespace();
    let runs = words.next()?.parse().ok();
    let secs = words.nth(2).and_then(|w| w.parse().ok());
    Some((runs, secs))
}

/// The `name` of each `[[bin]]` table in a Cargo manifest.
///
/// A line-based reading is enough for the manifest `cargo fuzz add` writes, and spares xtask a TOML parser.
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start();
            if let Some(value) = value.strip_prefix('=') {
                names.push(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{bin_names, parse_done};

    #[test]
    fn reads_bin_names_only() {
        let manifest = r#"
[package]
name = "auth-fuzz"

[dependencies]
libfuzzer-sys = "0.4"

[[bin]]
name = "wire_json_decode"
path = "fuzz_targets/wire_json_decode.rs"

[[bin]]
name="phone_parse"
path = "fuzz_targets/phone_parse.rs"
"#;
        assert_eq!(bin_names(manifest), ["wire_json_decode", "phone_parse"]);
    }

    #[test]
    fn reads_libfuzzer_final_line() {
        assert_eq!(
            parse_done("Done 123456 runs in 601 second(s)"),
            Some((Some(123456), Some(601)))
        );
        assert_eq!(parse_done("#2 INITED cov: 3"), None);
    }
}

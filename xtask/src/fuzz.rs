//! `cargo xtask fuzz`: runs the cargo-fuzz targets under `fuzz/` for a fixed time each.
//!
//! cargo-fuzz needs a nightly toolchain (for the sanitizer flags), which is not part of CI;
//! this command is for developers and for the documented long runs, not for `cargo xtask ci`.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{available, project_root, run as run_cmd};

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

    // The rustup proxy `cargo` understands `+nightly`; `$CARGO` would be the stable binary itself.
    if !available(Command::new("cargo").arg("+nightly")) {
        bail!(
            "the nightly toolchain is not available, and cargo-fuzz needs it; \
             install it with `rustup toolchain install nightly`"
        );
    }
    if !available(Command::new("cargo").args(["+nightly", "fuzz"])) {
        println!("cargo-fuzz is not installed; installing it");
        run_cmd(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }

    for target in &targets {
        println!("\n==> fuzz {target} for {seconds}s");
        run_cmd(
            Command::new("cargo")
                .current_dir(project_root())
                .args(["+nightly", "fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={seconds}")),
        )?;
    }
    println!("fuzz: {} target(s) ran {seconds}s each with no crash", targets.len());
    Ok(())
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
    use super::bin_names;

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
}

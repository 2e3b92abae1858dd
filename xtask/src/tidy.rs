//! `cargo xtask tidy`: source conventions that no compiler lint covers.
//!
//! The checks are plain text searches, so a comment line never counts (a doc may name what it bans),
//! and every needle is assembled with `concat!` so this file does not trip over its own rules.
//! The same checks run as a `#[test]`, so `cargo test --workspace` catches them too.

use std::path::{Path, PathBuf};

use crate::{output, project_root};

/// Directories whose Rust sources are ours and follow the house rules; `fuzz/` joins once it exists.
const SOURCE_DIRS: &[&str] = &["crates/", "tests/", "xtask/", "fuzz/"];

/// Leftovers that must not be committed: each hides unfinished or skipped work.
const LEFTOVERS: &[(&str, &str)] = &[
    (
        concat!("#[", "ignore"),
        "a test that never runs proves nothing; fix it or assert today's behaviour with a FIXME",
    ),
    (concat!("#[", "should_panic"), "assert on the `Err` variant instead of expecting a panic"),
    (concat!("to", "do!("), "unfinished code; return an error or finish it"),
    (concat!("db", "g!("), "debug output; use `tracing` or remove it"),
];

/// Ambient time, randomness and sleeping that `auth-core` must take through its `Clock` and `Rng` ports.
///
/// Clippy's `disallowed-methods` would apply to every crate of the workspace, and the server and tests
/// legitimately read the real clock, so this ban is a text search scoped to `crates/auth-core/src`.
const AMBIENT: &[&str] = &[
    concat!("SystemTime", "::now"),
    concat!("Instant", "::now"),
    concat!("Timestamp", "::now"),
    concat!("Zoned", "::now"),
    concat!("thread", "::sleep"),
    concat!("thread", "_rng"),
    concat!("rand", "::rng("),
    concat!("Os", "Rng"),
    concat!("get", "random"),
];

pub(crate) fn run() -> anyhow::Result<()> {
    let problems = check(&project_root())?;
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    anyhow::bail!("tidy found {} problem(s):\n{}", problems.len(), problems.join("\n"))
}

/// Every problem found under `root`, one line each as `path:line: message`.
fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for rel in rust_files(root)? {
        let path = rel.to_string_lossy().replace('\\', "/");
        if !SOURCE_DIRS.iter().any(|dir| path.starts_with(dir)) {
            continue;
        }
        let text = match std::fs::read_to_string(root.join(&rel)) {
            Ok(text) => text,
            // A file listed by git but deleted in the work tree is not ours to judge.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(anyhow::Error::new(err).context(format!("reading {path}"))),
        };
        problems.extend(check_file(&path, &text));
    }
    Ok(problems)
}

fn check_file(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or("");
    if !first.starts_with("//!") {
        problems
            .push(format!("{path}:1: the file must open with a `//!` comment saying what it is"));
    }
    let core = path.starts_with("crates/auth-core/src/");
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (needle, why) in LEFTOVERS {
            if code.contains(needle) {
                problems.push(format!("{path}:{}: `{needle}`: {why}", i + 1));
            }
        }
        if core {
            for needle in AMBIENT {
                if code.contains(needle) {
                    problems.push(format!(
                        "{path}:{}: `{needle}` in auth-core: time and randomness are parameters, use the `Clock`/`Rng` ports",
                        i + 1
                    ));
                }
            }
        }
    }
    problems
}

/// Rust files relative to `root`: tracked plus untracked-but-not-ignored ones, so a check before
/// `git add` sees new files too; without git (a source tarball) it walks the tree instead.
fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let listed = output(std::process::Command::new("git").current_dir(root).args([
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        "-z",
        "--",
        "*.rs",
    ]));
    if let Ok(listed) = listed {
        return Ok(listed.split('\0').filter(|p| !p.is_empty()).map(PathBuf::from).collect());
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            // Build output and VCS data are not sources.
            if name != "target" && !name.starts_with('.') {
                walk(root, &path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, check_file};

    /// The workspace itself passes tidy; this is what makes tidy part of `cargo test --workspace`.
    #[test]
    fn workspace_is_tidy() {
        let problems = check(&crate::project_root()).unwrap();
        assert!(problems.is_empty(), "tidy found problems:\n{}", problems.join("\n"));
    }

    #[test]
    fn flags_missing_header_and_leftovers() {
        let text =
            concat!("fn main() {\n    db", "g!(1);\n    // db", "g!(2) in a comment is fine\n}\n");
        let problems = check_file("crates/auth-http/src/lib.rs", text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`//!`"));
        assert!(problems[1].starts_with("crates/auth-http/src/lib.rs:2:"));
    }

    #[test]
    fn ambient_time_is_banned_only_in_auth_core() {
        let text = concat!("//! Clock.\nfn now() { let _ = std::time::Instant", "::now(); }\n");
        assert_eq!(check_file("crates/auth-core/src/clock.rs", text).len(), 1);
        assert!(check_file("crates/auth-server/src/clock.rs", text).is_empty());
    }
}

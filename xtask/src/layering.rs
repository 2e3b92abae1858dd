//! `cargo xtask layering`: the crate graph of `docs/ARCHITECTURE.md`, checked with `cargo tree`.
//!
//! Cargo happily builds a graph that breaks our layering, so each rule names a package and the crates
//! that must never appear among its normal dependencies, with every feature on so optional ones count too.
//! Dev-dependencies are exempt: tests may use tokio to drive an async API.

use crate::{cargo, output};

/// A package and the crates its normal dependency tree must not contain.
struct Rule {
    package: &'static str,
    forbidden: &'static [&'static str],
    /// Whether any other `auth-*` crate is forbidden as well.
    no_other_auth_crates: bool,
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        package: "auth-core",
        // serde_core is listed because serde 1.0.220+ moved its traits there, and some crates
        // (jiff, for one) pull it in with a single feature and no `serde` in sight.
        forbidden: &[
            "tokio",
            "hyper",
            "hyper-util",
            "reqwest",
            "rusqlite",
            "libsqlite3-sys",
            "serde",
            "serde_core",
            "serde_json",
        ],
        no_other_auth_crates: true,
        why: "auth-core is pure rules: no runtime, transport, storage or wire format",
    },
    Rule {
        package: "auth-wire",
        forbidden: &["tokio", "hyper", "rusqlite"],
        no_other_auth_crates: true,
        why: "auth-wire is what clients depend on: wire types only, no domain code or transport",
    },
    Rule {
        package: "auth-http",
        forbidden: &["rusqlite", "auth-sqlite", "auth-server"],
        no_other_auth_crates: false,
        why: "auth-http knows HTTP and nothing of SQL; the server wires the store in",
    },
    Rule {
        package: "auth-sqlite",
        forbidden: &["hyper", "auth-http", "auth-wire", "auth-server"],
        no_other_auth_crates: false,
        why: "auth-sqlite knows SQL and nothing of HTTP or the wire format",
    },
];

pub(crate) fn run() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for rule in RULES {
        let tree = output(cargo().args([
            "tree",
            "--quiet",
            "-p",
            rule.package,
            "-e",
            "normal",
            "--all-features",
            "--prefix",
            "none",
        ]))?;
        let mut seen = Vec::new();
        for (name, version) in tree.lines().filter_map(crate_of) {
            let banned = rule.forbidden.contains(&name)
                || (rule.no_other_auth_crates && name.starts_with("auth-") && name != rule.package);
            let spec = format!("{name}@{version}");
            if banned && !seen.contains(&spec) {
                seen.push(spec.clone());
                problems.push(format!(
                    "{} depends on {spec} ({})\n{}",
                    rule.package,
                    rule.why,
                    why_path(rule.package, &spec)
                ));
            }
        }
        if seen.is_empty() {
            println!("layering: {} ok", rule.package);
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("layering violated:\n\n{}", problems.join("\n"));
    }
    Ok(())
}

/// The crate name and version from a `cargo tree --prefix none` line such as `jiff v0.2.46 (…) (*)`.
fn crate_of(line: &str) -> Option<(&str, &str)> {
    let mut words = line.split_whitespace();
    let name = words.next()?;
    let version = words.next()?.strip_prefix('v')?;
    Some((name, version))
}

/// The inverted tree from the banned crate up to the package, which shows who pulled it in.
fn why_path(package: &str, spec: &str) -> String {
    let inverted = output(cargo().args([
        "tree",
        "--quiet",
        "-p",
        package,
        "-e",
        "normal",
        "--all-features",
        "-i",
        spec,
    ]));
    match inverted {
        Ok(tree) => tree,
        Err(err) => format!("(could not show the path: {err:#})"),
    }
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn parses_tree_lines() {
        assert_eq!(crate_of("jiff v0.2.46"), Some(("jiff", "0.2.46")));
        assert_eq!(
            crate_of("auth-core v0.1.0 (/src/repo/crates/auth-core) (*)"),
            Some(("auth-core", "0.1.0"))
        );
        assert_eq!(crate_of(""), None);
    }
}

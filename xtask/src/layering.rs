//! `cargo xtask layering`: the crate graph of `docs/ARCHITECTURE.md`, checked with `cargo tree`.
//!
//! Cargo happily builds a graph that breaks our layering, so each rule names a package and the crates
//! that must never appear among its normal dependencies, with every feature on so optional ones count too.
//! Dev-dependencies are exempt: tests may use tokio to drive an async API.

use crate::{cargo, output};

/// One line of the architecture: crates that only some packages may depend on.
struct Principle {
    why: &'static str,
    /// The crates that embody the concern (a driver, a transport, a format).
    crates: &'static [&'static str],
    /// The packages that must not have them.
    packages: &'static [&'static str],
    /// Whether only direct dependencies count: a package may reach a format crate through auth-wire,
    /// it just must not use one itself.
    direct_only: bool,
}

/// The packages of ours that must stay clear of a concern unless they own it.
const CORE: &str = "auth-core";
const WIRE: &str = "auth-wire";
const HTTP: &str = "auth-http";
const SQLITE: &str = "auth-sqlite";
const POSTGRES: &str = "auth-postgres";
const SQL: &str = "auth-sql";

const PRINCIPLES: &[Principle] = &[
    Principle {
        why: "only the store adapters know SQL",
        crates: &[
            "rusqlite",
            "libsqlite3-sys",
            "tokio-postgres",
            "postgres-types",
            "postgres-protocol",
            "deadpool-postgres",
            // The importer's reader of upstream databases (auth-server only).
            "mysql_async",
            "mysql_common",
            "auth-sqlite",
            "auth-postgres",
            "auth-sql",
        ],
        packages: &[CORE, WIRE, HTTP],
        direct_only: false,
    },
    Principle {
        why: "only auth-http knows HTTP statuses and transport",
        crates: &[
            "hyper",
            "hyper-util",
            "http",
            "http-body",
            "reqwest",
            "auth-http",
            "auth-server",
        ],
        packages: &[CORE, WIRE, SQLITE, POSTGRES, SQL],
        direct_only: false,
    },
    Principle {
        why: "only auth-wire knows the wire format",
        crates: &["serde_json", "quick-xml", "form_urlencoded"],
        packages: &[HTTP, SQLITE, POSTGRES, SQL],
        direct_only: true,
    },
    Principle {
        why: "auth-core is pure rules: no runtime and no serialisation of its own",
        // serde_core is listed because serde 1.0.220+ moved its traits there, and some crates
        // (jiff, for one) pull it in with a single feature and no `serde` in sight.
        crates: &["tokio", "serde", "serde_core", "serde_json", "auth-wire"],
        packages: &[CORE],
        direct_only: false,
    },
    Principle {
        why: "the core reports logins and throttles through its Observer port; metrics crates belong \
              to the transport and the server",
        crates: &["prometheus-client", "prometheus", "metrics"],
        packages: &[CORE, WIRE, SQLITE, POSTGRES, SQL],
        direct_only: false,
    },
    Principle {
        why: "auth-wire is what clients depend on alone: no domain code, no runtime",
        crates: &["tokio", "auth-core"],
        packages: &[WIRE],
        direct_only: false,
    },
    Principle {
        why: "auth-server is the composition root: it depends on everything and nothing on it",
        crates: &["auth-server"],
        packages: &[CORE, WIRE, HTTP, SQLITE, POSTGRES, SQL],
        direct_only: false,
    },
    Principle {
        why: "a store adapter knows nothing of the other store or of the wire",
        crates: &["auth-wire", "auth-sqlite", "auth-postgres"],
        packages: &[SQLITE, POSTGRES, SQL],
        direct_only: false,
    },
];

/// The crates `package`'s tree must not contain, each with the principle that forbids it.
fn banned_for(package: &str, direct: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for p in PRINCIPLES.iter().filter(|p| p.direct_only == direct && p.packages.contains(&package))
    {
        for c in p.crates.iter().filter(|c| **c != package) {
            out.push((*c, p.why));
        }
    }
    out
}

pub(crate) fn run() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut packages: Vec<&str> =
        PRINCIPLES.iter().flat_map(|p| p.packages.iter().copied()).collect();
    packages.sort_unstable();
    packages.dedup();
    for package in packages {
        let mut seen = Vec::new();
        for direct in [false, true] {
            let banned = banned_for(package, direct);
            if banned.is_empty() {
                continue;
            }
            let mut args = vec![
                "tree",
                "--quiet",
                "-p",
                package,
                "-e",
                "normal",
                "--all-features",
                "--prefix",
                "none",
            ];
            if direct {
                args.extend(["--depth", "1"]);
            }
            let tree = output(cargo().args(&args))?;
            for (name, version) in tree.lines().filter_map(crate_of) {
                let Some((_, why)) = banned.iter().find(|(c, _)| *c == name) else { continue };
                let spec = format!("{name}@{version}");
                if !seen.contains(&spec) {
                    seen.push(spec.clone());
                    problems.push(format!(
                        "{package} depends on {spec} ({why})\n{}",
                        why_path(package, &spec)
                    ));
                }
            }
        }
        if seen.is_empty() {
            println!("layering: {package} ok");
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
    use super::{HTTP, WIRE, banned_for, crate_of};

    #[test]
    fn principles_name_what_each_package_may_not_use() {
        let http: Vec<_> = banned_for(HTTP, false).into_iter().map(|(c, _)| c).collect();
        assert!(http.contains(&"tokio-postgres") && http.contains(&"auth-postgres"), "{http:?}");
        assert!(!http.contains(&"hyper"), "auth-http owns HTTP");
        let http_direct: Vec<_> = banned_for(HTTP, true).into_iter().map(|(c, _)| c).collect();
        assert!(http_direct.contains(&"serde_json"), "{http_direct:?}");
        let wire: Vec<_> = banned_for(WIRE, false).into_iter().map(|(c, _)| c).collect();
        assert!(
            wire.contains(&"hyper") && wire.contains(&"auth-core") && !wire.contains(&"serde_json")
        );
    }

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

//! `cargo xtask bench --import`: how fast the migration of issue 14 runs, in users per second.
//!
//! Two scenarios, each through the release binary on a fresh data directory with the production
//! argon2id cost: `import onlyoffice` of generated upstream users (100 000; 10 000 with `--quick`) from
//! a real MariaDB (`auth_tests::mariadb`, loaded by `auth_tests::upstream`'s generator), and
//! `user import --jsonl` of pre-hashed users (1 000 000; 100 000 with `--quick`). The rate is users
//! created divided by the command's wall time, reading included.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use auth_core::password::{Argon2Hasher, BlockingHasher as _, HashParams};
use auth_core::ports::Rng;
use auth_tests::mariadb::Database;
use auth_tests::upstream::{Installation, SCHEMA, generated_users};
use serde_json::{Value, json};

/// Salts for the one PHC string every JSONL line shares: any bytes do for a benchmark.
struct Counter(std::sync::atomic::AtomicU8);

impl Rng for Counter {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn run_cli(binary: &Path, data: &Path, args: &[&str]) -> anyhow::Result<(Value, f64)> {
    let mut cmd = Command::new(binary);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AUTH_")) {
            cmd.env_remove(k);
        }
    }
    cmd.env("AUTH_DATA_DIR", data).args(args);
    let t = Instant::now();
    let out = cmd.output().context("cannot run auth-server")?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("auth-server {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("the report is not JSON")?;
    Ok((report, secs))
}

fn created(report: &Value) -> u64 {
    report["counts"]["users"]["created"].as_u64().unwrap_or(0)
}

/// Both scenarios; returns their part of the summary.
pub(crate) fn run(quick: bool, binary: &Path) -> anyhow::Result<Value> {
    let upstream_users = if quick { 10_000 } else { 100_000 };
    let jsonl_users = if quick { 100_000 } else { 1_000_000 };

    println!("[import] generating {upstream_users} upstream users in MariaDB …");
    let Some(db) = Database::create("bench") else { bail!("no MariaDB for the import benchmark") };
    db.exec(SCHEMA);
    db.exec(
        "INSERT INTO tenants_tenants (id,name,alias,language,timezone,status,creationdatetime) \
         VALUES (1,'Bench','bench','en-US','UTC',0,'2024-01-01 00:00:00')",
    );
    let inst = Installation::public();
    for sql in generated_users(&inst, 1, "bench.test", upstream_users, "bench-password") {
        db.exec(&sql);
    }
    let data = tempfile::tempdir()?;
    let url = db.url();
    let (report, secs) = run_cli(
        binary,
        &data.path().join("data"),
        &[
            "import",
            "onlyoffice",
            "--mysql",
            &url,
            "--machine-key",
            &inst.machine_key,
            "--base-domain",
            "example.test",
            "--json",
        ],
    )?;
    let n = created(&report);
    anyhow::ensure!(n == upstream_users as u64, "imported {n} of {upstream_users} users: {report}");
    let (upstream_secs, upstream_rate) = (secs, n as f64 / secs);
    println!("[import] onlyoffice: {n} users in {secs:.1} s = {upstream_rate:.0} users/s");

    println!("[import] writing {jsonl_users} pre-hashed JSONL users …");
    let argon = Argon2Hasher::new(HashParams::default(), Arc::new(Counter(0.into())))?;
    let phc = argon.hash(&"bench-password".into())?;
    let file = data.path().join("users.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for i in 0..jsonl_users {
        writeln!(
            w,
            r#"{{"email":"user{i}@jsonl.test","first_name":"First{i}","last_name":"Last","password_hash":"{}"}}"#,
            phc.as_str()
        )?;
    }
    w.flush()?;
    drop(w);
    let jsonl_data = data.path().join("jsonl-data");
    let path = file.display().to_string();
    let (report, secs) =
        run_cli(binary, &jsonl_data, &["user", "import", "--jsonl", &path, "--json"])?;
    let n = created(&report);
    anyhow::ensure!(n == jsonl_users as u64, "imported {n} of {jsonl_users} lines");
    let jsonl_rate = n as f64 / secs;
    println!("[import] jsonl: {n} users in {secs:.1} s = {jsonl_rate:.0} users/s");
    Ok(json!({
        "onlyoffice": { "users": upstream_users, "seconds": round(upstream_secs), "users_per_s": round(upstream_rate) },
        "jsonl": { "users": jsonl_users, "seconds": round(secs), "users_per_s": round(jsonl_rate) },
    }))
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

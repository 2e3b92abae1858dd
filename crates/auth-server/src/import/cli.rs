//! The command layer of `import onlyoffice` and `user import`: reads the secrets from where the
//! operator put them, opens the service with the server's hashing pool, runs the import with progress
//! on stderr, and prints the report on stdout (a table, or JSON with `--json`).
//!
//! Errors here are `anyhow` with one line for the operator, like every admin subcommand's.

use std::io::{BufReader, Write};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use auth_core::ports::PasswordHasher;
use auth_core::{AuthService, SecretString};

use super::progress::Progress;
use super::report::Report;
use super::{OnlyofficeOptions, jsonl};
use crate::cli::{OnlyofficeImport, UserImport};
use crate::config::Config;
use crate::hashing::PooledHasher;
use crate::wiring;

/// How many entries of each list the text report prints (the JSON form has them all).
const TEXT_ENTRIES: usize = 200;

async fn open(config: &Config) -> anyhow::Result<(Arc<AuthService>, usize)> {
    let hashing = config.hashing;
    let core = wiring::open(config, |rng| {
        let argon = wiring::argon2(config, rng)?;
        let pool = PooledHasher::start(Arc::new(argon), hashing.workers, hashing.queue)
            .context("cannot start the password hashing threads")?;
        Ok(Arc::new(pool) as Arc<dyn PasswordHasher>)
    })
    .await?;
    // Never more jobs in flight than the pool takes, so it never answers "busy" to the import.
    let concurrency =
        (hashing.workers.max(1) * 2).min(hashing.workers.max(1) + hashing.queue.max(1));
    Ok((core.service, concurrency))
}

fn machine_key(args: &OnlyofficeImport) -> anyhow::Result<SecretString> {
    let key = match (&args.machine_key.machine_key, &args.machine_key.machine_key_file) {
        (Some(k), _) => SecretString::new(k.clone()),
        (None, Some(path)) => {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the machine key file {}", path.display())
                })?);
            SecretString::new(text.lines().next().unwrap_or_default().trim().to_owned())
        }
        (None, None) => bail!("give --machine-key or --machine-key-file"),
    };
    if key.is_empty() {
        bail!("the machine key is empty");
    }
    Ok(key)
}

fn print(report: &Report, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        let text =
            serde_json::to_string_pretty(&report.to_json()).context("cannot write the report")?;
        writeln!(out, "{text}")?;
    } else {
        report.write_text(out, TEXT_ENTRIES)?;
    }
    Ok(())
}

/// `auth-server import onlyoffice …`.
pub async fn onlyoffice(
    args: OnlyofficeImport,
    config: &Config,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let machine_key = machine_key(&args)?;
    let options = OnlyofficeOptions {
        mysql_url: args.mysql.clone(),
        // The mysql client's own convention, so the password need not be in the URL.
        mysql_password: std::env::var("MYSQL_PWD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(SecretString::new),
        machine_key,
        base_domain: args.base_domain.clone(),
        password_salt: args.password_salt.clone().filter(|s| !s.is_empty()).map(SecretString::new),
        iterations: args.iterations,
        size_bits: args.password_size,
        tenants: args.tenants.clone(),
        dry_run: args.dry_run,
    };
    let (service, concurrency) = open(config).await?;
    let progress = Progress::stderr();
    let report = super::onlyoffice(&service, options, &progress, concurrency).await?;
    print(&report, args.json, out)
}

/// `auth-server user import --jsonl FILE [--portal HOST]`.
pub async fn jsonl(args: UserImport, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut input: Box<dyn std::io::BufRead> = if args.jsonl.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.jsonl)
            .with_context(|| format!("cannot open {}", args.jsonl.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let (service, concurrency) = open(config).await?;
    let portal = match args.portal.as_deref() {
        Some(host) => service
            .admin()
            .find_portal(Some(host))
            .await
            .with_context(|| format!("no portal answers to {host}"))?,
        None => service.admin().ensure_default_portal().await?.as_ref().clone(),
    };
    let progress = Progress::stderr();
    let report =
        jsonl::import(&service, portal.id, &mut input, args.batch, concurrency, &progress).await?;
    print(&report, args.json, out)
}

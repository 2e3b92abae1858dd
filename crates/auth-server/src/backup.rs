//! `auth-server backup` and `auth-server restore` (spec §13): the SQLite database copied while the
//! server runs, and put back while nothing runs.
//!
//! The copy holds password hashes, sealed secrets and the audit trail, but not the server key that
//! opens the sealed values: the key is backed up separately (a thief of one should not get the
//! other), and both commands say so. A restore refuses a backup made under another key than the
//! configured one, because the server would refuse to start on it anyway. On PostgreSQL the
//! database's own tools do this; the commands point to the recipe in `docs/deployment.md`.

use std::io::Write;

use anyhow::{Context as _, bail};

use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::Config;
use crate::keyfile;

/// The meta entry holding the key ring's check value (the same one `wiring` checks at start-up).
const KEY_CHECK: &str = auth_core::keyring::KEY_CHECK_META;

fn sqlite_only(config: &Config, what: &str) -> anyhow::Result<()> {
    if config.database_url.is_some() {
        bail!(
            "{what} works on the embedded SQLite database; for PostgreSQL use pg_dump / pg_restore \
             as docs/deployment.md shows"
        );
    }
    Ok(())
}

/// `backup --to FILE`.
pub fn backup(config: &Config, args: &BackupArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    sqlite_only(config, "backup")?;
    let report = auth_sqlite::backup(&config.database_path, &args.to)
        .with_context(|| format!("cannot back up {}", config.database_path.display()))?;
    writeln!(
        out,
        "backed up {} to {} ({} users, {} bytes, integrity ok)",
        config.database_path.display(),
        args.to.display(),
        report.users,
        report.bytes
    )?;
    writeln!(
        out,
        "the server key is not in the backup: keep a copy of {} apart from it",
        config.server_key_file.display()
    )?;
    Ok(())
}

/// `restore --from FILE`.
pub fn restore(config: &Config, args: &RestoreArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    sqlite_only(config, "restore")?;
    let ring = keyfile::load(&config.server_key_file)?
        .with_context(|| {
            format!(
                "no server key at {}: restore the key file of the backup first",
                config.server_key_file.display()
            )
        })?
        .ring()?;
    let stored = auth_sqlite::meta_value(&args.from, KEY_CHECK)
        .with_context(|| format!("{} is not a backup of this service", args.from.display()))?;
    if let Some(stored) = stored
        && !auth_core::crypto::ct_eq(&stored, &ring.check_value())
    {
        bail!(
            "the backup {} was made under another server key than {} (or another key ring: a \
             backup made before `key rotate` or `key retire` needs the key file of its time); put \
             that key file back first (the server would refuse to start otherwise)",
            args.from.display(),
            config.server_key_file.display()
        );
    }
    let report = auth_sqlite::restore(&args.from, &config.database_path)
        .with_context(|| format!("cannot restore into {}", config.database_path.display()))?;
    writeln!(
        out,
        "restored {} from {} ({} users, integrity ok)",
        config.database_path.display(),
        args.from.display(),
        report.users
    )?;
    writeln!(
        out,
        "the server key was not touched: {} is used as it is",
        config.server_key_file.display()
    )?;
    Ok(())
}

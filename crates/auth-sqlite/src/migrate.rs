//! The schema's numbered migrations and how they are applied.
//!
//! Each migration is an SQL file under `migrations/`, embedded at build time. The file's schema
//! version is `PRAGMA user_version`; on open, every migration above it is applied in one `IMMEDIATE`
//! transaction together with the new version number, so a crash mid-way leaves the old schema whole,
//! and two processes opening a fresh file at once apply the migrations once. A file whose version is
//! above [`SCHEMA_VERSION`] was written by newer code and is refused.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::SqliteError;

/// The migrations, in order; migration `i` (0-based) brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_revisions_claims_meta.sql"),
    include_str!("../migrations/0003_social.sql"),
    include_str!("../migrations/0004_email.sql"),
    include_str!("../migrations/0005_sessions.sql"),
    include_str!("../migrations/0006_session_epoch.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `PRAGMA application_id` of our files ("AUTH"), set when the first migration is applied.
pub(crate) const APPLICATION_ID: i32 = 0x4155_5448;

fn sql_err(version: u32) -> impl Fn(rusqlite::Error) -> SqliteError {
    move |e| SqliteError::Migration { version, message: e.to_string() }
}

/// Brings the database up to [`SCHEMA_VERSION`]; returns the version found before.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, SqliteError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err(SCHEMA_VERSION))?;
    let found: i64 =
        tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err(0))?;
    let app: i32 =
        tx.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sql_err(0))?;
    if found > i64::from(SCHEMA_VERSION) || found < 0 {
        return Err(SqliteError::TooNew { found, supported: SCHEMA_VERSION });
    }
    // Ours carry our id; the only other acceptable file is a blank one (no id, no version). A
    // versioned file without our id, or one with another id, belongs to some other program.
    let objects: i64 =
        tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(sql_err(0))?;
    let blank = found == 0 && app == 0 && objects == 0;
    if app != APPLICATION_ID && !blank {
        return Err(SqliteError::Foreign { application_id: app });
    }
    if blank {
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sql_err(1))?;
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
        tx.execute_batch(sql).map_err(sql_err(version))?;
    }
    if found < i64::from(SCHEMA_VERSION) {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql_err(SCHEMA_VERSION))?;
    }
    tx.commit().map_err(sql_err(SCHEMA_VERSION))?;
    Ok(found)
}

//! Backup and restore of the database file (spec §13), and the lock that keeps a restore from
//! replacing a file a server is using.
//!
//! A backup is SQLite's online backup API in one step: it reads inside one read transaction, so the
//! copy is one consistent snapshot, and in WAL mode that reader blocks no writer — logins go on while
//! it runs. The copy is written to a new file, readable by its owner only, and checked with
//! `PRAGMA integrity_check` before the command reports success.
//!
//! Every [`SqliteStore`](crate::SqliteStore) on a file holds a shared `flock` on `<file>.lock` for
//! as long as it lives; a restore takes the same lock exclusively, without waiting. So a restore
//! refuses while any server or admin command (in any process) has the database open, and a store
//! cannot open the file while a restore replaces it.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::SqliteError;
use crate::migrate::APPLICATION_ID;

/// What a backup copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// Pages copied.
    pub pages: u64,
    /// Bytes in the copy.
    pub bytes: u64,
    /// Users in the copy (a check that it is the database one expects).
    pub users: u64,
}

/// The lock file of a database file.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn io_err(path: &Path, what: &str) -> impl Fn(std::io::Error) -> SqliteError {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |e| SqliteError::Open { path: path.clone(), message: format!("{what}: {e}") }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> SqliteError {
    let path = path.display().to_string();
    move |e| SqliteError::Open { path: path.clone(), message: e.to_string() }
}

fn open_lock(db: &Path) -> Result<File, SqliteError> {
    let path = lock_path(db);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path, "cannot open the lock file"))
}

/// The lock file locked exclusively, when no other store or restore holds it (the caller is alone
/// on the database), else `None`. Dropping the file gives the lock back.
pub(crate) fn exclusive_lock(db: &Path) -> Result<Option<File>, SqliteError> {
    let file = open_lock(db)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io_err(db, "cannot lock the database")(e)),
    }
}

/// Takes the shared lock a store holds on its file; refuses while a restore holds it.
///
/// A store that is opening holds the lock exclusively for a moment too ([`exclusive_lock`], while
/// it resets the session counters), so a refusal is believed only after [`SHARED_LOCK_PATIENCE`]:
/// a restore holds it for seconds, an opening store for microseconds.
pub(crate) fn shared_lock(db: &Path) -> Result<File, SqliteError> {
    let file = open_lock(db)?;
    let deadline = std::time::Instant::now() + SHARED_LOCK_PATIENCE;
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(SqliteError::Open {
                    path: db.display().to_string(),
                    message: "a restore is replacing this database; try again when it has finished"
                        .into(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(db, "cannot lock the database")(e)),
        }
    }
}

/// How long [`shared_lock`] waits out an exclusive lock before it blames a restore.
const SHARED_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies the database at `db` into a new file `to` (which must not exist), consistently, while
/// servers go on using `db`.
pub fn backup(db: &Path, to: &Path) -> Result<BackupReport, SqliteError> {
    if !db.exists() {
        return Err(SqliteError::Open {
            path: db.display().to_string(),
            message: "no database to back up".into(),
        });
    }
    let src =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql_err(db))?;
    src.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_err(db))?;
    check_ours(&src, db)?;
    // Created here, owner-only, so the copy of the password hashes is never readable by others,
    // not even for the moment before SQLite would set a mode.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_err(to, "cannot create the backup file"))?;
    let result = (|| {
        let mut dest = Connection::open(to).map_err(sql_err(to))?;
        let pages = {
            let b = rusqlite::backup::Backup::new(&src, &mut dest).map_err(sql_err(to))?;
            // One step copies every page inside one read transaction: a consistent snapshot.
            b.step(-1).map_err(sql_err(to))?;
            b.progress().pagecount
        };
        // The copy is a plain rollback-journal file: one file to move around, nothing beside it.
        dest.pragma_update(None, "journal_mode", "DELETE").map_err(sql_err(to))?;
        let users = verify(&dest, to)?;
        drop(dest);
        let bytes = std::fs::metadata(to).map_err(io_err(to, "cannot stat the backup"))?.len();
        Ok(BackupReport { pages: u64::try_from(pages).unwrap_or(0), bytes, users })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(to);
    }
    result
}

/// Replaces the database at `db` by the backup `from`. Refuses while anything holds the database
/// open (a server, an admin command), and refuses a file that is not a sound backup of ours. The
/// backup is copied next to `db` first and renamed over it, so a failure midway leaves `db` as it
/// was.
pub fn restore(from: &Path, db: &Path) -> Result<BackupReport, SqliteError> {
    let lock = open_lock(db)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(SqliteError::Open {
                path: db.display().to_string(),
                message: "the database is in use (a server or an admin command has it open); \
                          stop every server on it first"
                    .into(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err(db, "cannot lock the database")(e)),
    }
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql_err(from))?;
    check_ours(&src, from)?;
    verify(&src, from)?;
    let mut tmp = db.as_os_str().to_owned();
    tmp.push(".restoring");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp, "cannot create the restored file"))?;
    let copied = (|| {
        let mut dest = Connection::open(&tmp).map_err(sql_err(&tmp))?;
        let pages = {
            let b = rusqlite::backup::Backup::new(&src, &mut dest).map_err(sql_err(&tmp))?;
            b.step(-1).map_err(sql_err(&tmp))?;
            b.progress().pagecount
        };
        let users = verify(&dest, &tmp)?;
        drop(dest);
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(&tmp, "cannot sync"))?;
        let bytes = std::fs::metadata(&tmp).map_err(io_err(&tmp, "cannot stat"))?.len();
        Ok(BackupReport { pages: u64::try_from(pages).unwrap_or(0), bytes, users })
    })();
    let report = match copied {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // The old file's WAL belongs to the old file: left beside the new one, SQLite would replay it.
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(db, "cannot remove the old write-ahead log")(e)),
        }
    }
    std::fs::rename(&tmp, db).map_err(io_err(db, "cannot move the restored file into place"))?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    drop(lock);
    Ok(report)
}

/// The value of a `meta` entry in the database file at `path` (the server compares a backup's key
/// check value with its own key before restoring it).
pub fn meta_value(path: &Path, name: &str) -> Result<Option<Vec<u8>>, SqliteError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql_err(path))?;
    check_ours(&conn, path)?;
    let mut st = conn.prepare("SELECT value FROM meta WHERE name = ?1").map_err(sql_err(path))?;
    let mut rows = st.query([name]).map_err(sql_err(path))?;
    match rows.next().map_err(sql_err(path))? {
        Some(row) => Ok(Some(row.get(0).map_err(sql_err(path))?)),
        None => Ok(None),
    }
}

fn check_ours(conn: &Connection, path: &Path) -> Result<(), SqliteError> {
    let app: i32 =
        conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sql_err(path))?;
    if app != APPLICATION_ID {
        return Err(SqliteError::Foreign { application_id: app });
    }
    Ok(())
}

/// `PRAGMA integrity_check`, then the number of users.
fn verify(conn: &Connection, path: &Path) -> Result<u64, SqliteError> {
    let check: String =
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(sql_err(path))?;
    if check != "ok" {
        return Err(SqliteError::Open {
            path: path.display().to_string(),
            message: format!("integrity check failed: {check}"),
        });
    }
    let users: i64 =
        conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).map_err(sql_err(path))?;
    Ok(u64::try_from(users).unwrap_or(0))
}

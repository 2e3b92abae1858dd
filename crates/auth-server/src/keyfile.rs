//! The server key file: the key ring that protects every stored code hash and sealed secret.
//!
//! Two formats. The file a first start creates, and every file from before the ring, is 32 random
//! bytes: a ring of one key, id 1. Once `auth-server key rotate` has added a key it is a text file:
//!
//! ```text
//! auth-server key ring v1
//! # comment lines and blank lines are ignored
//! 1 2026-01-10T07:46:24Z <the key, 32 bytes in standard base64>
//! 2 2026-03-01T10:00:00Z <…>
//! ```
//!
//! one line per key: its id, when it was made (`-` when unknown), and its bytes. The highest id seals;
//! every key opens. A file holding anything else is refused, and so is one that group or others may
//! read or write: a leaked key lets a stolen database be attacked offline.
//!
//! On first start the key is created with mode 0600, atomically: it is written and synced under a
//! temporary name and then hard-linked to its final name, which fails if the name exists. So a crash
//! never leaves a half-written key behind, and two processes starting together on one data directory
//! agree on one key (the loser reads the winner's). A ring is replaced the same way, by a rename over
//! the old file ([`replace`]), under an exclusive lock on `<file>.lock` ([`lock`]) so two key commands
//! on one node never interleave. Losing the file invalidates TOTP secrets, backup codes and queued
//! SMS; it is never rotated silently.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use auth_core::Timestamp;
use auth_core::crypto::{KeyId, KeyRing};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize as _, Zeroizing};

use crate::rng::random_bytes;

/// Size of a key in bytes (and of a file from before the ring).
pub const KEY_LEN: usize = 32;

/// The first line of a ring file.
const HEADER: &str = "auth-server key ring v1";

/// A ring file larger than this is not one (thousands of keys).
const MAX_RING_FILE: u64 = 256 * 1024;

/// Whether the key was read or made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// It existed.
    Loaded,
    /// This call created it.
    Created,
}

/// One key of the file.
#[derive(Clone)]
pub struct FileKey {
    /// Its id.
    pub id: KeyId,
    /// When it was made (a file from before the ring: when the file was last written).
    pub created: Option<Timestamp>,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKey").field("id", &self.id).field("created", &self.created).finish()
    }
}

/// The keys of a key file, by id ascending (never empty).
#[derive(Clone, Debug)]
pub struct RingFile {
    keys: Vec<FileKey>,
    /// Read from a file of 32 bytes (from before the ring, or never rotated).
    single: bool,
}

impl RingFile {
    fn single(bytes: [u8; KEY_LEN], created: Option<Timestamp>) -> Self {
        Self { keys: vec![FileKey { id: 1, created, bytes: Zeroizing::new(bytes) }], single: true }
    }

    /// The keys, by id ascending.
    pub fn keys(&self) -> &[FileKey] {
        &self.keys
    }

    /// Whether the file is 32 bytes: one key, id 1, in the format from before the ring.
    pub fn is_single_key_file(&self) -> bool {
        self.single
    }

    /// The id of the key that seals (the highest).
    pub fn sealing_id(&self) -> KeyId {
        self.keys.last().map_or(0, |k| k.id)
    }

    /// The ring these keys make.
    ///
    /// # Errors
    /// Never for a file this module read or made (its ids are checked); kept as a `Result` rather
    /// than a panic.
    pub fn ring(&self) -> anyhow::Result<KeyRing> {
        let mut keys: Vec<(KeyId, [u8; KEY_LEN])> =
            self.keys.iter().map(|k| (k.id, *k.bytes)).collect();
        let ring = KeyRing::new(&keys);
        // The copies made for `KeyRing::new` are wiped, not just dropped.
        keys.iter_mut().for_each(|(_, b)| b.zeroize());
        Ok(ring?)
    }

    /// The ring with a new key, made now from the OS generator, that seals from now on (its id one
    /// more than the highest).
    ///
    /// # Errors
    /// When the OS generator fails.
    pub fn with_new_key(&self, now: Timestamp) -> anyhow::Result<RingFile> {
        let bytes: [u8; KEY_LEN] = random_bytes()?;
        let mut keys = self.keys.clone();
        keys.push(FileKey {
            id: self.sealing_id().saturating_add(1),
            created: Some(now),
            bytes: Zeroizing::new(bytes),
        });
        Ok(RingFile { keys, single: false })
    }

    /// The ring of its newest key alone (what `key retire` leaves).
    pub fn newest_only(&self) -> RingFile {
        RingFile { keys: self.keys.last().cloned().into_iter().collect(), single: false }
    }

    /// The text of a ring file.
    fn encode(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(format!(
            "{HEADER}\n# The highest id seals; every key opens. Written by `auth-server key rotate` and \
             `key retire`;\n# keep it mode 0600, out of database backups, and the same on every node.\n"
        ));
        for k in &self.keys {
            let created = k.created.map_or_else(|| "-".to_owned(), |t| t.to_string());
            let b64 = Zeroizing::new(STANDARD.encode(k.bytes.as_slice()));
            out.push_str(&format!("{} {created} {}\n", k.id, b64.as_str()));
        }
        out
    }

    /// Reads the text of a ring file; `None` when it does not start with the header.
    fn parse(path: &Path, text: &str) -> anyhow::Result<Option<RingFile>> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l.trim_end()) != Some(HEADER) {
            return Ok(None);
        }
        let mut keys: Vec<FileKey> = Vec::new();
        for (i, line) in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("server key file {} line {}", path.display(), i + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, created, key] = fields.as_slice() else {
                bail!("{}: expected `<id> <created> <key>`", at());
            };
            let id: KeyId =
                id.parse().ok().filter(|id| *id > 0).with_context(|| {
                    format!("{}: the key id must be a whole number from 1", at())
                })?;
            let created = match *created {
                "-" => None,
                t => Some(t.parse::<Timestamp>().with_context(|| {
                    format!("{}: the creation time is not an RFC 3339 instant", at())
                })?),
            };
            let bytes = Zeroizing::new(STANDARD.decode(key).ok().unwrap_or_default());
            let bytes: [u8; KEY_LEN] =
                bytes.as_slice().try_into().ok().with_context(|| {
                    format!("{}: the key is not {KEY_LEN} bytes in base64", at())
                })?;
            if keys.iter().any(|k| k.id == id) {
                bail!("{}: key {id} appears twice", at());
            }
            keys.push(FileKey { id, created, bytes: Zeroizing::new(bytes) });
        }
        if keys.is_empty() {
            bail!("server key file {} holds a key ring without keys", path.display());
        }
        keys.sort_by_key(|k| k.id);
        Ok(Some(RingFile { keys, single: false }))
    }
}

/// Loads the ring at `path`, creating a single key (and its directory) when there is no file.
pub fn load_or_create(path: &Path) -> anyhow::Result<(RingFile, KeyOrigin)> {
    match read_key(path)? {
        Some(ring) => Ok((ring, KeyOrigin::Loaded)),
        None => create(path),
    }
}

/// Loads the ring at `path` if there is one (never creates one).
pub fn load(path: &Path) -> anyhow::Result<Option<RingFile>> {
    read_key(path)
}

/// The ring, or `None` when there is no file.
fn read_key(path: &Path) -> anyhow::Result<Option<RingFile>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot open server key file {}", path.display()));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect server key file {}", path.display()))?;
    if !meta.is_file() {
        bail!("server key file {} is not a regular file", path.display());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "server key file {} has mode {mode:04o}: group and others must have no access; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let not_ours = || {
        anyhow::anyhow!(
            "server key file {} holds {} bytes, not {KEY_LEN}: it is not a key this server wrote",
            path.display(),
            meta.len()
        )
    };
    if meta.len() == KEY_LEN as u64 {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(bytes.as_mut())
            .with_context(|| format!("cannot read server key file {}", path.display()))?;
        let written = meta.modified().ok().and_then(|t| Timestamp::try_from(t).ok());
        return Ok(Some(RingFile::single(*bytes, written)));
    }
    if meta.len() > MAX_RING_FILE {
        return Err(not_ours());
    }
    let mut raw = Zeroizing::new(Vec::new());
    file.read_to_end(&mut raw)
        .with_context(|| format!("cannot read server key file {}", path.display()))?;
    let Ok(text) = std::str::from_utf8(&raw) else { return Err(not_ours()) };
    RingFile::parse(path, text)?.map(Some).ok_or_else(not_ours)
}

fn create(path: &Path) -> anyhow::Result<(RingFile, KeyOrigin)> {
    let dir = parent_dir(path);
    ensure_private_dir(dir)?;
    let bytes = Zeroizing::new(random_bytes::<KEY_LEN>()?);
    let tmp = temp_name(path)?;
    let result = write_then_link(&tmp, path, bytes.as_slice());
    // The temporary name is only a staging area; whatever happened, it must not linger with a key in it.
    let _ = fs::remove_file(&tmp);
    match result? {
        true => {
            // Make the new directory entry itself durable, so a power cut cannot lose the key after the
            // database has started depending on it.
            sync_dir(dir, "creating the server key")?;
            Ok((RingFile::single(*bytes, None), KeyOrigin::Created))
        }
        false => {
            // Another process created the key between our read and our link: use theirs.
            let theirs = read_key(path)?.with_context(|| {
                format!("server key file {} vanished while being created", path.display())
            })?;
            Ok((theirs, KeyOrigin::Loaded))
        }
    }
}

/// Replaces the file at `path` by `ring`, atomically: the text is written and synced under a
/// temporary name with mode 0600 and renamed over the old file, and the directory is synced, so a
/// crash leaves either the old ring or the new one, whole. Hold [`lock`] around read and replace.
pub fn replace(path: &Path, ring: &RingFile) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_name(path)?;
    let text = ring.encode();
    let written = write_new(&tmp, text.as_bytes()).and_then(|()| {
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace server key file {}", path.display()))
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir, "replacing the server key")
}

/// An exclusive lock on `<path>.lock`, held until the returned file is dropped: key commands on one
/// node take it around reading and replacing the ring.
pub fn lock(path: &Path) -> anyhow::Result<File> {
    let name = path
        .file_name()
        .with_context(|| format!("server key path {} names no file", path.display()))?;
    let lock_path = path.with_file_name(format!("{}.lock", name.to_string_lossy()));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => anyhow::anyhow!(
            "another key command holds {} (one key command at a time)",
            lock_path.display()
        ),
        std::fs::TryLockError::Error(e) => {
            anyhow::Error::new(e).context(format!("cannot lock {}", lock_path.display()))
        }
    })?;
    Ok(file)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn sync_dir(dir: &Path, after: &str) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {} after {after}", dir.display()))
}

/// Writes `bytes` to the new file `tmp` (mode 0600) and syncs it.
fn write_new(tmp: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))
}

/// Writes the key under `tmp` and links it to `path`; false when `path` already existed.
fn write_then_link(tmp: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    write_new(tmp, bytes)?;
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create server key file {}", path.display()))
        }
    }
}

fn temp_name(path: &Path) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("server key path {} names no file", path.display()))?;
    let nonce: [u8; 8] = random_bytes()?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{}.{nonce}.tmp", name.to_string_lossy())))
}

/// Creates `dir` (and its parents) with mode 0700 when it does not exist; an existing one is left as is.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use auth_core::crypto::ServerKey;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn check(ring: &RingFile) -> Vec<u8> {
        ring.ring().unwrap().check_value()
    }

    #[test]
    fn creates_a_private_key_once_then_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data/server.key");
        let (_, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let first = fs::read(&path).unwrap();
        assert_eq!(first.len(), KEY_LEN);
        assert_ne!(first, vec![0u8; KEY_LEN]);

        let (ring, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(fs::read(&path).unwrap(), first);
        assert!(ring.is_single_key_file());
        assert_eq!(ring.keys().iter().map(|k| k.id).collect::<Vec<_>>(), vec![1]);
        // No staging file is left next to the key.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    /// A file from before the ring is the ring of key 1, and that ring is the old single key.
    #[test]
    fn a_32_byte_file_is_a_ring_of_key_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        fs::write(&path, [7u8; KEY_LEN]).unwrap();
        let ring = load(&path).unwrap().unwrap();
        assert_eq!(check(&ring), ServerKey::from_bytes([7; KEY_LEN]).check_value());
        assert!(ring.keys()[0].created.is_some(), "the file's time stands in");
    }

    #[test]
    fn the_same_key_loads_the_same_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let (a, _) = load_or_create(&path).unwrap();
        let (b, _) = load_or_create(&path).unwrap();
        assert_eq!(check(&a), check(&b));
    }

    #[test]
    fn a_rotated_ring_is_written_as_text_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let (one, _) = load_or_create(&path).unwrap();
        let now = Timestamp::constant(1_768_031_184, 0);
        let two = one.with_new_key(now).unwrap();
        let _lock = lock(&path).unwrap();
        replace(&path, &two).unwrap();
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("auth-server key ring v1\n"), "{text}");
        assert!(text.contains("\n2 2026-01-10T07:46:24Z "), "{text}");
        let read = load(&path).unwrap().unwrap();
        assert!(!read.is_single_key_file());
        assert_eq!(read.sealing_id(), 2);
        assert_eq!(read.keys()[1].created, Some(now));
        assert_eq!(check(&read), check(&two));
        // Key 1 is the same key as before: what it sealed still opens.
        assert!(read.ring().unwrap().holds(1));
        let retired = read.newest_only();
        replace(&path, &retired).unwrap();
        let read = load(&path).unwrap().unwrap();
        assert_eq!(read.keys().iter().map(|k| k.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(check(&read), check(&retired));
        assert_ne!(check(&read), check(&one));
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the key and its lock file, no staging file: {names:?}");
    }

    #[test]
    fn one_key_command_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let held = lock(&path).unwrap();
        let e = format!("{:#}", lock(&path).unwrap_err());
        assert!(e.contains("another key command"), "{e}");
        drop(held);
        lock(&path).unwrap();
    }

    #[test]
    fn refuses_a_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let e = format!("{:#}", load_or_create(&path).unwrap_err());
        assert!(e.contains("mode 0640") && e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn refuses_files_that_are_not_keys() {
        let key = STANDARD.encode([1u8; KEY_LEN]);
        let cases: [(String, &str); 8] = [
            ("short".into(), "holds 5 bytes, not 32"),
            ("something else entirely, longer than a key".into(), "not a key this server wrote"),
            ("auth-server key ring v1\n# nothing\n".into(), "without keys"),
            (
                format!("auth-server key ring v1\n1 - {key}\n1 - {key}\n"),
                "line 3: key 1 appears twice",
            ),
            (
                "auth-server key ring v1\n1 - bm90IDMyIGJ5dGVz\n".into(),
                "line 2: the key is not 32 bytes",
            ),
            (format!("auth-server key ring v1\n0 - {key}\n"), "whole number from 1"),
            (format!("auth-server key ring v1\n1 yesterday {key}\n"), "RFC 3339"),
            (format!("auth-server key ring v1\n1 {key}\n"), "expected `<id> <created> <key>`"),
        ];
        for (content, want) in cases {
            let content = content.as_bytes();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("server.key");
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
            fs::write(&path, content).unwrap();
            let e = format!("{:#}", load_or_create(&path).unwrap_err());
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(content));
        }
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| check(&load_or_create(&path).unwrap().0))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}

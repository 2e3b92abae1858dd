//! The server key file: 32 random bytes that protect every stored code hash and sealed secret.
//!
//! On first start the key is created with mode 0600, atomically: it is written and synced under a
//! temporary name and then hard-linked to its final name, which fails if the name exists. So a crash
//! never leaves a half-written key behind, and two processes starting together on one data directory
//! agree on one key (the loser reads the winner's). An existing key is refused when its size is wrong or
//! when group or others may read or write it: a leaked key lets a stolen database be attacked offline.
//! Losing the key invalidates TOTP secrets, backup codes and queued SMS; it is never rotated silently.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use auth_core::crypto::ServerKey;

use crate::rng::random_bytes;

/// Size of the key in bytes.
pub const KEY_LEN: usize = 32;

/// Whether the key was read or made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// It existed.
    Loaded,
    /// This call created it.
    Created,
}

/// Loads the key at `path`, creating it (and its directory) when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<(ServerKey, KeyOrigin)> {
    match read_key(path)? {
        Some(bytes) => Ok((ServerKey::from_bytes(bytes), KeyOrigin::Loaded)),
        None => create(path),
    }
}

/// Loads the key at `path` if there is one (never creates one).
pub fn load(path: &Path) -> anyhow::Result<Option<ServerKey>> {
    Ok(read_key(path)?.map(ServerKey::from_bytes))
}

/// The key's bytes, or `None` when there is no file.
fn read_key(path: &Path) -> anyhow::Result<Option<[u8; KEY_LEN]>> {
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
    if meta.len() != KEY_LEN as u64 {
        bail!(
            "server key file {} holds {} bytes, not {KEY_LEN}: it is not a key this server wrote",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = [0u8; KEY_LEN];
    file.read_exact(&mut bytes)
        .with_context(|| format!("cannot read server key file {}", path.display()))?;
    Ok(Some(bytes))
}

fn create(path: &Path) -> anyhow::Result<(ServerKey, KeyOrigin)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let bytes: [u8; KEY_LEN] = random_bytes()?;
    let tmp = temp_name(path)?;
    let result = write_then_link(&tmp, path, &bytes);
    // The temporary name is only a staging area; whatever happened, it must not linger with a key in it.
    let _ = fs::remove_file(&tmp);
    match result? {
        true => {
            // Make the new directory entry itself durable, so a power cut cannot lose the key after the
            // database has started depending on it.
            File::open(dir).and_then(|d| d.sync_all()).with_context(|| {
                format!("cannot sync directory {} after creating the server key", dir.display())
            })?;
            Ok((ServerKey::from_bytes(bytes), KeyOrigin::Created))
        }
        false => {
            // Another process created the key between our read and our link: use theirs.
            let theirs = read_key(path)?.with_context(|| {
                format!("server key file {} vanished while being created", path.display())
            })?;
            Ok((ServerKey::from_bytes(theirs), KeyOrigin::Loaded))
        }
    }
}

/// Writes the key under `tmp` and links it to `path`; false when `path` already existed.
fn write_then_link(tmp: &Path, path: &Path, bytes: &[u8; KEY_LEN]) -> anyhow::Result<bool> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(file);
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
    use auth_core::crypto::KeyContext;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
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

        let (_, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(fs::read(&path).unwrap(), first);
        // No staging file is left next to the key.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn the_same_key_seals_and_opens_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let (a, _) = load_or_create(&path).unwrap();
        let (b, _) = load_or_create(&path).unwrap();
        assert_eq!(
            a.keyed_hash(KeyContext::SmsCode, &[b"x"]),
            b.keyed_hash(KeyContext::SmsCode, &[b"x"])
        );
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
    fn refuses_a_key_of_the_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        fs::write(&path, b"short").unwrap();
        let e = format!("{:#}", load_or_create(&path).unwrap_err());
        assert!(e.contains("holds 5 bytes, not 32"), "{e}");
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        load_or_create(&path)
                            .unwrap()
                            .0
                            .keyed_hash(KeyContext::SmsCode, &[b"probe"])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}

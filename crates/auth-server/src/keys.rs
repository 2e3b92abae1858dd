//! `auth-server key …` (spec §13 "Key rotation", issue 17): the key ring's commands.
//!
//! - `key list` shows the ring file's keys (id, creation time, which one seals; never a key byte),
//!   the hash key and whether the database expects this ring.
//! - `key rotate` adds a key that seals from then on. It writes the new ring file first (a superset:
//!   it opens everything the old one did) and then moves the database's check value from the old ring
//!   to the new one by compare-and-set, so a concurrent rotation elsewhere makes it put the old file
//!   back and fail. A rotation interrupted between the two is finished by running it again.
//! - `key reseal` rewrites every sealed value under the newest key (`auth_core::keyring::reseal`),
//!   in short batches while servers keep serving, and then counts what still needs an older key.
//! - `key retire` drops every key but the newest, once nothing stored needs them: it moves the check
//!   value first and then writes the file, so an interruption leaves a file that still holds the keys
//!   (running it again finishes it), never a database expecting keys no file holds.
//!
//! Each command holds the key file's lock (`keyfile::lock`), so two of them never interleave on one
//! node. They do not go through `wiring::open`, which would refuse a ring the database does not
//! expect before a command could finish an interrupted change. What they deliberately do not do: reach
//! running servers. A server reads its ring at start; docs/deployment.md says when to restart them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use auth_core::crypto::{KeyId, KeyRing, ct_eq, ids_text};
use auth_core::keyring::{self, KeyringError, Survey};
use auth_core::ports::{Clock as _, SealedColumn, Store};
use serde_json::{Value, json};

use crate::admin::{write_json, write_table};
use crate::cli::{KeyCommand, KeyList, KeyReseal, KeyRetire};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::keyfile::{self, KeyOrigin, RingFile};
use crate::rng::OsRng;
use crate::wiring;

/// Values per batch of the check that `key retire` makes.
const SURVEY_BATCH: u32 = 1000;

/// Runs one `key` subcommand.
pub async fn run(cmd: KeyCommand, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::List(args) => list(config, &args, out).await,
        KeyCommand::Rotate => rotate(config, out).await,
        KeyCommand::Reseal(args) => reseal(config, &args, out).await,
        KeyCommand::Retire(args) => retire(config, &args, out).await,
    }
}

fn load_file(path: &Path) -> anyhow::Result<RingFile> {
    keyfile::load(path)?.with_context(|| {
        format!(
            "no server key at {}: a server's first start creates one (or set server_key_file)",
            path.display()
        )
    })
}

/// The refusal when the database expects another ring than the file's.
fn mismatch(path: &Path, stored: Option<&[u8]>, ring: &KeyRing) -> anyhow::Error {
    let expects = match stored.and_then(KeyRing::ids_in_check) {
        Some(ids) => format!("key ring {}", ids_text(&ids)),
        None => "another key".to_owned(),
    };
    anyhow::anyhow!(
        "the server key {} (key ring {}) is not the key this database was set up with: it expects \
         {expects}; use the key file of the node where the ring was last changed",
        path.display(),
        ids_text(&ring.ids())
    )
}

async fn stored_check(store: &dyn Store) -> anyhow::Result<Option<Vec<u8>>> {
    keyring::stored_check(store).await.context("cannot read the key check from the database")
}

async fn list(config: &Config, args: &KeyList, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = &config.server_key_file;
    let file = load_file(path)?;
    let ring = file.ring()?;
    let store = wiring::open_store(config).await?.port();
    let stored = stored_check(store.as_ref()).await?;
    let matches = stored.as_deref().map(|s| ct_eq(s, &ring.check_value()));
    let expects = stored.as_deref().and_then(KeyRing::ids_in_check);
    let hash = match keyring::stored_hash_key(store.as_ref(), &ring).await {
        Ok(h) => h.map(|(key, by)| (key.id(), Some(by.key))),
        Err(KeyringError::HashKeyUnreadable) => Some((0, None)),
        Err(e) => return Err(e).context("cannot read the hash key from the database"),
    };
    let sealing = file.sealing_id();
    if args.json {
        let keys: Vec<Value> = file
            .keys()
            .iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "created": k.created.map(|t| t.to_string()),
                    "seals": k.id == sealing,
                })
            })
            .collect();
        let value = json!({
            "file": path.display().to_string(),
            "format": if file.is_single_key_file() { "single key" } else { "key ring" },
            "keys": keys,
            "database": {
                "matches": matches,
                "expects": expects,
            },
            "hashKey": hash.map(|(id, under)| json!({"id": id, "sealedUnder": under})),
        });
        return write_json(out, &value);
    }
    let rows = file
        .keys()
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.created.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                if k.id == sealing { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    write_table(out, &["ID", "CREATED", "SEALS"], rows)?;
    let database = match (matches, &expects) {
        (None, _) => "the database has no key check yet (no server has started on it)".to_owned(),
        (Some(true), _) => "the database expects this key ring".to_owned(),
        (Some(false), Some(ids)) => format!(
            "the database expects key ring {}, not this one: servers refuse to start with this file",
            ids_text(ids)
        ),
        (Some(false), None) => {
            "the database expects another key: servers refuse to start with this file".to_owned()
        }
    };
    writeln!(out, "{database}")?;
    let hash = match hash {
        None => "keyed hashes: the first hash key, derived from key 1 (not stored yet)".to_owned(),
        Some((id, Some(under))) => {
            format!("keyed hashes: hash key {id}, stored in the database sealed under key {under}")
        }
        Some((_, None)) => "keyed hashes: the hash key in the database opens with no key of this \
                            ring"
            .to_owned(),
    };
    writeln!(out, "{hash}")?;
    Ok(())
}

async fn rotate(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = &config.server_key_file;
    let _lock = keyfile::lock(path)?;
    let file = load_file(path)?;
    let ring = file.ring()?;
    let store = wiring::open_store(config).await?.port();
    let store = store.as_ref();
    match keyring::check_ring(store, &ring).await {
        Ok(()) => {}
        Err(KeyringError::Mismatch { .. }) => {
            let stored = stored_check(store).await?;
            // A rotation that wrote the file and then stopped: finish it.
            let before = ring.retain(|id| id != ring.sealing_id()).ok();
            if let (Some(before), Some(stored)) = (before, stored.as_deref())
                && ct_eq(stored, &before.check_value())
            {
                if !keyring::replace_ring(store, &before, &ring).await? {
                    bail!("the database's key ring changed meanwhile; run `auth-server key list`");
                }
                writeln!(
                    out,
                    "finished an interrupted rotation: key {} seals from now on",
                    ring.sealing_id()
                )?;
                return restart_hint(out, path);
            }
            return Err(mismatch(path, stored.as_deref(), &ring));
        }
        Err(e) => return Err(e).context("cannot check the key ring against the database"),
    }
    // The hash key must be in the database, sealed under the ring, before key 1 may ever be retired.
    keyring::hash_key(store, &ring, &OsRng).await.context("cannot store the hash key")?;
    let rotated = file.with_new_key(SystemClock.now())?;
    let new_ring = rotated.ring()?;
    keyfile::replace(path, &rotated)?;
    match keyring::replace_ring(store, &ring, &new_ring).await {
        Ok(true) => {}
        Ok(false) => {
            keyfile::replace(path, &file)?;
            bail!(
                "the database's key ring changed meanwhile (a `key rotate` or `key retire` on another \
                 node?); {} is left as it was",
                path.display()
            );
        }
        Err(e) => bail!(
            "cannot move the database to the new key ring ({e}); {} already holds key {}: see \
             `auth-server key list`, and if the database does not expect this ring yet, run \
             `auth-server key rotate` again to finish",
            path.display(),
            new_ring.sealing_id()
        ),
    }
    writeln!(
        out,
        "added key {} to {}: it seals from now on; key{} {} still open{} what {} sealed",
        new_ring.sealing_id(),
        path.display(),
        plural(ring.ids().len()),
        ids_text(&ring.ids()),
        if ring.ids().len() == 1 { "s" } else { "" },
        if ring.ids().len() == 1 { "it" } else { "they" },
    )?;
    restart_hint(out, path)
}

fn restart_hint(out: &mut dyn Write, path: &Path) -> anyhow::Result<()> {
    writeln!(
        out,
        "next: copy {} to every node and restart every server (a server started with the old file \
         refuses to start); then run `auth-server key reseal` and `auth-server key retire`",
        path.display()
    )?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The counts of a survey that need another key than `keep`, column by column, for a message.
fn needing(survey: &Survey, keep: KeyId) -> String {
    let mut parts = Vec::new();
    for (column, by_key) in &survey.by_key {
        let n: u64 = by_key.iter().filter(|(k, _)| **k != keep).map(|(_, n)| n).sum();
        if n > 0 {
            parts.push(format!("{} {n}", column.name()));
        }
    }
    parts.join(", ")
}

fn unreadable(survey: &Survey) -> String {
    let parts: Vec<String> = survey
        .unreadable
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    parts.join(", ")
}

/// The ring file, checked against the database, and the store, for reseal and retire.
async fn unlocked(
    config: &Config,
) -> anyhow::Result<(RingFile, auth_core::crypto::ServerKey, std::sync::Arc<dyn Store>)> {
    let path = &config.server_key_file;
    let file = load_file(path)?;
    let store = wiring::open_store(config).await?.port();
    let key = wiring::unlock_key(store.as_ref(), &file, KeyOrigin::Loaded, path, &OsRng).await?;
    Ok((file, key, store))
}

async fn reseal(config: &Config, args: &KeyReseal, out: &mut dyn Write) -> anyhow::Result<()> {
    let _lock = keyfile::lock(&config.server_key_file)?;
    let (_, key, store) = unlocked(config).await?;
    let ring = key.ring();
    let newest = ring.sealing_id();
    let report = keyring::reseal(store.as_ref(), ring, &OsRng, args.batch)
        .await
        .context("the reseal stopped (what it rewrote stays rewritten; run it again to go on)")?;
    let rows = SealedColumn::ALL
        .iter()
        .map(|c| {
            let n = report.columns.get(c).copied().unwrap_or_default();
            vec![
                c.name().to_owned(),
                n.resealed.to_string(),
                n.current.to_string(),
                n.changed.to_string(),
                n.unreadable.to_string(),
            ]
        })
        .collect();
    writeln!(out, "resealed under key {newest}:")?;
    write_table(out, &["VALUES", "RESEALED", "ALREADY", "CHANGED MEANWHILE", "UNREADABLE"], rows)?;
    let survey = keyring::survey(store.as_ref(), ring, args.batch).await?;
    let left = survey.needing_other_than(newest);
    if left == 0 {
        let older: Vec<KeyId> = ring.ids().into_iter().filter(|id| *id != newest).collect();
        if older.is_empty() {
            writeln!(out, "every sealed value is under key {newest}")?;
        } else {
            writeln!(
                out,
                "every sealed value is under key {newest}: `auth-server key retire` may drop key{} {}",
                plural(older.len()),
                ids_text(&older)
            )?;
        }
    } else {
        writeln!(
            out,
            "{left} sealed values still need older keys ({}): written meanwhile by a server that \
             runs an older key ring? Restart every server with the current key file and run `auth-server \
             key reseal` again",
            needing(&survey, newest)
        )?;
    }
    if survey.unreadable_total() > 0 {
        writeln!(
            out,
            "{} stored values open with no key of the ring ({}); they were unreadable before too",
            survey.unreadable_total(),
            unreadable(&survey)
        )?;
    }
    Ok(())
}

async fn retire(config: &Config, args: &KeyRetire, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = &config.server_key_file;
    let _lock = keyfile::lock(path)?;
    let file = load_file(path)?;
    let ring = file.ring()?;
    let retired = file.newest_only();
    let new_ring = retired.ring()?;
    {
        let store = wiring::open_store(config).await?.port();
        match keyring::check_ring(store.as_ref(), &ring).await {
            Ok(()) => {}
            Err(KeyringError::Mismatch { .. }) => {
                let stored = stored_check(store.as_ref()).await?;
                // A retirement that moved the database and then stopped before the file: finish it.
                if let Some(stored) = stored.as_deref()
                    && file.keys().len() > 1
                    && ct_eq(stored, &new_ring.check_value())
                {
                    keyfile::replace(path, &retired)?;
                    writeln!(
                        out,
                        "finished an interrupted retirement: the ring is key {} alone",
                        new_ring.sealing_id()
                    )?;
                    return copy_hint(out, path);
                }
                return Err(mismatch(path, stored.as_deref(), &ring));
            }
            Err(e) => return Err(e).context("cannot check the key ring against the database"),
        }
    }
    let older: Vec<KeyId> = ring.ids().into_iter().filter(|id| *id != ring.sealing_id()).collect();
    if older.is_empty() {
        bail!("the key ring holds one key ({}): there is nothing to retire", ring.sealing_id());
    }
    let (_, key, store) = unlocked(config).await?;
    let newest = key.ring().sealing_id();
    let survey = keyring::survey(store.as_ref(), key.ring(), SURVEY_BATCH).await?;
    let left = survey.needing_other_than(newest);
    if left > 0 {
        bail!(
            "{left} sealed values still need key{} {} ({}); run `auth-server key reseal` first \
             (nothing was retired)",
            plural(older.len()),
            ids_text(&older),
            needing(&survey, newest)
        );
    }
    if survey.unreadable_total() > 0 && !args.force {
        bail!(
            "{} stored values open with no key of the ring ({}): retiring changes nothing for \
             them, but find out why first; `auth-server key retire --force` retires anyway \
             (nothing was retired)",
            survey.unreadable_total(),
            unreadable(&survey)
        );
    }
    if !keyring::replace_ring(store.as_ref(), &ring, &new_ring).await? {
        bail!("the database's key ring changed meanwhile; nothing was retired");
    }
    keyfile::replace(path, &retired).with_context(|| {
        format!(
            "the database expects key {newest} alone now, but {} could not be rewritten: run \
             `auth-server key retire` again to finish",
            path.display()
        )
    })?;
    writeln!(
        out,
        "retired key{} {}: the ring is key {newest} alone",
        plural(older.len()),
        ids_text(&older)
    )?;
    copy_hint(out, path)
}

fn copy_hint(out: &mut dyn Write, path: &Path) -> anyhow::Result<()> {
    writeln!(
        out,
        "next: copy {} to every node (a server started with an older copy refuses to start)",
        path.display()
    )?;
    Ok(())
}

//! `PortalStore`: portals, their settings (one TEXT column in `PortalSettings::encode` form) and
//! their hosts (one row each, `host` unique across all portals).
//!
//! An update is one `IMMEDIATE` transaction that writes the portal, bumps its `revision`, replaces its
//! hosts and, when asked, deletes its tokens, so a token insert under the old revision (one statement,
//! see `tokens.rs`) either precedes it and is deleted, or follows it and stores nothing.

use std::collections::HashMap;

use async_trait::async_trait;
use auth_core::Portal;
use auth_core::ports::{PortalStore, StoreError, StoreResult};
use auth_sql::codec::{distinct_hosts, int8, revision, ts};
use auth_sql::{Columns, records};
use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::codec::collect;
use crate::error::DbResult;
use crate::store::SqliteStore;

/// Refuses hosts that belong to another portal, then stores `hosts` as the portal's.
///
/// The explicit check comes first so the answer does not depend on whether the portal exists (as in
/// the reference store); UNIQUE(host) would refuse the insert anyway.
fn check_hosts(tx: &Connection, portal: &Portal) -> DbResult<()> {
    let mut taken =
        tx.prepare_cached("SELECT 1 FROM portal_hosts WHERE host = ?1 AND portal <> ?2")?;
    for h in &portal.hosts {
        if taken.exists(params![h, portal.id.0.as_bytes().as_slice()])? {
            return Err(StoreError::Conflict(format!("host {h} belongs to another portal")).into());
        }
    }
    Ok(())
}

fn store_hosts(tx: &Connection, portal: &Portal) -> DbResult<()> {
    let id = portal.id.0.as_bytes().as_slice();
    tx.prepare_cached("DELETE FROM portal_hosts WHERE portal = ?1")?.execute([id])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO portal_hosts (host, portal, position) VALUES (?1, ?2, ?3)")?;
    for (i, h) in distinct_hosts(&portal.hosts).iter().enumerate() {
        insert.execute(params![h, id, int8(i)])?;
    }
    Ok(())
}

/// Every portal with its hosts, oldest first, as `tx` sees them.
fn all_portals(tx: &Connection) -> DbResult<Vec<Portal>> {
    let mut hosts: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut st =
        tx.prepare_cached("SELECT portal, host FROM portal_hosts ORDER BY portal, position")?;
    for (portal, host) in collect(st.query([])?, |r| Ok((r.uuid(0)?, r.text(1)?)))? {
        hosts.entry(portal).or_default().push(host);
    }
    let mut st = tx.prepare_cached(
        "SELECT id, name, settings, created_at, revision FROM portals ORDER BY seq",
    )?;
    collect(st.query([])?, |r| {
        records::portal(r, |id| Ok(hosts.get(&id.0).cloned().unwrap_or_default()))
    })
}

/// Writes a new portal row and its hosts.
fn insert(tx: &Connection, p: &Portal) -> DbResult<()> {
    check_hosts(tx, p)?;
    tx.prepare_cached(
        "INSERT INTO portals (id, name, settings, created_at, revision) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        p.id.0.as_bytes().as_slice(),
        p.name,
        p.settings.encode(),
        ts(p.created_at),
        revision(p.revision)?
    ])?;
    store_hosts(tx, p)
}

#[async_trait]
impl PortalStore for SqliteStore {
    async fn insert_portal(&self, portal: &Portal) -> StoreResult<()> {
        let p = portal.clone();
        self.write(move |tx| insert(tx, &p)).await
    }

    async fn insert_first_portal(&self, portal: &Portal) -> StoreResult<Portal> {
        // `write` is one `BEGIN IMMEDIATE`: SQLite's write lock is held from before the look, so
        // another process's call waits for this one's commit and then finds its portal.
        let p = portal.clone();
        self.write(move |tx| {
            if let Some(first) = all_portals(tx)?.into_iter().next() {
                return Ok(first);
            }
            insert(tx, &p)?;
            Ok(p)
        })
        .await
    }

    async fn update_portal(&self, portal: &Portal, end_tokens: bool) -> StoreResult<bool> {
        // The whole record is replaced, `created_at` included, as the reference store does; callers
        // pass the portal they read, so in practice only name, hosts and settings change. The
        // revision is the store's own: the passed one is ignored and the stored one bumped.
        let p = portal.clone();
        self.write(move |tx| {
            check_hosts(tx, &p)?;
            let n = tx
                .prepare_cached(
                    "UPDATE portals SET name = ?2, settings = ?3, created_at = ?4, \
                     revision = revision + 1 WHERE id = ?1",
                )?
                .execute(params![
                    p.id.0.as_bytes().as_slice(),
                    p.name,
                    p.settings.encode(),
                    ts(p.created_at)
                ])?;
            if n == 0 {
                return Ok(false);
            }
            store_hosts(tx, &p)?;
            if end_tokens {
                tx.prepare_cached("DELETE FROM tokens WHERE portal = ?1")?.execute([p
                    .id
                    .0
                    .as_bytes()
                    .as_slice()])?;
            }
            Ok(true)
        })
        .await
    }

    async fn list_portals(&self) -> StoreResult<Vec<Portal>> {
        // One snapshot for both queries, so a portal and its hosts always match.
        self.read(|tx| all_portals(tx)).await
    }
}

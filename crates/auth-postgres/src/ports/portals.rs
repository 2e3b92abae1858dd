//! `PortalStore`: portals, their settings (one TEXT column in `PortalSettings::encode` form) and
//! their hosts (one row each, `host` the primary key, so a host belongs to one portal only).
//!
//! Insert and update are transactions: the hosts are checked, the portal row written, and its hosts
//! replaced. Two nodes adding one host at once both pass the check, and the primary key refuses the
//! second insert as a unique violation, answered as `Conflict` like the check's own refusal. The
//! update writes the portal row (bumping its `revision`) before its hosts, so concurrent updates of
//! one portal queue on that row and each replaces the hosts the previous one committed. With
//! `end_tokens` it then deletes the portal's tokens in a later statement of the same transaction,
//! which is what keeps a token insert under the old revision from surviving it (see `tokens.rs`).

use async_trait::async_trait;
use auth_core::Portal;
use auth_core::ports::{PortalStore, StoreError, StoreResult};
use auth_sql::codec::{distinct_hosts, int4, revision, ts};
use auth_sql::{Columns, records};
use deadpool_postgres::Transaction;

use crate::codec::get;
use crate::error::DbResult;
use crate::session_cache::{self, Change};
use crate::store::{PgStore, begin, done, lock};

/// Refuses hosts that belong to another portal.
///
/// The explicit check comes first so the answer does not depend on whether the portal exists (as in
/// the reference store); the primary key would refuse the insert anyway.
async fn check_hosts(tx: &Transaction<'_>, portal: &Portal) -> DbResult<()> {
    let st = tx
        .prepare_cached(
            "SELECT host FROM portal_hosts WHERE host = ANY($1) AND portal_id <> $2 LIMIT 1",
        )
        .await?;
    if let Some(row) = tx.query_opt(&st, &[&portal.hosts, &portal.id.0]).await? {
        let host = row.text(0)?;
        return Err(StoreError::Conflict(format!("host {host} belongs to another portal")).into());
    }
    Ok(())
}

/// Replaces the portal's hosts with `portal.hosts`, in order.
async fn store_hosts(tx: &Transaction<'_>, portal: &Portal) -> DbResult<()> {
    let delete = tx.prepare_cached("DELETE FROM portal_hosts WHERE portal_id = $1").await?;
    tx.execute(&delete, &[&portal.id.0]).await?;
    let insert = tx
        .prepare_cached("INSERT INTO portal_hosts (host, portal_id, position) VALUES ($1, $2, $3)")
        .await?;
    for (i, h) in distinct_hosts(&portal.hosts).iter().enumerate() {
        tx.execute(&insert, &[h, &portal.id.0, &int4(i)]).await?;
    }
    Ok(())
}

/// Every portal with its hosts, oldest first, in one statement.
const LIST: &str = "SELECT p.id, p.name, p.settings, p.created_at, p.revision, \
     coalesce(array_agg(h.host ORDER BY h.position) \
              FILTER (WHERE h.host IS NOT NULL), '{}') \
     FROM portals p LEFT JOIN portal_hosts h ON h.portal_id = p.id \
     GROUP BY p.seq, p.id ORDER BY p.seq";

/// A row of `LIST`: the hosts are the sixth column, after the ones `auth_sql::records::portal` reads.
fn listed(r: &tokio_postgres::Row) -> DbResult<Portal> {
    records::portal(r, |_| get(r, 5))
}

/// Writes a new portal row and its hosts in `tx`.
async fn insert(tx: &Transaction<'_>, p: &Portal) -> DbResult<()> {
    let rev = revision(p.revision)?;
    check_hosts(tx, p).await?;
    let st = tx
        .prepare_cached(
            "INSERT INTO portals (id, name, settings, created_at, revision) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(&st, &[&p.id.0, &p.name, &p.settings.encode(), &ts(p.created_at), &rev]).await?;
    store_hosts(tx, p).await
}

#[async_trait]
impl PortalStore for PgStore {
    async fn insert_portal(&self, p: &Portal) -> StoreResult<()> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            insert(&tx, p).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn insert_first_portal(&self, p: &Portal) -> StoreResult<Portal> {
        // READ COMMITTED alone would let two nodes both see no portal and both insert: the named
        // row lock makes the second wait for the first's commit, and its look then sees that portal.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, "first-portal").await?;
            let st = tx.prepare_cached(LIST).await?;
            if let Some(first) = tx.query(&st, &[]).await?.first() {
                return listed(first);
            }
            insert(&tx, p).await?;
            tx.commit().await?;
            Ok(p.clone())
        })
        .await
    }

    async fn update_portal(&self, p: &Portal, end_tokens: bool) -> StoreResult<bool> {
        // The whole record is replaced, `created_at` included, as the reference store does; callers
        // pass the portal they read, so in practice only name, hosts and settings change. The
        // revision is the store's own: the passed one is ignored and the stored one bumped.
        let ended = done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            check_hosts(&tx, p).await?;
            let st = tx
                .prepare_cached(
                    "UPDATE portals SET name = $2, settings = $3, created_at = $4, \
                     revision = revision + 1 WHERE id = $1",
                )
                .await?;
            let n = tx
                .execute(&st, &[&p.id.0, &p.name, &p.settings.encode(), &ts(p.created_at)])
                .await?;
            if n == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            store_hosts(&tx, p).await?;
            let mut ended = 0;
            if end_tokens {
                // Every node's session cache drops the portal's entries when this commits.
                session_cache::notify(&tx, Change::Portal(p.id)).await?;
                let st = tx.prepare_cached("DELETE FROM tokens WHERE portal_id = $1").await?;
                ended = tx.execute(&st, &[&p.id.0]).await?;
            }
            tx.commit().await?;
            Ok(Some(ended))
        })
        .await?;
        // Without `end_tokens` nothing a session cache holds changed: it keeps no portal data.
        if let Some(n) = ended
            && n > 0
        {
            self.changed(Change::Portal(p.id), true).await;
        }
        Ok(ended.is_some())
    }

    async fn list_portals(&self) -> StoreResult<Vec<Portal>> {
        // One statement, so a portal and its hosts always come from one snapshot.
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached(LIST).await?;
            c.query(&st, &[]).await?.iter().map(listed).collect()
        })
        .await
    }
}

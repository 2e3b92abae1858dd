//! `AuditStore`: the append-only audit trail. Actions are stored as their upstream codes, IPs as
//! text; listing is newest first by append order, and the export reads a time range oldest first in
//! pages keyed by (time, append order).

use async_trait::async_trait;
use auth_core::ports::{AuditCursor, AuditStore, StoreResult};
use auth_core::{AuditAction, AuditEvent, AuditFilter, Timestamp};
use auth_sql::codec::ts;
use auth_sql::records;
use rusqlite::{Connection, params};

use crate::codec::collect;
use crate::error::DbResult;
use crate::store::SqliteStore;

/// Appends one event, in the caller's transaction.
pub(super) fn insert_audit(c: &Connection, e: &AuditEvent) -> DbResult<()> {
    c.prepare_cached(
        "INSERT INTO audit (at, portal, user, login, action, ip, user_agent, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        ts(e.at),
        e.portal.0.as_bytes().as_slice(),
        e.user.as_ref().map(|u| u.0.as_bytes().as_slice()),
        e.login,
        e.action.code(),
        e.ip.to_string(),
        e.user_agent,
        e.reason
    ])?;
    Ok(())
}

/// The newest-first listing for `filter`'s shape. NULL parameters switch a condition off, but a
/// condition that may be off (`?2 IS NULL OR user = ?2`) is one SQLite's planner cannot answer
/// from an index, since it plans before the parameters are bound: such a listing scanned the whole
/// trail, newest first, until it had found enough (every event of a million, for a user with few).
/// So the user's or the portal's condition is written as an equality when the filter has it, and
/// `audit_user (user, id)` or `audit_portal (portal, id)` gives the events newest first; the
/// action stays a condition on what they give. Every shape binds the same four parameters.
fn recent_sql(filter: &AuditFilter) -> String {
    let scope = match (filter.portal.is_some(), filter.user.is_some()) {
        (_, true) => "user = ?2 AND (?1 IS NULL OR portal = ?1)",
        (true, false) => "portal = ?1 AND ?2 IS NULL",
        (false, false) => "?1 IS NULL AND ?2 IS NULL",
    };
    format!(
        "SELECT at, portal, user, login, action, ip, user_agent, reason FROM audit \
         WHERE {scope} AND (?3 IS NULL OR action = ?3) ORDER BY id DESC LIMIT ?4"
    )
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let e = event.clone();
        self.run(move |c| insert_audit(c, &e)).await
    }

    async fn recent_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let f = filter.clone();
        self.run_read(move |c| {
            let mut st = c.prepare_cached(&recent_sql(&f))?;
            let rows = st.query(params![
                f.portal.as_ref().map(|p| p.0.as_bytes().as_slice()),
                f.user.as_ref().map(|u| u.0.as_bytes().as_slice()),
                f.action.map(AuditAction::code),
                i64::from(limit)
            ])?;
            collect(rows, |r| records::audit_event(r))
        })
        .await
    }

    async fn purge_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        // The oldest `limit` rows by id (the primary key: no scan), of which those older than the
        // cut-off go. Once the oldest row is newer, nothing is deleted and the caller stops.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT ?2) \
                     AND at < ?1",
                )?
                .execute(params![ts(before), i64::from(limit)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        since: Timestamp,
        until: Timestamp,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditCursor, AuditEvent)>> {
        let f = filter.clone();
        // Keyset paging on (at, id): the index `audit_at` serves the range, the order and the
        // resumption, so a page costs the same at the start of the trail as at its end. Without a
        // cursor the page starts just before `since` (no event has an id below 0).
        let (after_at, after_id) = after.map_or((ts(since), -1), |c| (ts(c.at), c.seq));
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT at, portal, user, login, action, ip, user_agent, reason, id FROM audit \
                 WHERE at >= ?1 AND at < ?2 AND (at, id) > (?3, ?4) \
                 AND (?5 IS NULL OR portal = ?5) AND (?6 IS NULL OR user = ?6) \
                 AND (?7 IS NULL OR action = ?7) ORDER BY at, id LIMIT ?8",
            )?;
            let rows = st.query(params![
                ts(since),
                ts(until),
                after_at,
                after_id,
                f.portal.as_ref().map(|p| p.0.as_bytes().as_slice()),
                f.user.as_ref().map(|u| u.0.as_bytes().as_slice()),
                f.action.map(AuditAction::code),
                i64::from(limit)
            ])?;
            collect(rows, |r| records::audit_entry(r))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use auth_core::{AuditAction, AuditFilter, PortalId, UserId};

    use super::recent_sql;
    use crate::store::SqliteStore;

    /// What SQLite's planner does with the listing of `filter`, on the store's own schema.
    fn plan(filter: &AuditFilter) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", recent_sql(filter))).unwrap();
        let details: Vec<String> = st
            .query_map(rusqlite::params![None::<Vec<u8>>, None::<Vec<u8>>, None::<i64>, 50], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        details.join("; ")
    }

    /// A listing by user or by portal reads its index newest first; before, every shape scanned
    /// the whole trail (`SCAN audit`), because a condition that a NULL parameter may switch off
    /// cannot be planned as an index lookup.
    #[test]
    fn filtered_listings_use_their_index() {
        let user = Some(UserId::from_random_bytes([1; 16]));
        let portal = Some(PortalId::from_random_bytes([2; 16]));
        let by_user = plan(&AuditFilter { user, ..AuditFilter::default() });
        assert!(by_user.contains("USING INDEX audit_user"), "{by_user}");
        let both = plan(&AuditFilter { user, portal, ..AuditFilter::default() });
        assert!(both.contains("USING INDEX audit_user"), "{both}");
        let by_portal = plan(&AuditFilter {
            portal,
            action: Some(AuditAction::LoginFailViaApi),
            ..AuditFilter::default()
        });
        assert!(by_portal.contains("USING INDEX audit_portal"), "{by_portal}");
        for p in [&by_user, &both, &by_portal] {
            assert!(!p.contains("TEMP B-TREE"), "newest first straight from the index: {p}");
        }
    }
}

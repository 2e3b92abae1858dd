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

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let e = event.clone();
        self.run(move |c| insert_audit(c, &e)).await
    }

    async fn recent_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let f = filter.clone();
        self.run_read(move |c| {
            // NULL parameters switch a condition off; the portal and user indexes serve the
            // common filtered listings.
            let mut st = c.prepare_cached(
                "SELECT at, portal, user, login, action, ip, user_agent, reason FROM audit \
                 WHERE (?1 IS NULL OR portal = ?1) AND (?2 IS NULL OR user = ?2) \
                 AND (?3 IS NULL OR action = ?3) ORDER BY id DESC LIMIT ?4",
            )?;
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

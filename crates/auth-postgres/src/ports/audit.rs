//! `AuditStore`: the append-only audit trail. Actions are stored as their upstream codes, IPs as
//! text; listing is newest first by append order (the BIGSERIAL id), and the export reads a time
//! range oldest first in pages keyed by (time, id).

use async_trait::async_trait;
use auth_core::ports::{AuditCursor, AuditStore, StoreResult};
use auth_core::{AuditAction, AuditEvent, AuditFilter, Timestamp};
use auth_sql::codec::ts;
use auth_sql::records;

use crate::store::{PgStore, done};

/// An action's upstream code as an INTEGER (the codes are four-digit numbers).
pub(super) fn action_code(a: AuditAction) -> i32 {
    i32::try_from(a.code()).unwrap_or(i32::MAX)
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO audit (at, portal_id, user_id, login, action, ip, user_agent, \
                     reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?;
            c.execute(
                &st,
                &[
                    &ts(e.at),
                    &e.portal.0,
                    &e.user.map(|u| u.0),
                    &e.login,
                    &action_code(e.action),
                    &e.ip.to_string(),
                    &e.user_agent,
                    &e.reason,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn recent_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        done(async {
            let c = self.client().await?;
            // NULL parameters switch a condition off; the portal and user indexes serve the
            // common filtered listings.
            let st = c
                .prepare_cached(
                    "SELECT at, portal_id, user_id, login, action, ip, user_agent, reason \
                     FROM audit WHERE ($1::uuid IS NULL OR portal_id = $1) \
                     AND ($2::uuid IS NULL OR user_id = $2) \
                     AND ($3::int4 IS NULL OR action = $3) ORDER BY id DESC LIMIT $4",
                )
                .await?;
            let rows = c
                .query(
                    &st,
                    &[
                        &filter.portal.map(|p| p.0),
                        &filter.user.map(|u| u.0),
                        &filter.action.map(action_code),
                        &i64::from(limit),
                    ],
                )
                .await?;
            rows.iter().map(records::audit_event).collect()
        })
        .await
    }

    async fn purge_audit(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        // The oldest `limit` rows by id (the primary key: no scan), of which those older than the
        // cut-off go. Once the oldest row is newer, nothing is deleted and the caller stops.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT $2) \
                     AND at < $1",
                )
                .await?;
            Ok(c.execute(&st, &[&ts(before), &i64::from(limit)]).await?)
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
        // Keyset paging on (at, id): the index `audit_at` serves the range, the order and the
        // resumption, so a page costs the same at the start of the trail as at its end. Without a
        // cursor the page starts just before `since` (no event has an id below 1).
        let (after_at, after_id) = after.map_or((ts(since), 0), |c| (ts(c.at), c.seq));
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT at, portal_id, user_id, login, action, ip, user_agent, reason, id \
                     FROM audit WHERE at >= $1 AND at < $2 AND (at, id) > ($3, $4) \
                     AND ($5::uuid IS NULL OR portal_id = $5) \
                     AND ($6::uuid IS NULL OR user_id = $6) \
                     AND ($7::int4 IS NULL OR action = $7) ORDER BY at, id LIMIT $8",
                )
                .await?;
            let rows = c
                .query(
                    &st,
                    &[
                        &ts(since),
                        &ts(until),
                        &after_at,
                        &after_id,
                        &filter.portal.map(|p| p.0),
                        &filter.user.map(|u| u.0),
                        &filter.action.map(action_code),
                        &i64::from(limit),
                    ],
                )
                .await?;
            rows.iter().map(records::audit_entry).collect()
        })
        .await
    }
}

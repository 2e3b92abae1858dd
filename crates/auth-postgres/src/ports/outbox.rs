//! `OutboxStore`: the durable outbox of SMS and e-mail (texts sealed by the core).
//!
//! Claiming is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …` that
//! moves the claimed rows' `next_attempt_at` to the end of the lease and records the claimant's
//! `claim` on them. A node claiming at the same time skips the rows another node has locked instead of
//! waiting for them, and a row that another node claimed and committed meanwhile is re-checked against
//! `next_attempt_at <= now` and dropped, so several nodes never claim one message twice within a
//! lease.
//!
//! Renewing a lease and writing a result are single `UPDATE … WHERE id = $1 AND claim = $2 AND
//! sent_at IS NULL` statements. One that meets a concurrent claim waits for its row lock and then
//! re-checks the condition on the row that claim committed (READ COMMITTED), so a worker whose lease
//! ran out and whose message another node took changes nothing, and is told so.

use async_trait::async_trait;
use auth_core::ports::{
    Channel, NewOutboxMessage, OutboxMessage, OutboxStats, OutboxStore, StoreResult,
};
use auth_core::{SignedDuration, Timestamp};
use auth_sql::codec::{later, ts};
use auth_sql::{Columns, records};

use crate::error::DbResult;
use crate::store::{PgStore, done};

/// The columns `auth_sql::records::message` reads, in its order.
macro_rules! columns {
    () => {
        "id, portal_id, to_phone, sealed_text, created_at, attempts, next_attempt_at, sent_at, \
         last_error, channel"
    };
}

impl PgStore {
    async fn enqueue(&self, channel: Channel, m: &NewOutboxMessage) -> StoreResult<i64> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO outbox (portal_id, to_phone, sealed_text, created_at, attempts, \
                     next_attempt_at, channel) VALUES ($1, $2, $3, $4, 0, $4, $5) RETURNING id",
                )
                .await?;
            let row = c
                .query_one(
                    &st,
                    &[&m.portal.0, &m.to, &m.sealed_text, &ts(m.created_at), &channel.as_str()],
                )
                .await?;
            row.big_int(0)
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn enqueue_sms(&self, m: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Sms, m).await
    }

    async fn enqueue_mail(&self, m: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Email, m).await
    }

    async fn claim_due(
        &self,
        channel: Channel,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
        claim: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(concat!(
                    "UPDATE outbox SET next_attempt_at = $2, claim = $4 WHERE id IN (SELECT id \
                     FROM outbox WHERE sent_at IS NULL AND channel = $5 AND next_attempt_at <= $1 \
                     ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
                    columns!()
                ))
                .await?;
            let rows = c
                .query(
                    &st,
                    &[
                        &ts(now),
                        &ts(later(now, lease)),
                        &i64::from(limit),
                        &claim,
                        &channel.as_str(),
                    ],
                )
                .await?;
            let mut claimed = rows.iter().map(records::message).collect::<DbResult<Vec<_>>>()?;
            // RETURNING gives no order guarantee; callers get the oldest first.
            claimed.sort_by_key(|m| m.id);
            Ok(claimed)
        })
        .await
    }

    async fn renew_sms_claim(&self, id: i64, claim: i64, until: Timestamp) -> StoreResult<bool> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE outbox SET next_attempt_at = $3 \
                     WHERE id = $1 AND claim = $2 AND sent_at IS NULL",
                )
                .await?;
            Ok(c.execute(&st, &[&id, &claim, &ts(until)]).await? == 1)
        })
        .await
    }

    async fn mark_sms_sent(&self, id: i64, claim: i64, at: Timestamp) -> StoreResult<bool> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE outbox SET sent_at = $3, attempts = attempts + 1 \
                     WHERE id = $1 AND claim = $2 AND sent_at IS NULL",
                )
                .await?;
            Ok(c.execute(&st, &[&id, &claim, &ts(at)]).await? == 1)
        })
        .await
    }

    async fn mark_sms_failed(
        &self,
        id: i64,
        claim: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        // The claim stays on the row: the next claimant overwrites it, and until then this worker
        // still holds the message (as in the reference store).
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3, \
                     last_error = $4 WHERE id = $1 AND claim = $2 AND sent_at IS NULL",
                )
                .await?;
            Ok(c.execute(&st, &[&id, &claim, &ts(next_attempt_at), &error]).await? == 1)
        })
        .await
    }

    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM outbox ORDER BY id DESC LIMIT $1"
                ))
                .await?;
            c.query(&st, &[&i64::from(limit)]).await?.iter().map(records::message).collect()
        })
        .await
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        // A range of the partial index of unsent messages (`outbox_due`); given-up messages sit at
        // its far end, at the largest instant, and fall outside the range.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT count(*), min(created_at) FROM outbox \
                     WHERE sent_at IS NULL AND next_attempt_at < $1",
                )
                .await?;
            let row = c.query_one(&st, &[&ts(Timestamp::MAX)]).await?;
            Ok(OutboxStats {
                pending: u64::try_from(row.big_int(0)?).unwrap_or(0),
                oldest: row.opt_instant(1)?,
            })
        })
        .await
    }

    async fn purge_outbox(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        // Oldest first by the index `outbox_created`, finished messages only: delivered, or given
        // up (unsent, next attempt at the end of time). An unsent message still to be tried is
        // never picked, however old. A row a worker is updating is skipped rather than waited
        // for; finished rows are never claimed, so that only happens to a row just finishing.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < $1 \
                     AND (sent_at IS NOT NULL OR next_attempt_at = $2) \
                     ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)",
                )
                .await?;
            Ok(c.execute(&st, &[&ts(before), &ts(Timestamp::MAX), &i64::from(limit)]).await?)
        })
        .await
    }
}

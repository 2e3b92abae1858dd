//! `OutboxStore`: the durable outbox of SMS and e-mail (texts sealed by the core).
//!
//! Claiming is one `UPDATE … RETURNING` in an `IMMEDIATE` transaction that moves the claimed rows'
//! `next_attempt_at` to the end of the lease and records the claimant's `claim` on them, so workers
//! in several processes never claim one message twice within a lease. Renewing the lease and writing
//! a result are single `UPDATE … WHERE id = ? AND claim = ? AND sent_at IS NULL` statements: the
//! check and the write happen together under the write lock, so a worker whose lease ran out and
//! whose message another worker claimed changes nothing (and is told so).

use async_trait::async_trait;
use auth_core::ports::{
    Channel, NewOutboxMessage, OutboxMessage, OutboxStats, OutboxStore, StoreResult,
};
use auth_core::{SignedDuration, Timestamp};
use auth_sql::codec::{later, ts, ts_from};
use auth_sql::records;
use rusqlite::params;

use crate::codec::collect;
use crate::store::SqliteStore;

/// The columns `auth_sql::records::message` reads, in its order.
const COLUMNS: &str = "id, portal, to_phone, sealed_text, created_at, attempts, next_attempt_at, \
                       sent_at, last_error, channel";

impl SqliteStore {
    async fn enqueue(&self, channel: Channel, msg: &NewOutboxMessage) -> StoreResult<i64> {
        let m = msg.clone();
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO outbox (portal, to_phone, sealed_text, created_at, attempts, \
                 next_attempt_at, channel) VALUES (?1, ?2, ?3, ?4, 0, ?4, ?5)",
            )?
            .execute(params![
                m.portal.0.as_bytes().as_slice(),
                m.to,
                m.sealed_text,
                ts(m.created_at),
                channel.as_str()
            ])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_sms(&self, msg: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Sms, msg).await
    }

    async fn enqueue_mail(&self, msg: &NewOutboxMessage) -> StoreResult<i64> {
        self.enqueue(Channel::Email, msg).await
    }

    async fn claim_due(
        &self,
        channel: Channel,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
        claim: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.write(move |tx| {
            let sql = format!(
                "UPDATE outbox SET next_attempt_at = ?2, claim = ?4 WHERE id IN (SELECT id \
                 FROM outbox WHERE sent_at IS NULL AND channel = ?5 AND next_attempt_at <= ?1 \
                 ORDER BY id LIMIT ?3) RETURNING {COLUMNS}"
            );
            let mut st = tx.prepare_cached(&sql)?;
            let mut claimed = collect(
                st.query(params![
                    ts(now),
                    ts(later(now, lease)),
                    i64::from(limit),
                    claim,
                    channel.as_str()
                ])?,
                |r| records::message(r),
            )?;
            // RETURNING gives no order guarantee; callers get the oldest first.
            claimed.sort_by_key(|m| m.id);
            Ok(claimed)
        })
        .await
    }

    async fn renew_sms_claim(&self, id: i64, claim: i64, until: Timestamp) -> StoreResult<bool> {
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET next_attempt_at = ?3 \
                     WHERE id = ?1 AND claim = ?2 AND sent_at IS NULL",
                )?
                .execute(params![id, claim, ts(until)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn mark_sms_sent(&self, id: i64, claim: i64, at: Timestamp) -> StoreResult<bool> {
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET sent_at = ?3, attempts = attempts + 1 \
                     WHERE id = ?1 AND claim = ?2 AND sent_at IS NULL",
                )?
                .execute(params![id, claim, ts(at)])?;
            Ok(n == 1)
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
        let error = error.to_owned();
        // The claim stays on the row: the next claimant overwrites it, and until then this worker
        // still holds the message (as in the reference store).
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?3, \
                     last_error = ?4 WHERE id = ?1 AND claim = ?2 AND sent_at IS NULL",
                )?
                .execute(params![id, claim, ts(next_attempt_at), error])?;
            Ok(n == 1)
        })
        .await
    }

    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        self.run_read(move |c| {
            let sql = format!("SELECT {COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1");
            let mut st = c.prepare_cached(&sql)?;
            collect(st.query([i64::from(limit)])?, |r| records::message(r))
        })
        .await
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        // A range of the partial index of unsent messages (`outbox_due`); given-up messages sit at
        // its far end, at the largest instant, and fall outside the range.
        self.run_read(move |c| {
            let (pending, oldest): (i64, Option<i64>) = c
                .prepare_cached(
                    "SELECT count(*), min(created_at) FROM outbox \
                     WHERE sent_at IS NULL AND next_attempt_at < ?1",
                )?
                .query_row([ts(Timestamp::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(OutboxStats {
                pending: u64::try_from(pending).unwrap_or(0),
                oldest: oldest.map(ts_from).transpose()?,
            })
        })
        .await
    }

    async fn purge_outbox(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        // Oldest first by the index `outbox_created`, finished messages only: delivered, or given
        // up (unsent, next attempt at the end of time). An unsent message still to be tried is
        // never picked, however old.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < ?1 \
                     AND (sent_at IS NOT NULL OR next_attempt_at = ?2) \
                     ORDER BY created_at LIMIT ?3)",
                )?
                .execute(params![ts(before), ts(Timestamp::MAX), i64::from(limit)])?;
            Ok(n as u64)
        })
        .await
    }
}

//! `CounterStore`: sliding-window throttle counters shared by every node on the database.
//!
//! Events live in `counter_events` (one row per counted attempt; its BIGSERIAL id is the slot handed
//! to the caller) and each key's block in its `counter_keys` row. `acquire` is one READ COMMITTED
//! transaction that starts by upserting the key's row, which locks it: acquires (and records) on one
//! key queue there, across nodes, until the one ahead commits. Each statement after the lock takes a
//! fresh snapshot, so it sees every event the earlier ones recorded; the transaction then prunes,
//! checks the block, asks `Rule::refused_until` about the remaining events and records the new event.
//! N nodes racing on one key therefore grant exactly `limit` slots together.
//!
//! A row lock rather than `pg_advisory_xact_lock(hashtext(key))`: it serializes exactly one key (no
//! hash collisions between keys), and distributed PostgreSQL-compatible databases implement row locks
//! where some of them ignore advisory locks.

use async_trait::async_trait;
use auth_core::ports::{CounterStore, StoreResult};
use auth_core::throttle::{Acquire, AcquireThen, Rule, Slot, keys};
use auth_core::{SignedDuration, Timestamp};
use auth_sql::Columns;
use auth_sql::codec::{later, ts};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::error::DbResult;
use crate::store::{PgStore, begin, done};

/// Locks the key's row (creating it when needed); its `RETURNING` gives the stored block in the same
/// trip. `ON CONFLICT DO UPDATE` either inserts or locks the existing row even while a concurrent
/// `reset` deletes it, so every caller leaves holding the lock.
const LOCK_KEY: &str = "INSERT INTO counter_keys AS k (key, blocked_until) VALUES ($1, NULL) \
     ON CONFLICT (key) DO UPDATE SET blocked_until = k.blocked_until \
     RETURNING blocked_until";

/// Locks the key's row (creating it when needed) and returns its stored block.
async fn lock_key(tx: &Transaction<'_>, key: &str) -> DbResult<Option<Timestamp>> {
    let st = tx.prepare_cached(LOCK_KEY).await?;
    let row = tx.query_one(&st, &[&key]).await?;
    row.opt_instant(0)
}

/// Drops the key's events that no rule decision can need any more (older than the retention).
const PRUNE: &str = "DELETE FROM counter_events WHERE key = $1 AND at <= $2";

/// The instant (as stored) before which `rule` needs none of a key's events.
pub(super) fn horizon(rule: &Rule, now: Timestamp) -> i64 {
    let back = rule.retention().checked_neg().unwrap_or(SignedDuration::MAX);
    ts(later(now, back))
}

async fn prune(tx: &Transaction<'_>, key: &str, rule: &Rule, now: Timestamp) -> DbResult<()> {
    let st = tx.prepare_cached(PRUNE).await?;
    tx.execute(&st, &[&key, &horizon(rule, now)]).await?;
    Ok(())
}

async fn add_event(tx: &Transaction<'_>, key: &str, now: Timestamp) -> DbResult<i64> {
    let st = tx
        .prepare_cached("INSERT INTO counter_events (key, at) VALUES ($1, $2) RETURNING id")
        .await?;
    tx.query_one(&st, &[&key, &ts(now)]).await?.big_int(0)
}

/// The whole of one acquire, inside the caller's transaction (which it leaves open).
///
/// The key's lock, the prune of the events no rule decision can need any more (older than the
/// retention) and the read of the events left are sent together, pipelined: none needs another's
/// answer, and the backend runs them one after the other in the order sent, each statement with a
/// snapshot of its own taken when it starts, so the prune and the read still run after the lock is
/// held and see every event the transactions ahead of it committed. One round trip instead of
/// three. If the lock fails, the two behind it fail as the aborted transaction's statements, and
/// the lock's own error, which answers first, is the one returned.
async fn acquire_in(
    tx: &Transaction<'_>,
    key: &str,
    rule: &Rule,
    now: Timestamp,
) -> DbResult<Acquire> {
    let horizon = horizon(rule, now);
    let lock = tx.prepare_cached(LOCK_KEY).await?;
    let prune = tx.prepare_cached(PRUNE).await?;
    let events = tx.prepare_cached("SELECT at FROM counter_events WHERE key = $1").await?;
    // `try_join!` polls its futures in this order the first time, and a query is sent when its
    // future is first polled: so the three go out as lock, prune, read.
    let (by_key, pruning): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 2]) =
        ([&key], [&key, &horizon]);
    let (block, _, rows) = tokio::try_join!(
        tx.query_one(&lock, &by_key),
        tx.execute(&prune, &pruning),
        tx.query(&events, &by_key),
    )?;
    if let Some(until) = block.opt_instant(0)?
        && until > now
    {
        return Ok(Acquire::Refused { until });
    }
    let times = rows.iter().map(|r| r.instant(0)).collect::<DbResult<Vec<_>>>()?;
    Ok(match rule.refused_until(now, &times) {
        Some(until) => {
            let st = tx
                .prepare_cached("UPDATE counter_keys SET blocked_until = $2 WHERE key = $1")
                .await?;
            tx.execute(&st, &[&key, &ts(until)]).await?;
            Acquire::Refused { until }
        }
        None => Acquire::Granted(Slot(add_event(tx, key, now).await?)),
    })
}

#[async_trait]
impl CounterStore for PgStore {
    async fn acquire(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Acquire> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let answer = acquire_in(&tx, key, rule, now).await?;
            tx.commit().await?;
            Ok(answer)
        })
        .await
    }

    async fn acquire_then(
        &self,
        first: (&str, &Rule),
        second: (&str, &Rule),
        now: Timestamp,
    ) -> StoreResult<AcquireThen> {
        // One transaction, one commit. Every caller locks its first key before its second (a
        // login: its login key, then its account key) and nothing locks two keys the other way, so
        // two such transactions cannot wait for each other in a cycle.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            // The port lets this commit answer before its WAL record is flushed (every outcome that
            // must count is a synchronous commit after it, which flushes the WAL up to itself and
            // so this record too). The setting goes out in the same round trip as the first key's
            // statements and holds for this transaction only.
            let (_, first) = tokio::try_join!(
                async { Ok(tx.batch_execute("SET LOCAL synchronous_commit = off").await?) },
                acquire_in(&tx, first.0, first.1, now),
            )?;
            let answer = match first {
                Acquire::Refused { until } => AcquireThen::Refused { until },
                Acquire::Granted(slot) => {
                    AcquireThen::Granted(slot, acquire_in(&tx, second.0, second.1, now).await?)
                }
            };
            tx.commit().await?;
            Ok(answer)
        })
        .await
    }

    async fn release(&self, slot: Slot) -> StoreResult<()> {
        // Deleting one event only lowers a count, so it needs no lock: an acquire deciding meanwhile
        // counted one event too many, as it would have a moment earlier.
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM counter_events WHERE id = $1").await?;
            c.execute(&st, &[&slot.0]).await?;
            Ok(())
        })
        .await
    }

    async fn release_all(&self, slots: &[Slot]) -> StoreResult<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = slots.iter().map(|s| s.0).collect();
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM counter_events WHERE id = ANY($1)").await?;
            c.execute(&st, &[&ids]).await?;
            Ok(())
        })
        .await
    }

    async fn record(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<()> {
        // Under the key's lock, so an acquire deciding at the same moment either sees this event or
        // is decided before it is recorded, never both without it.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock_key(&tx, key).await?;
            prune(&tx, key, rule, now).await?;
            add_event(&tx, key, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn purge_counters(&self, before: Timestamp, known_before: Timestamp) -> StoreResult<u64> {
        // A key row is deleted only when no event of it is left and its block has ended; an acquire
        // holding the row makes the delete wait and then re-check against the committed events. The
        // known-client keys (one prefix) keep their events and blocks until their own, older cutoff;
        // `left` compares the prefix exactly, where `LIKE` would read `_` and `%` as wildcards. The
        // casts type the parameters, which a `CASE` of parameters alone would leave as text.
        done(async {
            let (before, known_before) = (ts(before), ts(known_before));
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = tx
                .prepare_cached(
                    "DELETE FROM counter_events WHERE at < CASE \
                     WHEN left(key, length($3::text)) = $3 THEN $2::bigint ELSE $1::bigint END",
                )
                .await?;
            let n = tx.execute(&st, &[&before, &known_before, &keys::KNOWN_PREFIX]).await?;
            let st = tx
                .prepare_cached(
                    "DELETE FROM counter_keys k WHERE (k.blocked_until IS NULL \
                     OR k.blocked_until < CASE WHEN left(k.key, length($3::text)) = $3 \
                     THEN $2::bigint ELSE $1::bigint END) \
                     AND NOT EXISTS (SELECT 1 FROM counter_events e WHERE e.key = k.key)",
                )
                .await?;
            tx.execute(&st, &[&before, &known_before, &keys::KNOWN_PREFIX]).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    async fn count_since(&self, key: &str, since: Timestamp) -> StoreResult<u64> {
        // One statement reads one snapshot; the `(key, at)` index answers it without a table scan.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("SELECT count(*) FROM counter_events WHERE key = $1 AND at >= $2")
                .await?;
            let n = c.query_one(&st, &[&key, &ts(since)]).await?.big_int(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        // Deleting the key's row waits for an acquire holding it, and an acquire waiting for the
        // delete re-creates the row afterwards and sees no events: the reset lies wholly before it.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            for sql in [
                "DELETE FROM counter_keys WHERE key = $1",
                "DELETE FROM counter_events WHERE key = $1",
            ] {
                let st = tx.prepare_cached(sql).await?;
                tx.execute(&st, &[&key]).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

//! `CounterStore`: sliding-window throttle counters shared by every process on the database.
//!
//! Events live in `counter_events` (one row per counted attempt; the row id is the slot handed to
//! the caller) and blocks in `counter_blocks`. `acquire` is one `IMMEDIATE` transaction: it prunes,
//! checks the block, asks `Rule::refused_until` about the remaining events and records the new event,
//! all under the write lock, so N processes racing on one key grant exactly `limit` slots together.

use async_trait::async_trait;
use auth_core::Timestamp;
use auth_core::ports::{CounterStore, StoreResult};
use auth_core::throttle::{Acquire, AcquireThen, Rule, Slot, keys};
use auth_sql::Columns;
use auth_sql::codec::{later, ts};
use rusqlite::{Connection, params};

use crate::codec::{collect, first};
use crate::error::DbResult;
use crate::store::SqliteStore;

/// Drops the key's events that no rule decision can need any more (older than the retention).
fn prune(tx: &Connection, key: &str, rule: &Rule, now: Timestamp) -> DbResult<()> {
    let back = rule.retention().checked_neg().unwrap_or(auth_core::SignedDuration::MAX);
    let horizon = later(now, back);
    tx.prepare_cached("DELETE FROM counter_events WHERE key = ?1 AND at <= ?2")?
        .execute(params![key, ts(horizon)])?;
    Ok(())
}

fn add_event(tx: &Connection, key: &str, now: Timestamp) -> DbResult<i64> {
    tx.prepare_cached("INSERT INTO counter_events (key, at) VALUES (?1, ?2)")?
        .execute(params![key, ts(now)])?;
    Ok(tx.last_insert_rowid())
}

/// Gives back granted slots (`CounterStore::release_all`), in the caller's transaction.
pub(super) fn release_in(tx: &Connection, slots: &[Slot]) -> DbResult<()> {
    let mut st = tx.prepare_cached("DELETE FROM counter_events WHERE id = ?1")?;
    for slot in slots {
        st.execute([slot.0])?;
    }
    Ok(())
}

/// `CounterStore::count_since`, on the caller's connection. One statement reads one snapshot; the
/// `(key, at)` index answers it without a table scan.
fn count_since_in(c: &Connection, key: &str, since: Timestamp) -> DbResult<u64> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM counter_events WHERE key = ?1 AND at >= ?2")?
        .query_row(params![key, ts(since)], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Records an event of `key` at `now` (as `CounterStore::record`) unless it has one at or after
/// `since`, in the caller's transaction.
pub(super) fn record_unless_since(
    tx: &Connection,
    key: &str,
    since: Timestamp,
    rule: &Rule,
    now: Timestamp,
) -> DbResult<()> {
    if count_since_in(tx, key, since)? == 0 {
        prune(tx, key, rule, now)?;
        add_event(tx, key, now)?;
    }
    Ok(())
}

/// The whole of one acquire, inside the caller's `IMMEDIATE` transaction.
fn acquire_in(tx: &Connection, key: &str, rule: &Rule, now: Timestamp) -> DbResult<Acquire> {
    prune(tx, key, rule, now)?;
    let mut block = tx.prepare_cached("SELECT until FROM counter_blocks WHERE key = ?1")?;
    if let Some(until) = first(block.query([key])?, |r| r.instant(0))?
        && until > now
    {
        return Ok(Acquire::Refused { until });
    }
    let mut events = tx.prepare_cached("SELECT at FROM counter_events WHERE key = ?1")?;
    let times = collect(events.query([key])?, |r| r.instant(0))?;
    if let Some(until) = rule.refused_until(now, &times) {
        tx.prepare_cached(
            "INSERT INTO counter_blocks (key, until) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET until = excluded.until",
        )?
        .execute(params![key, ts(until)])?;
        return Ok(Acquire::Refused { until });
    }
    Ok(Acquire::Granted(Slot(add_event(tx, key, now)?)))
}

#[async_trait]
impl CounterStore for SqliteStore {
    async fn acquire(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Acquire> {
        let key = key.to_owned();
        let rule = *rule;
        self.write(move |tx| acquire_in(tx, &key, &rule, now)).await
    }

    async fn acquire_then(
        &self,
        first: (&str, &Rule),
        second: (&str, &Rule),
        now: Timestamp,
    ) -> StoreResult<AcquireThen> {
        // One transaction, so one commit for both of a login's throttles, and not synced: the port
        // allows it (every outcome that must count writes durably after it, and that sync carries
        // this commit's frames of the WAL to the disk too).
        let (k1, r1) = (first.0.to_owned(), *first.1);
        let (k2, r2) = (second.0.to_owned(), *second.1);
        self.write_deferred(move |tx| match acquire_in(tx, &k1, &r1, now)? {
            Acquire::Refused { until } => Ok(AcquireThen::Refused { until }),
            Acquire::Granted(slot) => {
                Ok(AcquireThen::Granted(slot, acquire_in(tx, &k2, &r2, now)?))
            }
        })
        .await
    }

    async fn release(&self, slot: Slot) -> StoreResult<()> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM counter_events WHERE id = ?1")?.execute([slot.0])?;
            Ok(())
        })
        .await
    }

    async fn release_all(&self, slots: &[Slot]) -> StoreResult<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let slots = slots.to_vec();
        self.write(move |tx| release_in(tx, &slots)).await
    }

    async fn record(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<()> {
        let key = key.to_owned();
        let rule = *rule;
        self.write(move |tx| {
            prune(tx, &key, &rule, now)?;
            add_event(tx, &key, now)?;
            Ok(())
        })
        .await
    }

    async fn purge_counters(&self, before: Timestamp, known_before: Timestamp) -> StoreResult<u64> {
        let (before, known_before) = (ts(before), ts(known_before));
        // The known-client keys (one prefix) keep their events and blocks until their own, older
        // cutoff. `substr` compares the prefix exactly, where `LIKE` would ignore ASCII case and
        // read `_` and `%` as wildcards.
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM counter_events WHERE at < \
                     CASE WHEN substr(key, 1, length(?3)) = ?3 THEN ?2 ELSE ?1 END",
                )?
                .execute(params![before, known_before, keys::KNOWN_PREFIX])?;
            tx.prepare_cached(
                "DELETE FROM counter_blocks WHERE until < \
                 CASE WHEN substr(key, 1, length(?3)) = ?3 THEN ?2 ELSE ?1 END",
            )?
            .execute(params![before, known_before, keys::KNOWN_PREFIX])?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn count_since(&self, key: &str, since: Timestamp) -> StoreResult<u64> {
        let key = key.to_owned();
        self.run_read(move |c| count_since_in(c, &key, since)).await
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM counter_events WHERE key = ?1")?.execute([&key])?;
            tx.prepare_cached("DELETE FROM counter_blocks WHERE key = ?1")?.execute([&key])?;
            Ok(())
        })
        .await
    }
}

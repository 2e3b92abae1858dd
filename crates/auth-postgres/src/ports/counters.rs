//! `CounterStore`: sliding-window throttle counters shared by every node on the database.
//!
//! Events live in `counter_events` (one row per counted attempt; its BIGSERIAL id is the slot handed
//! to the caller) and each key's block in its `counter_keys` row. `acquire` is one READ COMMITTED
//! transaction that starts by upserting the key's row, which locks it: acquires (and records) on one
//! key queue there, across nodes, until the one ahead commits. Each statement after the lock takes a
//! fresh snapshot, so it sees every event the earlier ones recorded; the transaction then prunes,
//! reads the remaining events and records the new event (all in one round trip, see `send`), checks
//! the block and asks `Rule::refused_until` about the events read, and takes the new event back
//! before the commit when either refuses.
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
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use crate::error::DbResult;
use crate::store::{PgStore, begin, done};

/// Locks the key's row (creating it when needed); its `RETURNING` gives the stored block in the same
/// trip. `ON CONFLICT DO UPDATE` either inserts or locks the existing row even while a concurrent
/// `reset` deletes it, so every caller leaves holding the lock.
const LOCK_KEY: &str = "INSERT INTO counter_keys AS k (key, blocked_until) VALUES ($1, NULL) \
     ON CONFLICT (key) DO UPDATE SET blocked_until = k.blocked_until \
     RETURNING blocked_until";

/// Drops the key's events that no rule decision can need any more (older than the retention).
const PRUNE: &str = "DELETE FROM counter_events WHERE key = $1 AND at <= $2";

/// The instant (as stored) before which `rule` needs none of a key's events.
pub(super) fn horizon(rule: &Rule, now: Timestamp) -> i64 {
    let back = rule.retention().checked_neg().unwrap_or(SignedDuration::MAX);
    ts(later(now, back))
}

/// One parameter of a pipelined statement (their arrays must outlive the futures that send them).
type Param<'a> = &'a (dyn ToSql + Sync);

/// One acquire's statements, prepared before any of them is sent.
///
/// A statement that is not yet in the connection's cache costs a round trip to prepare, and a
/// pipeline whose statements were prepared on the way would send them out of order (a second key's
/// lock before the first key's read, say); prepared first, they go out exactly as polled.
struct Prepared {
    lock: Statement,
    prune: Statement,
    events: Statement,
    insert: Statement,
}

impl Prepared {
    async fn on(tx: &Transaction<'_>) -> DbResult<Self> {
        Ok(Self {
            lock: tx.prepare_cached(LOCK_KEY).await?,
            prune: tx.prepare_cached(PRUNE).await?,
            events: tx.prepare_cached("SELECT at FROM counter_events WHERE key = $1").await?,
            insert: tx
                .prepare_cached("INSERT INTO counter_events (key, at) VALUES ($1, $2) RETURNING id")
                .await?,
        })
    }
}

/// What one key's pipelined statements answered: its stored block, the events left after the prune
/// (the new one not among them) and the id of the event recorded on the chance that it is granted.
struct Seen {
    block: Option<Timestamp>,
    times: Vec<Timestamp>,
    event: i64,
}

/// Sends one key's lock, prune, read and insert together, pipelined, and waits for their answers.
///
/// None needs another's answer, and the backend runs them one after the other in the order sent,
/// each with a snapshot of its own taken when it starts: the prune and the read run after the lock is
/// held and see every event the transactions ahead of it committed, and the read, sent before the
/// insert, does not see the new event. The insert is speculative: whether the key grants is decided
/// afterwards from the read, and a refusal deletes the event again before the commit, so no other
/// transaction ever sees it (they wait at the key's lock, and read committed rows only). A granted
/// acquire, the common case, so costs one round trip instead of two (the insert used to wait for
/// the decision). If the lock fails, the
/// statements behind it fail as the aborted transaction's, and the lock's own error, which answers
/// first, is the one returned.
///
/// Every statement is sent when its future is first polled (`try_join!` polls them in this order
/// the first time), and nothing is awaited before: the caller may so send a second key's statements
/// right behind these, in the same round trip, by polling its `send` after this one.
async fn send(
    tx: &Transaction<'_>,
    st: &Prepared,
    key: &str,
    rule: &Rule,
    now: Timestamp,
) -> DbResult<Seen> {
    let (horizon, at) = (horizon(rule, now), ts(now));
    let by_key: [Param<'_>; 1] = [&key];
    let (pruning, adding): ([Param<'_>; 2], [Param<'_>; 2]) = ([&key, &horizon], [&key, &at]);
    let (block, _, rows, added) = tokio::try_join!(
        tx.query_one(&st.lock, &by_key),
        tx.execute(&st.prune, &pruning),
        tx.query(&st.events, &by_key),
        tx.query_one(&st.insert, &adding),
    )?;
    Ok(Seen {
        block: block.opt_instant(0)?,
        times: rows.iter().map(|r| r.instant(0)).collect::<DbResult<Vec<_>>>()?,
        event: added.big_int(0)?,
    })
}

/// What a key's answers decide, by the rule of [`CounterStore::acquire`].
#[derive(Clone, Copy)]
enum Verdict {
    Granted(Slot),
    /// Refused by the block the key already had.
    Blocked(Timestamp),
    /// Refused by the rule, with a block to store.
    Refused(Timestamp),
}

impl Verdict {
    fn of(seen: &Seen, rule: &Rule, now: Timestamp) -> Self {
        if let Some(until) = seen.block
            && until > now
        {
            return Self::Blocked(until);
        }
        match rule.refused_until(now, &seen.times) {
            Some(until) => Self::Refused(until),
            None => Self::Granted(Slot(seen.event)),
        }
    }

    /// The port's answer; the withdrawal of a refused key's event is [`withdraw`]'s.
    fn answer(&self) -> Acquire {
        match *self {
            Self::Granted(slot) => Acquire::Granted(slot),
            Self::Blocked(until) | Self::Refused(until) => Acquire::Refused { until },
        }
    }
}

/// Deletes the speculative events of keys that did not grant, and stores the block a rule refusal
/// sets, pipelined (one round trip).
async fn withdraw(
    tx: &Transaction<'_>,
    events: &[i64],
    block: Option<(&str, Timestamp)>,
) -> DbResult<()> {
    let delete = tx.prepare_cached("DELETE FROM counter_events WHERE id = ANY($1)").await?;
    let ids = events.to_vec();
    match block {
        None => {
            tx.execute(&delete, &[&ids]).await?;
        }
        Some((key, until)) => {
            let update = tx
                .prepare_cached("UPDATE counter_keys SET blocked_until = $2 WHERE key = $1")
                .await?;
            let until = ts(until);
            let (deleting, blocking): ([Param<'_>; 1], [Param<'_>; 2]) = ([&ids], [&key, &until]);
            tokio::try_join!(tx.execute(&delete, &deleting), tx.execute(&update, &blocking))?;
        }
    }
    Ok(())
}

/// The key whose block a verdict stores, if it stores one.
fn block_of<'k>(key: &'k str, verdict: &Verdict) -> Option<(&'k str, Timestamp)> {
    match *verdict {
        Verdict::Refused(until) => Some((key, until)),
        Verdict::Granted(_) | Verdict::Blocked(_) => None,
    }
}

#[async_trait]
impl CounterStore for PgStore {
    async fn acquire(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Acquire> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = Prepared::on(&tx).await?;
            let seen = send(&tx, &st, key, rule, now).await?;
            let verdict = Verdict::of(&seen, rule, now);
            if !matches!(verdict, Verdict::Granted(_)) {
                withdraw(&tx, &[seen.event], block_of(key, &verdict)).await?;
            }
            tx.commit().await?;
            Ok(verdict.answer())
        })
        .await
    }

    async fn acquire_then(
        &self,
        first: (&str, &Rule),
        second: (&str, &Rule),
        now: Timestamp,
    ) -> StoreResult<AcquireThen> {
        // One transaction, one commit, and on the way there one round trip: both keys' statements
        // go out together (see `send`), the second's on the chance that the first grants. Every
        // caller locks its first key before its second (a login: its login key, then its account
        // key), here too, and nothing locks two keys the other way, so two such transactions cannot
        // wait for each other in a cycle; the second key's lock is taken even when the first
        // refuses, which only holds it a moment longer.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = Prepared::on(&tx).await?;
            // The port lets this commit answer before its WAL record is flushed (every outcome that
            // must count is a synchronous commit after it, which flushes the WAL up to itself and
            // so this record too). The setting goes out first, in the same round trip, and holds
            // for this transaction only.
            let (_, one, two) = tokio::try_join!(
                async { Ok(tx.batch_execute("SET LOCAL synchronous_commit = off").await?) },
                send(&tx, &st, first.0, first.1, now),
                send(&tx, &st, second.0, second.1, now),
            )?;
            let verdict = Verdict::of(&one, first.1, now);
            let answer = match verdict {
                Verdict::Granted(slot) => {
                    let then = Verdict::of(&two, second.1, now);
                    if !matches!(then, Verdict::Granted(_)) {
                        withdraw(&tx, &[two.event], block_of(second.0, &then)).await?;
                    }
                    AcquireThen::Granted(slot, then.answer())
                }
                Verdict::Blocked(until) | Verdict::Refused(until) => {
                    // The second key was never asked, as the port says: its event goes too.
                    withdraw(&tx, &[one.event, two.event], block_of(first.0, &verdict)).await?;
                    AcquireThen::Refused { until }
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
            // The same statements as an acquire's, in one round trip (see `send`); the event is
            // kept whatever the events read would have decided.
            let st = Prepared::on(&tx).await?;
            send(&tx, &st, key, rule, now).await?;
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

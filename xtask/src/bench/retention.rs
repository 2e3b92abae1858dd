//! The retention measurement (issue 17): how long a login's store write waits while housekeeping
//! purges a million old audit events. `cargo xtask bench --retention` (a tenth with `--quick`) writes
//! `<target>/bench/summary-retention.json`.
//!
//! It runs in process on the real SQLite adapter (`auth_sqlite::SqliteStore`, with the server's
//! pragmas, write lane and `synchronous=FULL`): the old events are written straight into a fresh
//! database (there is no faster honest path to a million of them), then the purge loop runs exactly as
//! `Admin::purge_audit` does (`purge_audit(before, AUDIT_PURGE_BATCH)` until a short batch), while a second task
//! appends one audit event every 2 ms — the write every login makes — and records how long each
//! append took. The same appends run first with no purge, for the baseline. What matters is the
//! longest single wait, because the purge must never hold the write lock for long at a time.

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use auth_core::ids::PortalId;
use auth_core::ports::AuditStore as _;
use auth_core::{AuditAction, AuditEvent, Timestamp};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Rows per statement of the purge: the housekeeping's own.
const PURGE_BATCH: u32 = auth_core::service::AUDIT_PURGE_BATCH;
/// The interval between the appends that stand for logins.
const APPEND_EVERY: Duration = Duration::from_millis(2);
const PORTAL: &str = "00000000-0000-4000-8000-000000000017";

fn event(at: Timestamp) -> anyhow::Result<AuditEvent> {
    Ok(AuditEvent {
        at,
        portal: PortalId::from_str(PORTAL).map_err(|_| anyhow::anyhow!("bad portal id"))?,
        user: None,
        login: Some("bench@example.com".into()),
        action: AuditAction::LoginSuccessViaApi,
        ip: std::net::IpAddr::from([127, 0, 0, 1]),
        user_agent: Some("auth-bench".into()),
        reason: None,
    })
}

/// Appends an event every [`APPEND_EVERY`] until `stop` is set (or `for_at_most` passed), and
/// returns the latency of each append in µs.
async fn appends(
    store: Arc<auth_sqlite::SqliteStore>,
    stop: Arc<AtomicBool>,
    for_at_most: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new(3)?;
    let start = Instant::now();
    let mut tick = tokio::time::interval(APPEND_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) && start.elapsed() < for_at_most {
        tick.tick().await;
        let t = Instant::now();
        store.append_audit(&event(Timestamp::now())?).await?;
        h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(h)
}

fn summary(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| super::report::round(us as f64 / 1000.0);
    json!({
        "appends": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
    })
}

pub(crate) fn run(quick: bool) -> anyhow::Result<Value> {
    let n: i64 = if quick { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("auth.db");
    let store = Arc::new(auth_sqlite::SqliteStore::open(&db).context("cannot open the store")?);

    // The old events: 400 days old (past the default 365 of `[retention] audit_days`), a
    // millisecond apart, in one transaction.
    println!("[retention] writing {n} old audit events …");
    let t = Instant::now();
    let old = Timestamp::now().as_nanosecond() - 400 * 24 * 3600 * 1_000_000_000_i128;
    let old = i64::try_from(old)?;
    let portal = PortalId::from_str(PORTAL).map_err(|_| anyhow::anyhow!("bad portal id"))?;
    {
        let mut conn = rusqlite::Connection::open(&db)?;
        let tx = conn.transaction()?;
        tx.execute(
            "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?1) \
             INSERT INTO audit (at, portal, user, login, action, ip, user_agent, reason) \
             SELECT ?2 + i * 1000000, ?3, NULL, 'old' || i || '@example.com', 1010, '10.0.0.1', \
                    'auth-bench', NULL FROM g",
            rusqlite::params![n, old, portal.0.as_bytes().as_slice()],
        )?;
        tx.commit()?;
    }
    let seed_secs = t.elapsed().as_secs_f64();
    println!("[retention] seeded in {seed_secs:.1} s");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        // Baseline: the same appends with nothing else writing.
        let stop = Arc::new(AtomicBool::new(false));
        let base = appends(Arc::clone(&store), Arc::clone(&stop), Duration::from_secs(3)).await?;
        println!("[retention] baseline: {}", summary(&base));

        let before = Timestamp::now() - auth_core::SignedDuration::from_hours(24 * 365);
        let during =
            tokio::spawn(appends(Arc::clone(&store), Arc::clone(&stop), Duration::from_secs(3600)));
        let t = Instant::now();
        let mut purged = 0u64;
        let mut statements = 0u64;
        loop {
            let k = store.purge_audit(before, PURGE_BATCH).await?;
            purged += k;
            statements += 1;
            if k < u64::from(PURGE_BATCH) {
                break;
            }
        }
        let purge_secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let during = during.await??;
        println!(
            "[retention] purged {purged} events in {statements} statements, {purge_secs:.1} s; \
             appends meanwhile: {}",
            summary(&during)
        );
        anyhow::ensure!(purged == n as u64, "purged {purged} of {n} old events");
        let left: i64 = rusqlite::Connection::open(&db)?.query_row(
            "SELECT count(*) FROM audit WHERE at < ?1",
            [i64::try_from(before.as_nanosecond())?],
            |r| r.get(0),
        )?;
        anyhow::ensure!(left == 0, "{left} old events are left");
        Ok(json!({
            "old_events": n,
            "seed_secs": super::report::round(seed_secs),
            "purge_secs": super::report::round(purge_secs),
            "purge_events_per_s": super::report::round(purged as f64 / purge_secs.max(1e-9)),
            "purge_statements": statements,
            "batch": PURGE_BATCH,
            "append_baseline": summary(&base),
            "append_during_purge": summary(&during),
        }))
    })
}

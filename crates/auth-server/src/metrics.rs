//! The server's metrics (spec §13): the registry `/metrics` serves, and the families only the server
//! can fill — logins by factor and result and throttle refusals (the core's observer port), the
//! outbox depth and oldest age (read from the store at scrape time), the build and the runtime's
//! workers. The hashing pool's families live with the pool (`hashing.rs`), the SMS gateways' with
//! the gateways (`sms/metrics.rs`), the requests' in auth-http; [`registry`] gathers them all.
//!
//! Every label value comes from a closed set (an enum of the core, a gateway name of the
//! configuration, a route of the endpoint table): no login, address, portal or code ever becomes a
//! label, so the series stay few and carry no secret. `docs/metrics.md` lists every series.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_core::Store;
use auth_core::observe::{Factor, LoginResult, Observer, ThrottleRule};
use auth_core::ports::Clock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::hashing::HashingMetrics;
use crate::sms::SmsMetrics;

/// The commit the binary was built from, when the build said (`AUTH_BUILD_COMMIT=$(git rev-parse
/// HEAD) cargo build`); no build script reads git, so a build from a tarball works the same.
const COMMIT: &str = match option_env!("AUTH_BUILD_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Logins by factor and result, and throttle refusals by rule: the core's [`Observer`].
#[derive(Debug, Default)]
pub struct LoginMetrics {
    logins: Family<[(&'static str, &'static str); 2], Counter>,
    throttles: Family<[(&'static str, &'static str); 1], Counter>,
}

impl LoginMetrics {
    /// Adds the families to the server's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_logins",
            "Login steps (step 1 and step 2), by factor and result",
            self.logins.clone(),
        );
        registry.register(
            "auth_throttle_engagements",
            "Requests refused by a throttle or lock, by rule",
            self.throttles.clone(),
        );
    }
}

impl Observer for LoginMetrics {
    fn login(&self, factor: Factor, result: LoginResult) {
        self.logins
            .get_or_create(&[("factor", factor.as_str()), ("result", result.as_str())])
            .inc();
    }

    fn throttled(&self, rule: ThrottleRule) {
        self.throttles.get_or_create(&[("rule", rule.as_str())]).inc();
    }
}

/// How long outbox stats read from the store are shown before the next scrape reads them again:
/// however many scrapers there are, the store is asked at most once a second.
const OUTBOX_STATS_TTL: Duration = Duration::from_secs(1);

/// The outbox depth and the age of its oldest waiting message, read from the store before a scrape.
pub struct OutboxMetrics {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    depth: Gauge,
    oldest_age: Gauge<f64, AtomicU64>,
    /// When the store was last asked; scrapes that arrive together wait for one read.
    read_at: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OutboxMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMetrics").field("depth", &self.depth.get()).finish_non_exhaustive()
    }
}

impl OutboxMetrics {
    /// Gauges over `store`'s outbox, ages by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            depth: Gauge::default(),
            oldest_age: Gauge::default(),
            read_at: tokio::sync::Mutex::new(None),
        }
    }

    /// Adds the gauges to the server's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_outbox_depth",
            "Outbox messages waiting for delivery (neither sent nor given up)",
            self.depth.clone(),
        );
        registry.register(
            "auth_outbox_oldest_age_seconds",
            "Age of the oldest outbox message waiting for delivery; 0 when none waits",
            self.oldest_age.clone(),
        );
    }
}

#[async_trait]
impl auth_http::ScrapeHook for OutboxMetrics {
    async fn before_scrape(&self) {
        let mut read_at = self.read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < OUTBOX_STATS_TTL) {
            return;
        }
        match self.store.outbox_stats().await {
            Ok(stats) => {
                self.depth.set(i64::try_from(stats.pending).unwrap_or(i64::MAX));
                let age = stats.oldest.map_or(0.0, |oldest| {
                    self.clock.now().duration_since(oldest).as_secs_f64().max(0.0)
                });
                self.oldest_age.set(age);
            }
            // The last values stay: a scrape must not fail because the store hiccupped, and the
            // readiness check is what reports a store that is down.
            Err(e) => tracing::warn!(error = %e, "cannot read the outbox stats for /metrics"),
        }
        *read_at = Some(Instant::now());
    }
}

/// What the server puts into the registry besides the transport's families.
pub struct Families<'a> {
    /// Logins and throttles.
    pub logins: &'a LoginMetrics,
    /// The hashing pool's queue.
    pub hashing: &'a HashingMetrics,
    /// The SMS gateways' sends.
    pub sms: &'a SmsMetrics,
    /// The outbox gauges.
    pub outbox: &'a OutboxMetrics,
}

/// The server's registry: the build, then every family of `families`; auth-http adds its own.
pub fn registry(families: &Families<'_>) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "auth_build",
        "The running build: version and commit",
        Info::new([("version", env!("CARGO_PKG_VERSION")), ("commit", COMMIT)]),
    );
    // The runtime this registry is made on (the server's): how many workers it was given.
    let workers = Gauge::<i64>::default();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        workers.set(i64::try_from(rt.metrics().num_workers()).unwrap_or(i64::MAX));
    }
    registry.register(
        "auth_runtime_workers",
        "Worker threads of the async runtime that serves requests (runtime.workers)",
        workers,
    );
    families.logins.register(&mut registry);
    families.hashing.register(&mut registry);
    families.sms.register(&mut registry);
    families.outbox.register(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use auth_core::ports::{NewOutboxMessage, OutboxStore as _};
    use auth_core::testkit::{FakeClock, MemStore};
    use auth_core::{PortalId, SignedDuration, Timestamp};
    use auth_http::ScrapeHook as _;

    use super::*;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry).unwrap();
        out
    }

    fn has(out: &str, lines: &[&str]) {
        for line in lines {
            assert!(out.lines().any(|l| l == *line), "{line} missing from\n{out}");
        }
    }

    #[test]
    fn logins_and_throttles_are_counted_by_their_labels() {
        let m = LoginMetrics::default();
        m.login(Factor::Password, LoginResult::Ok);
        m.login(Factor::Password, LoginResult::Ok);
        m.login(Factor::Totp, LoginResult::Invalid);
        m.throttled(ThrottleRule::Login);
        let mut registry = Registry::default();
        m.register(&mut registry);
        has(
            &text(&registry),
            &[
                "# TYPE auth_logins_total counter",
                "auth_logins_total{factor=\"password\",result=\"ok\"} 2",
                "auth_logins_total{factor=\"totp\",result=\"invalid\"} 1",
                "# TYPE auth_throttle_engagements_total counter",
                "auth_throttle_engagements_total{rule=\"login\"} 1",
            ],
        );
    }

    #[tokio::test]
    async fn the_outbox_gauges_are_read_at_scrape_time_at_most_once_a_second() {
        let store = Arc::new(MemStore::new());
        let start = Timestamp::constant(1_768_031_184, 0);
        let clock = Arc::new(FakeClock::new(start));
        let m = OutboxMetrics::new(store.clone(), clock.clone());
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.before_scrape().await;
        has(&text(&registry), &["auth_outbox_depth 0", "auth_outbox_oldest_age_seconds 0.0"]);

        let msg = NewOutboxMessage {
            portal: PortalId::from_random_bytes([7; 16]),
            to: "79123456789".into(),
            sealed_text: vec![1],
            created_at: start,
        };
        store.enqueue_sms(&msg).await.unwrap();
        store.enqueue_sms(&msg).await.unwrap();
        clock.advance(SignedDuration::from_secs(90));
        m.before_scrape().await;
        has(&text(&registry), &["auth_outbox_depth 0"]);
        // The cache lasts a second of real time: a scrape storm reads the store once a second.
        *m.read_at.lock().await = Some(Instant::now() - OUTBOX_STATS_TTL);
        m.before_scrape().await;
        has(&text(&registry), &["auth_outbox_depth 2", "auth_outbox_oldest_age_seconds 90.0"]);
    }

    #[test]
    fn the_build_is_described() {
        let logins = LoginMetrics::default();
        let hashing = HashingMetrics::default();
        let sms = SmsMetrics::new(&[]);
        let outbox = OutboxMetrics::new(
            Arc::new(MemStore::new()),
            Arc::new(FakeClock::new(Timestamp::UNIX_EPOCH)),
        );
        let r =
            registry(&Families { logins: &logins, hashing: &hashing, sms: &sms, outbox: &outbox });
        let version = env!("CARGO_PKG_VERSION");
        has(
            &text(&r),
            &[&format!("auth_build_info{{version=\"{version}\",commit=\"{COMMIT}\"}} 1")],
        );
    }
}

//! The transport's metrics and the `GET /metrics` exposition, on the prometheus-client crate.
//!
//! The transport counts every request by route and exact status (`auth_http_requests_total`) and
//! times it by route and status class (`auth_http_request_seconds`, a histogram). A route is a name
//! from the endpoint table (`auth_wire::api`), a front-door route (`door::Route`) or `not_found`:
//! never the raw path, so the label sets are bounded by the tables however clients spell their URLs.
//!
//! The families live in a prometheus-client [`Registry`] that the embedding program may build and
//! fill with families of its own before handing it to the router (`Router::with_registry`); the
//! server adds the hashing pool, the outbox, the SMS gateways, the logins and its build. Values that
//! must be read at scrape time from somewhere slow (the outbox depth from the store) come in through
//! a [`ScrapeHook`], awaited before the registry is encoded.
//!
//! Recording is on every request's path, so it takes no lock of the registry: each (route, status)
//! cell holds its own handle, made once on first use, and an observation is one atomic increment and
//! one short histogram lock. This module does not decide who may read `/metrics`; the server does, by
//! moving it to its own listener (`metrics_listen`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use auth_wire::Endpoint;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::door::Route;

/// Something to bring up to date just before `/metrics` is encoded, such as gauges read from the store.
///
/// It runs on the scraping request's task. It MUST bound its own cost (a scrape storm must not load
/// the database: cache for a second or so) and MUST NOT fail the scrape: on an error it keeps the
/// last values and logs.
#[async_trait]
pub trait ScrapeHook: Send + Sync {
    /// Refreshes the values this hook's families show.
    async fn before_scrape(&self);
}

/// The route label of paths that name no endpoint.
const NOT_FOUND: &str = "not_found";

/// What a request is counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counted {
    /// A row of the API table.
    Api(Endpoint),
    /// A front-door route.
    Door(Route),
    /// A path that names neither.
    NotFound,
}

impl Counted {
    /// The route label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Counted::Api(e) => e.name(),
            Counted::Door(r) => r.name(),
            Counted::NotFound => NOT_FOUND,
        }
    }

    /// The request's slot: one per endpoint of the table (by [`Endpoint::index`]), one per
    /// front-door route, then one for unknown paths.
    fn slot(self) -> usize {
        match self {
            Counted::Api(e) => e.index(),
            Counted::Door(r) => Endpoint::ALL.len() + r.index(),
            Counted::NotFound => SLOTS - 1,
        }
    }
}

const SLOTS: usize = Endpoint::ALL.len() + Route::ALL.len() + 1;

/// The exact statuses counted by their code; any other is counted as `other`.
const STATUSES: [(u16, &str); 13] = [
    (200, "200"),
    (302, "302"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (429, "429"),
    (503, "503"),
];

/// The `status` label of a status not in [`STATUSES`].
const OTHER: &str = "other";

/// The status classes of the latency histogram.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Latency bucket bounds, in seconds: from a token check answered in well under a millisecond to a
/// login that waited for a busy hashing pool.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The labels of both request families.
type Labels = [(&'static str, &'static str); 2];

/// Makes the latency histogram of a new label set.
#[derive(Clone, Copy, Debug)]
struct LatencyHistogram;

impl MetricConstructor<Histogram> for LatencyHistogram {
    fn new_metric(&self) -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }
}

/// The request families and a cached handle per cell.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, LatencyHistogram>,
    /// One per (slot, status or `other`).
    request_cells: Vec<OnceLock<Counter>>,
    /// One per (slot, class).
    latency_cells: Vec<OnceLock<Histogram>>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(LatencyHistogram),
            request_cells: (0..SLOTS * (STATUSES.len() + 1)).map(|_| OnceLock::new()).collect(),
            latency_cells: (0..SLOTS * CLASSES.len()).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl HttpMetrics {
    /// Adds the families to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_http_requests",
            "Requests answered, by route and status",
            self.requests.clone(),
        );
        registry.register(
            "auth_http_request_seconds",
            "Time spent answering requests, by route and status class",
            self.latency.clone(),
        );
    }

    /// Counts one answered request.
    pub(crate) fn record(&self, counted: Counted, status: u16, took: Duration) {
        let route = counted.name();
        let slot = counted.slot();
        let (s, status_label) = STATUSES
            .iter()
            .enumerate()
            .find(|(_, (code, _))| *code == status)
            .map_or((STATUSES.len(), OTHER), |(i, (_, label))| (i, *label));
        if let Some(cell) = self.request_cells.get(slot * (STATUSES.len() + 1) + s) {
            cell.get_or_init(|| {
                self.requests.get_or_create_owned(&[("route", route), ("status", status_label)])
            })
            .inc();
        }
        let class = usize::from(status / 100).saturating_sub(1).min(CLASSES.len() - 1);
        let class_label = CLASSES.get(class).copied().unwrap_or("5xx");
        if let Some(cell) = self.latency_cells.get(slot * CLASSES.len() + class) {
            cell.get_or_init(|| {
                self.latency.get_or_create_owned(&[("route", route), ("status_class", class_label)])
            })
            .observe(took.as_secs_f64());
        }
    }
}

/// The exposition formats `/metrics` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The Prometheus text format 0.0.4, which every scraper reads.
    Prometheus,
    /// OpenMetrics 1.0 text, for a scraper that asks for it.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else the Prometheus text format.
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.to_ascii_lowercase().contains("application/openmetrics-text") => {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of the answer.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Encodes `registry` after running every hook.
pub(crate) async fn scrape(
    registry: &Registry,
    hooks: &[Arc<dyn ScrapeHook>],
    format: Format,
) -> Result<String, std::fmt::Error> {
    for hook in hooks {
        hook.before_scrape().await;
    }
    let mut out = String::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(m: &HttpMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn requests_are_counted_by_route_and_status_and_timed_by_class() {
        let m = HttpMetrics::default();
        let login = Counted::Api(Endpoint::Authenticate);
        m.record(login, 200, Duration::from_millis(30));
        m.record(login, 200, Duration::from_millis(70));
        m.record(login, 401, Duration::from_millis(40));
        m.record(Counted::NotFound, 404, Duration::from_micros(100));
        m.record(Counted::Door(Route::ALL[0]), 418, Duration::from_secs(20));
        let out = rendered(&m);
        for line in [
            "auth_http_requests_total{route=\"authentication\",status=\"200\"} 2",
            "auth_http_requests_total{route=\"authentication\",status=\"401\"} 1",
            "auth_http_requests_total{route=\"not_found\",status=\"404\"} 1",
            &format!(
                "auth_http_requests_total{{route=\"{}\",status=\"other\"}} 1",
                Route::ALL[0].name()
            ),
            "auth_http_request_seconds_count{route=\"authentication\",status_class=\"2xx\"} 2",
            "auth_http_request_seconds_bucket{route=\"authentication\",status_class=\"2xx\",le=\"0.05\"} 1",
            "auth_http_request_seconds_bucket{route=\"authentication\",status_class=\"2xx\",le=\"0.1\"} 2",
            "auth_http_request_seconds_count{route=\"authentication\",status_class=\"4xx\"} 1",
            // Beyond the last bound: only +Inf has it.
            &format!(
                "auth_http_request_seconds_bucket{{route=\"{}\",status_class=\"4xx\",le=\"10\"}} 0",
                Route::ALL[0].name()
            ),
            &format!(
                "auth_http_request_seconds_bucket{{route=\"{}\",status_class=\"4xx\",le=\"+Inf\"}} 1",
                Route::ALL[0].name()
            ),
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
        let sum = out
            .lines()
            .find(|l| {
                l.starts_with(
                    "auth_http_request_seconds_sum{route=\"authentication\",status_class=\"2xx\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!((sum - 0.1).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn every_route_name_is_a_table_name() {
        let m = HttpMetrics::default();
        for e in Endpoint::ALL {
            m.record(Counted::Api(*e), 200, Duration::ZERO);
        }
        for r in Route::ALL {
            m.record(Counted::Door(*r), 200, Duration::ZERO);
        }
        let out = rendered(&m);
        let series = out.lines().filter(|l| l.starts_with("auth_http_requests_total{")).count();
        assert_eq!(series, Endpoint::ALL.len() + Route::ALL.len(), "{out}");
    }

    #[test]
    fn openmetrics_is_served_only_to_who_asks() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    }
}

//! Request counters and latency sums in the Prometheus text format, for `GET /metrics`, one series per
//! endpoint of the table (named by `auth_wire::api`), one per front-door route (`door::Route`) and one
//! for unknown paths.
//!
//! Counting is a lock-free increment per request; rendering walks a small fixed table, so the metrics
//! cost nothing measurable beside the requests they count.
//!
//! Other parts of the server add their own families through [`MetricsSource`] (the SMS gateways count
//! their sends by gateway and outcome), so `/metrics` stays the one place an operator scrapes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth_wire::Endpoint;

use crate::door::Route;

/// More metric families for `GET /metrics`, kept outside the transport (such as the SMS gateways'
/// send counters). Rendering must be cheap and must not block: it runs on the request's task.
pub trait MetricsSource: Send + Sync {
    /// Appends complete families in the Prometheus text format (`# HELP`, `# TYPE`, then samples)
    /// to `out`.
    fn render(&self, out: &mut String);
}

/// The route label of the last slot, for paths that name no endpoint.
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

/// One slot per endpoint of the table (by [`Endpoint::index`]), one per front-door route, then one
/// for unknown paths.
const SLOTS: usize = Endpoint::ALL.len() + Route::ALL.len() + 1;

fn slot(counted: Counted) -> usize {
    match counted {
        Counted::Api(e) => e.index(),
        Counted::Door(r) => Endpoint::ALL.len() + r.index(),
        Counted::NotFound => SLOTS - 1,
    }
}

fn label(slot: usize) -> &'static str {
    match Endpoint::ALL.get(slot) {
        Some(e) => e.name(),
        None => {
            Route::ALL.get(slot.saturating_sub(Endpoint::ALL.len())).map_or(NOT_FOUND, |r| r.name())
        }
    }
}

/// Status classes counted separately; the exact codes that matter for operators.
const STATUSES: [u16; 12] = [200, 400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 503];

/// Counters per (route, status).
#[derive(Debug)]
pub(crate) struct Metrics {
    counts: Vec<AtomicU64>,
    other: Vec<AtomicU64>,
    micros: Vec<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let n = SLOTS;
        Self {
            counts: (0..n * STATUSES.len()).map(|_| AtomicU64::new(0)).collect(),
            other: (0..n).map(|_| AtomicU64::new(0)).collect(),
            micros: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Metrics {
    pub(crate) fn record(&self, counted: Counted, status: u16, took: Duration) {
        let r = slot(counted);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(m) = self.micros.get(r) {
            m.fetch_add(micros, Ordering::Relaxed);
        }
        let cell = match STATUSES.iter().position(|s| *s == status) {
            Some(s) => self.counts.get(r * STATUSES.len() + s),
            None => self.other.get(r),
        };
        if let Some(c) = cell {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP auth_http_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE auth_http_requests_total counter\n");
        for r in 0..SLOTS {
            let route = label(r);
            for (s, status) in STATUSES.iter().enumerate() {
                let n = self
                    .counts
                    .get(r * STATUSES.len() + s)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "auth_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
            let n = self.other.get(r).map_or(0, |c| c.load(Ordering::Relaxed));
            if n > 0 {
                let _ = writeln!(
                    out,
                    "auth_http_requests_total{{route=\"{route}\",status=\"other\"}} {n}"
                );
            }
        }
        out.push_str("# HELP auth_http_request_seconds_sum Time spent answering, by route.\n");
        out.push_str("# TYPE auth_http_request_seconds_sum counter\n");
        for r in 0..SLOTS {
            let route = label(r);
            let us = self.micros.get(r).map_or(0, |c| c.load(Ordering::Relaxed));
            if us > 0 {
                let _ = writeln!(
                    out,
                    "auth_http_request_seconds_sum{{route=\"{route}\"}} {:.6}",
                    us as f64 / 1e6
                );
            }
        }
        out
    }
}

//! The hyper 1.x transport of the authentication service: routing, negotiation, limits, status mapping.
//!
//! This is the only crate that decides HTTP statuses and headers. It turns bytes into `auth-wire`
//! parameters, parameters into `auth-core` calls, and `auth-core` answers (or errors) back into
//! `auth-wire` envelopes. [`Router`] is a plain hyper service, so another program can mount it (insert a
//! [`PeerAddr`] extension so client IPs are known); [`serve`] runs it on a listener with a connection
//! limit, header and body timeouts, and graceful shutdown. [`client`] is a small typed client.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod api;
pub mod client;
mod door;
mod metrics;
mod respond;
mod serve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::AuthService;
use ipnet::IpNet;

pub use api::{OverTls, PeerAddr};
pub use metrics::ScrapeHook;
/// The metrics registry [`Router::with_registry`] takes, re-exported so embedders name one version.
pub use prometheus_client::registry::Registry;
pub use respond::Body;
pub use serve::{serve, serve_with};
/// The TLS acceptor [`serve_with`] takes, re-exported so the server names one version of it.
pub use tokio_rustls::TlsAcceptor;
/// The rustls the acceptor is built from.
pub use tokio_rustls::rustls;

/// Transport limits and proxy trust.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest accepted request body (413 beyond).
    pub body_limit: usize,
    /// A connection must send complete request headers within this time (also the keep-alive idle
    /// limit: waiting for the next request's headers counts), or it is closed.
    pub header_timeout: Duration,
    /// A request body must arrive completely within this time (408 beyond).
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections served at once from one client address (an IPv6 client by its /64); one more is
    /// closed at once. Trusted proxies are exempt, since every client behind them shares their address.
    pub max_connections_per_ip: usize,
    /// A response write that makes no progress for this long ends the connection (a client that
    /// stops reading must not hold a connection for ever).
    pub write_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Credential requests (the four endpoints that verify a password) in progress at once; beyond
    /// this the answer is 503 `busy` at once, before any store work. The server sets it to the
    /// hashing pool's workers + queue, so excess logins never reach the store or the pool.
    pub max_credential_requests: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            max_credential_requests: 1024,
        }
    }
}

/// Which requests a router answers: the server may move `/metrics` to a listener of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exposure {
    /// Every route, `/metrics` included.
    Everything,
    /// Every route but `/metrics`, which is not found here.
    WithoutMetrics,
    /// Only `/metrics`, `/healthz` and `/readyz`; everything else is not found.
    MetricsOnly,
}

/// The HTTP face of an [`AuthService`]. Cheap to clone: one reference count, taken per request.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

/// What every clone of a [`Router`] shares. One `Arc` around it all, because the router is cloned
/// for every request and each reference count is an atomic the two cores fight over.
#[derive(Clone)]
struct Shared {
    service: Arc<AuthService>,
    config: Arc<HttpConfig>,
    metrics: Arc<metrics::HttpMetrics>,
    registry: Arc<Registry>,
    scrape_hooks: Arc<Vec<Arc<dyn ScrapeHook>>>,
    exposure: Exposure,
    credential_slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl Router {
    /// A router over the service.
    pub fn new(service: Arc<AuthService>, config: HttpConfig) -> Self {
        let credential_slots =
            Arc::new(tokio::sync::Semaphore::new(config.max_credential_requests.max(1)));
        let metrics = Arc::new(metrics::HttpMetrics::default());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let shared = Shared {
            service,
            config: Arc::new(config),
            metrics,
            registry: Arc::new(registry),
            scrape_hooks: Arc::default(),
            exposure: Exposure::Everything,
            credential_slots,
        };
        Self { shared: Arc::new(shared) }
    }

    /// The shared state, to change while building (copied first if another clone holds it).
    fn building(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// The same router, serving `registry` at `GET /metrics` with the transport's own families
    /// (requests and their latency, by route) added to it. Build the registry with the program's
    /// families first: it cannot change once the router holds it.
    pub fn with_registry(mut self, mut registry: Registry) -> Self {
        self.shared.metrics.register(&mut registry);
        self.building().registry = Arc::new(registry);
        self
    }

    /// The same router, awaiting `hook` before every `GET /metrics` is encoded.
    pub fn with_scrape_hook(mut self, hook: Arc<dyn ScrapeHook>) -> Self {
        let mut hooks: Vec<Arc<dyn ScrapeHook>> = self.shared.scrape_hooks.as_ref().clone();
        hooks.push(hook);
        self.building().scrape_hooks = Arc::new(hooks);
        self
    }

    /// The same router without `GET /metrics` (it answers 404 as an unknown path), for a server
    /// that serves the metrics on a listener of their own ([`Router::metrics_only`]).
    pub fn without_metrics(mut self) -> Self {
        self.building().exposure = Exposure::WithoutMetrics;
        self
    }

    /// A router over the same service and metrics that answers only `GET /metrics`, `/healthz` and
    /// `/readyz` (404 for everything else), for a listener of its own (spec §13 `metrics_listen`).
    pub fn metrics_only(&self) -> Self {
        let shared = Shared { exposure: Exposure::MetricsOnly, ..Shared::clone(&self.shared) };
        Self { shared: Arc::new(shared) }
    }

    /// The service behind the router.
    pub fn service(&self) -> &Arc<AuthService> {
        &self.shared.service
    }

    /// The transport configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.shared.config
    }
}

impl<B> hyper::service::Service<hyper::Request<B>> for Router
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = hyper::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn call(&self, req: hyper::Request<B>) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { Ok(me.handle(req).await) })
    }
}

/// Where a request comes from, as far as the transport can tell (spec §5.1 "Client IP").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp {
    /// The address limits are counted by: the client, or the proxy itself when the client is unknown.
    pub ip: IpAddr,
    /// False when a trusted proxy forwarded an entry that cannot be parsed: then nobody knows the
    /// client, and the address must never be matched against a portal's `trusted_ips`.
    pub known: bool,
}

/// The client IP: the socket peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` address that is not itself a trusted proxy, reading every header line in order
/// as one list (a client's own line must not hide the line its proxy appended).
///
/// An entry that cannot be parsed (or a line that is not ASCII) makes the client unknown: counted as
/// the proxy's own address. IPv4-mapped IPv6 addresses are their IPv4 address everywhere.
pub fn client_ip<'h>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'h [u8]>,
    trusted: &[IpNet],
) -> ClientIp {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let known_peer = ClientIp { ip: peer, known: true };
    if !is_trusted(&peer) {
        return known_peer;
    }
    let unknown = ClientIp { ip: peer, known: false };
    let mut entries = Vec::new();
    for line in forwarded_for {
        let Ok(text) = std::str::from_utf8(line) else { return unknown };
        if !text.is_ascii() {
            return unknown;
        }
        entries.extend(text.split(',').map(str::trim));
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry.parse::<IpAddr>() {
            Ok(ip) => parsed.push(ip.to_canonical()),
            // A garbled hop anywhere: the list cannot be trusted to say who the client is.
            Err(_) => return unknown,
        }
    }
    parsed
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .map_or(known_peer, |ip| ClientIp { ip, known: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(peer: &str, lines: &[&str], want: &str, known: bool) {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let got = client_ip(peer.parse().unwrap(), lines.iter().map(|l| l.as_bytes()), &trusted);
        assert_eq!(got, ClientIp { ip: want.parse().unwrap(), known }, "{peer} {lines:?}");
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        check("203.0.113.9", &["1.2.3.4"], "203.0.113.9", true);
        check("10.0.0.1", &["1.2.3.4, 198.51.100.7, 10.0.0.2"], "198.51.100.7", true);
        check("10.0.0.1", &[], "10.0.0.1", true);
        check("10.0.0.1", &["10.0.0.3"], "10.0.0.1", true);
        // Every line is read, in order, as one list: the proxy's line comes last.
        check("10.0.0.1", &["192.0.2.1", "198.51.100.7"], "198.51.100.7", true);
        check("10.0.0.1", &["198.51.100.7", "10.0.0.9"], "198.51.100.7", true);
        // Anything unparsable, anywhere, makes the client unknown, counted as the proxy.
        check("10.0.0.1", &["garbage"], "10.0.0.1", false);
        check("10.0.0.1", &["1.2.3.4, garbage"], "10.0.0.1", false);
        check("10.0.0.1", &["garbage", "1.2.3.4"], "10.0.0.1", false);
        check("10.0.0.1", &["1.2.3.4,"], "10.0.0.1", false);
        check("10.0.0.1", &["1.2.3.4 \u{e9}"], "10.0.0.1", false);
        // IPv4-mapped addresses are IPv4, for the peer and the entries alike.
        check("::ffff:10.0.0.1", &["::ffff:198.51.100.7"], "198.51.100.7", true);
        check("::ffff:203.0.113.9", &[], "203.0.113.9", true);
        check("::1", &["2001:db8::1"], "2001:db8::1", true);
    }
}

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
mod metrics;
mod respond;
mod serve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::AuthService;
use ipnet::IpNet;

pub use api::PeerAddr;
pub use respond::Body;
pub use serve::serve;

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
            shutdown_grace: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            max_credential_requests: 1024,
        }
    }
}

/// The HTTP face of an [`AuthService`].
#[derive(Clone)]
pub struct Router {
    service: Arc<AuthService>,
    config: Arc<HttpConfig>,
    metrics: Arc<metrics::Metrics>,
    credential_slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Router {
    /// A router over the service.
    pub fn new(service: Arc<AuthService>, config: HttpConfig) -> Self {
        let credential_slots =
            Arc::new(tokio::sync::Semaphore::new(config.max_credential_requests.max(1)));
        Self { service, config: Arc::new(config), metrics: Arc::default(), credential_slots }
    }

    /// The service behind the router.
    pub fn service(&self) -> &Arc<AuthService> {
        &self.service
    }

    /// The transport configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
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

/// The client IP: the socket peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` address that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(xff) = forwarded_for else { return peer };
    for part in xff.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // A garbled hop: trust nothing beyond it.
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("1.2.3.4, 198.51.100.7, 10.0.0.2"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(ip("10.0.0.1"), Some("garbage"), &trusted), ip("10.0.0.1"));
    }
}

//! Outbound HTTPS: the one way the server calls other services (the social providers of spec §5.4,
//! and any gateway that needs TLS).
//!
//! What every call made through it gets, so that no caller has to remember:
//! - TLS by rustls on ring, trusting the operating system's root certificates (`rustls-native-certs`)
//!   and, per client, the certificates of an optional extra CA file (a private identity provider). There
//!   is no switch that skips certificate verification: a certificate error fails the call.
//! - `https://` URLs only, except `http://` to a loopback IP literal (`127.0.0.0/8`, `[::1]`), which a
//!   local relay and the tests use. The rule is checked on every request, so a URL learnt at run time
//!   (from a discovery document) is held to it just like a configured one. Redirects are never followed.
//! - A connect timeout, and one deadline over the whole call including the answer's body, which is read
//!   up to a size cap.
//! - At most `max_in_flight` calls at once over every client made from one [`Outbound`]. A call beyond
//!   that fails at once with [`OutboundError::Busy`] instead of queueing, so a flood of logins cannot
//!   pile up sockets and memory behind a slow provider.
//!
//! URLs, headers and bodies may carry secrets (tokens, client secrets, keys in a query string), so an
//! error names only the scheme, host and port of its target, and nothing here logs a request.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::sync::Semaphore;

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;

/// The `User-Agent` sent when a request sets none (some APIs, GitHub's among them, refuse requests
/// without one).
pub const USER_AGENT: &str = concat!("auth-server/", env!("CARGO_PKG_VERSION"));

/// The default cap on an answer's body: discovery documents and key sets are a few kilobytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The source of outbound clients: the shared limit on calls in flight, and the system's roots,
/// loaded once when the first client is made.
#[derive(Clone)]
pub struct Outbound {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    system_roots: Arc<OnceLock<Arc<Vec<CertificateDer<'static>>>>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("max_in_flight", &self.max_in_flight)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// How one client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// PEM certificates trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Deadline of one call: connecting, sending and reading the whole answer.
    pub timeout: Duration,
    /// Largest answer body accepted.
    pub max_body_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            timeout: Duration::from_secs(5),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why a client could not be made (at start-up).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The CA file could not be read.
    #[error("cannot read the CA file {}: {source}", path.display())]
    CaFileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the CA file {} holds no usable PEM certificate{}", path.display(), reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    CaFileInvalid {
        /// The file.
        path: PathBuf,
        /// What was wrong, when known.
        reason: Option<String>,
    },
    /// There is nothing to trust: the system store is empty and no CA file was given.
    #[error(
        "no trusted root certificates: the system's certificate store is empty or unreadable and no ca_file is set"
    )]
    NoRoots,
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Why an outbound call failed. Every variant means "the other side could not be asked"; what an
/// answer means is the caller's business.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The limit on calls in flight is reached; the call was not made.
    #[error("too many outbound calls in flight")]
    Busy,
    /// The URL is neither `https://` nor `http://` to a loopback address (or has no host).
    #[error("{0}: only https:// (or http:// to a loopback address) may be called")]
    UrlNotAllowed(String),
    /// No complete answer within the deadline.
    #[error("{target}: no answer within {timeout:?}")]
    Timeout {
        /// Scheme, host and port of the target.
        target: String,
        /// The deadline.
        timeout: Duration,
    },
    /// Connecting, TLS (certificates included), sending or reading failed.
    #[error("{target}: {reason}")]
    Network {
        /// Scheme, host and port of the target.
        target: String,
        /// What failed, from the error chain (never the URL's path or query).
        reason: String,
    },
    /// The answer's body is larger than the cap.
    #[error("{target}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// Scheme, host and port of the target.
        target: String,
        /// The cap.
        limit: usize,
    },
}

/// An answer, read whole.
#[derive(Clone, Debug)]
pub struct OutboundResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A client with one trust configuration and deadline; cheap to clone, and its clones share a
/// connection pool.
#[derive(Clone)]
pub struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    max_body_bytes: usize,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// A source whose clients together run at most `max_in_flight` calls at once (at least one).
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            system_roots: Arc::new(OnceLock::new()),
        }
    }

    /// How many calls are running now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight.saturating_sub(self.permits.available_permits())
    }

    /// The TLS client configuration every outbound connection uses: rustls on ring, trusting the
    /// system's roots and the certificates of `ca_file`. The LDAP client (`crate::ldap`) takes it too,
    /// so a directory is held to the same rules as an HTTPS provider.
    pub fn tls_config(&self, ca_file: Option<&Path>) -> Result<rustls::ClientConfig, SetupError> {
        let mut roots = RootCertStore::empty();
        for cert in self.trust_roots(ca_file)? {
            // `trust_roots` keeps only certificates rustls can use, so this cannot fail.
            let _ = roots.add(cert);
        }
        // The provider is named rather than taken from the process default, so a second rustls
        // user in the process (with another provider) can never change what this client trusts.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// The certificates [`Outbound::tls_config`] trusts, for a TLS client that cannot take a rustls
    /// configuration whole (the SMTP client, `crate::email`): the system's roots that rustls can use,
    /// then every certificate of `ca_file`.
    pub fn trust_roots(
        &self,
        ca_file: Option<&Path>,
    ) -> Result<Vec<CertificateDer<'static>>, SetupError> {
        let usable = |cert: &CertificateDer<'static>| {
            RootCertStore::empty().add(cert.clone()).map_err(|e| e.to_string())
        };
        let mut roots = Vec::new();
        let mut ignored = 0_usize;
        for cert in self.system_roots().iter() {
            match usable(cert) {
                Ok(()) => roots.push(cert.clone()),
                Err(_) => ignored += 1,
            }
        }
        if ignored > 0 {
            tracing::debug!(ignored, "system root certificates rustls cannot use were skipped");
        }
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                usable(&cert).map_err(|reason| SetupError::CaFileInvalid {
                    path: path.to_owned(),
                    reason: Some(reason),
                })?;
                roots.push(cert);
            }
        }
        if roots.is_empty() {
            return Err(SetupError::NoRoots);
        }
        Ok(roots)
    }

    /// A client trusting the system's roots and `options.ca_file`.
    pub fn client(&self, options: &ClientOptions) -> Result<HttpsClient, SetupError> {
        let tls = self.tls_config(options.ca_file.as_deref())?;

        let mut http = HttpConnector::new();
        // The TLS layer above decides the scheme; `send` has already checked it.
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.timeout));
        http.set_nodelay(true);
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(https);
        Ok(HttpsClient {
            client,
            permits: Arc::clone(&self.permits),
            timeout: options.timeout,
            max_body_bytes: options.max_body_bytes,
        })
    }

    fn system_roots(&self) -> Arc<Vec<CertificateDer<'static>>> {
        Arc::clone(self.system_roots.get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "cannot read part of the system's certificate store");
            }
            if found.certs.is_empty() {
                tracing::warn!("the system's certificate store has no certificates");
            }
            Arc::new(found.certs)
        }))
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let bytes = std::fs::read(path)
        .map_err(|source| SetupError::CaFileUnreadable { path: path.to_owned(), source })?;
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| {
            SetupError::CaFileInvalid { path: path.to_owned(), reason: Some(e.to_string()) }
        })?;
    if certs.is_empty() {
        return Err(SetupError::CaFileInvalid { path: path.to_owned(), reason: None });
    }
    Ok(certs)
}

impl HttpsClient {
    /// Sends `request` and reads the whole answer, within the deadline and the limit on calls in flight.
    /// Any status is an answer; only failing to get one is an error.
    pub async fn send(&self, request: Request<Bytes>) -> Result<OutboundResponse, OutboundError> {
        let target = target(request.uri());
        if !url_allowed(request.uri()) {
            return Err(OutboundError::UrlNotAllowed(target));
        }
        let _permit =
            Arc::clone(&self.permits).try_acquire_owned().map_err(|_| OutboundError::Busy)?;
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(http::header::USER_AGENT) {
            parts.headers.insert(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        let request = Request::from_parts(parts, Full::new(body));
        let call = async {
            let response = self.client.request(request).await.map_err(|e| {
                OutboundError::Network { target: target.clone(), reason: chain(&e) }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body_bytes).collect().await.map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    OutboundError::TooLarge { target: target.clone(), limit: self.max_body_bytes }
                } else {
                    OutboundError::Network { target: target.clone(), reason: chain(e.as_ref()) }
                }
            })?;
            Ok(OutboundResponse {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(OutboundError::Timeout { target, timeout: self.timeout }),
        }
    }
}

/// Whether `uri` may be called: `https://` with a host, or `http://` to a loopback IP literal.
pub fn url_allowed(uri: &Uri) -> bool {
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else { return false };
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => is_loopback_literal(host),
        _ => false,
    }
}

/// Whether a URL's host is a loopback IP literal (`127.0.0.1`, `[::1]`); names are not resolved,
/// because a name could resolve elsewhere.
fn is_loopback_literal(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What errors may show of a URL: scheme, host and port (no user info, path or query, which can
/// hold keys).
pub fn target(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("?");
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// An error and its sources, joined: hyper's own message ("client error (Connect)") says little,
/// the cause ("invalid peer certificate: UnknownIssuer") says what went wrong.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

//! Running the router on a TCP listener, in plain HTTP/1.1 or over TLS (HTTP/1.1 and h2 by ALPN): a
//! connection limit in all and per client address, the header-read and write timeouts, and graceful
//! shutdown that lets in-flight requests finish.
//!
//! The certificate is not chosen here: the caller's `rustls::ServerConfig` (behind the acceptor) has a
//! resolver, so the server can swap certificates without this loop knowing.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::Router;
use crate::api::{OverTls, PeerAddr};

/// Serves `router` on `listener` in plain HTTP/1.1 until `shutdown` completes, then waits (up to the
/// configured grace) for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with(listener, router, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given (spec §10): every connection shakes hands within the header
/// timeout, then speaks h2 when ALPN chose it, else HTTP/1.1; requests carry [`OverTls`].
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(router.shared.config.max_connections.max(1)));
    let per_ip = Arc::new(PerIp::new(router.shared.config.max_connections_per_ip.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Waiting for a permit before accepting leaves excess connections in the kernel's queue.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of file descriptors and similar: log, back off a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let trusted_proxy =
            router.shared.config.trusted_proxies.iter().any(|n| n.contains(&peer.ip()));
        let slot = if trusted_proxy { None } else { per_ip.take(peer.ip()) };
        if !trusted_proxy && slot.is_none() {
            // Dropping the stream closes it: one address cannot hold every connection of the server.
            tracing::debug!(peer = %peer.ip(), "connection refused: per-address limit");
            continue;
        }
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        // The handshake runs in the connection's own task, so a slow client cannot stall the loop.
        tokio::spawn(async move {
            connection(stream, peer, router, tls, watcher).await;
            drop(permit);
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(router.shared.config.shutdown_grace) => {
            tracing::warn!("shutdown grace elapsed with connections still open");
        }
    }
    Ok(())
}

/// Serves one accepted connection to its end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
    stream.set_write_timeout(Some(router.shared.config.write_timeout));
    let stream = Box::pin(stream);
    let header_timeout = router.shared.config.header_timeout;
    let svc_router = router.clone();
    let over_tls = tls.is_some();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        if over_tls {
            req.extensions_mut().insert(OverTls);
        }
        let router = svc_router.clone();
        async move { Ok::<_, std::convert::Infallible>(router.handle(req).await) }
    });
    let Some(acceptor) = tls else {
        let conn = http1_builder(header_timeout).serve_connection(TokioIo::new(stream), svc);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        return;
    };
    // The handshake counts against the header timeout: a client that never finishes it is closed
    // like one that never sends its headers.
    let tls_stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.ip(), error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %peer.ip(), "TLS handshake timed out");
            return;
        }
    };
    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls_stream);
    let ended = if h2 {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new()).max_concurrent_streams(64);
        watcher.watch(builder.serve_connection(io, svc)).await
    } else {
        watcher.watch(http1_builder(header_timeout).serve_connection(io, svc)).await
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

fn http1_builder(header_timeout: std::time::Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    builder
}

/// Connections per client address, an IPv6 client counted by its /64 (one host can hold a whole /64).
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the place back.
struct IpSlot {
    owner: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    fn new(max: usize) -> Self {
        Self { max, open: Mutex::new(HashMap::new()) }
    }

    /// The address a connection is counted under.
    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = Self::key(ip);
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot { owner: self.clone(), key })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_address_and_ipv6_by_its_64() {
        let per_ip = Arc::new(PerIp::new(2));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = per_ip.take(ip("2001:db8::1")).unwrap();
        let _b = per_ip.take(ip("2001:db8::ffff:2")).unwrap();
        assert!(per_ip.take(ip("2001:db8::3")).is_none(), "one /64 shares the limit");
        assert!(per_ip.take(ip("2001:db8:0:1::1")).is_some(), "another /64 has its own");
        drop(a);
        assert!(
            per_ip.take(ip("2001:db8::3")).is_some(),
            "a closed connection gives its place back"
        );
        let _c = per_ip.take(ip("192.0.2.1")).unwrap();
        let _d = per_ip.take(ip("::ffff:192.0.2.1")).unwrap();
        assert!(per_ip.take(ip("192.0.2.1")).is_none(), "IPv4-mapped is the IPv4 address");
    }
}

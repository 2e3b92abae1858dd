//! The load generator: HTTP/1.1 keep-alive connections driven from one thread, with latency histograms.
//!
//! Everything runs on a current-thread tokio runtime inside a `LocalSet` (see [`block_on`]): the
//! benchmark shares two cores with the server, so the generator takes at most one of them and never
//! competes with itself. Each connection is a `hyper::client::conn::http1` handshake over its own
//! `TcpStream` (no pool, no Nagle), so "N connections" means exactly N sockets.
//!
//! Two drivers:
//! - [`closed_loop`]: N connections, each sending its next request as soon as the previous answer is in;
//!   measures throughput (the server's capacity, or the generator's when it is the bottleneck).
//! - [`open_loop`]: requests at a fixed rate on as many connections as needed (up to a cap); latency is
//!   measured from the *intended* send time, so a stalled server cannot hide its stall by slowing the
//!   generator down (no coordinated omission).
//!
//! A [`Workload`] turns one operation (one request, or step 1 + step 2 of a 2FA login) into an
//! [`Outcome`]; the [`Recorder`] keeps what happened inside the measured window only (after warm-up).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Runs `fut` on a fresh current-thread runtime with a `LocalSet`, so tasks may hold `Rc`s.
pub(crate) fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&rt, fut))
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// Where the generator connects: plain HTTP, or HTTPS with a client that trusts the bench's CA.
#[derive(Clone)]
pub(crate) enum Target {
    /// `http://addr`.
    Plain(SocketAddr),
    /// `https://addr` (HTTP/1.1 by ALPN, as the plain scenarios).
    Tls(SocketAddr, tokio_rustls::TlsConnector),
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Plain(addr)
    }
}

impl Conn {
    /// Opens a connection; its I/O task runs on the local set until either side closes it.
    pub(crate) async fn open(target: &Target) -> anyhow::Result<Conn> {
        let addr = match target {
            Target::Plain(a) | Target::Tls(a, _) => *a,
        };
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let sender = match target {
            Target::Plain(_) => {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::task::spawn_local(async move {
                    // A closed or broken connection surfaces as an error on the next send.
                    let _ = conn.await;
                });
                sender
            }
            Target::Tls(_, connector) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let tls = connector.connect(name, stream).await.context("TLS handshake")?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
                tokio::task::spawn_local(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        Ok(Conn { sender })
    }

    /// Sends one request and reads the whole answer.
    pub(crate) async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let retry_after = resp.headers().contains_key(hyper::header::RETRY_AFTER);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, retry_after, body })
    }
}

/// A response: status and body.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// Whether a `Retry-After` header came with it.
    pub(crate) retry_after: bool,
    pub(crate) body: Bytes,
}

impl Reply {
    /// Whether the body contains `needle` (cheap shape checks of the envelopes).
    pub(crate) fn has(&self, needle: &str) -> bool {
        needle.is_empty() || self.body.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

/// What one operation ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The expected answer, with its status.
    Ok(u16),
    /// Another status than expected.
    Status(u16),
    /// The expected status but not the expected body.
    BadBody(u16),
    /// The connection failed; the connection is reopened.
    Io,
    /// The workload could not produce a request (no 2FA user had an unused time step left).
    Starved,
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Ok(s) | Outcome::Status(s) => s.to_string(),
            Outcome::BadBody(s) => format!("{s}_bad_body"),
            Outcome::Io => "io".to_owned(),
            Outcome::Starved => "starved".to_owned(),
        }
    }
}

/// An operation the drivers repeat: one request, or a short sequence (2FA step 1 + step 2).
pub(crate) trait Workload {
    /// Runs one operation on `conn`.
    fn run<'a>(
        &'a self,
        conn: &'a mut Conn,
    ) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + 'a>>;
}

/// Latencies (µs) and outcomes inside the measured window.
pub(crate) struct Recorder {
    from: Instant,
    until: Instant,
    all: Histogram<u64>,
    by_status: BTreeMap<u16, Histogram<u64>>,
    outcomes: BTreeMap<String, u64>,
    ok: u64,
    total: u64,
    /// Open loop only: requests not sent because every allowed connection was busy.
    pub(crate) dropped: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 120 s at 3 significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("constant, valid histogram bounds")
}

impl Recorder {
    pub(crate) fn new(from: Instant, until: Instant) -> Recorder {
        Recorder {
            from,
            until,
            all: histogram(),
            by_status: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            ok: 0,
            total: 0,
            dropped: 0,
        }
    }

    /// Records an operation that started (or was due) at `start` and ended at `end`, if it ended
    /// inside the window (so throughput is completions per second, unbiased at both ends).
    fn record(&mut self, start: Instant, end: Instant, outcome: Outcome) {
        if end < self.from || end > self.until {
            return;
        }
        let micros =
            u64::try_from(end.duration_since(start).as_micros()).unwrap_or(u64::MAX).max(1);
        self.all.saturating_record(micros);
        let status = match outcome {
            Outcome::Ok(s) | Outcome::Status(s) | Outcome::BadBody(s) => s,
            Outcome::Io | Outcome::Starved => 0,
        };
        self.by_status.entry(status).or_insert_with(histogram).saturating_record(micros);
        *self.outcomes.entry(outcome.label()).or_default() += 1;
        self.total += 1;
        if matches!(outcome, Outcome::Ok(_)) {
            self.ok += 1;
        }
    }

    fn window_secs(&self) -> f64 {
        self.until.duration_since(self.from).as_secs_f64()
    }

    /// Completed operations per second (any outcome).
    pub(crate) fn per_s(&self) -> f64 {
        self.total as f64 / self.window_secs()
    }

    /// Operations with the expected outcome per second.
    pub(crate) fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.window_secs()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn ok(&self) -> u64 {
        self.ok
    }

    /// A quantile of all latencies, in ms.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.all.is_empty() { 0.0 } else { self.all.value_at_quantile(q) as f64 / 1000.0 }
    }

    /// A quantile of the latencies of one status, in ms (`None` when that status never came back).
    pub(crate) fn status_quantile_ms(&self, status: u16, q: f64) -> Option<f64> {
        self.by_status.get(&status).map(|h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    /// How often each outcome happened: `"200"`, `"503"`, `"401_bad_body"`, `"io"`, ….
    pub(crate) fn outcomes(&self) -> &BTreeMap<String, u64> {
        &self.outcomes
    }
}

/// The measured window: `warmup` after now, lasting `duration`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// Runs `workload` on `conns` connections, back to back, for the window; returns what was measured.
pub(crate) async fn closed_loop(
    addr: impl Into<Target>,
    conns: usize,
    workload: Rc<dyn Workload>,
    window: Window,
) -> anyhow::Result<Recorder> {
    let addr: Target = addr.into();
    let start = Instant::now();
    let from = start + window.warmup;
    let until = from + window.duration;
    let rec = Rc::new(RefCell::new(Recorder::new(from, until)));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let rec = Rc::clone(&rec);
        let workload = Rc::clone(&workload);
        let addr = addr.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::open(&addr).await?;
            while Instant::now() < until {
                let t0 = Instant::now();
                let outcome = workload.run(&mut conn).await;
                rec.borrow_mut().record(t0, Instant::now(), outcome);
                match outcome {
                    Outcome::Io => conn = Conn::open(&addr).await?,
                    // Nothing to send yet: wait for the next TOTP step rather than spin.
                    Outcome::Starved => tokio::time::sleep(Duration::from_millis(200)).await,
                    _ => {}
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a load task panicked")??;
    }
    Rc::try_unwrap(rec)
        .map_err(|_| anyhow::anyhow!("load tasks still running"))
        .map(RefCell::into_inner)
}

/// Runs `workload` at `rate` operations per second for the window, opening up to `max_conns`
/// connections as needed; operations still running `grace` after the window are abandoned.
pub(crate) async fn open_loop(
    addr: impl Into<Target>,
    rate: f64,
    max_conns: usize,
    workload: Rc<dyn Workload>,
    window: Window,
) -> anyhow::Result<Recorder> {
    let addr: Target = addr.into();
    let grace = Duration::from_secs(5);
    let start = Instant::now();
    let from = start + window.warmup;
    let until = from + window.duration;
    let rec = Rc::new(RefCell::new(Recorder::new(from, until)));
    let idle: Rc<RefCell<Vec<Conn>>> = Rc::new(RefCell::new(Vec::new()));
    let open = Rc::new(Cell::new(0usize));
    let in_flight = Rc::new(Cell::new(0usize));
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut due = start;
    while due < until {
        tokio::time::sleep_until(due).await;
        let conn = idle.borrow_mut().pop();
        let conn = match conn {
            Some(c) => Some(c),
            None if open.get() < max_conns => {
                open.set(open.get() + 1);
                None
            }
            None => {
                if due >= from {
                    rec.borrow_mut().dropped += 1;
                }
                due += interval;
                continue;
            }
        };
        let (rec, idle, open, in_flight) =
            (Rc::clone(&rec), Rc::clone(&idle), Rc::clone(&open), Rc::clone(&in_flight));
        let workload = Rc::clone(&workload);
        let addr = addr.clone();
        let intended = due;
        in_flight.set(in_flight.get() + 1);
        tokio::task::spawn_local(async move {
            let conn = match conn {
                Some(c) => Ok(c),
                None => Conn::open(&addr).await,
            };
            let outcome = match conn {
                Ok(mut conn) => {
                    let outcome = workload.run(&mut conn).await;
                    if outcome == Outcome::Io {
                        open.set(open.get() - 1);
                    } else {
                        idle.borrow_mut().push(conn);
                    }
                    outcome
                }
                Err(_) => {
                    open.set(open.get() - 1);
                    Outcome::Io
                }
            };
            rec.borrow_mut().record(intended, Instant::now(), outcome);
            in_flight.set(in_flight.get() - 1);
        });
        due += interval;
    }
    let deadline = until + grace;
    while in_flight.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Abandoned operations (if any) keep their Rc; take the numbers out rather than the recorder.
    let mut rec = rec.borrow_mut();
    let taken = std::mem::replace(&mut *rec, Recorder::new(from, until));
    Ok(taken)
}

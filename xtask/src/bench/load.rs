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
//!   generator down (no coordinated omission). Every request due inside the window is counted,
//!   whenever it ends: one that cannot be sent because every connection is busy is a failure
//!   (`unsent`) whose latency runs from its due time until a connection is free again, and one still
//!   unanswered when the run ends is a failure (`timeout`) with its latency until then.
//!
//! Both drivers also sample the CPU time of the server (and of the generator and the database) at the
//! window's edges ([`super::cpu`]), so each scenario reports what a request costs the server.
//!
//! A [`Workload`] turns one operation (one request, or step 1 + step 2 of a 2FA login) into an
//! [`Outcome`]; the [`Recorder`] keeps what happened inside the measured window only (after warm-up).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
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

use super::cpu::{Meter, Spent};

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
    /// Open loop: due while every allowed connection was busy, so never sent.
    Unsent,
    /// Open loop: sent, but still unanswered when the run ended.
    Timeout,
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Ok(s) | Outcome::Status(s) => s.to_string(),
            Outcome::BadBody(s) => format!("{s}_bad_body"),
            Outcome::Io => "io".to_owned(),
            Outcome::Starved => "starved".to_owned(),
            Outcome::Unsent => "unsent".to_owned(),
            Outcome::Timeout => "timeout".to_owned(),
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
    /// Whether an operation belongs to the window by its due time (open loop) rather than by its end.
    by_due: bool,
    /// CPU spent while the window was open, when it could be measured.
    pub(crate) cpu: Option<Spent>,
    /// The windows of the recorders merged into this one, in seconds (see [`Recorder::merge`]).
    merged_secs: f64,
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
            by_due: false,
            cpu: None,
            merged_secs: 0.0,
        }
    }

    /// Records an operation that started (or was due) at `start` and ended at `end`, if it belongs to
    /// the window: in a closed loop if it ended inside it (so throughput is completions per second,
    /// unbiased at both ends), in an open loop if it was due inside it (so none is left out).
    fn record(&mut self, start: Instant, end: Instant, outcome: Outcome) {
        let at = if self.by_due { start } else { end };
        if at < self.from || at >= self.until {
            return;
        }
        let micros =
            u64::try_from(end.duration_since(start).as_micros()).unwrap_or(u64::MAX).max(1);
        self.all.saturating_record(micros);
        let status = match outcome {
            Outcome::Ok(s) | Outcome::Status(s) | Outcome::BadBody(s) => s,
            Outcome::Io | Outcome::Starved | Outcome::Unsent | Outcome::Timeout => 0,
        };
        self.by_status.entry(status).or_insert_with(histogram).saturating_record(micros);
        *self.outcomes.entry(outcome.label()).or_default() += 1;
        self.total += 1;
        if matches!(outcome, Outcome::Ok(_)) {
            self.ok += 1;
        }
    }

    /// The measured time: this recorder's window plus those merged into it.
    pub(crate) fn window_secs(&self) -> f64 {
        self.until.duration_since(self.from).as_secs_f64() + self.merged_secs
    }

    /// Adds what `other` measured (a later window of the same scenario) to this one: its
    /// operations, latencies, outcomes, CPU and measured time, so a scenario split into segments
    /// reports as one.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        self.all.add(&other.all).ok();
        for (status, h) in &other.by_status {
            self.by_status.entry(*status).or_insert_with(histogram).add(h).ok();
        }
        for (label, n) in &other.outcomes {
            *self.outcomes.entry(label.clone()).or_default() += n;
        }
        self.ok += other.ok;
        self.total += other.total;
        self.merged_secs += other.window_secs();
        self.cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => Some(a.plus(b)),
            _ => None,
        };
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

/// Adds a scenario's next segment to what `acc` holds (the first segment starts it).
pub(crate) fn fold(acc: &mut Option<Recorder>, rec: Recorder) {
    match acc {
        Some(m) => m.merge(&rec),
        None => *acc = Some(rec),
    }
}

/// The measured window: `warmup` after now, lasting `duration`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// The CPU spent by the metered processes from `from` to `until` (sampled on this thread).
fn measure_cpu(
    meter: &Meter,
    from: Instant,
    until: Instant,
) -> tokio::task::JoinHandle<Option<Spent>> {
    let meter = meter.clone();
    tokio::task::spawn_local(async move {
        if !super::cpu::available() {
            return None;
        }
        tokio::time::sleep_until(from).await;
        let a = meter.sample();
        tokio::time::sleep_until(until).await;
        Some(meter.spent(a, meter.sample()))
    })
}

/// Runs `workload` on `conns` connections, back to back, for the window; returns what was measured,
/// with the CPU `meter` spent during the window.
pub(crate) async fn closed_loop(
    addr: impl Into<Target>,
    conns: usize,
    workload: Rc<dyn Workload>,
    window: Window,
    meter: &Meter,
) -> anyhow::Result<Recorder> {
    let addr: Target = addr.into();
    let start = Instant::now();
    let from = start + window.warmup;
    let until = from + window.duration;
    let rec = Rc::new(RefCell::new(Recorder::new(from, until)));
    let cpu = measure_cpu(meter, from, until);
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
    let mut rec = Rc::try_unwrap(rec)
        .map_err(|_| anyhow::anyhow!("load tasks still running"))
        .map(RefCell::into_inner)?;
    rec.cpu = cpu.await.context("the CPU sampler panicked")?;
    Ok(rec)
}

/// Runs `workload` at `rate` operations per second for the window, opening up to `max_conns`
/// connections as needed. Every operation due inside the window is counted: answered, `unsent` (no
/// connection was free at its due time; its latency runs until one is) or `timeout` (still running
/// `grace` after the window; its latency runs until then).
pub(crate) async fn open_loop(
    addr: impl Into<Target>,
    rate: f64,
    max_conns: usize,
    workload: Rc<dyn Workload>,
    window: Window,
    meter: &Meter,
) -> anyhow::Result<Recorder> {
    open_loop_with_grace(addr, rate, max_conns, workload, window, meter, Duration::from_secs(5))
        .await
}

async fn open_loop_with_grace(
    addr: impl Into<Target>,
    rate: f64,
    max_conns: usize,
    workload: Rc<dyn Workload>,
    window: Window,
    meter: &Meter,
    grace: Duration,
) -> anyhow::Result<Recorder> {
    let addr: Target = addr.into();
    let start = Instant::now();
    let from = start + window.warmup;
    let until = from + window.duration;
    let mut recorder = Recorder::new(from, until);
    recorder.by_due = true;
    let rec = Rc::new(RefCell::new(recorder));
    let cpu = measure_cpu(meter, from, until);
    let idle: Rc<RefCell<Vec<Conn>>> = Rc::new(RefCell::new(Vec::new()));
    let open = Rc::new(Cell::new(0usize));
    // Operations sent and not answered yet, by serial number, with their due times: what is left at
    // the end timed out.
    let pending: Rc<RefCell<HashMap<u64, Instant>>> = Rc::new(RefCell::new(HashMap::new()));
    // Due times of operations that found every connection busy, counted when one is free again.
    let unsent: Rc<RefCell<Vec<Instant>>> = Rc::new(RefCell::new(Vec::new()));
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut due = start;
    let mut serial = 0u64;
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
                unsent.borrow_mut().push(due);
                due += interval;
                continue;
            }
        };
        serial += 1;
        let id = serial;
        let intended = due;
        pending.borrow_mut().insert(id, intended);
        let (rec, idle, open, pending, unsent) = (
            Rc::clone(&rec),
            Rc::clone(&idle),
            Rc::clone(&open),
            Rc::clone(&pending),
            Rc::clone(&unsent),
        );
        let workload = Rc::clone(&workload);
        let addr = addr.clone();
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
            let end = Instant::now();
            // After the end of the run the operation was already counted as a timeout.
            if pending.borrow_mut().remove(&id).is_some() {
                let mut rec = rec.borrow_mut();
                rec.record(intended, end, outcome);
                // A connection is free again: the operations that found none fail as late as now.
                for d in unsent.borrow_mut().drain(..) {
                    rec.record(d, end, Outcome::Unsent);
                }
            }
        });
        due += interval;
    }
    let deadline = until + grace;
    while !pending.borrow().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end = Instant::now();
    let cpu = cpu.await.context("the CPU sampler panicked")?;
    // Abandoned operations keep their Rc; take the numbers out rather than the recorder.
    let mut rec = rec.borrow_mut();
    for (_, d) in pending.borrow_mut().drain() {
        rec.record(d, end, Outcome::Timeout);
    }
    for d in unsent.borrow_mut().drain(..) {
        rec.record(d, end, Outcome::Unsent);
    }
    let mut taken = std::mem::replace(&mut *rec, Recorder::new(from, until));
    taken.cpu = cpu;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workloads::Get;

    /// Two segments merged report as one window: operations, outcomes and time add up.
    #[test]
    fn merged_recorders_add_their_operations_and_windows() {
        let t = Instant::now();
        let mut a = Recorder::new(t, t + Duration::from_secs(2));
        let mut b = Recorder::new(t, t + Duration::from_secs(3));
        let at = t + Duration::from_millis(500);
        a.record(t, at, Outcome::Ok(200));
        b.record(t, at, Outcome::Ok(200));
        b.record(t, at, Outcome::Status(503));
        a.merge(&b);
        assert_eq!((a.ok(), a.total()), (2, 3));
        assert!((a.window_secs() - 5.0).abs() < 1e-9);
        assert!((a.ok_per_s() - 0.4).abs() < 1e-9);
        assert_eq!(a.outcomes().get("200"), Some(&2));
        assert_eq!(a.outcomes().get("503"), Some(&1));
        assert_eq!(a.status_quantile_ms(503, 0.5).map(|v| v.round()), Some(500.0));
    }

    /// A server that takes connections and requests and never answers: the open loop must still
    /// count every request due in the window, as `timeout` (sent) or `unsent` (no connection free).
    #[test]
    fn an_open_loop_counts_what_it_could_not_send_and_what_never_came_back() {
        block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::task::spawn_local(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    held.push(socket);
                }
            });
            let w = Rc::new(Get { path: "/healthz", host: "x".into(), token: None, needle: "" });
            let window = Window { warmup: Duration::ZERO, duration: Duration::from_millis(200) };
            let rec = open_loop_with_grace(
                addr,
                200.0,
                2,
                w,
                window,
                &Meter::default(),
                Duration::from_millis(100),
            )
            .await
            .unwrap();
            // 200 per second for 0.2 s is 40 requests; two connections, so two sent.
            assert_eq!(rec.total(), 40, "{:?}", rec.outcomes());
            assert_eq!(rec.outcomes().get("timeout"), Some(&2), "{:?}", rec.outcomes());
            assert_eq!(rec.outcomes().get("unsent"), Some(&38), "{:?}", rec.outcomes());
            assert_eq!(rec.ok(), 0);
            // Each waited at least the grace period after the window: the tail shows it.
            assert!(rec.quantile_ms(0.5) >= 100.0, "{}", rec.quantile_ms(0.5));
        })
        .unwrap();
    }
}

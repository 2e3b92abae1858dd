//! Faults lose nothing and hang nothing: an SMS webhook that times out and then answers 500 still gets
//! the code once it recovers (the outbox retries); a database that cannot be written (an immutable file,
//! a full disk) gives clear 503 `busy` answers and normal service after recovery; and a SIGKILL in the
//! middle of a load of logins leaves every token that was answered with 200 valid and the SQLite file
//! intact.
//!
//! Making a file unwritable for root: permissions do not stop root (CI runs as root), so the test sets
//! the ext4 immutable attribute (`chattr +i`), which root's writes obey, even through descriptors opened
//! before. A full disk is a small tmpfs mounted over the data directory. Both need root (`CAP_LINUX_IMMUTABLE`,
//! `CAP_SYS_ADMIN`); where they are not available the test says so on stderr and checks nothing else.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Exchange, Request, Response, ServerOptions, TestServer, exchange};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";
const EMAIL: &str = "faulty@example.com";
const PASSWORD: &str = "faulty-password-1";

fn creds() -> String {
    format!("userName={}&password={PASSWORD}", EMAIL.replace('@', "%40"))
}

fn prepared(tfa: &str) -> DataDir {
    let data = DataDir::new();
    data.run_cli(&["portal", "set", "--tfa", tfa]).ok();
    data.run_cli(&["user", "add", "--email", EMAIL, "--password", PASSWORD]).ok();
    data
}

fn token_of(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"]["token"].as_str().expect("token").to_owned()
}

fn token_is_valid(server: &TestServer, token: &str) -> bool {
    let r = server.send(Request::get("/api/2.0/authentication").header("Authorization", token));
    r.text() == r#"{"count":1,"status":0,"statusCode":200,"response":true}"#
}

// ------------------------------------------------------------------------------------------------
// The SMS webhook gateway.

/// How the fake gateway treats one delivery attempt.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    /// Reads the request and answers nothing for this long (longer than the server's timeout).
    Hang(Duration),
    /// Answers this status.
    Status(u16),
}

/// A tiny HTTP server on loopback that plays a script of attempts, then answers 200 for good.
struct FakeGateway {
    port: u16,
    attempts: Arc<AtomicUsize>,
    delivered: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeGateway {
    fn start(script: Vec<Attempt>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let attempts = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, got, halt) = (Arc::clone(&attempts), Arc::clone(&delivered), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let attempt = script.get(n.fetch_add(1, Ordering::SeqCst)).copied();
                let got = Arc::clone(&got);
                std::thread::spawn(move || serve_one(stream, attempt, &got));
            }
        });
        Self { port, attempts, delivered, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sms", self.port)
    }

    /// Waits (bounded) for the first acknowledged delivery and returns its JSON body.
    fn wait_delivered(&self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(body) = self.delivered.lock().expect("lock").first() {
                return serde_json::from_str(body).expect("the webhook body is JSON");
            }
            assert!(Instant::now() < deadline, "no delivery within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(stream: TcpStream, attempt: Option<Attempt>, delivered: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut reader = BufReader::new(&stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let status = match attempt {
        Some(Attempt::Hang(d)) => {
            std::thread::sleep(d);
            return;
        }
        Some(Attempt::Status(s)) => s,
        None => 200,
    };
    let mut out = &stream;
    let _ = write!(out, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if status == 200 {
        delivered.lock().expect("lock").push(String::from_utf8_lossy(&body).into_owned());
    }
}

#[test]
fn sms_reaches_a_webhook_that_first_times_out_then_fails() {
    // First attempt: no answer (the server gives up after 1 s); second: 500; then 200. With the
    // outbox's backoff (1 s, 2 s, …) the code arrives about 4 s after the request.
    let gateway =
        FakeGateway::start(vec![Attempt::Hang(Duration::from_secs(3)), Attempt::Status(500)]);
    let server = TestServer::start_in(
        prepared("sms"),
        ServerOptions::new()
            .env("AUTH_SMS__GATEWAY", "webhook")
            .env("AUTH_SMS__WEBHOOK_URL", &gateway.url())
            .env("AUTH_SMS__WEBHOOK_TIMEOUT_SECS", "1"),
    );
    let started = Instant::now();
    let r = server.post_form(
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone=79123456789", creds()),
    );
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    // The request only enqueues: the gateway's outage never holds up an answer.
    assert!(took < Duration::from_secs(1), "setphone took {took:?} while the gateway hung");
    assert_eq!(server.get("/healthz").status, 200);

    let sms = gateway.wait_delivered(Duration::from_secs(20));
    assert!(gateway.attempts.load(Ordering::SeqCst) >= 3, "delivered without the retries");
    assert_eq!(sms["to"], "79123456789");
    let text = sms["text"].as_str().expect("text");
    let code: String = text.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{text}");
    let r = server.post_form(&format!("/api/2.0/authentication/{code}"), &creds());
    token_of(&r);
    assert_eq!(gateway.delivered.lock().expect("lock").len(), 1, "delivered exactly once");
}

// ------------------------------------------------------------------------------------------------
// An unwritable database.

/// Answers of logins until `pred` holds for one (bounded), so a test can wait for an outage to show or
/// to end; every answer on the way must be a 200 or a clean 503 `busy`.
fn logins_until(
    server: &TestServer,
    within: Duration,
    pred: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + within;
    loop {
        let started = Instant::now();
        let r = server.post_form("/api/2.0/authentication", &creds());
        // SQLite waits at most its 5 s busy timeout: no answer may take much longer.
        assert!(started.elapsed() < Duration::from_secs(7), "a login took {:?}", started.elapsed());
        match r.status {
            200 => {}
            503 => assert_busy(&r),
            other => panic!("login answered {other}: {}", r.text()),
        }
        if pred(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "no such answer within {within:?}; last {}", r.text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
fn assert_busy(r: &Response) {
    assert_eq!(
        r.text(),
        r#"{"status":1,"statusCode":503,"error":{"message":"Server is busy","code":"busy"}}"#
    );
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{:?}", r.headers);
}

/// The database and its write-ahead log. Not `auth.db-shm`: SQLite maps that index into memory, and a
/// write to a mapped page of an immutable file is a SIGBUS, not an error SQLite could report (a real
/// read-only or full disk never does that to an existing mapping).
fn database_files(data: &Path) -> Vec<PathBuf> {
    ["auth.db", "auth.db-wal"].iter().map(|f| data.join(f)).filter(|p| p.exists()).collect()
}

fn chattr(flag: &str, files: &[PathBuf]) -> bool {
    Command::new("chattr").arg(flag).args(files).status().is_ok_and(|s| s.success())
}

/// Clears the immutable flag again however the test ends, or the temporary directory could not be
/// removed.
struct Immutable(Vec<PathBuf>);

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.query_row("PRAGMA integrity_check", [], |row| row.get::<_, String>(0)).expect("pragma")
}

#[test]
fn read_only_database_gives_busy_then_recovers() {
    let server = TestServer::start_in(prepared("none"), ServerOptions::new());
    let before = token_of(&server.post_form("/api/2.0/authentication", &creds()));
    let files = database_files(&server.data_dir());
    if !chattr("+i", &files) {
        auth_tests::skip("`chattr +i` is not possible here (needs root on ext2/3/4, xfs or btrfs)");
        return;
    }
    let guard = Immutable(files);
    let refused = logins_until(&server, Duration::from_secs(20), |r| r.status == 503);
    assert_busy(&refused);
    // Nothing is half-written: the process stays up and answers the next request at once.
    assert_eq!(server.get("/healthz").status, 200);

    drop(guard);
    let back = logins_until(&server, Duration::from_secs(20), |r| r.status == 200);
    let after = token_of(&back);
    assert!(token_is_valid(&server, &before) && token_is_valid(&server, &after));
    let (data, _) = server.stop();
    assert_eq!(integrity(&data.path().join("auth.db")), "ok");
}

/// A tmpfs mounted over a directory, unmounted (lazily, so open files cannot block it) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `file` until a write fails.
fn fill(file: &Path) {
    let mut f = std::fs::File::create(file).expect("filler");
    let block = vec![0xA5u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    // The last partial block: byte by byte is slow, 4 KiB steps are enough.
    while f.write_all(&block[..4096]).is_ok() {}
}

#[test]
fn full_disk_gives_busy_then_recovers() {
    let data = DataDir::new();
    let Some(mount) = Tmpfs::mount(&data.path(), "8m") else {
        auth_tests::skip("cannot mount a tmpfs here (needs root)");
        return;
    };
    data.run_cli(&["portal", "set", "--tfa", "none"]).ok();
    data.run_cli(&["user", "add", "--email", EMAIL, "--password", PASSWORD]).ok();
    let server = TestServer::start_in(data, ServerOptions::new());
    let before = token_of(&server.post_form("/api/2.0/authentication", &creds()));

    let filler = server.data_dir().join("filler");
    fill(&filler);
    // Each login writes a session and an audit event; once SQLite needs a page the disk cannot give,
    // the answer is 503 `busy`.
    let refused = logins_until(&server, Duration::from_secs(20), |r| r.status == 503);
    assert_busy(&refused);
    assert_eq!(server.get("/healthz").status, 200);

    std::fs::remove_file(&filler).expect("remove the filler");
    let after = token_of(&logins_until(&server, Duration::from_secs(20), |r| r.status == 200));
    assert!(token_is_valid(&server, &before) && token_is_valid(&server, &after));
    let (data, _) = server.stop();
    assert_eq!(integrity(&data.path().join("auth.db")), "ok");
    drop(mount);
}

// ------------------------------------------------------------------------------------------------
// SIGKILL under load.

#[test]
fn sigkill_during_logins_keeps_every_answered_token() {
    const CLIENTS: usize = 4;
    let server = TestServer::start_in(prepared("none"), ServerOptions::new());
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let request = Request::post("/api/2.0/authentication").body(FORM, creds()).to_bytes(addr);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, request) = (Arc::clone(&stop), request.clone());
            std::thread::spawn(move || {
                let mut tokens = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match exchange(addr, &request, Duration::from_secs(10), false) {
                        Exchange::Response(r) if r.status == 200 => tokens.push(token_of(&r)),
                        Exchange::Response(r) => {
                            panic!("login answered {}: {}", r.status, r.text())
                        }
                        // The kill: connections reset or refused from now on.
                        Exchange::Closed | Exchange::Unreachable(_) => break,
                        Exchange::TimedOut { .. } => panic!("a login hung"),
                    }
                }
                tokens
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let data = server.kill();
    stop.store(true, Ordering::SeqCst);
    let tokens: Vec<String> = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    assert!(tokens.len() >= 20, "only {} logins before the kill", tokens.len());

    // The file as the kill left it (WAL included) is consistent before anything repairs it.
    assert_eq!(integrity(&data.path().join("auth.db")), "ok");
    let server = TestServer::start_in(data, ServerOptions::new());
    let lost: Vec<&String> = tokens.iter().filter(|t| !token_is_valid(&server, t)).collect();
    assert!(lost.is_empty(), "{} of {} answered tokens lost", lost.len(), tokens.len());
    let (data, _) = server.stop();
    assert_eq!(integrity(&data.path().join("auth.db")), "ok");
}

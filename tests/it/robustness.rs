//! Robustness of the transport and the login against patient attackers: slow clients (slowloris) do not
//! starve a normal client and are cut off at the header timeout; idle connections are closed; and an
//! unknown user cannot be told from a wrong password, neither by the bytes nor by the time.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Exchange, Request, Response, ServerOptions, TestServer, exchange};

const FORM: &str = "application/x-www-form-urlencoded";
const EMAIL: &str = "patient@example.com";
const PASSWORD: &str = "patient-password-1";

fn creds() -> String {
    format!("userName={}&password={PASSWORD}", EMAIL.replace('@', "%40"))
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Makes sure this process (and so the server it spawns, which inherits the limit) may open `want`
/// files, raising the soft limit with `prlimit` (the workspace forbids `unsafe`, so no `setrlimit`
/// call here); returns how many connections the test can afford.
fn afford_connections(want: u64) -> usize {
    let have = open_files_limit().unwrap_or(1024);
    if have < want {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={want}:")])
            .status();
    }
    let have = open_files_limit().unwrap_or(1024);
    // Each slow connection costs one descriptor here and one in the server; keep 100 in reserve.
    usize::try_from(have.saturating_sub(100) / 2).unwrap_or(usize::MAX)
}

fn login(addr: SocketAddr) -> (Response, Duration) {
    let started = Instant::now();
    let r = Request::post("/api/2.0/authentication").body(FORM, creds()).send(addr);
    (r, started.elapsed())
}

#[test]
fn five_hundred_slow_clients_do_not_stop_a_login_and_are_cut_off() {
    const SLOW: usize = 500;
    let affordable = afford_connections(2 * SLOW as u64 + 200);
    assert!(affordable >= SLOW, "only {affordable} connections possible: raise `ulimit -n`");
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", EMAIL, "--password", PASSWORD]).ok();
    let server =
        // The slow clients and the normal one share 127.0.0.1 here, so the per-address cap (issue 12,
        // tested in `security`) is lifted for this test of the header timeout.
        TestServer::start_in(
            data,
            ServerOptions::new()
                .env("AUTH_HTTP__HEADER_TIMEOUT_SECS", "3")
                .env("AUTH_HTTP__MAX_CONNECTIONS_PER_IP", "10000"),
        );
    let addr = server.addr();

    // 500 connections that send their request one byte per second.
    let request = b"POST /api/2.0/authentication HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("slow connection {i}: {e}"));
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let mut logins = Vec::new();
    for (second, byte) in request.iter().take(5).enumerate() {
        for s in &mut slow {
            let _ = s.write(&[*byte]);
        }
        // A normal client logs in while the slow ones hold their connections.
        let (r, took) = login(addr);
        assert_eq!(r.status, 200, "login during slowloris (second {second}): {}", r.text());
        logins.push(took);
        std::thread::sleep(Duration::from_secs(1).saturating_sub(took));
    }
    let slowest = logins.iter().max().copied().unwrap_or_default();
    // Unloaded, a login takes milliseconds; the bound leaves room for a busy CI machine.
    assert!(slowest < Duration::from_secs(2), "a login took {slowest:?} during slowloris");
    eprintln!("slowloris: logins took {logins:?} while {SLOW} slow clients were connected");

    // Their 3 s to send the headers are over: every slow connection has been closed by the server,
    // although each was still sending.
    let deadline = Instant::now().max(opened + Duration::from_secs(3)) + Duration::from_secs(5);
    let mut open = SLOW;
    while open > 0 && Instant::now() < deadline {
        open = 0;

        for s in &mut slow {
            let _ = s.write(b"x");
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                // Hyper answers nothing to a header timeout; a reset is as closed as an EOF.
                Ok(_) | Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(open, 0, "{open} slow connections still open {:?} after opening", opened.elapsed());
    let closed_after = opened.elapsed();
    assert!(closed_after >= Duration::from_millis(2500), "closed too early: {closed_after:?}");
    let (r, _) = login(addr);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn idle_connections_are_closed_after_the_header_timeout() {
    let server =
        TestServer::start_with(ServerOptions::new().env("AUTH_HTTP__HEADER_TIMEOUT_SECS", "2"));
    let addr = server.addr();
    let timed = |bytes: &[u8], expect_response: bool| {
        let started = Instant::now();
        // A connection that sends nothing (or one complete keep-alive request and then nothing) is
        // closed by the server; 10 s would be a hang.
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(bytes).expect("write");
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let took = started.elapsed();
        assert_eq!(!all.is_empty(), expect_response, "{}", String::from_utf8_lossy(&all));
        took
    };
    let silent = timed(b"", false);
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(5)).contains(&silent),
        "a silent connection was closed after {silent:?}, not about 2 s"
    );
    let keep_alive = timed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true);
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(5)).contains(&keep_alive),
        "an idle keep-alive connection was closed after {keep_alive:?}, not about 2 s"
    );
    let partial = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost:", Duration::from_secs(10), false);
    assert!(matches!(partial, Exchange::Closed), "{partial:?}");
}

/// Median of a sample, in microseconds.
fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The response as bytes that must not differ: status, headers but `date`, body.
fn fingerprint(r: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    (r.status, headers, r.body.clone())
}

#[test]
fn unknown_user_and_wrong_password_look_and_take_the_same() {
    const SAMPLES: usize = 200;
    // Issue 12: the production hashing cost (the server's defaults; the tests' default is 8 KiB), so a
    // login costs what it costs in production and any work one path skips shows against it. The
    // user's hash is made with the same parameters the dummy hash uses.
    let hashing = [("AUTH_HASHING__M_COST_KIB", "19456"), ("AUTH_HASHING__T_COST", "2")];
    let data = DataDir::new();
    data.run_cli(&[
        "portal",
        "set",
        "--set",
        "login_limit=100000",
        "--set",
        "account_limit=100000",
    ])
    .ok();
    data.run_cli_env(&["user", "add", "--email", EMAIL, "--password", PASSWORD], &hashing).ok();
    let mut options = ServerOptions::new();
    for (k, v) in hashing {
        options = options.env(k, v);
    }
    let server = TestServer::start_in(data, options);
    let addr = server.addr();
    let known = Request::post("/api/2.0/authentication")
        .body(FORM, format!("userName={}&password=wrong-password", EMAIL.replace('@', "%40")));
    let unknown = Request::post("/api/2.0/authentication")
        .body(FORM, "userName=nobody%40example.com&password=wrong-password");

    let time = |req: &Request| {
        let started = Instant::now();
        let r = req.send(addr);
        (r, started.elapsed().as_micros())
    };
    // Warm up both paths (connection set-up, caches, the hashing pool).
    for _ in 0..10 {
        time(&known);
        time(&unknown);
    }
    let (reference, _) = time(&known);
    let reference = fingerprint(&reference);
    assert_eq!(reference.0, 401);
    // A round is 200 samples of each. Other tests share the two cores, and a burst of their work can
    // shift one round's medians; a real difference shifts every round. So a round over the bound is
    // repeated, at most twice; every sample of every round must have the same bytes.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (mut k_times, mut u_times) = (Vec::new(), Vec::new());
        for i in 0..SAMPLES {
            // Interleaved, alternating which goes first, so drift and noise hit both alike.
            let order = if i % 2 == 0 { [&known, &unknown] } else { [&unknown, &known] };
            for req in order {
                let (r, us) = time(req);
                assert_eq!(fingerprint(&r), reference, "the bytes differ: {}", r.text());
                if std::ptr::eq(req, &known) { k_times.push(us) } else { u_times.push(us) }
            }
        }
        let (k, u) = (median(k_times), median(u_times));
        let diff = k.abs_diff(u) as f64 / k.max(u) as f64;
        eprintln!(
            "enumeration: median wrong password {k} µs, unknown user {u} µs, differ by {:.1}%",
            diff * 100.0
        );
        rounds.push((k, u, diff));
        // Without the dummy hash an unknown user would answer in a tenth of the time; 5% is the
        // noise of two busy cores, far below that, and below one store round trip per login.
        if diff < 0.05 {
            return;
        }
    }
    panic!("medians differ by 5% or more in every round (known µs, unknown µs, share): {rounds:?}");
}

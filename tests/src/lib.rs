//! Harness for the black-box integration tests: builds and starts the real `auth-server` binary and
//! talks to it over real sockets, files and its command line.
//!
//! - [`server_binary`] builds the binary once per test process (`cargo build -p auth-server` into the
//!   test's own target directory), so `cargo test -p auth-tests` works alone.
//! - [`DataDir`] is a temporary data directory with [`DataDir::run_cli`] for admin subcommands.
//! - [`TestServer`] runs `auth-server serve` on `127.0.0.1:0` in a data directory, reads the bound port
//!   and the printed first-administrator credentials from its stdout, and kills it when dropped.
//! - [`Request`] / [`Response`] are a deliberately raw HTTP/1.1 client over `TcpStream`: tests need
//!   exact control of every header and body byte, including malformed ones.
//! - [`OidcProvider`] (module [`oidc`]) runs a real OpenID provider on loopback HTTPS for the
//!   social-login tests.
//! - [`Slapd`] (module [`slapd`]) runs a real OpenLDAP server on loopback (ldaps:// and StartTLS)
//!   for the LDAP tests; the server's own unit tests and the `ldap_login` benchmark use it too.
//! - [`smtp::SmtpServer`] (module [`smtp`]) runs a real SMTP server (Debian's aiosmtpd) on loopback
//!   with STARTTLS, implicit TLS and `AUTH`, and reads back the messages it accepted, for the e-mail tests.
//! - [`mariadb`] provides a real MariaDB for the import tests, and [`upstream`] the CommunityServer
//!   schema and rows made with upstream's algorithms.
//! - [`https::HttpsServer`] is a small HTTPS server with a test CA, and [`sms::FakeProvider`] plays each
//!   SMS provider's documented HTTP API (and the signed webhook) on it for the SMS delivery tests.
//!
//! Every child gets cheap argon2 parameters (`m=8 KiB, t=1`) so tests stay fast; never the server's
//! defaults. Inherited `AUTH_…` variables are removed so the developer's environment cannot leak in.
//! Waiting is always bounded: a poll gives up with a clear panic after [`WAIT`].

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub mod browser;
pub mod https;
pub mod mariadb;
pub mod nginx;
pub mod oidc;
pub mod slapd;
pub mod sms;
pub mod smtp;
pub mod tls;
pub mod upstream;
pub use oidc::{ClientAuth, OidcAccount, OidcClient, OidcProvider};
pub use slapd::{LdapUser, Slapd, Transport};
pub use smtp::SmtpServer;
pub use tls::{TestCa, TlsConnection};

/// The longest any harness wait lasts (server start, SMS delivery, process exit, HTTP answer).
pub const WAIT: Duration = Duration::from_secs(30);

/// The line `serve` prints once its socket is bound, before `http://ADDR` or `https://ADDR`.
const LISTENING: &str = "listening on ";

/// Environment given to every child: cheap hashing, a fast outbox, plain logs.
const TEST_ENV: &[(&str, &str)] = &[
    ("AUTH_HASHING__M_COST_KIB", "8"),
    ("AUTH_HASHING__T_COST", "1"),
    ("AUTH_HASHING__P_COST", "1"),
    ("AUTH_HASHING__WORKERS", "2"),
    ("AUTH_OUTBOX__POLL_INTERVAL_MS", "20"),
    ("AUTH_LOG__LEVEL", "info"),
];

/// Waits (bounded by [`WAIT`]) for a server process whose stdin was closed to exit, and kills it
/// when it does not; true when it had to be killed.
pub(crate) fn wait_or_kill(child: &mut Child) -> bool {
    let deadline = Instant::now() + WAIT;
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Waits (bounded by [`WAIT`]) until nothing listens on the loopback `port` any more, so a test
/// that expects "connection refused" gets it.
pub(crate) fn wait_port_closed(port: u16) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).is_ok()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Says loudly that a test cannot run here and why; under `CI=true` that is a failure instead,
/// because CI installs and starts every real component and a skip there would prove nothing.
#[track_caller]
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true, and this test cannot run: {why}");
    }
    eprintln!("SKIPPED (not a pass): {why}");
}

/// The `auth-server` binary, built on first use.
///
/// Set `AUTH_SERVER_BIN` to use a prebuilt binary instead.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(bin) = std::env::var_os("AUTH_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        // The test executable is `<target>/<profile>/deps/it-<hash>`: build the server into the same
        // target directory and profile, so both come from one build of the workspace.
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/…");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile = profile_dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "auth-server", "--bin", "auth-server"])
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("running cargo build -p auth-server");
        assert!(
            out.status.success(),
            "cargo build -p auth-server failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("auth-server")
    })
}

/// A `Command` for the server binary with the test environment.
fn server_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(server_binary());
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AUTH_")) {
            cmd.env_remove(k);
        }
    }
    cmd.env("AUTH_DATA_DIR", data_dir).env_remove("RUST_LOG");
    for (k, v) in TEST_ENV {
        cmd.env(k, v);
    }
    cmd
}

/// What a finished command printed.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics unless the command succeeded; returns its stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.status.success(), "command failed ({}):\n{}", self.status, self.stderr);
        &self.stdout
    }

    /// Panics unless the command failed with exit code 1; returns its stderr.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert_eq!(
            self.code(),
            Some(1),
            "expected failure, got:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        &self.stderr
    }

    /// Stdout parsed as JSON (panics when it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// One message the `file` SMS gateway wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRecord {
    /// Recipient digits.
    pub to: String,
    /// The text (`Code: 123456`).
    pub text: String,
    /// When it was written (RFC 3339).
    pub at: String,
}

impl SmsRecord {
    /// The run of six digits in the text.
    pub fn code(&self) -> String {
        let digits: String = self.text.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(digits.len(), 6, "no 6-digit code in {:?}", self.text);
        digits
    }
}

/// A temporary data directory, removed when the last handle to it is dropped.
#[derive(Clone, Debug)]
pub struct DataDir {
    dir: std::sync::Arc<TempDir>,
}

impl Default for DataDir {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDir {
    /// A fresh, empty data directory (it does not exist yet inside its temporary parent, so the
    /// server creates it the way it would in production).
    pub fn new() -> Self {
        Self {
            dir: std::sync::Arc::new(
                tempfile::Builder::new().prefix("auth-it-").tempdir().expect("tempdir"),
            ),
        }
    }

    /// Another handle to the same directory, so that a second server process can share it (one
    /// server key, one SQLite file or one SMS file); the directory lives until every handle is gone.
    pub fn share(&self) -> Self {
        self.clone()
    }

    /// The data directory's path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `auth-server ARGS…` on this data directory with no standard input.
    pub fn run_cli(&self, args: &[&str]) -> CliOutput {
        self.run_cli_with_stdin(args, None)
    }

    /// Runs `auth-server ARGS…` with extra environment variables.
    pub fn run_cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        self.run(args, None, env)
    }

    /// Runs `auth-server ARGS…` feeding `stdin` (when given) to its standard input.
    pub fn run_cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        self.run(args, stdin, &[])
    }

    fn run(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> CliOutput {
        let mut cmd = server_command(&self.path());
        cmd.args(args).envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning auth-server");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(input.as_bytes()).expect("writing stdin");
        }
        let out = child.wait_with_output().expect("waiting for auth-server");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `portal set` on the default portal: `--tfa tfa` when given, and each `KEY=VALUE` as `--set`.
    pub fn set_portal(&self, tfa: Option<&str>, settings: &[&str]) -> CliOutput {
        let mut args = vec!["portal", "set"];
        if let Some(tfa) = tfa {
            args.extend(["--tfa", tfa]);
        }
        for s in settings {
            args.extend(["--set", s]);
        }
        self.run_cli(&args)
    }

    /// `user add` of Ada Lovelace with this e-mail and password, on the default portal.
    pub fn add_ada(&self, email: &str, password: &str) -> CliOutput {
        self.run_cli(&[
            "user",
            "add",
            "--email",
            email,
            "--password",
            password,
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
        ])
    }

    /// The `file` gateway's file in this data directory.
    pub fn sms_file(&self) -> PathBuf {
        self.path().join("sms-outbox.jsonl")
    }

    /// Every message the `file` gateway has written so far, oldest first.
    pub fn sms_messages(&self) -> Vec<SmsRecord> {
        let Ok(text) = std::fs::read_to_string(self.sms_file()) else { return Vec::new() };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("sms file line is not JSON ({e}): {l}"));
                let field = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("sms line without {k}: {l}"))
                        .to_owned()
                };
                SmsRecord { to: field("to"), text: field("text"), at: field("at") }
            })
            .collect()
    }

    /// Waits (bounded by [`WAIT`]) until the file holds at least `count` messages; returns them all.
    #[track_caller]
    pub fn wait_for_sms(&self, count: usize) -> Vec<SmsRecord> {
        let deadline = Instant::now() + WAIT;
        loop {
            let messages = self.sms_messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {count} SMS, the file has {}",
                messages.len()
            );
            // The outbox worker polls every 20 ms in tests; checking a little more often is enough.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The codes of all messages written so far, oldest first, waiting for at least one.
    #[track_caller]
    pub fn sms_codes(&self) -> Vec<String> {
        self.wait_for_sms(1).iter().map(SmsRecord::code).collect()
    }
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl ServerOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an environment variable for the server (after the harness's own, so it wins).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a command-line argument after `serve`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }
}

/// The administrator the server created on an empty database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCredentials {
    /// E-mail (the login).
    pub email: String,
    /// The generated password.
    pub password: String,
}

/// Why a server did not come up.
#[derive(Debug)]
pub struct StartFailure {
    /// Its exit status, if it exited.
    pub status: Option<ExitStatus>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// The data directory, for further checks.
    pub data: DataDir,
}

/// A running `auth-server serve`, killed when dropped.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    addr: SocketAddr,
    scheme: &'static str,
    data: Option<DataDir>,
    options: ServerOptions,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl TestServer {
    /// A server on a fresh data directory with default options.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_in(DataDir::new(), ServerOptions::new())
    }

    /// A server on a fresh data directory.
    #[track_caller]
    pub fn start_with(options: ServerOptions) -> Self {
        Self::start_in(DataDir::new(), options)
    }

    /// A server on an existing data directory (prepared with [`DataDir::run_cli`], or kept from a
    /// stopped server).
    #[track_caller]
    pub fn start_in(data: DataDir, options: ServerOptions) -> Self {
        match Self::try_start_in(data, options) {
            Ok(s) => s,
            Err(f) => panic!(
                "auth-server did not start ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
                f.status, f.stdout, f.stderr
            ),
        }
    }

    /// Starts a server, or reports how it failed to start (for tests of start-up errors).
    pub fn try_start_in(data: DataDir, options: ServerOptions) -> Result<Self, StartFailure> {
        let mut cmd = server_command(&data.path());
        cmd.env("AUTH_LISTEN", "127.0.0.1:0")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("serve")
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning auth-server serve");

        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines) = mpsc::channel::<String>();
        let out_pipe = child.stdout.take().expect("stdout pipe");
        let out_lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                out_lines.lock().expect("stdout lock").push(line.clone());
                let _ = lines_tx.send(line);
            }
        });
        let err_pipe = child.stderr.take().expect("stderr pipe");
        let err_text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = err_text.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });

        let deadline = Instant::now() + WAIT;
        let (scheme, addr) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let Some(url) = line.strip_prefix(LISTENING) else { continue };
                    let (scheme, addr) = match url.strip_prefix("https://") {
                        Some(addr) => ("https", addr),
                        None => ("http", url.strip_prefix("http://").expect("http:// or https://")),
                    };
                    break (scheme, addr.trim().parse::<SocketAddr>().expect("a socket address"));
                }
                Err(_) => {
                    // Stdout closed (the server exited) or the deadline passed: report what it said.
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let stdout = stdout.lock().expect("stdout lock").join("\n");
                    // The stderr reader finishes once the process is gone; give it a moment to
                    // collect the last lines.
                    let text_deadline = Instant::now() + Duration::from_secs(2);
                    while Arc::strong_count(&stderr) > 1 && Instant::now() < text_deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let stderr = stderr.lock().expect("stderr lock").clone();
                    return Err(StartFailure { status, stdout, stderr, data });
                }
            }
        };
        Ok(TestServer { child, addr, scheme, data: Some(data), options, stdout, stderr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when it listens with TLS).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the server process.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill");
        assert!(sent.success(), "kill -{name} {pid} failed");
    }

    /// The data directory.
    pub fn data(&self) -> &DataDir {
        self.data.as_ref().expect("data dir present while running")
    }

    /// The data directory's path.
    pub fn data_dir(&self) -> PathBuf {
        self.data().path()
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").join("\n")
    }

    /// Everything the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The first administrator's credentials, when this start created them.
    pub fn admin(&self) -> Option<AdminCredentials> {
        let lines = self.stdout.lock().expect("stdout lock");
        let value = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.trim_start().strip_prefix(prefix))
                .map(|v| v.trim().to_owned())
        };
        Some(AdminCredentials { email: value("e-mail:")?, password: value("password:")? })
    }

    /// Runs an admin subcommand on the server's data directory.
    pub fn run_cli(&self, args: &[&str]) -> CliOutput {
        self.data().run_cli(args)
    }

    /// Runs an admin subcommand feeding `stdin` to it.
    pub fn run_cli_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        self.data().run_cli_with_stdin(args, Some(stdin))
    }

    /// See [`DataDir::sms_messages`].
    pub fn sms_messages(&self) -> Vec<SmsRecord> {
        self.data().sms_messages()
    }

    /// See [`DataDir::wait_for_sms`].
    #[track_caller]
    pub fn wait_for_sms(&self, count: usize) -> Vec<SmsRecord> {
        self.data().wait_for_sms(count)
    }

    /// See [`DataDir::sms_codes`].
    #[track_caller]
    pub fn sms_codes(&self) -> Vec<String> {
        self.data().sms_codes()
    }

    /// Sends a request and reads the whole response.
    #[track_caller]
    pub fn send(&self, request: Request) -> Response {
        request.send(self.addr)
    }

    /// `GET path`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.send(Request::get(path))
    }

    /// `POST path` with a form body.
    #[track_caller]
    pub fn post_form(&self, path: &str, form: &str) -> Response {
        self.send(Request::post(path).body("application/x-www-form-urlencoded", form))
    }

    /// `POST path` with a JSON body.
    #[track_caller]
    pub fn post_json(&self, path: &str, json: &Value) -> Response {
        self.send(Request::post(path).body("application/json", json.to_string()))
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns the data directory and the
    /// exit status.
    #[track_caller]
    pub fn stop(mut self) -> (DataDir, ExitStatus) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "auth-server ignored SIGTERM for {WAIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        (self.data.take().expect("data dir"), status)
    }

    /// Stops (SIGTERM) and starts again on the same data directory with the same options.
    #[track_caller]
    pub fn restart(self) -> TestServer {
        let options = self.options.clone();
        let (data, status) = self.stop();
        assert!(status.success(), "auth-server exited with {status} on SIGTERM");
        TestServer::start_in(data, options)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 request written byte for byte as given.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Request {
    /// A request with no headers beyond `Host`, `Connection: close` and, with a body, `Content-Length`.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            keep_alive: false,
        }
    }

    /// Leaves out `Connection: close`, for a connection that carries more requests.
    pub fn keep_alive(mut self) -> Self {
        self.keep_alive = true;
        self
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// `PUT path`.
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }

    /// Adds a header (a `Host` header given here replaces the default one).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its `Content-Type` (an empty type sends no `Content-Type` header).
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        if !content_type.is_empty() {
            self.headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        self.body = body.into();
        self
    }

    /// The bytes that go on the wire.
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" || self.method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !self.keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Sends the request to `addr` on a new connection and reads the whole response.
    #[track_caller]
    pub fn send(&self, addr: SocketAddr) -> Response {
        send_raw(addr, &self.to_bytes(addr))
    }
}

/// Writes `bytes` to a new connection to `addr` and reads the response until the server closes.
#[track_caller]
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.write_all(bytes).expect("writing the request");
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // A reset after a complete response (the server closing with unread request bytes) is fine.
        assert!(!raw.is_empty(), "reading the response from {addr}: {e}");
    }
    Response::parse(&raw)
}

/// A parsed HTTP/1.1 response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a complete response.
    #[track_caller]
    pub fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("response head is UTF-8");
        let rest = &raw[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut response = Response { status, headers, body: Vec::new() };
        response.body = if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().expect("numeric content-length");
            rest[..len.min(rest.len())].to_vec()
        } else {
            rest.to_vec()
        };
        response
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header with this name.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics when it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&rest[..eol]).unwrap_or("0");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    body
}

impl TestServer {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (no shutdown of any kind, as a power cut or the OOM killer
    /// would) and returns its data directory once the process is gone.
    #[track_caller]
    pub fn kill(mut self) -> DataDir {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert!(status.code().is_none(), "killed by a signal, not exited: {status}");
        self.data.take().expect("data dir")
    }
}

/// What came back on one raw connection within a deadline (see [`exchange`]).
#[derive(Debug)]
pub enum Exchange {
    /// A complete response (interim `1xx` responses are skipped).
    Response(Response),
    /// The server closed (or reset) the connection without sending a response.
    Closed,
    /// The connection could not be made (nothing listens, or the server is gone).
    Unreachable(String),
    /// No complete response and no close before the deadline: the server hung.
    TimedOut {
        /// Whatever had arrived by then.
        received: Vec<u8>,
    },
}

/// Writes `bytes` on a new connection (from a separate thread, so a server that answers before it has
/// read everything cannot deadlock the test), optionally half-closes the write side, and reads until
/// one response is complete, the server closes, or `deadline` passes.
///
/// Unlike [`send_raw`] it never waits for the server to close after a complete response, never panics
/// on a reset, and reports a hang as [`Exchange::TimedOut`] instead of blocking.
pub fn exchange(addr: SocketAddr, bytes: &[u8], deadline: Duration, half_close: bool) -> Exchange {
    let stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return Exchange::Unreachable(format!("connect {addr}: {e}")),
    };
    let mut writer = stream.try_clone().expect("cloning the socket");
    let data = bytes.to_vec();
    let write = std::thread::spawn(move || {
        // A server that answers early and closes makes the rest of the write fail: that is fine.
        let _ = writer.write_all(&data);
        if half_close {
            let _ = writer.shutdown(std::net::Shutdown::Write);
        }
    });
    let end = Instant::now() + deadline;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut reader = &stream;
    let outcome = loop {
        if let Some(response) = complete_response(&raw) {
            break Exchange::Response(response);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Exchange::TimedOut { received: std::mem::take(&mut raw) };
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match reader.read(&mut buf) {
            Ok(0) => break end_of_stream(&raw),
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            // A reset: keep whatever arrived before it.
            Err(_) => break end_of_stream(&raw),
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write.join();
    outcome
}

/// The bytes after any interim (`1xx`) responses at the start of `raw`.
fn skip_interim(mut raw: &[u8]) -> &[u8] {
    while raw.starts_with(b"HTTP/1.1 1") || raw.starts_with(b"HTTP/1.0 1") {
        match raw.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => raw = &raw[end + 4..],
            None => break,
        }
    }
    raw
}

/// The response in `raw`, once it is complete by its own framing (`Content-Length` or chunked).
fn complete_response(raw: &[u8]) -> Option<Response> {
    let raw = skip_interim(raw);
    if raw.starts_with(b"HTTP/1.1 1") {
        return None;
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let field = |name: &str| {
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let complete = if field("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        body.ends_with(b"0\r\n\r\n")
    } else if let Some(len) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.len() >= len
    } else {
        // Framed by the close only.
        false
    };
    complete.then(|| Response::parse(raw))
}

fn end_of_stream(raw: &[u8]) -> Exchange {
    let raw = skip_interim(raw);
    if raw.windows(4).any(|w| w == b"\r\n\r\n") {
        Exchange::Response(Response::parse(raw))
    } else {
        Exchange::Closed
    }
}

/// A connection to `to` from the loopback address `from` (such as `127.0.0.2`), for tests of what
/// one client address may do.
pub fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().map_err(std::io::Error::other)?;
    socket.bind(&local.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Sends `request` to `to` from the loopback address `from` and reads the whole response.
#[track_caller]
pub fn send_from(from: &str, to: SocketAddr, request: &Request) -> Response {
    let mut stream = connect_from(from, to).unwrap_or_else(|e| panic!("connect from {from}: {e}"));
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.write_all(&request.to_bytes(to)).expect("writing the request");
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(!raw.is_empty(), "reading the response from {to}: {e}");
    }
    Response::parse(&raw)
}

/// Standard base64 (with padding), for `Authorization: Basic` in tests.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_and_chunked_responses() {
        let r = Response::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi");
        assert_eq!((r.status, r.text(), r.header("x-a")), (200, "hi".to_owned(), Some("1")));
        let r = Response::parse(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!((r.status, r.text()), (404, "abcde".to_owned()));
    }

    #[test]
    fn writes_requests_byte_for_byte() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let bytes =
            Request::post("/x").header("Accept", "*/*").body("text/xml", "<a/>").to_bytes(addr);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nContent-Type: text/xml\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\n<a/>"
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn sms_codes_come_from_the_text() {
        let r = SmsRecord { to: "1".into(), text: "Код: 123456".into(), at: String::new() };
        assert_eq!(r.code(), "123456");
    }
}

//! A real SMTP server for the e-mail tests: Debian's `python3-aiosmtpd`, run by `/usr/bin/python3`
//! with the script `tests/smtp/server.py` on loopback in a throwaway directory.
//!
//! [`SmtpServer::start`] makes a CA and a certificate for `127.0.0.1`/`localhost` ([`TestCa`]), writes
//! the password file (mode 0600), and starts the script with three listeners on free ports: the
//! submission port (STARTTLS offered, and required before `AUTH` and mail), the smtps port (TLS from
//! the first byte) and a plain port (no TLS and no `AUTH`, for `?tls=none`). `AUTH PLAIN` and
//! `AUTH LOGIN` check [`USER`] and [`PASSWORD`]; recipients at `refused.invalid` get 550 and at
//! `tempfail.invalid` 451. It waits (bounded by [`WAIT`]) for the script's `READY` line.
//!
//! Every accepted message lands in the spool directory as one `.eml` (written whole, then renamed)
//! with its envelope beside it; [`SmtpServer::messages`] reads them in arrival order as
//! [`Delivered`], parsed with `mail-parser` so tests can read the headers and both parts.
//! [`SmtpServer::stop`] ends the server but keeps the spool, and [`SmtpServer::restart`] brings it
//! back on the same ports (the "server down, delivered once it is back" tests).
//!
//! The script exits when its standard input closes, and the handle holds that pipe: so the server
//! goes when the handle is dropped, and also when the test process dies without running `Drop`.
//! Without `/usr/bin/python3` able to `import aiosmtpd`, `start` skips loudly (see [`skip`]) and
//! answers `None`; under `CI=true` that skip fails the test, because `.ci/run` installs the package.
//! The pyenv `python3` that may come first on `PATH` is deliberately not used: Debian's package is
//! installed for the system interpreter only.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mail_parser::{HeaderValue, MessageParser, MimeHeaders as _};
use tempfile::TempDir;

use crate::{TestCa, WAIT, skip};

/// The interpreter Debian's `python3-aiosmtpd` is installed for.
pub const PYTHON: &str = "/usr/bin/python3";

/// The user the server accepts.
pub const USER: &str = "mailer@example.test";
/// Its password (in [`SmtpServer::password_file`]).
pub const PASSWORD: &str = "smtp-password-for-tests-Пароль";
/// Recipients in this domain are refused with 550.
pub const REFUSED_DOMAIN: &str = "refused.invalid";
/// Recipients in this domain are refused with 451 (try again later).
pub const TEMPFAIL_DOMAIN: &str = "tempfail.invalid";

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct SmtpOptions {
    /// The `AUTH` mechanisms offered (`PLAIN`, `LOGIN`).
    pub mechanisms: Vec<&'static str>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        Self { mechanisms: vec!["PLAIN", "LOGIN"] }
    }
}

/// One message the server accepted.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The message as received (after `DATA`, without the final dot).
    pub raw: Vec<u8>,
    /// The envelope's sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope's recipients (`RCPT TO`) that were accepted.
    pub rcpt_to: Vec<String>,
    /// The listener it came in on: `submission`, `smtps` or `plain`.
    pub listener: String,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS) when the message came.
    pub tls: bool,
    /// The user that authenticated, if any.
    pub auth_login: Option<String>,
}

impl Delivered {
    /// The message, parsed.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).expect("the server stored a parsable message")
    }

    /// The decoded `Subject`.
    pub fn subject(&self) -> Option<String> {
        self.parsed().subject().map(str::to_owned)
    }

    /// The first `text/plain` part, decoded.
    pub fn text(&self) -> Option<String> {
        self.parsed().body_text(0).map(|t| t.into_owned())
    }

    /// The first `text/html` part, decoded.
    pub fn html(&self) -> Option<String> {
        self.parsed().body_html(0).map(|t| t.into_owned())
    }

    /// A header's value (after `Name:`) as it was written, unfolded and not decoded; by name in any case.
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = self.parsed();
        let header = parsed.headers().iter().find(|h| h.name().eq_ignore_ascii_case(name))?;
        let raw = self.raw.get(header.offset_start() as usize..header.offset_end() as usize)?;
        Some(String::from_utf8_lossy(raw).replace("\r\n", "").replace('\n', "").trim().to_owned())
    }

    /// The `Message-ID` without its angle brackets.
    pub fn message_id(&self) -> Option<String> {
        self.parsed().message_id().map(str::to_owned)
    }

    /// The top-level content type as `type/subtype`, lower-case.
    pub fn content_type(&self) -> Option<String> {
        let parsed = self.parsed();
        let ct = parsed.content_type()?;
        Some(format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
    }

    /// The content types of the top-level part's sub-parts, in order, such as
    /// `["text/plain; charset=utf-8", "text/html; charset=utf-8"]`.
    pub fn part_types(&self) -> Vec<String> {
        let parsed = self.parsed();
        let Some(root) = parsed.part(0) else { return Vec::new() };
        let mail_parser::PartType::Multipart(children) = &root.body else { return Vec::new() };
        children
            .iter()
            .filter_map(|&i| parsed.part(i))
            .map(|p| {
                let ct = p.content_type();
                let kind = ct.map_or_else(String::new, |ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase()
                });
                match ct.and_then(|ct| ct.attribute("charset")) {
                    Some(charset) => format!("{kind}; charset={}", charset.to_ascii_lowercase()),
                    None => kind,
                }
            })
            .collect()
    }

    /// The `From` mailbox's address.
    pub fn from_address(&self) -> Option<String> {
        let parsed = self.parsed();
        let HeaderValue::Address(address) = parsed.header("From")? else { return None };
        address.first().and_then(|a| a.address()).map(str::to_owned)
    }
}

/// A running (or stopped) SMTP server and its files.
pub struct SmtpServer {
    dir: TempDir,
    options: SmtpOptions,
    child: Option<Child>,
    // Held open for the server's whole life: the script exits when this pipe closes.
    stdin: Option<ChildStdin>,
    submission_port: u16,
    smtps_port: u16,
    plain_port: u16,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("dir", &self.dir.path())
            .field("submission_port", &self.submission_port)
            .field("smtps_port", &self.smtps_port)
            .field("plain_port", &self.plain_port)
            .field("running", &self.child.is_some())
            .finish()
    }
}

/// Why the SMTP server cannot run on this machine, if it cannot.
pub fn unavailable() -> Option<String> {
    let probe = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(status) if status.success() => None,
        Ok(_) => Some(format!(
            "{PYTHON} cannot import aiosmtpd; the e-mail tests need Debian's python3-aiosmtpd \
             (apt-get install python3-aiosmtpd)"
        )),
        Err(e) => Some(format!("{PYTHON} cannot run ({e}); the e-mail tests need it")),
    }
}

/// The server script, beside this crate's sources.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp").join("server.py")
}

impl SmtpServer {
    /// Starts a server with the default options, or skips (see [`skip`]) and answers `None` when
    /// aiosmtpd is missing.
    #[track_caller]
    pub fn start() -> Option<SmtpServer> {
        Self::start_with(SmtpOptions::default())
    }

    /// Starts a server with `options`, or skips like [`SmtpServer::start`].
    #[track_caller]
    pub fn start_with(options: SmtpOptions) -> Option<SmtpServer> {
        if let Some(why) = unavailable() {
            skip(&why);
            return None;
        }
        match Self::try_start(options) {
            Ok(s) => Some(s),
            Err(e) => panic!("the SMTP server did not start: {e}"),
        }
    }

    /// Starts a server, or says why it could not.
    pub fn try_start(options: SmtpOptions) -> Result<SmtpServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("auth-smtp-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        write_files(dir.path())?;
        let mut server = SmtpServer {
            dir,
            options,
            child: None,
            stdin: None,
            submission_port: 0,
            smtps_port: 0,
            plain_port: 0,
        };
        // Port 0: the script binds free ports itself and says which, so no other process can take
        // one between a probe and the bind.
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .map_err(|e| format!("server.log: {e}"))?;
        let dir = self.dir.path();
        let mut child = Command::new(PYTHON)
            // No user site-packages or PYTHON* variables: only Debian's packages.
            .arg("-I")
            .arg(script())
            .args(["--port", &self.submission_port.to_string()])
            .args(["--smtps-port", &self.smtps_port.to_string()])
            .args(["--plain-port", &self.plain_port.to_string()])
            .arg("--cert")
            .arg(dir.join("server.pem"))
            .arg("--key")
            .arg(dir.join("server-key.pem"))
            .args(["--user", USER])
            .arg("--password-file")
            .arg(self.password_file())
            .args(["--mechanisms", &self.options.mechanisms.join(",")])
            .arg("--spool")
            .arg(self.spool())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {PYTHON}: {e}"))?;
        self.stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(WAIT) else {
            self.kill_now();
            return Err(format!("no READY line within {WAIT:?}:\n{}", self.log()));
        };
        let Some(ports) = line.trim().strip_prefix("READY ") else {
            self.kill_now();
            return Err(format!("the script did not start ({line:?}):\n{}", self.log()));
        };
        for pair in ports.split_whitespace() {
            let (name, port) = pair.split_once('=').ok_or("bad READY line")?;
            let port: u16 = port.parse().map_err(|_| "bad port in READY line")?;
            match name {
                "submission" => self.submission_port = port,
                "smtps" => self.smtps_port = port,
                "plain" => self.plain_port = port,
                other => return Err(format!("unknown listener {other}")),
            }
        }
        Ok(())
    }

    /// What the server logged so far (aiosmtpd's warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The loopback host every listener is on.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The submission port (STARTTLS required).
    pub fn submission_port(&self) -> u16 {
        self.submission_port
    }

    /// The smtps port (TLS from the first byte).
    pub fn smtps_port(&self) -> u16 {
        self.smtps_port
    }

    /// The plain port (no TLS, no `AUTH`).
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// `smtp://USER@127.0.0.1:PORT` on the submission port (the user percent-encoded).
    pub fn starttls_url(&self) -> String {
        format!("smtp://{}@127.0.0.1:{}", USER.replace('@', "%40"), self.submission_port)
    }

    /// `smtps://USER@127.0.0.1:PORT`.
    pub fn smtps_url(&self) -> String {
        format!("smtps://{}@127.0.0.1:{}", USER.replace('@', "%40"), self.smtps_port)
    }

    /// `smtp://127.0.0.1:PORT?tls=none` on the plain port (no user).
    pub fn plain_url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.plain_port)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// [`PASSWORD`] in a file of mode 0600, ending in a line break as an editor would leave it.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("smtp.secret")
    }

    /// Where accepted messages are written.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Delivered> {
        let Ok(entries) = std::fs::read_dir(self.spool()) else { return Vec::new() };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|eml| read_delivered(eml)).collect()
    }

    /// Waits (bounded by [`WAIT`]) until at least `count` messages arrived; returns them all.
    #[track_caller]
    pub fn wait_for_messages(&self, count: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + WAIT;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {count} messages, the server has {}:\n{}",
                messages.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the server (its listeners close; the spool stays).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            crate::wait_or_kill(&mut child);
        }
        crate::wait_port_closed(self.submission_port);
    }

    /// Starts the stopped server again on the same ports, with the same spool.
    #[track_caller]
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the SMTP server is still running");
        if let Err(e) = self.spawn() {
            panic!("the SMTP server did not start again: {e}");
        }
    }

    fn kill_now(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The CA, the server's certificate and key, the password file and the spool directory.
fn write_files(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;

    let ca = TestCa::new("auth-tests SMTP CA");
    let issued = ca.issue(&["127.0.0.1", "localhost"]);
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    write("ca.pem", &ca.pem())?;
    write("server.pem", &issued.cert_pem)?;
    write("server-key.pem", &issued.key_pem)?;
    write("smtp.secret", &format!("{PASSWORD}\n"))?;
    std::fs::set_permissions(dir.join("smtp.secret"), std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod smtp.secret: {e}"))?;
    std::fs::create_dir(dir.join("spool")).map_err(|e| format!("spool: {e}"))
}

/// One `.eml` and the envelope written beside it.
fn read_delivered(eml: &Path) -> Delivered {
    let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("reading {}: {e}", eml.display()));
    let meta_path = eml.with_extension("json");
    let meta: serde_json::Value = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no envelope beside {}", eml.display()));
    let text = |k: &str| meta.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    Delivered {
        raw,
        mail_from: text("mail_from").unwrap_or_default(),
        rcpt_to: meta
            .get("rcpt_tos")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        listener: text("listener").unwrap_or_default(),
        tls: meta.get("tls").and_then(serde_json::Value::as_bool).unwrap_or(false),
        auth_login: text("auth_login"),
    }
}

//! Helpers shared by the tests: spawning this test binary as a child process and reading the lines
//! it reports, a multi-threaded runtime, and fixtures.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use auth_core::model::Credential;
use auth_core::password::PasswordHash;
use auth_core::{Portal, PortalId, PortalSettings, Timestamp, User, UserId};

/// The environment variable naming the role of a child process.
pub(crate) const CHILD_ROLE: &str = "AUTH_SQLITE_TEST_CHILD";
/// The database file a child works on.
pub(crate) const CHILD_DB: &str = "AUTH_SQLITE_TEST_DB";
/// Lines a child reports start with this, so they stand out from the test harness's own output.
pub(crate) const MARK: &str = "@@ ";

/// A child process and the complete lines it reported.
pub(crate) struct Child {
    pub(crate) process: std::process::Child,
    lines: mpsc::Receiver<String>,
}

/// Starts this test binary as a child in `role`, with extra environment variables.
pub(crate) fn spawn_child(role: &str, db: &Path, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ROLE, role)
        .env(CHILD_DB, db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut process = cmd.spawn().unwrap();
    let stdout = process.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // A line cut by SIGKILL has no newline: it was never fully reported.
                Ok(_) if buf.last() != Some(&b'\n') => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if let Some(rest) = line.strip_prefix(MARK)
                        && tx.send(rest.to_owned()).is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    Child { process, lines }
}

impl Child {
    /// The next reported line, waiting at most `timeout`.
    pub(crate) fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for the process to exit (killing it after `timeout`) and returns every line it
    /// reported that was not read yet, and whether it exited successfully.
    pub(crate) fn finish(mut self, timeout: Duration) -> (Vec<String>, bool) {
        let deadline = Instant::now() + timeout;
        let ok = loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                break status.success();
            }
            if Instant::now() > deadline {
                let _ = self.process.kill();
                let _ = self.process.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The reader thread ends at EOF, which follows the exit.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (rest, ok)
    }
}

/// Reports one line to the parent, flushed at once (it may be killed right after).
pub(crate) fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// A multi-threaded runtime for a child's work.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A fixed instant for tests that do not move time.
pub(crate) fn t0() -> Timestamp {
    Timestamp::constant(1_768_031_184, 420_689_700)
}

/// A user with a fake PHC string.
pub(crate) fn user(id: UserId, portal: PortalId, email: &str) -> User {
    User {
        id,
        portal,
        email: email.to_owned(),
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
        is_admin: false,
        disabled: false,
        credential: Credential::Password(PasswordHash::from_phc(
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        )),
        phone: None,
        phone_activated: false,
        created_at: t0(),
        revision: 0,
    }
}

/// A portal with one host, at revision 0: a token can only be stored for a portal that exists.
pub(crate) fn portal(id: PortalId, host: &str) -> Portal {
    Portal {
        id,
        name: format!("portal {host}"),
        hosts: vec![host.to_owned()],
        settings: PortalSettings::default(),
        created_at: t0(),
        revision: 0,
    }
}

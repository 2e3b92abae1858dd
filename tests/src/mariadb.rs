//! A real MariaDB for the import tests and the import benchmark (spec §11): the server named by
//! `AUTH_TEST_MYSQL_URL` (`.ci/run` starts one with `.ci/mariadb.sh`), or else one this process starts
//! itself from Debian's `mariadbd` in a throwaway directory, so `cargo test` works outside CI too.
//!
//! A server started here listens on 127.0.0.1 only, runs as the current user, and is stopped and its
//! directory removed when this process ends: it is started under a small shell that waits on a pipe
//! from us and stops the server when the pipe closes, which happens however the test process ends.
//! Each test gets a database of its own ([`Database::create`]), dropped afterwards.
//! When there is neither a URL nor a `mariadbd`, [`Database::create`] says why with
//! [`crate::skip`] (a failure under `CI=true`) and returns `None`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;

/// The variable naming a server to use instead of starting one: `mysql://USER[:PASS]@HOST:PORT/`.
pub const URL_ENV: &str = "AUTH_TEST_MYSQL_URL";

/// Where Debian puts the server and its set-up tool.
const SERVERS: &[&str] = &["/usr/sbin/mariadbd", "/usr/bin/mariadbd", "/usr/sbin/mysqld"];
const INSTALLERS: &[&str] = &["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"];

/// A server the tests can create databases on.
#[derive(Debug)]
pub struct Server {
    /// `mysql://…@host:port` without a database.
    base: String,
    /// The pipe whose closing stops a server this process started.
    _stop: Option<Mutex<ChildStdin>>,
}

/// The server for this process, started on first use; `Err` says why there is none.
pub fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var(URL_ENV) {
                // Keep `mysql://user@host:port`, without a database or options.
                let url = url.trim();
                let authority = url.find("://").map_or(0, |i| i + 3);
                let base = match url[authority..].find(['/', '?']) {
                    Some(i) => url[..authority + i].to_owned(),
                    None => url.to_owned(),
                };
                return Ok(Server { base, _stop: None });
            }
            start_own()
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn find(candidates: &[&str], name: &str) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

fn start_own() -> Result<Server, String> {
    let server = find(SERVERS, "mariadbd").ok_or_else(|| {
        format!(
            "no MariaDB server binary ({}) and {URL_ENV} is not set; install mariadb-server or \
             `source .ci/mariadb.sh`",
            SERVERS.join(", ")
        )
    })?;
    let installer = find(INSTALLERS, "mariadb-install-db")
        .ok_or_else(|| "mariadbd is installed but mariadb-install-db is not".to_owned())?;
    let dir = tempfile::Builder::new()
        .prefix("auth-mariadb-")
        .tempdir()
        .map_err(|e| format!("tempdir: {e}"))?
        .keep();
    let user = current_user();
    let data = dir.join("data");
    let out = Command::new(&installer)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--user={user}"))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .map_err(|e| format!("running {}: {e}", installer.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "{} failed: {}",
            installer.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // A free port now; the server takes it a moment later (nothing else on this machine races for
    // ports in this range in practice, and a clash shows as a clear start failure).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let socket = dir.join("sock");
    let mut args = vec![
        "--no-defaults".to_owned(),
        format!("--datadir={}", data.display()),
        format!("--user={user}"),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--port={port}"),
        format!("--socket={}", socket.display()),
        format!("--pid-file={}", dir.join("pid").display()),
        format!("--log-error={}", dir.join("error.log").display()),
        "--skip-name-resolve".to_owned(),
        "--skip-log-bin".to_owned(),
        // A throwaway server need not survive a power cut.
        "--innodb-flush-log-at-trx-commit=0".to_owned(),
        "--character-set-server=utf8mb4".to_owned(),
    ];
    args.insert(0, server.display().to_string());
    // The shell starts the server, then blocks reading our pipe; end of file (this process is gone)
    // stops the server and removes its directory.
    let script = r#"dir="$1"; shift; "$@" >/dev/null 2>&1 & pid=$!; read _ignored; kill "$pid" 2>/dev/null; wait "$pid"; rm -rf "$dir""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(&dir)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting mariadbd: {e}"))?;
    let stop = child.stdin.take().ok_or("no pipe to the server's shell")?;
    let base = format!("mysql://root@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if block_on(async { connect(&base).await.map(|c| drop(c.disconnect())) }).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("mariadbd exited ({status}):\n{log}"));
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("mariadbd did not accept connections within 60 s:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("mariadb: started {} on 127.0.0.1:{port} in {}", server.display(), dir.display());
    Ok(Server { base, _stop: Some(Mutex::new(stop)) })
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "root".to_owned())
}

/// Runs a future to completion on a runtime of its own (the tests are synchronous).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

async fn connect(url: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::Opts::from_url(url).map_err(mysql_async::Error::Url)?;
    mysql_async::Conn::new(opts).await
}

/// A database of its own on the test server, dropped when this is dropped.
#[derive(Debug)]
pub struct Database {
    server: &'static Server,
    name: String,
}

impl Database {
    /// A fresh, empty database for `test`, or `None` (after saying why) when no server can be had.
    pub fn create(test: &str) -> Option<Database> {
        let server = match server() {
            Ok(s) => s,
            Err(why) => {
                crate::skip(&format!("import test {test}: {why}"));
                return None;
            }
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name =
            format!("auth_it_{test}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let db = Database { server, name };
        db.admin(&format!(
            "CREATE DATABASE `{}` CHARACTER SET utf8 COLLATE utf8_general_ci",
            db.name
        ));
        Some(db)
    }

    /// The URL the importer is given: `mysql://…/<database>`.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server.base, self.name)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn admin(&self, sql: &str) {
        let base = format!("{}/", self.server.base);
        block_on(async {
            let mut conn = connect(&base).await.expect("connect to the test MariaDB");
            conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = conn.disconnect().await;
        });
    }

    /// Runs SQL (several statements allowed) in this database.
    #[track_caller]
    pub fn exec(&self, sql: &str) {
        let url = self.url();
        block_on(async {
            let mut conn = connect(&url).await.expect("connect to the test database");
            if let Err(e) = conn.query_drop(sql).await {
                let head: String = sql.chars().take(300).collect();
                panic!("{e}\nin: {head}");
            }
            let _ = conn.disconnect().await;
        });
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        let base = format!("{}/", self.server.base);
        // Never panic in a drop (it would abort a failing test's unwinding).
        let _ = block_on(async {
            let mut conn = connect(&base).await?;
            conn.query_drop(sql).await?;
            conn.disconnect().await
        });
    }
}

//! The server under test: a temporary data dir, admin commands through the real CLI, and the real
//! `auth-server serve` process on a free loopback port.
//!
//! The store is a parameter ([`Store`]) and [`Server::prepare`] is the one place that knows how to
//! get an empty store of each kind; everything after that (seeding, serving, measuring) goes through the
//! binary and HTTP and is the same for every store.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Which store the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Store {
    /// The embedded SQLite file in the data dir (the default deployment).
    Sqlite,
    /// A fresh database on the PostgreSQL cluster named by `AUTH_BENCH_POSTGRES_URL` (or
    /// `AUTH_TEST_POSTGRES_URL`, which `source .ci/postgres.sh` sets), dropped after the run.
    Postgres,
}

/// A database created for one run, dropped when the run ends.
struct BenchDb {
    server: String,
    name: String,
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = run_sql(&self.server, &sql) {
            println!("[serve] could not drop the bench database {}: {e:#}", self.name);
        }
    }
}

fn run_sql(url: &str, sql: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
        let conn = tokio::spawn(conn);
        client.batch_execute(sql).await.with_context(|| format!("`{sql}` failed"))?;
        drop(client);
        let _ = conn.await;
        Ok(())
    })
}

/// `url` with its database name replaced by `name`.
fn with_dbname(url: &str, name: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{}{}", &url[..path], name, &url[query..])
}

/// A prepared, not yet running server: binary, data dir and environment.
pub(crate) struct Server {
    binary: PathBuf,
    data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    _db: Option<BenchDb>,
}

impl Server {
    /// An empty store of the given kind, with production hashing parameters and the pool defaults,
    /// plus `extra_env` (`AUTH_…` overrides).
    pub(crate) fn prepare(
        store: Store,
        binary: &Path,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let mut data_dir = tempfile::Builder::new()
            .prefix("auth-bench-")
            .tempdir()
            .context("cannot create a temporary data dir")?;
        // AUTH_BENCH_KEEP=1 keeps the data dir (database and serve.log) for a post-mortem.
        if std::env::var_os("AUTH_BENCH_KEEP").is_some_and(|v| v == "1") {
            data_dir.disable_cleanup(true);
            println!("[serve] keeping the data dir {}", data_dir.path().display());
        }
        let mut env = Vec::new();
        let db = match store {
            // Everything lives in the data dir; nothing to set.
            Store::Sqlite => None,
            Store::Postgres => {
                let server = ["AUTH_BENCH_POSTGRES_URL", "AUTH_TEST_POSTGRES_URL"]
                    .iter()
                    .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
                    .context(
                        "--store postgres needs AUTH_BENCH_POSTGRES_URL (or AUTH_TEST_POSTGRES_URL): \
                         run `source .ci/postgres.sh` first for a throwaway cluster",
                    )?;
                let name = format!("auth_bench_{}", std::process::id());
                run_sql(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
                run_sql(&server, &format!("CREATE DATABASE {name}"))?;
                env.push(("AUTH_DATABASE_URL".to_owned(), with_dbname(&server, &name)));
                Some(BenchDb { server, name })
            }
        };
        env.extend(extra_env.iter().cloned());
        Ok(Server { binary: binary.to_path_buf(), data_dir, env, _db: db })
    }

    /// A copy of this store as it stands now, under a data dir (and on PostgreSQL a database) of its
    /// own, so that a later phase can serve this state beside the later one. The server must be
    /// stopped: the data dir's files (the SQLite database with its WAL, the key files, the session
    /// counters; not the logs, nor the WAL index, which SQLite rebuilds) are copied as they are, and
    /// PostgreSQL copies a database only while nobody is connected to it.
    pub(crate) fn snapshot(&self) -> anyhow::Result<Server> {
        let data_dir = tempfile::Builder::new()
            .prefix("auth-bench-copy-")
            .tempdir()
            .context("cannot create a temporary data dir")?;
        for entry in std::fs::read_dir(self.data_dir.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let text = name.to_string_lossy();
            if entry.file_type()?.is_file() && !text.ends_with(".log") && !text.ends_with("-shm") {
                std::fs::copy(entry.path(), data_dir.path().join(&name))
                    .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            }
        }
        let mut env = self.env.clone();
        let db = match &self._db {
            None => None,
            Some(db) => {
                let name = format!("{}_copy", db.name);
                run_sql(&db.server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
                run_sql(&db.server, &format!("CREATE DATABASE {name} TEMPLATE {}", db.name))?;
                env.retain(|(k, _)| k != "AUTH_DATABASE_URL");
                env.push(("AUTH_DATABASE_URL".to_owned(), with_dbname(&db.server, &name)));
                Some(BenchDb { server: db.server.clone(), name })
            }
        };
        Ok(Server { binary: self.binary.clone(), data_dir, env, _db: db })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--data-dir").arg(self.data_dir.path());
        // The caller's own AUTH_… settings must not leak into the measurement.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AUTH_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs an admin subcommand (`portal add …`, `user add …`) to completion.
    pub(crate) fn admin(&self, args: &[&str]) -> anyhow::Result<()> {
        self.admin_output(args).map(drop)
    }

    /// Runs an admin subcommand to completion and answers its standard output.
    pub(crate) fn admin_output(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = self.command();
        cmd.args(args);
        crate::output(&mut cmd)
    }

    /// The data directory (the SQLite file is `auth.db` in it).
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The PostgreSQL database's URL, when the store is PostgreSQL.
    pub(crate) fn database_url(&self) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == "AUTH_DATABASE_URL").map(|(_, v)| v.as_str())
    }

    /// The postmaster of the PostgreSQL cluster when it runs on this machine (its backends' CPU is
    /// counted per scenario), found through a backend's parent.
    pub(crate) fn db_postmaster(&self) -> Option<u32> {
        let url = self.database_url()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let postmaster = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.ok()?;
            let conn = tokio::spawn(conn);
            let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.ok()?.get(0);
            // Read while the connection is open: once it closes the backend exits, and a lookup
            // after that found no process as often as not, which left a run without the database's
            // CPU.
            let parent = super::cpu::parent_of(u32::try_from(backend).ok()?);
            drop(client);
            let _ = conn.await;
            parent
        });
        if postmaster.is_none() {
            println!(
                "[serve] the PostgreSQL postmaster was not found: the database's CPU is not counted"
            );
        }
        postmaster
    }

    /// Runs many admin subcommands, `parallel` at a time (each `user add` hashes its password once).
    pub(crate) fn admin_many(&self, jobs: &[Vec<String>], parallel: usize) -> anyhow::Result<()> {
        for chunk in jobs.chunks(parallel.max(1)) {
            let mut children = Vec::new();
            for args in chunk {
                let mut cmd = self.command();
                cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
                children.push((args, cmd.spawn().context("cannot start auth-server")?));
            }
            for (args, child) in children {
                let out = child.wait_with_output()?;
                if !out.status.success() {
                    bail!(
                        "`auth-server {}` failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
        Ok(())
    }

    /// Starts `auth-server serve` on a free loopback port; its log goes to `serve.log` in the data dir.
    pub(crate) fn start(&self) -> anyhow::Result<Running> {
        self.start_with("serve.log", &[])
    }

    /// [`Server::start`] with more `AUTH_…` settings (a second process on the same data dir, such as
    /// the TLS listener of `self_tls`), logging to `log_name` in the data dir.
    pub(crate) fn start_with(
        &self,
        log_name: &str,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Running> {
        let log_path = self.data_dir.path().join(log_name);
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = self.command();
        cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
        cmd.args(["--listen", "127.0.0.1:0", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().context("cannot start auth-server serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // The server prints `listening on http://ADDR` (or `https://`) once bound; the rest of stdout is drained so
        // the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim();
                let addr = line
                    .strip_prefix("listening on http://")
                    .or_else(|| line.strip_prefix("listening on https://"));
                if let Some(addr) = addr
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("auth-server did not report its address within 30 s; its log:\n{log}");
        };
        let addr: SocketAddr =
            addr.parse().with_context(|| format!("unreadable listen address {addr:?}"))?;
        Ok(Running { child: Some(child), addr, log_path })
    }
}

/// A running server process; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Running {
    child: Option<Child>,
    pub(crate) addr: SocketAddr,
    log_path: PathBuf,
}

impl Running {
    /// The server's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process's peak resident set so far (`VmHWM`), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.as_ref().map(Child::id).context("server already stopped")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("cannot read the server's /proc status (Linux only)")?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok(kib / 1024.0)
    }

    /// Whether the process is still alive (it must be, after every scenario).
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            bail!(
                "auth-server exited during the benchmark ({status}); last log lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Counts log lines at WARN or ERROR (a sign of trouble worth a look after a run).
    pub(crate) fn log_summary(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let warn = log.lines().filter(|l| l.contains("WARN")).count();
        let error = log.lines().filter(|l| l.contains("ERROR")).count();
        (warn, error)
    }

    /// Asks the server to stop (SIGTERM, for a graceful shutdown) and waits up to 10 s before killing it.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

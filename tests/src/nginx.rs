//! A real nginx (Debian's package) in front of the server under test, started as the current user on
//! loopback: a generated config in a temporary prefix, `daemon off`, one process, its pid file, logs
//! and temporary files all inside that prefix; killed when dropped.
//!
//! [`Upstream`] is the protected application behind it: a tiny HTTP server that answers every
//! request with the request head it received, so a test can see what nginx passed on.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tempfile::TempDir;

use crate::{Request, Response, WAIT, skip};

/// The nginx binary: `AUTH_TEST_NGINX`, else Debian's path, else whatever `PATH` has.
fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("AUTH_TEST_NGINX") {
        return Some(PathBuf::from(bin));
    }
    let debian = Path::new("/usr/sbin/nginx");
    if debian.is_file() {
        return Some(debian.to_owned());
    }
    let found = Command::new("nginx").arg("-v").stdin(Stdio::null()).output();
    found.is_ok_and(|o| o.status.success()).then(|| PathBuf::from("nginx"))
}

/// A free loopback port (bound and released: nginx binds it again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with `http_block` (the inside of `http { … }`, where `{listen}` stands for the
    /// loopback address it must listen on), or skips and answers `None` when nginx is missing.
    #[track_caller]
    pub fn start(http_block: &str) -> Option<Nginx> {
        let Some(bin) = binary() else {
            skip(
                "nginx is not installed (`apt-get install -y nginx`); the forward-auth tests need it",
            );
            return None;
        };
        let dir = tempfile::Builder::new().prefix("auth-nginx-").tempdir().expect("tempdir");
        let prefix = dir.path();
        std::fs::create_dir_all(prefix.join("logs")).expect("logs dir");
        std::fs::create_dir_all(prefix.join("tmp")).expect("tmp dir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let p = prefix.display();
        // One process (`master_process off`; `daemon off` comes from `-g`): no workers, so no privilege drop and no user to pick;
        // every path nginx writes is in the prefix.
        let config = format!(
            "master_process off;\n\
             pid {p}/nginx.pid;\n\
             error_log {p}/logs/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             access_log {p}/logs/access.log;\n\
             client_body_temp_path {p}/tmp/body;\n\
             proxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\n\
             uwsgi_temp_path {p}/tmp/uwsgi;\n\
             scgi_temp_path {p}/tmp/scgi;\n\
             {}\n\
             }}\n",
            http_block.replace("{listen}", &addr.to_string())
        );
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config).expect("writing nginx.conf");
        let mut child = Command::new(&bin)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect(addr).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let log =
                    std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
                panic!("nginx exited ({status}):\n{err}\n{log}");
            }
            assert!(Instant::now() < deadline, "nginx did not listen on {addr} within {WAIT:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Nginx { child, addr, dir })
    }

    /// Where nginx listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a request to nginx and reads the whole response.
    #[track_caller]
    pub fn send(&self, request: Request) -> Response {
        request.send(self.addr)
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The protected application: answers `200` with the request head it received as the body.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Starts it on a loopback port.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || answer(stream));
            }
        });
        Upstream { addr, stop }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let mut reader = BufReader::new(&stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let body = format!("upstream saw:\n{head}");
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(reply.as_bytes());
}

//! The requests of each scenario, with the check of each answer, plus the 2FA users' time-step book.
//!
//! Request bodies are built once per user, so the generator spends its time on sockets, not on
//! formatting. Answers are checked by status and a cheap look at the body (the full decoders are the
//! codec micro-benchmarks' business and the integration tests' job).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_core::totp;
use auth_wire::Endpoint;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};

use super::load::{Conn, Outcome, Reply, Workload};

/// `POST /api/2.0/authentication`, from the endpoint table.
pub(crate) static LOGIN: LazyLock<String> =
    LazyLock::new(|| Endpoint::Authenticate.path(&[], None));
/// `GET /api/2.0/people/@self`.
pub(crate) static SELF: LazyLock<String> = LazyLock::new(|| Endpoint::SelfProfile.path(&[], None));
/// `GET /auth/verify`: the front door's forward-auth check (not a row of the endpoint table, decision
/// 0006, so its path is written here as the proxies' configurations write it).
pub(crate) const VERIFY: &str = "/auth/verify";
/// `GET /healthz`.
pub(crate) static HEALTHZ: LazyLock<String> = LazyLock::new(|| Endpoint::Healthz.path(&[], None));

/// A seeded user: login, password, and the portal host it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) host: String,
}

impl User {
    /// The JSON credentials body, with the right password or a wrong one.
    pub(crate) fn body(&self, right_password: bool) -> Bytes {
        let password =
            if right_password { self.password.clone() } else { format!("{}-wrong", self.password) };
        // E-mails and passwords here are plain ASCII without quotes or backslashes.
        Bytes::from(format!(r#"{{"userName":"{}","password":"{password}"}}"#, self.email))
    }
}

pub(crate) fn post(path: &str, host: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(Full::new(body))
        .unwrap_or_default()
}

pub(crate) fn get(path: &str, host: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::get(path).header(HOST, host).header(ACCEPT, "application/json");
    if let Some(token) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    req.body(Full::new(Bytes::new())).unwrap_or_default()
}

/// Classifies a reply: the expected status with the expected body text is `Ok`.
fn expect(reply: anyhow::Result<Reply>, status: u16, needle: &str) -> Outcome {
    match reply {
        Err(_) => Outcome::Io,
        Ok(r) if r.status.as_u16() != status => Outcome::Status(r.status.as_u16()),
        Ok(r) if !r.has(needle) => Outcome::BadBody(status),
        Ok(_) => Outcome::Ok(status),
    }
}

type Fut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// A GET that must answer 200 with `needle` in the body (`healthz`, `self`).
pub(crate) struct Get {
    pub(crate) path: &'static str,
    pub(crate) host: String,
    pub(crate) token: Option<String>,
    pub(crate) needle: &'static str,
}

impl Workload for Get {
    fn run<'a>(&'a self, conn: &'a mut Conn) -> Fut<'a> {
        Box::pin(async move {
            let reply = conn.send(get(self.path, &self.host, self.token.as_deref())).await;
            expect(reply, 200, self.needle)
        })
    }
}

/// `GET` with the next of many tokens each time (`self_spread`: lookups spread over many rows).
pub(crate) struct GetRotating {
    path: &'static str,
    host: String,
    /// `Bearer <token>` header values, prepared once.
    headers: Vec<String>,
    next: Cell<usize>,
}

impl GetRotating {
    pub(crate) fn new(path: &'static str, host: &str, tokens: Vec<String>) -> GetRotating {
        let headers = tokens.into_iter().map(|t| format!("Bearer {t}")).collect();
        GetRotating { path, host: host.to_owned(), headers, next: Cell::new(0) }
    }
}

impl Workload for GetRotating {
    fn run<'a>(&'a self, conn: &'a mut Conn) -> Fut<'a> {
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        Box::pin(async move {
            let Some(auth) = self.headers.get(i % self.headers.len().max(1)) else {
                return Outcome::Starved;
            };
            let req = Request::get(self.path)
                .header(HOST, &self.host)
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, auth.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap_or_default();
            expect(conn.send(req).await, 200, "\"userName\":")
        })
    }
}

/// Social logins with ID tokens round-robin over prepared bodies (the `social_login` scenario).
pub(crate) struct SocialLogin {
    pub(crate) bodies: Vec<Bytes>,
    pub(crate) host: String,
    pub(crate) next: Cell<usize>,
}

impl Workload for SocialLogin {
    fn run<'a>(&'a self, conn: &'a mut Conn) -> Fut<'a> {
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        Box::pin(async move {
            let Some(body) = self.bodies.get(i % self.bodies.len().max(1)) else {
                return Outcome::Starved;
            };
            expect(conn.send(post(&LOGIN, &self.host, body.clone())).await, 200, "\"token\":\"")
        })
    }
}

/// Password logins round-robin over `users`.
pub(crate) struct Login {
    bodies: Vec<(String, Bytes)>,
    next: Cell<usize>,
    right_password: bool,
    /// Overload: a 503 `busy` with `Retry-After` is a correct answer too.
    accept_busy: bool,
}

impl Login {
    /// Logins with the right password (expect 200 and a token) or a wrong one (expect 401).
    pub(crate) fn new(users: &[User], right_password: bool, accept_busy: bool) -> Login {
        let bodies = users.iter().map(|u| (u.host.clone(), u.body(right_password))).collect();
        Login { bodies, next: Cell::new(0), right_password, accept_busy }
    }
}

impl Workload for Login {
    fn run<'a>(&'a self, conn: &'a mut Conn) -> Fut<'a> {
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        Box::pin(async move {
            let Some((host, body)) = self.bodies.get(i % self.bodies.len().max(1)) else {
                return Outcome::Starved;
            };
            let reply = conn.send(post(&LOGIN, host, body.clone())).await;
            if self.accept_busy
                && let Ok(r) = &reply
                && r.status.as_u16() == 503
            {
                return if r.retry_after && r.has("\"busy\"") {
                    Outcome::Ok(503)
                } else {
                    Outcome::BadBody(503)
                };
            }
            if self.right_password {
                expect(reply, 200, "\"token\":\"")
            } else {
                expect(reply, 401, "invalid_credentials")
            }
        })
    }
}

/// The current TOTP time step by the wall clock (what `auth_core::totp::step_at` computes from a
/// timestamp; the server runs on the same machine and clock).
pub(crate) fn current_step() -> u64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs / totp::STEP_SECONDS
}

/// A 2FA user with an activated TOTP app, and the last time step the server has seen from them.
pub(crate) struct TfaUser {
    pub(crate) user: User,
    body: Bytes,
    secret: Vec<u8>,
    last_step: Cell<u64>,
}

impl TfaUser {
    pub(crate) fn new(user: User, secret: Vec<u8>, last_step: u64) -> TfaUser {
        let body = user.body(true);
        TfaUser { user, body, secret, last_step: Cell::new(last_step) }
    }
}

/// Step 1 + step 2 with a TOTP code, over a pool of activated users.
///
/// A time step, once used, never validates again for that user, and the server accepts the current
/// step ±1. Each operation therefore takes the next user (round-robin) whose last used step is
/// before `now + 1`, and sends the code of the earliest unused step in `[now, now + 1]`: never
/// `now - 1`, which the server could already consider expired if a step boundary passes while the
/// request waits for the hashing pool. Each user so gives two logins at once and one more every 30 s;
/// the pool is sized from the measured hash rate so it never runs dry (an empty pool shows up as
/// `starved` in the results, and would make the scenario measure the pool instead of the server).
pub(crate) struct LoginTfa {
    users: Vec<TfaUser>,
    cursor: Cell<usize>,
}

impl LoginTfa {
    pub(crate) fn new(users: Vec<TfaUser>) -> LoginTfa {
        LoginTfa { users, cursor: Cell::new(0) }
    }

    /// How long until every user has two unused time steps again (the current and the next), so a
    /// second `login_tfa` window (the scale phase's) finds the whole pool usable.
    pub(crate) fn rest(&self) -> std::time::Duration {
        let newest = self.users.iter().map(|u| u.last_step.get()).max().unwrap_or(0);
        let ready_at = (newest + 1).saturating_mul(totp::STEP_SECONDS);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        std::time::Duration::from_secs(ready_at).saturating_sub(now)
    }

    /// Reserves a user and a step for one login.
    fn take(&self) -> Option<(&TfaUser, u64)> {
        let now = current_step();
        let n = self.users.len();
        for k in 0..n {
            let i = (self.cursor.get() + k) % n;
            let u = self.users.get(i)?;
            if u.last_step.get() < now + 1 {
                let step = (u.last_step.get() + 1).max(now);
                u.last_step.set(step);
                self.cursor.set(i + 1);
                return Some((u, step));
            }
        }
        None
    }
}

impl Workload for LoginTfa {
    fn run<'a>(&'a self, conn: &'a mut Conn) -> Fut<'a> {
        Box::pin(async move {
            let Some((u, step)) = self.take() else { return Outcome::Starved };
            let host = &u.user.host;
            let first =
                expect(conn.send(post(&LOGIN, host, u.body.clone())).await, 200, "\"tfa\":true");
            if first != Outcome::Ok(200) {
                return first;
            }
            let code = totp::code_at_step(&u.secret, step);
            let path = Endpoint::Code.path(&[&code], None);
            expect(conn.send(post(&path, host, u.body.clone())).await, 200, "\"token\":\"")
        })
    }
}

/// Takes a JSON string member's value out of a body (`"tfaKey":"…"`, `"token":"…"`).
pub(crate) fn json_str<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let rest = text.get(start..)?;
    rest.find('"').and_then(|end| rest.get(..end))
}

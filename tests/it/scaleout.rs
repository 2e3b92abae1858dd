//! Two `auth-server serve` nodes on one PostgreSQL database (issue 8): the security limits hold across
//! nodes, not per process — the original portal's per-process counters are what this guards against.
//!
//! The nodes share one data directory (one server key, one SMS file) and a fresh database created for
//! the test on the cluster named by `AUTH_TEST_POSTGRES_URL` (`.ci/run` starts one). Without that
//! variable the tests say loudly why they are skipped; under `CI=true` that is a failure.

use std::thread;

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};

const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

/// A database of its own on the test cluster, dropped afterwards (the SMS tests use it too).
pub(crate) struct Db {
    server: String,
    name: String,
    url: String,
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

async fn run_sql(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    let conn = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = conn.await;
}

fn with_dbname(url: &str, name: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{}{}", &url[..path], name, &url[query..])
}

impl Db {
    pub(crate) fn create(test: &str) -> Option<Db> {
        let Ok(server) = std::env::var("AUTH_TEST_POSTGRES_URL") else {
            auth_tests::skip(&format!(
                "scale-out test {test}: AUTH_TEST_POSTGRES_URL is not set; .ci/run sets it (locally: source .ci/postgres.sh)"
            ));
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("auth_it_{}_{}_{}", test, std::process::id(), nanos);
        block_on(run_sql(&server, &format!("CREATE DATABASE {name}")));
        Some(Db { url: with_dbname(&server, &name), server, name })
    }

    /// The URL of this database.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        block_on(run_sql(&self.server, &sql));
    }
}

/// Two nodes on one database and one data directory, with portals `sms.example` (SMS second factor)
/// and `app.example` (TOTP, login throttle relaxed so racing requests reach the code check).
fn two_nodes(db: &Db, users: &[(&str, &str)]) -> (TestServer, TestServer) {
    let data = DataDir::new();
    let env = [("AUTH_DATABASE_URL", db.url.as_str())];
    let cli = |args: &[&str]| data.run_cli_env(args, &env).ok().to_owned();
    cli(&["portal", "add", "--host", "sms.example", "--name", "SMS"]);
    cli(&["portal", "add", "--host", "app.example", "--name", "App"]);
    cli(&["portal", "set", "--host", "sms.example", "--tfa", "sms"]);
    cli(&["portal", "set", "--host", "app.example", "--tfa", "app", "--set", "login_limit=100"]);
    for (email, host) in users {
        cli(&["user", "add", "--email", email, "--password", PASSWORD, "--portal", host]);
    }
    let opts = ServerOptions::new().env("AUTH_DATABASE_URL", &db.url);
    let a = TestServer::start_in(data.share(), opts.clone());
    let b = TestServer::start_in(data, opts);
    (a, b)
}

fn login_form(email: &str, password: &str) -> String {
    format!("userName={email}&password={}", password.replace(' ', "+"))
}

fn post(node: &TestServer, host: &str, path: &str, form: &str) -> Response {
    node.send(Request::post(path).header("Host", host).body(FORM, form.to_owned()))
}

fn code_of(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[test]
fn login_throttle_and_sms_codes_hold_across_nodes() {
    let Some(db) = Db::create("throttle_sms") else { return };
    let (a, b) =
        two_nodes(&db, &[("t@example.com", "sms.example"), ("s@example.com", "sms.example")]);
    let nodes = [&a, &b];

    // Five failures in total, alternating nodes; the sixth attempt is refused on either node.
    for i in 0..5 {
        let r = post(
            nodes[i % 2],
            "sms.example",
            "/api/2.0/authentication",
            &login_form("t@example.com", "wrong"),
        );
        assert_eq!(r.status, 401, "attempt {i}");
    }
    for node in nodes {
        let r = post(
            node,
            "sms.example",
            "/api/2.0/authentication",
            &login_form("t@example.com", PASSWORD),
        );
        assert_eq!((r.status, code_of(&r)), (429, "login_throttled".to_owned()));
    }

    // A code sent through node A, used on node B, is refused on node A.
    let creds = login_form("s@example.com", PASSWORD);
    let r = post(
        &a,
        "sms.example",
        "/api/2.0/authentication/setphone",
        &format!("{creds}&mobilePhone=79123456789"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let code = a.wait_for_sms(1)[0].code();
    let r = post(&b, "sms.example", &format!("/api/2.0/authentication/{code}"), &creds);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&a, "sms.example", &format!("/api/2.0/authentication/{code}"), &creds);
    assert_eq!(r.status, 401);
    // The resend cool-down is shared too: a sendsms on B right after step 1 on A is refused.
    let r = post(&a, "sms.example", "/api/2.0/authentication", &creds);
    assert_eq!(r.status, 200);
    let r = post(&b, "sms.example", "/api/2.0/authentication/sendsms", &creds);
    assert_eq!((r.status, code_of(&r)), (429, "sms_send_limited".to_owned()));
}

#[test]
fn one_totp_code_wins_once_and_logout_is_seen_by_the_other_node() {
    let Some(db) = Db::create("totp_logout") else { return };
    let (a, b) = two_nodes(&db, &[("ada@example.com", "app.example")]);
    let creds = login_form("ada@example.com", PASSWORD);
    let r = post(&a, "app.example", "/api/2.0/authentication", &creds);
    let key = r.json()["response"]["tfaKey"].as_str().expect("tfaKey").to_owned();
    let secret = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap();
    let step =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30;
    let code = auth_core::totp::code_at_step(&secret, step);

    let addrs = [a.addr(), b.addr()];
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let req = Request::post(&format!("/api/2.0/authentication/{code}"))
                .header("Host", "app.example")
                .body(FORM, creds.clone());
            let addr = addrs[i % 2];
            thread::spawn(move || req.send(addr))
        })
        .collect();
    let responses: Vec<Response> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    let wins: Vec<&Response> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(wins.len(), 1, "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(responses.iter().all(|r| matches!(r.status, 200 | 401 | 429)), "never a 5xx");
    let token = wins[0].json()["response"]["token"].as_str().unwrap().to_owned();

    let check = |node: &TestServer| {
        node.send(
            Request::get("/api/2.0/authentication")
                .header("Host", "app.example")
                .header("Authorization", &token),
        )
        .text()
    };
    assert!(check(&a).ends_with(r#""response":true}"#));
    assert!(check(&b).ends_with(r#""response":true}"#));
    let out = b.send(
        Request::post("/api/2.0/authentication/logout")
            .header("Host", "app.example")
            .header("Authorization", &token),
    );
    assert_eq!(out.status, 200);
    assert!(
        check(&a).ends_with(r#""response":false}"#),
        "revoked on B, refused by A on the very next request"
    );
}

#[test]
fn each_outbox_message_is_sent_once() {
    let Some(db) = Db::create("outbox_once") else { return };
    let users: Vec<String> = (0..8).map(|i| format!("u{i}@example.com")).collect();
    let pairs: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "sms.example")).collect();
    let (a, b) = two_nodes(&db, &pairs);
    for (i, u) in users.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        let phone = format!("7912345670{i}");
        let r = post(
            node,
            "sms.example",
            "/api/2.0/authentication/setphone",
            &format!("{}&mobilePhone={phone}", login_form(u, PASSWORD)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let sent = a.wait_for_sms(8);
    // Both workers keep polling; give them time to (wrongly) send anything twice.
    thread::sleep(std::time::Duration::from_millis(500));
    let sent_later = b.sms_messages();
    assert_eq!(sent_later.len(), 8, "{sent_later:?}");
    let mut to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), 8, "one message per phone");
}

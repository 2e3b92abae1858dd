//! Helpers shared by the tests: a throwaway database per test on the server named by
//! `AUTH_TEST_POSTGRES_URL`, and the line that says a test is skipped without one.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

/// The variable naming the server the tests may create databases on.
pub(crate) const URL_VAR: &str = "AUTH_TEST_POSTGRES_URL";

/// The server's URL, or `None` after saying why the test is skipped.
///
/// The line goes straight to stderr rather than through `eprintln!`, which the test harness captures
/// and shows only for failures: a skip must be visible in a passing run.
pub(crate) fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            // CI installs and starts PostgreSQL: there, a skip would be a pass that proves nothing.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true, and auth-postgres test {test} cannot run: {URL_VAR} is not set"
            );
            let line = format!(
                "SKIPPED auth-postgres test {test}: {URL_VAR} is not set; .ci/run sets it \
                 (locally: source .ci/postgres.sh)\n"
            );
            // One write, so lines of tests skipping in parallel do not interleave.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
    }
}

/// Connects a plain client (no pool) to `url`.
pub(crate) async fn client(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// `url` with its database name replaced by `name`, for URLs and `key=value` strings alike.
pub(crate) fn with_dbname(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // In a key=value string the last setting of a key wins.
        return format!("{url} dbname={name}");
    };
    let authority = scheme_end + 3;
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{}{}", &url[..path], name, &url[query..])
}

/// A database created for one test and dropped when this is dropped (also when the test fails).
pub(crate) struct TestDb {
    server: String,
    name: String,
    /// The URL of the test's database.
    pub(crate) url: String,
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying so) when no server is configured.
    pub(crate) async fn create(test: &str) -> Option<TestDb> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let server = server_url(test)?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!(
            "auth_pg_test_{}_{}_{}",
            std::process::id(),
            nanos,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        client(&server).await.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = with_dbname(&server, &name);
        Some(TestDb { server, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a runtime of
        // its own can. FORCE ends the sessions the test's pools still hold.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                client(&server)
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "could not drop test database {}", self.name);
        }
    }
}

#[test]
fn dbname_is_replaced_in_every_url_form() {
    let cases = [
        ("postgres://u@127.0.0.1:5432/auth", "postgres://u@127.0.0.1:5432/t1"),
        ("postgres://u@127.0.0.1:5432", "postgres://u@127.0.0.1:5432/t1"),
        ("postgres://u:p@h/auth?sslmode=disable", "postgres://u:p@h/t1?sslmode=disable"),
        ("postgresql:///auth?host=/tmp/pg", "postgresql:///t1?host=/tmp/pg"),
        ("host=/tmp/pg user=u dbname=auth", "host=/tmp/pg user=u dbname=auth dbname=t1"),
    ];
    for (url, want) in cases {
        assert_eq!(with_dbname(url, "t1"), want, "{url}");
    }
}

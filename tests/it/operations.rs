//! Operations (issue 17, spec §13): backup while logins run and restore into a fresh data
//! directory; a restore refused while a server uses the database or under another key.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use auth_tests::{DataDir, Request, ServerOptions, TestServer};

const PASSWORD: &str = "backup-battery-7";

fn creds(i: usize) -> String {
    format!("userName=user{i}%40example.com&password={PASSWORD}")
}

fn token(r: &auth_tests::Response) -> Option<String> {
    (r.status == 200).then(|| r.json()["response"]["token"].as_str().unwrap_or_default().to_owned())
}

fn integrity(db: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.query_row("PRAGMA integrity_check", [], |row| row.get::<_, String>(0)).expect("pragma")
}

#[test]
fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    let data = DataDir::new();
    for i in 0..4 {
        let email = format!("user{i}@example.com");
        data.run_cli(&["user", "add", "--email", &email, "--password", PASSWORD]).ok();
    }
    let server = Arc::new(TestServer::start_in(data.share(), ServerOptions::new()));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|w| {
            let (server, acked, stop) = (server.clone(), acked.clone(), stop.clone());
            thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let r = server.post_form("/api/2.0/authentication", &creds(i % 4));
                    if let Some(t) = token(&r) {
                        acked.lock().unwrap().push(t);
                    }
                    i += 2;
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 10 {
        thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every token acknowledged before the backup starts must be in it.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let copy = data.path().parent().unwrap().join("copy.db");
    let out = data.run_cli(&["backup", "--to", copy.to_str().unwrap()]);
    let text = out.ok().to_owned();
    assert!(text.contains("4 users") && text.contains("integrity ok"), "{text}");
    assert!(text.contains("server key is not in the backup"), "{text}");
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(integrity(&copy), "ok");
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    // A second backup to the same file is refused rather than overwriting it.
    assert_eq!(data.run_cli(&["backup", "--to", copy.to_str().unwrap()]).code(), Some(1));

    // While the server runs, a restore is refused and changes nothing.
    let refused = data.run_cli(&["restore", "--from", copy.to_str().unwrap()]);
    assert_eq!(refused.code(), Some(1));
    assert!(refused.err().contains("in use"), "{}", refused.err());

    // Into a fresh data directory with the same key: everything acknowledged is there.
    let fresh = DataDir::new();
    std::fs::create_dir_all(fresh.path()).unwrap();
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(data.path().join("server.key"), fresh.path().join("server.key")).unwrap();
    std::fs::set_permissions(
        fresh.path().join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = fresh.run_cli(&["restore", "--from", copy.to_str().unwrap()]);
    assert!(out.ok().contains("restored"), "{}", out.ok());
    assert_eq!(integrity(&fresh.path().join("auth.db")), "ok");
    let restored = TestServer::start_in(fresh.share(), ServerOptions::new());
    for t in &before {
        let me = restored.send(Request::get("/api/2.0/people/@self").header("Authorization", t));
        assert_eq!(me.status, 200, "a token acknowledged before the backup: {}", me.text());
    }
    for i in 0..4 {
        assert_eq!(restored.post_form("/api/2.0/authentication", &creds(i)).status, 200);
    }
    drop(restored);
    let audit =
        fresh.run_cli(&["audit", "--json", "--last", "100000", "--action", "LoginSuccessViaApi"]);
    let events = audit.json().as_array().map_or(0, Vec::len);
    assert!(events >= before.len(), "{events} login events, {} acknowledged before", before.len());

    // A data directory with another key refuses the backup (the server could not open it).
    let other = DataDir::new();
    other.run_cli(&["portal", "list"]).ok();
    let out = other.run_cli(&["restore", "--from", copy.to_str().unwrap()]);
    assert_eq!(out.code(), Some(1));
    assert!(out.err().contains("another server key"), "{}", out.err());
}

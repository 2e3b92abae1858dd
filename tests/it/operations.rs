//! Operations (issue 17, spec §13): backup while logins run and restore into a fresh data
//! directory; a restore refused while a server uses the database or under another key; key rotation
//! with TOTP enrolments, backup codes and queued SMS made under the first key.

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

// ------------------------------------------------------------------------------------------------
// Key rotation (issue 17, spec §13): `key rotate`, `key reseal`, `key retire`, `key list`.

const APP: &str = "app.example.com";
const SMS: &str = "sms.example.com";
const FORM: &str = "application/x-www-form-urlencoded";

fn totp_code(secret_b32: &str, offset_steps: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).expect("base32 tfaKey");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    auth_core::totp::code_at_step(&secret, ((now / 30) as i64 + offset_steps) as u64)
}

/// `POST path` on the portal of `host` as `email`, with `extra` form fields.
fn post_as(
    s: &TestServer,
    host: &str,
    path: &str,
    email: &str,
    extra: &str,
) -> auth_tests::Response {
    let form = format!("userName={}&password={PASSWORD}{extra}", email.replace('@', "%40"));
    s.send(Request::post(path).header("Host", host).body(FORM, form))
}

#[track_caller]
fn token_of(r: &auth_tests::Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", r.text()))
        .to_owned()
}

/// Signs in with a second-factor code (a TOTP code, a backup code or an SMS code).
#[track_caller]
fn with_code(s: &TestServer, host: &str, email: &str, code: &str) -> String {
    token_of(&post_as(s, host, &format!("/api/2.0/authentication/{code}"), email, ""))
}

/// The backup codes the one-time reveal shows (panics when they are masked).
#[track_caller]
fn revealed_codes(s: &TestServer, token: &str) -> Vec<String> {
    let r = s.send(
        Request::get("/api/2.0/settings/tfaappcodes")
            .header("Host", APP)
            .header("Authorization", token),
    );
    let v = r.json();
    let codes: Vec<String> = v["response"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(codes.iter().all(|c| c.len() == 8 && c != "********"), "shown: {v}");
    codes
}

/// A configuration whose SMS go to a webhook nobody answers (they stay queued), except numbers
/// starting with `to_file`, which the file gateway takes.
fn sms_config(data: &DataDir, name: &str, to_file: &[&str]) -> String {
    let mut toml =
        "[sms]\ngateway = \"webhook\"\nwebhook_url = \"http://127.0.0.1:9/sms\"\n".to_owned();
    for prefix in to_file {
        toml.push_str(&format!("[[sms.routes]]\nprefix = \"{prefix}\"\ngateway = \"file\"\n"));
    }
    let path = data.path().parent().unwrap().join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

fn key_ids(data: &DataDir) -> Vec<u64> {
    let list = data.run_cli(&["key", "list", "--json"]).json();
    assert_eq!(list["database"]["matches"], true, "{list}");
    list["keys"].as_array().unwrap().iter().map(|k| k["id"].as_u64().unwrap()).collect()
}

/// A server started with `key` (a copy of an older key file) refuses, naming both rings.
#[track_caller]
fn refuses_with(data: &DataDir, key: &std::path::Path, expects: &str) {
    let failure = TestServer::try_start_in(
        data.share(),
        ServerOptions::new().env("AUTH_SERVER_KEY_FILE", key.to_str().unwrap()),
    )
    .expect_err("a server with only the old key must not start");
    let e = &failure.stderr;
    assert!(e.contains("not the key this database was set up with"), "{e}");
    assert!(e.contains(&format!("the database expects key ring {expects}")), "{e}");
    assert!(e.contains("the file holds key ring 1"), "{e}");
}

#[test]
fn issue_17_rotate_reseal_retire_keep_every_secret_and_the_old_key_is_refused() {
    let data = DataDir::new();
    for host in [APP, SMS] {
        data.run_cli(&["portal", "add", "--host", host]).ok();
    }
    data.run_cli(&["portal", "set", "--host", APP, "--tfa", "app"]).ok();
    data.run_cli(&["portal", "set", "--host", SMS, "--tfa", "sms"]).ok();
    let (t1, t2, s1, s2) = ("t1@example.com", "t2@example.com", "s1@example.com", "s2@example.com");
    for (email, host) in [(t1, APP), (t2, APP), (s1, SMS), (s2, SMS)] {
        data.run_cli(&["user", "add", "--email", email, "--password", PASSWORD, "--portal", host])
            .ok();
    }

    // Under the first key: two TOTP enrolments (t2 leaves its backup codes unrevealed) and two SMS
    // codes queued behind an unreachable gateway.
    let s = TestServer::start_in(
        data.share(),
        ServerOptions::new().env("AUTH_CONFIG", &sms_config(&data, "queue-all", &[])),
    );
    let enrol = |email: &str| {
        let r = post_as(&s, APP, "/api/2.0/authentication", email, "");
        let key = r.json()["response"]["tfaKey"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", r.text()))
            .to_owned();
        (with_code(&s, APP, email, &totp_code(&key, -1)), key)
    };
    let (t1_token, k1) = enrol(t1);
    let t1_codes = revealed_codes(&s, &t1_token);
    let (_, k2) = enrol(t2);
    for (email, phone) in [(s1, "79111111111"), (s2, "79222222222")] {
        let r = post_as(
            &s,
            SMS,
            "/api/2.0/authentication/setphone",
            email,
            &format!("&mobilePhone={phone}"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (data, _) = s.stop();
    assert!(data.sms_messages().is_empty(), "nothing delivered yet");
    let old_key = data.path().parent().unwrap().join("old-server.key");
    std::fs::copy(data.path().join("server.key"), &old_key).unwrap();
    assert_eq!(key_ids(&data), vec![1]);

    // Rotate: key 2 seals from now on; the old key file alone no longer starts a server.
    let out = data.run_cli(&["key", "rotate"]);
    assert!(out.ok().contains("added key 2"), "{}", out.stdout);
    assert_eq!(key_ids(&data), vec![1, 2]);
    let list = data.run_cli(&["key", "list"]);
    let table = list.ok();
    assert!(table.lines().any(|l| l.starts_with("2 ") && l.ends_with("yes")), "{table}");
    assert!(table.contains("the database expects this key ring"), "{table}");
    let key_text = std::fs::read_to_string(data.path().join("server.key")).unwrap();
    for k in [&k1, &k2] {
        assert!(!table.contains(k.as_str()), "no secret is listed");
    }
    let keys: Vec<&str> = key_text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(keys.len(), 2, "{key_text}");
    assert!(keys.iter().all(|k| !table.contains(k)), "no key byte is listed");
    refuses_with(&data, &old_key, "1,2");

    // Under the rotated ring: the enrolments, the backup codes and a queued SMS work.
    let s = TestServer::start_in(
        data.share(),
        ServerOptions::new().env("AUTH_CONFIG", &sms_config(&data, "deliver-s1", &["79111"])),
    );
    with_code(&s, APP, t1, &totp_code(&k1, 0));
    with_code(&s, APP, t1, &t1_codes[0]);
    let sms = data.wait_for_sms(1);
    assert_eq!(sms[0].to, "79111111111");
    with_code(&s, SMS, s1, &sms[0].code());
    let (data, _) = s.stop();

    // Reseal and retire: key 1 is gone from the ring.
    let out = data.run_cli(&["key", "reseal", "--batch", "2"]);
    let text = out.ok();
    assert!(text.contains("every sealed value is under key 2"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("TOTP secrets") && l.split_whitespace().nth(2) == Some("2")),
        "{text}"
    );
    let out = data.run_cli(&["key", "retire"]);
    assert!(out.ok().contains("retired key 1: the ring is key 2 alone"), "{}", out.stdout);
    assert_eq!(key_ids(&data), vec![2]);
    assert!(!data.run_cli(&["key", "list"]).ok().lines().any(|l| l.starts_with("1 ")));
    assert!(data.run_cli(&["key", "retire"]).err().contains("nothing to retire"));
    refuses_with(&data, &old_key, "2");

    // Everything made under key 1 still works: the TOTP secrets, the unrevealed backup codes, the
    // used and unused backup codes, the SMS still queued, and new SMS codes.
    let s = TestServer::start_in(data.share(), ServerOptions::new());
    let sms = data.wait_for_sms(2);
    assert_eq!(sms[1].to, "79222222222");
    with_code(&s, SMS, s2, &sms[1].code());
    let t2_token = with_code(&s, APP, t2, &totp_code(&k2, 0));
    let t2_codes = revealed_codes(&s, &t2_token);
    with_code(&s, APP, t2, &t2_codes[0]);
    with_code(&s, APP, t1, &totp_code(&k1, 1));
    with_code(&s, APP, t1, &t1_codes[1]);
    let reused = post_as(&s, APP, &format!("/api/2.0/authentication/{}", t1_codes[0]), t1, "");
    assert_eq!(reused.status, 401, "a used backup code stays used");
    let r = post_as(&s, SMS, "/api/2.0/authentication", s1, "");
    assert_eq!(r.json()["response"]["sms"], true, "{}", r.text());
    let sms = data.wait_for_sms(3);
    with_code(&s, SMS, s1, &sms[2].code());
}

/// A `key rotate` that stopped after writing the ring file, and a `key retire` that stopped before
/// it, are finished by running them again; every key command refuses a ring the database does not
/// expect, and the server refuses it at start.
#[test]
fn issue_17_interrupted_rotations_and_retirements_are_finished_by_running_them_again() {
    let data = DataDir::new();
    data.run_cli(&["portal", "add", "--host", APP]).ok();
    let path = data.path().join("server.key");
    let first = std::fs::read(&path).unwrap();
    assert_eq!(first.len(), 32);

    // What a rotation writes before it moves the database: the old key as key 1, a new key 2.
    let ring = format!(
        "auth-server key ring v1\n1 - {}\n2 2026-01-10T07:46:24Z {}\n",
        auth_tests::base64(&first),
        auth_tests::base64(&[0x42; 32])
    );
    std::fs::write(&path, ring).unwrap();
    let listed = data.run_cli(&["key", "list"]);
    assert!(
        listed.ok().contains("the database expects key ring 1, not this one"),
        "{}",
        listed.stdout
    );
    let failure = TestServer::try_start_in(data.share(), ServerOptions::new())
        .expect_err("a ring the database does not expect");
    assert!(failure.stderr.contains("the database expects key ring 1"), "{}", failure.stderr);
    let out = data.run_cli(&["key", "rotate"]);
    assert!(out.ok().contains("finished an interrupted rotation: key 2 seals"), "{}", out.stdout);
    assert_eq!(key_ids(&data), vec![1, 2]);

    // A retirement that moved the database but not the file.
    data.run_cli(&["key", "reseal"]).ok();
    let both = std::fs::read(&path).unwrap();
    data.run_cli(&["key", "retire"]).ok();
    std::fs::write(&path, &both).unwrap();
    let listed = data.run_cli(&["key", "list"]);
    assert!(
        listed.ok().contains("the database expects key ring 2, not this one"),
        "{}",
        listed.stdout
    );
    let out = data.run_cli(&["key", "retire"]);
    assert!(out.ok().contains("finished an interrupted retirement"), "{}", out.stdout);
    assert_eq!(key_ids(&data), vec![2]);
    let s = TestServer::start_in(data.share(), ServerOptions::new());
    assert_eq!(s.get("/healthz").status, 200);
    drop(s);

    // Another deployment's key: every key command refuses it and changes nothing.
    let ours = std::fs::read(&path).unwrap();
    std::fs::write(&path, [9u8; 32]).unwrap();
    for cmd in ["rotate", "reseal", "retire"] {
        let out = data.run_cli(&["key", cmd]);
        let e = out.err();
        assert!(e.contains("is not the key this database was set up with"), "{cmd}: {e}");
        assert!(e.contains("key ring 2"), "{cmd}: {e}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), vec![9u8; 32]);
    std::fs::write(&path, &ours).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(data.run_cli(&["key", "list"]).err().contains("no server key at"));
}

//! The migration from ONLYOFFICE / R7-Office (issue 14, spec §11): `auth-server import onlyoffice`
//! against a real MariaDB loaded with the upstream schema and rows made with upstream's algorithms
//! (`auth_tests::upstream`), then sign-ins over real HTTP with the upstream passwords, phones,
//! authenticator secrets and backup codes; and `auth-server user import --jsonl`.
//!
//! Without a MariaDB (no `AUTH_TEST_MYSQL_URL`, no `mariadbd`) the upstream tests say so loudly and
//! return; under `CI=true` that is a failure.

use std::path::Path;

use auth_tests::mariadb::Database;
use auth_tests::upstream::{
    Installation, PRE_V12, PUBLIC_MACHINE_KEY, SCHEMA, WORKED_FIXTURE, generated_id, sql_str,
};
use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";
const OLGA: &str = "22222222-3333-4444-5555-666666666666";

/// Runs `import onlyoffice` on `db` into `data` with the public machine key and `extra` arguments;
/// returns the JSON report and everything printed.
fn import(data: &DataDir, db: &Database, extra: &[&str]) -> (Value, String) {
    let url = db.url();
    let mut args = vec!["import", "onlyoffice", "--mysql", &url, "--json"];
    if !extra.iter().any(|a| a.starts_with("--machine-key")) {
        args.extend(["--machine-key", PUBLIC_MACHINE_KEY]);
    }
    args.extend(extra);
    let out = data.run_cli(&args);
    let printed = format!("{}\n{}", out.stdout, out.stderr);
    (out.json(), printed)
}

fn count(report: &Value, kind: &str, outcome: &str) -> u64 {
    report["counts"][kind][outcome].as_u64().unwrap_or(0)
}

fn entries(report: &Value) -> Vec<String> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e["kind"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect()
}

fn has_entry(report: &Value, kind: &str, subject: &str, reason: &str) -> bool {
    entries(report)
        .iter()
        .any(|e| e.starts_with(&format!("{kind} ")) && e.contains(subject) && e.contains(reason))
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn login(s: &TestServer, host: &str, path: &str, user: &str, password: &str) -> Response {
    s.send(
        Request::post(path)
            .header("Host", host)
            .body(FORM, form(&[("userName", user), ("password", password)])),
    )
}

fn body(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"].clone()
}

fn totp_now(secret: &[u8]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    auth_core::totp::code_at_step(secret, now / 30)
}

/// The stored credential text of a user, read from the SQLite file as the fault tests read it.
fn stored_credential(data: &Path, email: &str) -> String {
    let conn = rusqlite::Connection::open(data.join("auth.db")).expect("open the database");
    conn.query_row(
        "SELECT password_hash FROM users WHERE email_lower = ?1",
        [email.to_lowercase()],
        |r| r.get(0),
    )
    .expect("the user's row")
}

fn no_secret_in(printed: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!printed.contains(s), "{s:?} was printed:\n{printed}");
    }
}

#[test]
fn the_worked_fixture_signs_in_with_upstream_passwords_authenticators_and_backup_codes() {
    let Some(db) = Database::create("worked") else { return };
    db.exec(SCHEMA);
    db.exec(WORKED_FIXTURE);
    let data = DataDir::new();
    let secrets = [
        PUBLIC_MACHINE_KEY,
        "7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb",
        "75K3eLr+dx6JJFuJ7LwIpEpOFmwGZZkRiB84PURz6U8",
        "D4bLmI9SSzAMNFCXv8OBoA",
        "aB3-_z",
        "Qx7_k0",
        "password123",
        "UzM0eVhGbE",
    ];

    // A dry run reports what would happen and writes nothing.
    let (dry, printed) = import(&data, &db, &["--dry-run"]);
    no_secret_in(&printed, &secrets);
    assert_eq!(
        (
            dry["dryRun"].as_bool(),
            count(&dry, "portals", "created"),
            count(&dry, "users", "created")
        ),
        (Some(true), 1, 3),
        "{dry}"
    );
    let portals = data.run_cli(&["portal", "list", "--json"]).json();
    assert!(!portals.to_string().contains("acme"), "a dry run wrote: {portals}");

    // The real import: §11's expected result.
    let (report, printed) = import(&data, &db, &[]);
    no_secret_in(&printed, &secrets);
    let c = |k, o| count(&report, k, o);
    assert_eq!((c("portals", "created"), c("portals", "skipped")), (1, 1), "{report}");
    assert_eq!((c("users", "created"), c("users", "skipped")), (3, 1), "{report}");
    assert_eq!((c("passwords", "created"), c("passwords", "skipped")), (1, 2), "{report}");
    assert_eq!(
        (c("totp", "created"), c("backup_codes", "created"), c("phones", "created")),
        (1, 3, 1),
        "{report}"
    );
    assert_eq!((c("links", "created"), c("links", "skipped")), (1, 1), "{report}");
    assert!(has_entry(&report, "portals", "old_deleted (id 2)", "deleted"), "{report}");
    assert!(has_entry(&report, "users", "petr@acme.test", "removed upstream"), "{report}");
    assert!(has_entry(&report, "passwords", OLGA, "legacy SHA-256"), "{report}");
    assert!(has_entry(&report, "passwords", "lena@acme.test", "ldap"), "{report}");
    assert!(
        has_entry(&report, "links", "33333333-4444-5555-6666-777777777777", "orphan"),
        "{report}"
    );

    let portal = data.run_cli(&["portal", "list", "--json"]).json();
    let acme =
        portal.as_array().unwrap().iter().find(|p| p["name"] == "Acme").expect("Acme imported");
    assert_eq!(acme["hosts"], serde_json::json!(["acme.example.com", "office.acme.test"]));
    let settings = &acme["settings"];
    assert_eq!(
        (
            settings["language"].as_str(),
            settings["time_zone"].as_str(),
            settings["tfa"].as_str(),
            settings["trusted_ips"].as_str()
        ),
        (Some("ru"), Some("Europe/Moscow"), Some("app"), Some("10.0.0.0/8"))
    );
    let users = data.run_cli(&["user", "list", "--json"]).json().to_string();
    assert!(
        users.contains("Ivan@Acme.test")
            && users.contains("lena@acme.test")
            && !users.contains("petr@"),
        "{users}"
    );
    let links = data.run_cli(&["user", "links", "--email", "ivan@acme.test", "--json"]).json();
    assert_eq!(
        (links[0]["provider"].as_str(), links[0]["subject"].as_str()),
        (Some("google"), Some("123456789012345678901"))
    );

    // A second import changes nothing.
    let (again, _) = import(&data, &db, &[]);
    for (kind, per) in again["counts"].as_object().unwrap() {
        assert_eq!(
            (per["created"].as_u64(), per["updated"].as_u64()),
            (Some(0), Some(0)),
            "{kind} changed: {again}"
        );
    }
    assert_eq!(count(&again, "users", "unchanged"), 3, "{again}");

    // An argon2id user beside the imported ones, for the comparison of refusals.
    data.run_cli(&[
        "user",
        "add",
        "--email",
        "ada@acme.test",
        "--password",
        "ada-password",
        "--portal",
        "acme.example.com",
    ])
    .ok();
    assert!(stored_credential(&data.path(), "ivan@acme.test").starts_with("$onlyoffice$"));
    let s = TestServer::start_in(data.share(), ServerOptions::new());
    let host = "acme.example.com";
    let step1 = "/api/2.0/authentication";

    // A wrong password answers the same bytes on the upstream hash as on an argon2id one.
    let legacy = login(&s, host, step1, "ivan@acme.test", "wrong password");
    let argon = login(&s, host, step1, "ada@acme.test", "wrong password");
    assert_eq!((legacy.status, legacy.text()), (argon.status, argon.text()));
    assert_eq!(legacy.status, 401);

    // Ivan: upstream password, then a code from the upstream-derived secret.
    let r = body(&login(&s, host, step1, "Ivan@acme.test", "password123"));
    assert_eq!((r["token"].clone(), r["tfa"].as_bool()), (Value::Null, Some(true)), "{r}");
    assert!(r.get("tfaKey").is_none(), "already activated upstream: {r}");
    let secret = Installation::public().totp_secret(200_000_000_000);
    let code = totp_now(&secret);
    let r = body(&login(&s, host, &format!("{step1}/{code}"), "ivan@acme.test", "password123"));
    assert!(r["token"].is_string(), "{r}");
    let hash = stored_credential(&s.data_dir(), "ivan@acme.test");
    assert!(hash.starts_with("$argon2id$") && !hash.contains("onlyoffice"), "{hash}");

    // A backup code works once; the used one never; the legacy duplicate is the same code.
    let r = body(&login(
        &s,
        "office.acme.test",
        &format!("{step1}/aB3-_z"),
        "ivan@acme.test",
        "password123",
    ));
    assert!(r["token"].is_string(), "{r}");
    for used in ["Qx7_k0", "aB3-_z"] {
        let r = login(&s, host, &format!("{step1}/{used}"), "ivan@acme.test", "password123");
        assert_eq!(r.status, 401, "{used}: {}", r.text());
    }
    // Olga (dead legacy hash) and Lena (LDAP) have no password here.
    for who in ["olga@acme.test", "lena@acme.test"] {
        assert_eq!(login(&s, host, step1, who, "password123").status, 401, "{who}");
    }
}

#[test]
fn a_pre_v12_database_recovers_the_legacy_password_into_argon2id() {
    let Some(db) = Database::create("prev12") else { return };
    db.exec(SCHEMA);
    db.exec(WORKED_FIXTURE);
    db.exec(PRE_V12);
    let data = DataDir::new();
    let (report, printed) = import(&data, &db, &["--tenant", "acme"]);
    no_secret_in(&printed, &["password123", "lV6ouCgHF92"]);
    assert!(has_entry(&report, "passwords", OLGA, "legacy password recovered"), "{report}");
    assert!(stored_credential(&data.path(), "olga@acme.test").starts_with("$argon2id$"));
    let s = TestServer::start_in(data.share(), ServerOptions::new());
    // The mapped domain answers too; her portal asks for an authenticator she has yet to set up.
    let r = body(&login(
        &s,
        "office.acme.test",
        "/api/2.0/authentication",
        "olga@acme.test",
        "password123",
    ));
    assert_eq!(r["tfa"], true, "{r}");
    assert!(r["tfaKey"].is_string(), "{r}");
    assert_eq!(
        login(&s, "office.acme.test", "/api/2.0/authentication", "olga@acme.test", "password124")
            .status,
        401
    );
}

#[test]
fn an_sms_portal_keeps_activated_phones_and_disabled_and_removed_users() {
    let Some(db) = Database::create("sms") else { return };
    db.exec(SCHEMA);
    // Another installation: its own machine key and a cheaper password cost.
    let key = "k3yR4nd0m12c";
    let inst = Installation::new(key, None, 1000);
    let (anna, boris, carl) = (generated_id(7, 1), generated_id(7, 2), generated_id(7, 3));
    let mut sql = String::from(
        "INSERT INTO tenants_tenants (id,name,alias,language,timezone,status,creationdatetime) \
         VALUES (7,'Corp','sms','en-US','Russian Standard Time',0,'0000-00-00 00:00:00');\n\
         INSERT INTO webstudio_settings (TenantID,ID,UserID,Data) VALUES (7,'2802df61-af0d-40d4-abc5-a8506a5352ff',\
         '00000000-0000-0000-0000-000000000000','{\"Enable\":true,\"MandatoryGroups\":null,\"MandatoryUsers\":null,\"TrustedIps\":[\"192.0.2.1-192.0.2.2\"]}');\n\
         INSERT INTO core_user (tenant,id,username,firstname,lastname,status,email,phone,phone_activation,removed,last_modified) VALUES ",
    );
    sql.push_str(&format!(
        "(7,'{anna}','anna','Anna','A',1,'anna@corp.test','+7 (912) 000-11-22',1,0,'2024-01-01'),\
         (7,'{boris}','boris','Boris','B',2,'boris@corp.test',NULL,0,0,'2024-01-01'),\
         (7,'{carl}','carl','Carl','C',2,'carl@corp.test',NULL,0,1,'2024-01-01');\n"
    ));
    sql.push_str("INSERT INTO core_usersecurity (tenant,userid,pwdhash) VALUES ");
    let rows: Vec<String> = [(&anna, "anna-pass"), (&boris, "boris-pass"), (&carl, "carl-pass")]
        .iter()
        .map(|(id, pw)| format!("(7,'{id}',{})", sql_str(&inst.pwdhash(pw, id))))
        .collect();
    sql.push_str(&rows.join(","));
    db.exec(&sql);

    let data = DataDir::new();
    let (report, printed) = import(
        &data,
        &db,
        &["--machine-key", key, "--iterations", "1000", "--base-domain", "corp.test"],
    );
    no_secret_in(&printed, &[key, "anna-pass"]);
    assert_eq!(
        (count(&report, "users", "created"), count(&report, "users", "skipped")),
        (2, 1),
        "{report}"
    );
    let portals = data.run_cli(&["portal", "list", "--json"]).json();
    let corp = &portals.as_array().unwrap()[0];
    assert_eq!(corp["hosts"], serde_json::json!(["sms.corp.test"]));
    assert_eq!(
        (corp["settings"]["tfa"].as_str(), corp["settings"]["time_zone"].as_str()),
        (Some("sms"), Some("Europe/Moscow"))
    );
    assert_eq!(corp["settings"]["trusted_ips"].as_str(), Some("192.0.2.1/32,192.0.2.2/32"));
    let users = data.run_cli(&["user", "list", "--json"]).json();
    let list = users.as_array().unwrap();
    assert_eq!(list.len(), 2, "Carl was removed upstream: {users}");
    let boris_row = list.iter().find(|u| u["email"] == "boris@corp.test").unwrap();
    assert_eq!(boris_row["disabled"], true);

    let s = TestServer::start_in(data.share(), ServerOptions::new());
    let host = "sms.corp.test";
    let r = body(&login(&s, host, "/api/2.0/authentication", "anna@corp.test", "anna-pass"));
    assert_eq!(
        (r["sms"].as_bool(), r["phoneNoise"].as_str()),
        (Some(true), Some("+7912***1122")),
        "{r}"
    );
    let sms = s.wait_for_sms(1);
    assert_eq!(sms[0].to, "79120001122");
    let code = sms[0].code();
    let r = body(&login(
        &s,
        host,
        &format!("/api/2.0/authentication/{code}"),
        "anna@corp.test",
        "anna-pass",
    ));
    assert!(r["token"].is_string(), "{r}");
    // Disabled upstream, disabled here: the right password is refused like a wrong one.
    assert_eq!(
        login(&s, host, "/api/2.0/authentication", "boris@corp.test", "boris-pass").status,
        401
    );
    assert_eq!(
        login(&s, host, "/api/2.0/authentication", "carl@corp.test", "carl-pass").status,
        401
    );
}

#[test]
fn jsonl_lines_import_in_batches_and_bad_lines_are_reported_by_number() {
    // A real argon2id PHC string, as the server makes it.
    let donor = DataDir::new();
    donor.run_cli(&["user", "add", "--email", "donor@x.test", "--password", "pre-hashed pw"]).ok();
    let phc = stored_credential(&donor.path(), "donor@x.test");
    assert!(phc.starts_with("$argon2id$"));

    let data = DataDir::new();
    data.run_cli(&["portal", "add", "--host", "jsonl.test", "--name", "J"]).ok();
    let lines = [
        serde_json::json!({"email": "pre@x.test", "first_name": "Pre", "password_hash": phc}).to_string(),
        serde_json::json!({"email": "plain@x.test", "password": "plain pw", "phone": "+7 912 555-44-33", "phone_activated": true}).to_string(),
        "{not json".to_owned(),
        serde_json::json!({"email": "bad@x.test", "password_hash": phc.replace("argon2id", "argon2i")}).to_string(),
        serde_json::json!({"email": "PRE@x.test", "password": "again"}).to_string(),
        String::new(),
        serde_json::json!({"email": "boss@x.test", "password": "boss pw", "admin": true, "disabled": true}).to_string(),
        serde_json::json!({"email": "leak@x.test", "password": "x", "admin": "hunter2"}).to_string(),
    ];
    let file = data.path().parent().unwrap().join("users.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = data.run_cli(&[
        "user",
        "import",
        "--jsonl",
        path,
        "--portal",
        "jsonl.test",
        "--batch",
        "2",
        "--json",
    ]);
    assert!(!out.stdout.contains("hunter2") && !out.stdout.contains("plain pw"), "{}", out.stdout);
    let report = out.json();
    assert_eq!(count(&report, "users", "created"), 3, "{report}");
    assert_eq!(count(&report, "lines", "skipped"), 4, "{report}");
    assert!(has_entry(&report, "lines", "3", "not a JSON object"), "{report}");
    assert!(has_entry(&report, "lines", "4", "not argon2id"), "{report}");
    assert!(has_entry(&report, "lines", "5", "repeats line 1"), "{report}");
    assert!(has_entry(&report, "lines", "8", "admin must be true or false"), "{report}");
    assert_eq!(stored_credential(&data.path(), "pre@x.test"), phc, "stored as given");

    let again = data
        .run_cli(&["user", "import", "--jsonl", path, "--portal", "jsonl.test", "--json"])
        .json();
    assert_eq!(
        (count(&again, "users", "created"), count(&again, "users", "unchanged")),
        (0, 3),
        "{again}"
    );

    let s = TestServer::start_in(data.share(), ServerOptions::new());
    for (who, pw) in [("pre@x.test", "pre-hashed pw"), ("plain@x.test", "plain pw")] {
        let r = body(&login(&s, "jsonl.test", "/api/2.0/authentication", who, pw));
        assert!(r["token"].is_string(), "{who}: {r}");
    }
    assert_eq!(
        login(&s, "jsonl.test", "/api/2.0/authentication", "boss@x.test", "boss pw").status,
        401
    );
    let users = s.run_cli(&["user", "list", "--json"]).json().to_string();
    assert!(users.contains("79125554433"), "{users}");
}

//! Starting `auth-server serve`: what a fresh data directory gets, what is printed, what a second
//! start does not repeat, how bad configuration is refused, and a clean stop on SIGTERM.

use std::os::unix::fs::PermissionsExt as _;

use auth_tests::{DataDir, ServerOptions, TestServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn fresh_data_dir_gets_a_private_key_and_one_admin() {
    let server = TestServer::start();
    let key = server.data_dir().join("server.key");
    assert_eq!(std::fs::read(&key).expect("server.key").len(), 32);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&server.data_dir()), 0o700);
    assert!(server.data_dir().join("auth.db").is_file());

    let admin = server.admin().expect("first admin printed");
    assert_eq!(admin.email, "admin@localhost.localdomain");
    assert_eq!(admin.password.len(), 20);
    let stdout = server.stdout();
    assert_eq!(stdout.matches("Created the first administrator").count(), 1, "{stdout}");
    assert_eq!(stdout.matches(&admin.password).count(), 1, "{stdout}");
    // The password is shown on stdout only, never in the logs.
    assert!(!server.stderr().contains(&admin.password));

    let users = server.run_cli(&["user", "list", "--json"]).json();
    assert_eq!(users.as_array().map(Vec::len), Some(1));
    assert_eq!(users[0]["email"], admin.email);
    assert_eq!(users[0]["isAdmin"], true);

    let key_bytes = std::fs::read(&key).expect("server.key");
    let again = server.restart();
    assert!(again.admin().is_none(), "{}", again.stdout());
    assert!(!again.stdout().contains("Created the first administrator"));
    assert!(again.stdout().starts_with("listening on http://127.0.0.1:"), "{}", again.stdout());
    assert_eq!(std::fs::read(&key).expect("server.key"), key_bytes);
    assert_eq!(again.run_cli(&["user", "list", "--json"]).json().as_array().map(Vec::len), Some(1));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let server = TestServer::start();
    let (_data, status) = server.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn no_admin_is_created_when_users_exist() {
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", "owner@example.com", "--password", "tabby-otter-71"])
        .ok();
    let server = TestServer::start_in(data, ServerOptions::new());
    assert!(server.admin().is_none(), "{}", server.stdout());
}

#[test]
fn bootstrap_admin_email_is_configurable() {
    let server = TestServer::start_with(
        ServerOptions::new().env("AUTH_BOOTSTRAP__ADMIN_EMAIL", "root@corp.example"),
    );
    assert_eq!(server.admin().expect("admin").email, "root@corp.example");
}

#[test]
fn healthz_answers_200() {
    // The liveness probe of spec §1, served by auth-http once the binary has wired it.
    let server = TestServer::start();
    let r = server.get("/healthz");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn first_admin_logs_in_over_http() {
    // The acceptance check: the printed credentials work with a plain form POST.
    let server = TestServer::start();
    let admin = server.admin().expect("admin");
    let r = server.post_form(
        "/api/2.0/authentication",
        &format!("userName={}&password={}", admin.email.replace('@', "%40"), admin.password),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!((body["count"].as_i64(), body["status"].as_i64()), (Some(1), Some(0)));
    assert!(body["response"]["token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["response"]["expires"].is_string(), "{body}");
}

#[test]
fn sms_codes_reach_the_file_gateway_through_the_outbox() {
    let data = DataDir::new();
    data.run_cli(&["portal", "set", "--tfa", "sms"]).ok();
    data.run_cli(&["user", "add", "--email", "sam@example.com", "--password", "tabby-otter-71"])
        .ok();
    let server = TestServer::start_in(data, ServerOptions::new());
    let r = server.post_form(
        "/api/2.0/authentication/setphone",
        "userName=sam%40example.com&password=tabby-otter-71&mobilePhone=%2B7+(912)+345-67-89",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sms = server.wait_for_sms(1);
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, "79123456789");
    assert!(sms[0].text.starts_with("Code: "), "{:?}", sms[0]);
    let code = sms[0].code();
    assert!(!server.stderr().contains(&code), "a code reached the logs");
    let file = server.data().sms_file();
    assert_eq!(mode(&file), 0o600);
    let listed = server.run_cli(&["sms", "outbox", "--json"]).json();
    assert_eq!(listed[0]["to"], "79123456789");
    let store = server.run_cli(&["sms", "outbox", "--store", "--json"]).json();
    assert_eq!(store[0]["status"], "sent", "{store}");
}

#[test]
fn invalid_configuration_stops_startup_with_a_clear_error() {
    for (env, needle) in [
        (("AUTH_HTTP__BODY_LIMIT_BYTES", "lots"), "AUTH_HTTP__BODY_LIMIT_BYTES"),
        (
            ("AUTH_DATABASE__URL", "postgres://nobody@127.0.0.1:1/auth"),
            "cannot open the PostgreSQL database",
        ),
        (("AUTH_SMS__GATEWAY", "webhook"), "sms.webhook_url"),
        (("AUTH_HTTP__NO_SUCH_KEY", "1"), "unknown environment variable AUTH_HTTP__NO_SUCH_KEY"),
    ] {
        let failure =
            TestServer::try_start_in(DataDir::new(), ServerOptions::new().env(env.0, env.1))
                .expect_err("the server must refuse this configuration");
        assert_eq!(failure.status.and_then(|s| s.code()), Some(1), "{env:?}: {}", failure.stderr);
        assert!(failure.stderr.starts_with("error: "), "{env:?}: {}", failure.stderr);
        assert!(failure.stderr.contains(needle), "{env:?}: {}", failure.stderr);
    }

    let data = DataDir::new();
    let file = data.path().with_file_name("auth.toml");
    std::fs::write(&file, "[http]\nbody_limit = 5\n").expect("config file");
    let failure = TestServer::try_start_in(
        data,
        ServerOptions::new().arg("--config").arg(file.to_str().expect("utf-8 path")),
    )
    .expect_err("unknown key");
    assert!(failure.stderr.contains("invalid config file"), "{}", failure.stderr);
    assert!(failure.stderr.contains("body_limit"), "{}", failure.stderr);
}

#[test]
fn a_readable_server_key_is_refused() {
    let server = TestServer::start();
    let (data, _) = server.stop();
    let key = data.path().join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let failure = TestServer::try_start_in(data, ServerOptions::new()).expect_err("refused");
    assert!(failure.stderr.contains("chmod 600"), "{}", failure.stderr);
}

#[test]
fn config_file_and_flags_are_honoured() {
    let data = DataDir::new();
    let file = data.path().with_file_name("auth.toml");
    std::fs::write(&file, "[bootstrap]\nadmin_email = \"file@example.com\"\n").expect("config");
    let server = TestServer::start_in(
        data,
        ServerOptions::new().env("AUTH_CONFIG", file.to_str().expect("utf-8 path")),
    );
    assert_eq!(server.admin().expect("admin").email, "file@example.com");
}

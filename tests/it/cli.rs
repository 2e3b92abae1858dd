//! The admin subcommands (spec §8): round trips through the data directory, output formats,
//! `--password-stdin`, and errors with their exit codes.

use auth_tests::{DataDir, TestServer};
use serde_json::Value;

fn users(data: &DataDir) -> Vec<Value> {
    data.run_cli(&["user", "list", "--json"]).json().as_array().expect("a JSON array").clone()
}

fn user<'a>(list: &'a [Value], email: &str) -> &'a Value {
    list.iter().find(|u| u["email"] == email).unwrap_or_else(|| panic!("{email} not in {list:?}"))
}

fn portals(data: &DataDir) -> Vec<Value> {
    data.run_cli(&["portal", "list", "--json"]).json().as_array().expect("a JSON array").clone()
}

#[test]
fn user_add_then_list_as_table_and_json() {
    let data = DataDir::new();
    let out = data.run_cli(&[
        "user",
        "add",
        "--email",
        "Alice@Example.com",
        "--password",
        "correct horse",
        "--first-name",
        "Alice",
        "--last-name",
        "Liddell",
        "--admin",
    ]);
    assert!(out.ok().starts_with("created administrator Alice@Example.com ("), "{}", out.stdout);
    data.run_cli(&["user", "add", "--email", "bob@example.com", "--password", "battery staple"])
        .ok();

    let table = data.run_cli(&["user", "list"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(lines[0].starts_with("EMAIL"), "{}", table.stdout);
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[1].contains("Alice@Example.com") && lines[1].contains("Alice Liddell"));

    let list = users(&data);
    assert_eq!(list.len(), 2);
    let alice = user(&list, "Alice@Example.com");
    assert_eq!(alice["isAdmin"], true);
    assert_eq!(alice["disabled"], false);
    assert_eq!(alice["firstName"], "Alice");
    assert_eq!(alice["portal"], "Default");
    assert_eq!(user(&list, "bob@example.com")["isAdmin"], false);
    // Nothing about the password is ever shown.
    assert!(!table.stdout.contains("horse") && !table.stdout.contains("argon2"));
}

#[test]
fn password_stdin_and_set_password() {
    let data = DataDir::new();
    data.run_cli_with_stdin(
        &["user", "add", "--email", "carol@example.com", "--password-stdin"],
        Some("first password\n"),
    )
    .ok();
    let out = data.run_cli_with_stdin(
        &["user", "set-password", "--email", "CAROL@example.com", "--password-stdin"],
        Some("second password\r\n"),
    );
    assert_eq!(out.ok(), "changed the password of carol@example.com and ended their sessions\n");
    let empty = data.run_cli_with_stdin(
        &["user", "set-password", "--email", "carol@example.com", "--password-stdin"],
        Some("\n"),
    );
    assert_eq!(empty.err(), "error: no password on standard input\n");

    // The new password is the one that logs in.
    let server = TestServer::start_in(data, Default::default());
    let login = |password: &str| {
        server.post_form(
            "/api/2.0/authentication",
            &format!("userName=carol%40example.com&password={}", password.replace(' ', "+")),
        )
    };
    assert_eq!(login("first password").status, 401);
    let ok = login("second password");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.json()["response"]["token"].is_string());
}

#[test]
fn disable_and_enable() {
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", "dave@example.com", "--password", "tabby-otter-71"])
        .ok();
    let out = data.run_cli(&["user", "disable", "--email", "dave@example.com"]);
    assert_eq!(out.ok(), "disabled dave@example.com and ended their sessions\n");
    assert_eq!(user(&users(&data), "dave@example.com")["disabled"], true);
    assert!(data.run_cli(&["user", "list"]).ok().contains("disabled"));
    data.run_cli(&["user", "enable", "--email", "dave@example.com"]).ok();
    assert_eq!(user(&users(&data), "dave@example.com")["disabled"], false);
    let out = data.run_cli(&["user", "logout-all", "--email", "dave@example.com"]);
    assert_eq!(out.ok(), "logged dave@example.com out everywhere (0 sessions ended)\n");
}

#[test]
fn errors_are_one_line_on_stderr_with_exit_code_1() {
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", "erin@example.com", "--password", "tabby-otter-71"])
        .ok();
    for (args, message) in [
        (
            vec!["user", "disable", "--email", "nobody@example.com"],
            "error: no user with e-mail nobody@example.com\n",
        ),
        (
            vec!["user", "reset-tfa", "--email", "nobody@example.com"],
            "error: no user with e-mail nobody@example.com\n",
        ),
        (
            vec!["user", "add", "--email", "erin@example.com", "--password", "tabby-otter-72"],
            "error: a user with e-mail erin@example.com already exists in portal Default\n",
        ),
        (
            vec!["user", "add", "--email", "frank@example.com", "--password", "short"],
            "error: the password must have at least 8 characters\n",
        ),
        (
            vec!["user", "add", "--email", "no-at-sign", "--password", "tabby-otter-71"],
            "error: a valid e-mail address is required\n",
        ),
        (
            vec!["user", "list", "--portal", "unknown.example.com"],
            "error: no portal answers to host unknown.example.com\n",
        ),
    ] {
        let out = data.run_cli(&args);
        assert_eq!(out.err(), message, "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn usage_errors_exit_with_code_2() {
    let data = DataDir::new();
    for args in [
        vec!["user", "add", "--email", "x@example.com"],
        vec!["user", "add", "--email", "x@example.com", "--password", "p", "--password-stdin"],
        vec!["user", "frobnicate"],
        vec!["portal", "set", "--https", "maybe"],
    ] {
        let out = data.run_cli(&args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn portal_set_on_an_empty_data_dir_creates_the_default_portal() {
    let data = DataDir::new();
    let out = data.run_cli(&["portal", "set", "--tfa", "sms", "--time-zone", "Europe/Moscow"]);
    assert!(out.ok().contains("tfa=sms\n") && out.stdout.contains("time_zone=Europe/Moscow\n"));
    let list = portals(&data);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Default");
    assert_eq!(list[0]["settings"]["tfa"], "sms");
    assert_eq!(list[0]["settings"]["time_zone"], "Europe/Moscow");
    assert!(std::fs::metadata(data.path().join("server.key")).is_ok());
}

#[test]
fn portal_add_list_and_set() {
    let data = DataDir::new();
    data.run_cli(&["portal", "set", "--language", "en"]).ok();
    let out = data.run_cli(&["portal", "add", "--host", "Docs.Example.com", "--name", "Docs"]);
    assert!(out.ok().starts_with("created portal Docs ("), "{}", out.stdout);
    assert!(out.stdout.trim_end().ends_with("for docs.example.com"), "{}", out.stdout);
    data.run_cli(&[
        "portal",
        "set",
        "--host",
        "docs.example.com",
        "--tfa",
        "app",
        "--language",
        "ru",
        "--trusted-ips",
        "10.0.0.0/8,192.168.1.1",
        "--token-lifetime-minutes",
        "60",
        "--https",
        "true",
        "--set",
        "login_limit=10",
    ])
    .ok();
    let list = portals(&data);
    assert_eq!(list.len(), 2);
    let docs = list.iter().find(|p| p["name"] == "Docs").expect("Docs portal");
    assert_eq!(docs["hosts"], serde_json::json!(["docs.example.com"]));
    let s = &docs["settings"];
    assert_eq!(
        (&s["tfa"], &s["language"], &s["trusted_ips"], &s["token_lifetime_s"], &s["https"]),
        (
            &"app".into(),
            &"ru".into(),
            &"10.0.0.0/8,192.168.1.1/32".into(),
            &"3600".into(),
            &"true".into()
        )
    );
    assert_eq!(s["login_limit"], "10");
    // The default portal is untouched.
    let default = list.iter().find(|p| p["name"] == "Default").expect("Default portal");
    assert_eq!(default["settings"]["tfa"], "none");
    let table = data.run_cli(&["portal", "list"]);
    assert!(table.ok().contains("docs.example.com") && table.stdout.contains("(any host)"));

    for (args, message) in [
        (
            vec!["portal", "set", "--time-zone", "Mars/Olympus_Mons"],
            "error: invalid portal setting time_zone: unknown time zone \"Mars/Olympus_Mons\"\n",
        ),
        (
            vec!["portal", "set", "--tfa", "carrier-pigeon"],
            "error: invalid portal setting tfa: none, sms or app\n",
        ),
        (
            vec!["portal", "set", "--host", "nowhere.example.com", "--tfa", "sms"],
            "error: no portal answers to host nowhere.example.com\n",
        ),
        (
            vec!["portal", "set", "--set", "no_such_setting=1"],
            "error: invalid portal setting no_such_setting: unknown setting\n",
        ),
        (
            vec!["portal", "add", "--host", "docs.example.com"],
            "error: another portal already answers to one of: docs.example.com\n",
        ),
    ] {
        assert_eq!(data.run_cli(&args).err(), message, "{args:?}");
    }
}

#[test]
fn users_of_several_portals_are_told_apart_by_portal() {
    let data = DataDir::new();
    data.run_cli(&["portal", "set"]).ok();
    data.run_cli(&["portal", "add", "--host", "b.example.com"]).ok();
    data.run_cli(&["user", "add", "--email", "gina@example.com", "--password", "tabby-otter-71"])
        .ok();
    data.run_cli(&[
        "user",
        "add",
        "--email",
        "gina@example.com",
        "--password",
        "tabby-otter-71",
        "--portal",
        "b.example.com",
    ])
    .ok();
    assert_eq!(users(&data).len(), 2);
    let only_b = data.run_cli(&["user", "list", "--json", "--portal", "b.example.com"]).json();
    assert_eq!(only_b.as_array().map(Vec::len), Some(1));

    let ambiguous = data.run_cli(&["user", "disable", "--email", "gina@example.com"]);
    assert!(ambiguous.err().contains("several portals"), "{}", ambiguous.stderr);
    data.run_cli(&["user", "disable", "--email", "gina@example.com", "--portal", "b.example.com"])
        .ok();
    let list = data.run_cli(&["user", "list", "--json", "--portal", "b.example.com"]).json();
    assert_eq!(list[0]["disabled"], true);
}

#[test]
fn resets_are_audited_and_audit_filters() {
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", "hank@example.com", "--password", "tabby-otter-71"])
        .ok();
    data.run_cli(&["user", "add", "--email", "ivy@example.com", "--password", "tabby-otter-71"])
        .ok();
    assert_eq!(
        data.run_cli(&["user", "reset-tfa", "--email", "hank@example.com"]).ok(),
        "reset two-factor authentication of hank@example.com\n"
    );
    assert_eq!(
        data.run_cli(&["user", "reset-phone", "--email", "ivy@example.com"]).ok(),
        "reset the phone of ivy@example.com\n"
    );

    let all = data.run_cli(&["audit", "--json"]).json();
    let all = all.as_array().expect("array");
    assert_eq!(all.len(), 2);
    // Newest first.
    assert_eq!(all[0]["action"], "UserUpdatedMobileNumber");
    assert_eq!(all[0]["code"], 4029);
    assert_eq!(all[0]["email"], "ivy@example.com");
    assert_eq!(all[1]["action"], "UserDisconnectedTfaApp");
    assert_eq!(all[1]["code"], 4033);

    let by_action = data.run_cli(&["audit", "--json", "--action", "UserDisconnectedTfaApp"]).json();
    assert_eq!(by_action.as_array().map(Vec::len), Some(1));
    let by_code = data.run_cli(&["audit", "--json", "--action", "4029"]).json();
    assert_eq!(by_code[0]["email"], "ivy@example.com");
    let by_user = data.run_cli(&["audit", "--json", "--email", "hank@example.com"]).json();
    assert_eq!(by_user.as_array().map(Vec::len), Some(1));
    assert_eq!(by_user[0]["action"], "UserDisconnectedTfaApp");
    let last = data.run_cli(&["audit", "--json", "--last", "1"]).json();
    assert_eq!(last.as_array().map(Vec::len), Some(1));

    let table = data.run_cli(&["audit"]);
    assert!(table.ok().contains("UserDisconnectedTfaApp (4033)"), "{}", table.stdout);
    assert!(table.stdout.contains("hank@example.com"));
    assert!(data.run_cli(&["audit", "--action", "Teleported"]).err().contains("unknown action"));
}

#[test]
fn sms_outbox_shows_what_the_file_gateway_sent() {
    let data = DataDir::new();
    assert_eq!(data.run_cli(&["sms", "outbox", "--json"]).json(), serde_json::json!([]));
    assert_eq!(data.run_cli(&["sms", "outbox"]).ok(), "AT  TO  TEXT\n");

    // Lines as the file gateway writes them.
    std::fs::write(
        data.sms_file(),
        concat!(
            r#"{"to":"79123456789","text":"Code: 111111","at":"2026-01-10T07:46:24Z"}"#,
            "\n",
            r#"{"to":"442079460958","text":"Code: 222222","at":"2026-01-10T07:47:00Z"}"#,
            "\n"
        ),
    )
    .expect("writing the sms file");
    let all = data.run_cli(&["sms", "outbox", "--json"]).json();
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let last = data.run_cli(&["sms", "outbox", "--json", "--last", "1"]).json();
    assert_eq!(
        last,
        serde_json::json!([{"to":"442079460958","text":"Code: 222222","at":"2026-01-10T07:47:00Z"}])
    );
    let table = data.run_cli(&["sms", "outbox"]);
    assert!(table.ok().contains("79123456789") && table.stdout.contains("Code: 222222"));

    // The store's queue is empty: nothing was enqueued through the service.
    let store = data.run_cli(&["sms", "outbox", "--store", "--json"]).json();
    assert_eq!(store, serde_json::json!([]));
}

/// Issue 13: `user link`, `user links` and `user unlink` manage social links by the provider's
/// subject; one identity links to one user, and a user has one link per provider.
#[test]
fn user_link_links_and_unlink() {
    let data = DataDir::new();
    data.run_cli(&["user", "add", "--email", "ada@example.com", "--password", "correct horse"])
        .ok();
    data.run_cli(&["user", "add", "--email", "bob@example.com", "--password", "battery staple"])
        .ok();
    let ada = ["--email", "ada@example.com"];
    let link = |who: &[&str], subject: &str| {
        let mut args = vec!["user", "link"];
        args.extend(who);
        args.extend(["--provider", "Google", "--subject", subject]);
        data.run_cli(&args)
    };
    assert!(link(&ada, "g-123").ok().contains("linked g-123 to ada@example.com at Google"));
    let again = link(&["--email", "bob@example.com"], "g-123");
    assert_eq!(again.code(), Some(1), "one identity, one user: {}", again.stderr);
    assert!(again.err().contains("linked already"), "{}", again.stderr);
    let links = data.run_cli(&["user", "links", "--email", "ada@example.com", "--json"]).json();
    assert_eq!(links[0]["provider"], "google", "{links}");
    assert_eq!(links[0]["subject"], "g-123");
    let table = data.run_cli(&["user", "links", "--email", "ada@example.com"]);
    assert!(table.ok().starts_with("PROVIDER"), "{}", table.stdout);
    let out =
        data.run_cli(&["user", "unlink", "--email", "ada@example.com", "--provider", "google"]);
    assert!(out.ok().contains("unlinked ada@example.com from google"));
    let links = data.run_cli(&["user", "links", "--email", "ada@example.com", "--json"]).json();
    assert_eq!(links, serde_json::json!([]));
    let audit = data.run_cli(&["audit", "--json"]).json();
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"SocialAccountLinked") && actions.contains(&"SocialAccountUnlinked"));
}

/// Issue 20, the password policy on the CLI: a common password is refused in any case, `--force`
/// lets an operator set one anyway, and the minimum length holds even then.
#[test]
fn the_password_policy_refuses_common_passwords_unless_forced() {
    let data = DataDir::new();
    let add = |email: &str, password: &str, force: bool| {
        let mut args = vec!["user", "add", "--email", email, "--password", password];
        if force {
            args.push("--force");
        }
        data.run_cli(&args)
    };
    for common in ["password1", "Qwerty123", "ILOVEYOU"] {
        let out = add("kim@example.com", common, false);
        assert_eq!(out.code(), Some(1), "{common}");
        assert_eq!(out.err(), "error: the password is one of the most common passwords\n");
    }
    assert!(users(&data).is_empty(), "a refused add creates nobody");
    add("kim@example.com", "Password1", true).ok();
    let out = add("lee@example.com", "short", true);
    assert_eq!(out.err(), "error: the password must have at least 8 characters\n");
    let refused = data.run_cli(&[
        "user",
        "set-password",
        "--email",
        "kim@example.com",
        "--password",
        "letmein1",
    ]);
    assert_eq!(refused.err(), "error: the password is one of the most common passwords\n");
    data.run_cli(&[
        "user",
        "set-password",
        "--email",
        "kim@example.com",
        "--password",
        "letmein1",
        "--force",
    ])
    .ok();
    // A portal may ask for longer passwords.
    data.run_cli(&["portal", "set", "--set", "password_min_length=12"]).ok();
    let out = add("max@example.com", "eleven-char", false);
    assert_eq!(out.err(), "error: the password must have at least 12 characters\n");
}

/// Issue 17: `audit --since T --until T --json` exports the range as JSON lines, oldest first, each
/// line the object `audit --json` shows; `--until` excludes its instant, filters still apply, the
/// times are RFC 3339 or dates, and `--last` does not mix with a range.
#[test]
fn audit_export_writes_a_range_as_json_lines_oldest_first() {
    let data = DataDir::new();
    for email in ["kim@example.com", "lou@example.com", "max@example.com"] {
        data.run_cli(&["user", "add", "--email", email, "--password", "tabby-otter-71"]).ok();
    }
    for email in ["kim@example.com", "lou@example.com", "max@example.com"] {
        data.run_cli(&["user", "reset-phone", "--email", email]).ok();
    }
    data.run_cli(&["user", "reset-tfa", "--email", "kim@example.com"]).ok();
    let newest_first = data.run_cli(&["audit", "--json"]).json();
    let newest_first = newest_first.as_array().unwrap();
    assert_eq!(newest_first.len(), 4);
    let oldest_first: Vec<Value> = newest_first.iter().rev().cloned().collect();

    let lines = |out: &str| -> Vec<Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let all = data.run_cli(&[
        "audit",
        "--since",
        "2000-01-01",
        "--until",
        "2999-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(lines(all.ok()), oldest_first, "every event, oldest first, one per line");
    assert_eq!(all.stdout.lines().count(), 4);

    // The range is [since, until): the second event's time starts it, the fourth's ends it.
    let at = |i: usize| oldest_first[i]["at"].as_str().unwrap().to_owned();
    let middle = data.run_cli(&["audit", "--since", &at(1), "--until", &at(3), "--json"]);
    let got: Vec<String> =
        lines(middle.ok()).iter().map(|e| e["at"].as_str().unwrap().to_owned()).collect();
    assert!(got.first() == Some(&at(1)) && !got.contains(&at(3)), "{got:?}");
    // An offset names the same instant.
    let since = data.run_cli(&["audit", "--since", "2000-01-01T03:00:00+03:00", "--json"]);
    assert_eq!(lines(since.ok()).len(), 4, "--until defaults to now");
    let kim =
        data.run_cli(&["audit", "--since", "2000-01-01", "--email", "kim@example.com", "--json"]);
    let kim = lines(kim.ok());
    assert_eq!(kim.len(), 2);
    assert!(kim.iter().all(|e| e["email"] == "kim@example.com"));
    assert_eq!((kim[0]["code"].as_i64(), kim[1]["code"].as_i64()), (Some(4029), Some(4033)));
    let nothing =
        data.run_cli(&["audit", "--since", "2999-01-01", "--until", "3000-01-01", "--json"]);
    assert_eq!(nothing.ok(), "", "an empty range writes nothing");

    // Without --json: tab-separated lines under a header, still oldest first.
    let table = data.run_cli(&["audit", "--since", "2000-01-01"]);
    let rows: Vec<&str> = table.ok().lines().collect();
    assert_eq!(rows[0], "TIME\tACTION\tUSER\tIP\tREASON\tUSER AGENT");
    assert_eq!(rows.len(), 5);
    assert!(rows[1].contains("UserUpdatedMobileNumber (4029)\tkim@example.com"), "{}", rows[1]);

    // A time clap cannot read is a usage error (exit 2) that says which forms it takes.
    for bad in ["yesterday", "2026-01-10T07:46:24"] {
        let out = data.run_cli(&["audit", "--since", bad]);
        assert_eq!(out.code(), Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("RFC 3339") && out.stderr.contains("offset"), "{}", out.stderr);
    }
    let backwards = data.run_cli(&["audit", "--since", "2026-02-01", "--until", "2026-01-01"]);
    assert!(backwards.err().contains("not before"), "{}", backwards.stderr);
    let mixed = data.run_cli(&["audit", "--last", "5", "--since", "2026-01-01"]);
    assert_eq!(mixed.code(), Some(2), "{}", mixed.stderr);
    assert!(mixed.stderr.contains("--last"), "{}", mixed.stderr);
}

/// Admin commands started at once on a fresh data directory (a provisioning script running them
/// in parallel, or a server starting beside them) all create the default portal when they find
/// none. The store decides that in one transaction, so there is one `Default` portal, which every
/// user lands in: with a look and then an insert, each process made its own, and the server then
/// answered "Portal not found" to every host, since several portals served any host.
#[test]
fn parallel_first_commands_make_one_default_portal() {
    let data = DataDir::new();
    std::thread::scope(|s| {
        for i in 0..6 {
            let data = &data;
            s.spawn(move || {
                let email = format!("first{i}@example.com");
                data.run_cli(&["user", "add", "--email", &email, "--password", "correct horse"])
                    .ok();
            });
        }
    });
    let list = portals(&data);
    assert_eq!(list.len(), 1, "one default portal, not one per process: {list:?}");
    let users = users(&data);
    assert_eq!(users.len(), 6);
    assert!(users.iter().all(|u| u["portal"] == "Default"), "{users:?}");
}

//! LDAP / Active Directory sign-in (spec §5.9, issue 19) against a real OpenLDAP (`auth_tests::Slapd`)
//! over ldaps:// and StartTLS: the harness first, then `auth-server ldap test`, start-up checks, and
//! directory logins over real HTTP against the real server binary.

use auth_tests::slapd::{GROUP_DN, PEOPLE_DN, SERVICE_DN};
use auth_tests::{DataDir, LdapUser, ServerOptions, Slapd, TestServer, Transport};

const ADA_PASSWORD: &str = "ada's directory password";

fn people() -> Vec<LdapUser> {
    vec![
        LdapUser::new("ada", "ada@example.test", ADA_PASSWORD)
            .names("Ada", "Lovelace")
            .mobile("+7 (912) 345-67-89"),
        LdapUser::new("bob", "bob@example.test", "bob-password").outside_group(),
        LdapUser::new("cid", "cid@example.test", "cid-password").disabled(),
    ]
}

/// Writes `toml` as the config file in the data directory's parent; its path.
fn config_file(data: &DataDir, toml: &str) -> String {
    let path = data.path().with_file_name("ldap.toml");
    std::fs::write(&path, toml).expect("the config file");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// The harness's directory answers over both transports with the tree it was seeded with, takes
/// changes, refuses clear text, and comes back after a stop with its data.
#[test]
fn the_test_directory_serves_ldaps_and_start_tls() {
    let Some(mut slapd) = Slapd::start(&people()) else { return };
    let found = slapd.search(PEOPLE_DN, "(uid=ada)").expect("a search as the service account");
    assert!(found.contains("mail: ada@example.test"), "{found}");
    let group = slapd.search(GROUP_DN, "(objectClass=*)").unwrap();
    assert!(group.contains(&format!("member: uid=ada,{PEOPLE_DN}")), "{group}");
    assert!(!group.contains("uid=bob"), "bob is outside the group: {group}");

    // StartTLS with the CA works; a plain bind on the ldap:// port is refused (security tls=1).
    let ldapwhoami = |extra: &[&str]| {
        std::process::Command::new("ldapwhoami")
            .args(["-x", "-H", &slapd.ldap_url(), "-D", SERVICE_DN, "-w"])
            .arg(auth_tests::slapd::SERVICE_PASSWORD)
            .args(extra)
            .env("LDAPTLS_CACERT", slapd.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .output()
            .expect("ldapwhoami")
    };
    assert!(ldapwhoami(&["-ZZ"]).status.success(), "StartTLS");
    assert!(!ldapwhoami(&[]).status.success(), "a clear-text bind must be refused");

    let fay = LdapUser::new("fay", "fay@example.test", "fay-password");
    slapd.add_user(&fay);
    assert!(slapd.search(GROUP_DN, "(objectClass=*)").unwrap().contains("uid=fay"));
    slapd.delete_user(&fay);
    assert!(!slapd.search(PEOPLE_DN, "(uid=fay)").unwrap().contains("uid=fay"));

    slapd.stop();
    assert!(slapd.search(PEOPLE_DN, "(uid=ada)").is_err(), "stopped, it must not answer");
    slapd.start_again();
    assert!(slapd.search(PEOPLE_DN, "(uid=ada)").unwrap().contains("uid=ada"));
}

/// `ldap test` names every step and which one failed, reads the password from standard input, and
/// never prints it.
#[test]
fn ldap_test_says_which_step_failed() {
    let Some(mut slapd) = Slapd::start(&people()) else { return };
    let data = DataDir::new();
    let config = config_file(&data, &slapd.directory_toml("corp", Transport::StartTls, ""));
    let test = |login: &str, password: &str| {
        data.run_cli_with_stdin(
            &["--config", &config, "ldap", "test", "--login", login],
            Some(&format!("{password}\n")),
        )
    };

    let ok = test("ada", ADA_PASSWORD);
    let text = ok.ok();
    for needle in [
        "directory corp (ldap://127.0.0.1:",
        "connect       ok",
        "(StartTLS)",
        "service bind  ok",
        &format!("search        ok      found 1 entry: uid=ada,{PEOPLE_DN}"),
        "user bind     ok",
        "group         ok",
        "disabled      ok",
        "signed in: ada@example.test (Ada Lovelace, mobile +7 (912) 345-67-89)",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!text.contains(ADA_PASSWORD) && !ok.stderr.contains(ADA_PASSWORD));

    let cases = [
        ("ada", "wrong password", "user bind     FAILED", "failed at user bind"),
        ("nobody", "nobody-secret-9", "search        FAILED  found 0 entries", "failed at search"),
        ("*)(uid=*", ADA_PASSWORD, "search        FAILED  found 0 entries", "failed at search"),
        ("bob", "bob-password", "group         FAILED", "failed at group"),
        ("cid", "cid-password", "disabled      FAILED", "failed at disabled"),
    ];
    for (login, password, step, error) in cases {
        let out = test(login, password);
        let stderr = out.err();
        assert!(out.stdout.contains(step), "{login}: {step:?} not in:\n{}", out.stdout);
        assert!(stderr.contains(error), "{login}: {error:?} not in {stderr}");
        assert!(!out.stdout.contains(password) && !stderr.contains(password), "{login}");
    }
    let empty = test("ada", "");
    assert!(empty.err().contains("no password given"), "{}", empty.stderr);

    slapd.stop();
    let out = test("ada", ADA_PASSWORD);
    assert!(out.err().contains("failed at connect"), "{}", out.stderr);
    assert!(
        out.stdout.contains("connect  FAILED  cannot connect to ldap://127.0.0.1:"),
        "{}",
        out.stdout
    );
}

/// Configuration mistakes stop the start with a message naming the key or file, never a secret.
#[test]
fn a_misconfigured_directory_stops_the_start() {
    let Some(slapd) = Slapd::start(&[]) else { return };
    let good = slapd.directory_toml("corp", Transport::Ldaps, "");
    let secret_file = slapd.service_password_file().display().to_string();
    let cases = [
        (
            good.replace(&secret_file, "/nonexistent/ldap.secret"),
            "cannot read bind_password_file /nonexistent/ldap.secret",
        ),
        (
            good.replace(&slapd.ldaps_url(), "ldap://ldap.example.test"),
            "would send passwords in clear text",
        ),
        (good.replace("bind_password_file", "bind_password"), "unknown field `bind_password`"),
    ];
    for (toml, needle) in cases {
        let data = DataDir::new();
        let config = config_file(&data, &toml);
        let options = ServerOptions::new().env("AUTH_CONFIG", &config);
        let Err(failure) = TestServer::try_start_in(data, options) else {
            panic!("started with:\n{toml}");
        };
        assert!(failure.stderr.contains(needle), "{needle:?} not in {}", failure.stderr);
        assert!(
            !failure.stderr.contains(auth_tests::slapd::SERVICE_PASSWORD),
            "{}",
            failure.stderr
        );
    }
}

// ----- directory logins over HTTP (issue 19) ---------------------------------------------------------

const LOGIN: &str = "/api/2.0/authentication";

/// A server whose default portal signs in against the directory (as `corp`, over `transport`), with
/// the portal's second factor `tfa`, the per-account limit out of the way and the `settings` given
/// (`KEY=VALUE`, set before the server starts, so its portal cache holds them); `extra` goes into the
/// directory's table. The config file's path comes back for the CLI.
fn world(
    transport: Transport,
    tfa: &str,
    extra: &str,
    settings: &[&str],
    users: &[LdapUser],
) -> Option<(Slapd, TestServer, String)> {
    let slapd = Slapd::start(users)?;
    let data = DataDir::new();
    let config = config_file(&data, &slapd.directory_toml("corp", transport, extra));
    let mut args =
        vec!["--config", &config, "portal", "set", "--tfa", tfa, "--set", "account_limit=1000"];
    for setting in settings {
        args.extend(["--set", setting]);
    }
    data.run_cli(&args).ok();
    // A local account beside the directory ones, to compare refusals with.
    data.run_cli(&["user", "add", "--email", "local@example.test", "--password", "local password"])
        .ok();
    let options = ServerOptions::new().env("AUTH_CONFIG", &config);
    let server = TestServer::start_in(data, options);
    Some((slapd, server, config))
}

fn login(s: &TestServer, user: &str, password: &str) -> auth_tests::Response {
    s.post_json(LOGIN, &serde_json::json!({ "userName": user, "password": password }))
}

fn token_of(r: &auth_tests::Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", r.text()))
        .to_owned()
}

fn user_row(s: &TestServer, email: &str) -> serde_json::Value {
    let list = s.run_cli(&["user", "list", "--json"]).json();
    list.as_array()
        .and_then(|l| l.iter().find(|u| u["email"] == email).cloned())
        .unwrap_or_else(|| panic!("{email} not in {list}"))
}

/// Logins by uid and by e-mail create and then reuse one directory user; every refusal is the
/// same 401 as a wrong local password; an injected filter finds no one and searches no wider.
#[test]
fn issue_19_directory_logins_over_ldaps() {
    let Some((slapd, s, _)) = world(Transport::Ldaps, "none", "", &[], &people()) else { return };
    let caps = s.get("/api/2.0/capabilities").json();
    assert_eq!(caps["response"]["ldapEnabled"], true, "{caps}");

    let by_uid = login(&s, "ada", ADA_PASSWORD);
    let token = token_of(&by_uid);
    let me =
        s.send(auth_tests::Request::get("/api/2.0/people/@self").header("Authorization", &token));
    let me = me.json()["response"].clone();
    assert_eq!(
        (me["userName"].as_str(), me["firstName"].as_str(), me["lastName"].as_str()),
        (Some("ada@example.test"), Some("Ada"), Some("Lovelace")),
        "{me}"
    );
    assert_eq!(me["isAdmin"], false);
    token_of(&login(&s, "ada@example.test", ADA_PASSWORD));
    token_of(&login(&s, "ADA@Example.Test", ADA_PASSWORD));
    let ada = user_row(&s, "ada@example.test");
    assert_eq!(ada["signIn"], "directory:corp", "{ada}");
    assert_eq!(ada["directory"], "corp");
    let table = s.run_cli(&["user", "list"]);
    assert!(table.ok().contains("directory:corp"), "{}", table.stdout);
    let list = s.run_cli(&["user", "list", "--json"]).json();
    let adas = list.as_array().unwrap().iter().filter(|u| u["email"] == "ada@example.test").count();
    assert_eq!(adas, 1, "one local user for every spelling of the login: {list}");

    // Every refusal has the bytes of a wrong local password.
    let reference = login(&s, "local@example.test", "wrong");
    assert_eq!(reference.status, 401);
    for (user, password, what) in [
        ("ada", "wrong", "a wrong password"),
        ("nobody", "whatever", "an unknown login"),
        ("bob", "bob-password", "a user outside the group"),
        ("cid", "cid-password", "a user disabled in the directory"),
    ] {
        let r = login(&s, user, password);
        assert_eq!((r.status, &r.body), (401, &reference.body), "{what}: {}", r.text());
    }
    let list = s.run_cli(&["user", "list", "--json"]).json();
    for email in ["bob@example.test", "cid@example.test"] {
        assert!(
            !list.as_array().unwrap().iter().any(|u| u["email"] == email),
            "a refused directory login created {email}: {list}"
        );
    }

    // An empty password is refused before anything reaches the directory: no bind as anyone but
    // the service account, and no user.
    let binds_before = slapd.binds();
    let empty = login(&s, "ada", "");
    assert_eq!(empty.status, 400, "{}", empty.text());
    let basic = s.send(
        auth_tests::Request::post(LOGIN)
            .header("Authorization", &format!("Basic {}", auth_tests::base64(b"bob:"))),
    );
    assert!(matches!(basic.status, 400 | 401), "{}", basic.text());
    let new_binds: Vec<String> = slapd.binds().split_off(binds_before.len());
    assert!(
        new_binds.iter().all(|dn| dn == SERVICE_DN),
        "binds for an empty password: {new_binds:?}"
    );

    // The injection: ada's password with a login that would match everyone if it were syntax.
    let searches_before = slapd.searches().len();
    let r = login(&s, "*)(uid=*", ADA_PASSWORD);
    assert_eq!((r.status, &r.body), (401, &reference.body), "{}", r.text());
    let r = login(&s, "*", ADA_PASSWORD);
    assert_eq!(r.status, 401, "{}", r.text());
    let searches = slapd.searches().split_off(searches_before);
    assert!(!searches.is_empty(), "no search was made");
    for filter in &searches {
        assert!(!filter.contains("=*)"), "a search wider than one login: {filter}");
        assert!(filter.contains("\\2A"), "the * was not escaped: {filter}");
    }
}

/// The directory stopped: 503 `provider_unavailable` with `Retry-After`, whatever the password;
/// started again: logins work again without a server restart.
#[test]
fn issue_19_a_stopped_directory_is_503_provider_unavailable() {
    let Some((mut slapd, s, _)) = world(Transport::StartTls, "none", "", &[], &people()) else {
        return;
    };
    token_of(&login(&s, "ada", ADA_PASSWORD));
    slapd.stop();
    for password in [ADA_PASSWORD, "wrong"] {
        let r = login(&s, "ada", password);
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "provider_unavailable", "{}", r.text());
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    }
    // A local account on the same portal is not the directory's: it still signs in.
    token_of(&login(&s, "local@example.test", "local password"));
    slapd.start_again();
    token_of(&login(&s, "ada", ADA_PASSWORD));
}

/// An SMS portal: the directory's `mobile` becomes the user's phone, not yet activated, so the first
/// login asks to confirm it; the code goes to that number, and the next login sends one at once.
/// The directory is chosen by the portal's `ldap` setting here, not by its `portals` list.
#[test]
fn issue_19_sms_second_factor_with_the_directorys_mobile() {
    let extra = "portals = [\"elsewhere.example\"]\n";
    let Some((_slapd, s, config)) =
        world(Transport::StartTls, "sms", extra, &["ldap=corp"], &people())
    else {
        return;
    };
    // A name the configuration does not have is refused when it is set.
    let typo = s.run_cli(&["--config", &config, "portal", "set", "--set", "ldap=crop"]);
    assert!(
        typo.err().contains("no [[ldap.directories]] entry is called \"crop\""),
        "{}",
        typo.stderr
    );

    let first = login(&s, "ada", ADA_PASSWORD);
    assert_eq!(first.status, 200, "{}", first.text());
    let body = first.json()["response"].clone();
    assert_eq!((body["token"].is_null(), body["sms"].as_bool()), (true, Some(true)), "{body}");
    let ada = user_row(&s, "ada@example.test");
    assert_eq!(
        (ada["phone"].as_str(), ada["phoneActivated"].as_bool()),
        (Some("79123456789"), Some(false)),
        "{ada}"
    );

    let credentials = serde_json::json!({
        "userName": "ada", "password": ADA_PASSWORD, "mobilePhone": "+7 (912) 345-67-89"
    });
    let set = s.post_json("/api/2.0/authentication/setphone", &credentials);
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["response"]["phoneNoise"], "+7912***6789");
    let sms = s.wait_for_sms(1);
    assert_eq!(sms[0].to, "79123456789");
    let code = sms[0].code();
    let step2 = s.post_json(
        &format!("/api/2.0/authentication/{code}"),
        &serde_json::json!({ "userName": "ada", "password": ADA_PASSWORD }),
    );
    token_of(&step2);

    // Activated now: the next login sends a code at once and shows the masked number.
    let again = login(&s, "ada@example.test", ADA_PASSWORD);
    assert_eq!(again.json()["response"]["phoneNoise"], "+7912***6789", "{}", again.text());
    let sms = s.wait_for_sms(2);
    assert_eq!(sms[1].to, "79123456789");
}

/// `ldap sync` creates the directory's users, disables the one removed from the directory and the
/// one removed from the group, and a disabled user can no longer sign in; `user set-password`
/// refuses a directory user.
#[test]
fn issue_19_ldap_sync_and_set_password() {
    let mut users = people();
    users.push(LdapUser::new("dee", "dee@example.test", "dee-password"));
    users.push(LdapUser::new("fay", "fay@example.test", "fay-password"));
    let Some((slapd, s, config)) = world(Transport::Ldaps, "none", "", &[], &users) else { return };
    token_of(&login(&s, "ada", ADA_PASSWORD));
    token_of(&login(&s, "dee", "dee-password"));

    let sync = |json: bool| {
        let mut args = vec!["--config", config.as_str(), "ldap", "sync"];
        if json {
            args.push("--json");
        }
        s.run_cli(&args)
    };
    let first = sync(true).json();
    // ada, cid (disabled there), dee, fay are the group's members; bob is outside.
    assert_eq!(first["entries"], 4, "{first}");
    assert_eq!(first["created"], 2, "cid and fay: {first}");
    assert_eq!(first["disabled"], 1, "cid, disabled in the directory: {first}");
    assert_eq!(user_row(&s, "fay@example.test")["signIn"], "directory:corp");
    assert_eq!(user_row(&s, "cid@example.test")["disabled"], true);
    assert!(
        !s.run_cli(&["user", "list", "--json"]).stdout.contains("bob@example.test"),
        "bob is outside the group"
    );

    // dee leaves the directory, fay leaves the group.
    slapd.delete_user(&users[3]);
    slapd.set_member(&users[4], false);
    let text = sync(false);
    let report = text.ok();
    assert!(report.contains("synchronised portal"), "{report}");
    assert!(report.contains("disabled   2"), "{report}");
    for email in ["dee@example.test", "fay@example.test"] {
        assert_eq!(user_row(&s, email)["disabled"], true, "{email}");
    }
    assert_eq!(user_row(&s, "ada@example.test")["disabled"], false);
    let r = login(&s, "dee", "dee-password");
    assert_eq!(r.status, 401, "a user gone from the directory: {}", r.text());
    let r = login(&s, "fay", "fay-password");
    assert_eq!(r.status, 401, "a user gone from the group: {}", r.text());
    token_of(&login(&s, "ada", ADA_PASSWORD));

    let refused = s.run_cli_with_stdin(
        &["user", "set-password", "--email", "ada@example.test", "--password-stdin"],
        "a local password\n",
    );
    let stderr = refused.err();
    assert!(stderr.contains("is a user of directory corp"), "{stderr}");
    let r = login(&s, "ada@example.test", "a local password");
    assert_eq!(r.status, 401, "{}", r.text());
    token_of(&login(&s, "ada@example.test", ADA_PASSWORD));
}

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

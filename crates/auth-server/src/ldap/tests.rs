//! Tests of the LDAP module: the configuration's checks, the outcome rules, and the client against a
//! real OpenLDAP server (`auth_tests::Slapd`) over ldaps:// and StartTLS.
//!
//! The server-level behaviour (HTTP answers, local users, throttles) is the black-box suite's
//! (`tests/it/ldap.rs`); here the client's own promises are pinned: which outcome each refusal is,
//! that an injected filter finds no one, that a dead directory is `Unavailable` and a revived one
//! is used again, and that the pool bounds the connections.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::SecretString;
use auth_tests::slapd::{GROUP_DN, PEOPLE_DN, SERVICE_DN};
use auth_tests::{LdapUser, Slapd, Transport};
use ldap3::LdapResult;

use super::client::{Failure, classify_bind, is_disabled};
use super::*;
use crate::config::{Config, Overrides};

fn load(toml: &str) -> anyhow::Result<Config> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), toml)?;
    Config::load(Some(file.path()), Vec::new(), &Overrides::default())
}

/// A minimal valid directory table with `extra` keys added.
fn table(extra: &str) -> String {
    format!(
        "[[ldap.directories]]\nname = \"corp\"\nurl = \"ldaps://dc1.corp.example\"\n\
         bind_dn = \"cn=svc,dc=corp\"\nbind_password_file = \"/etc/auth/ldap.secret\"\n\
         user_base = \"dc=corp\"\n{extra}"
    )
}

// ----- configuration ------------------------------------------------------------------------------

#[test]
fn a_minimal_directory_gets_the_spec_defaults() {
    let c = load(&table("")).unwrap();
    let d = &c.ldap.directories[0];
    assert_eq!(d.name, "corp");
    assert_eq!(d.url, LdapUrl { ldaps: true, host: "dc1.corp.example".into(), port: 636 });
    assert!(!d.start_tls);
    assert_eq!(d.user_filter, DEFAULT_USER_FILTER);
    assert_eq!(
        DEFAULT_USER_FILTER,
        "(&(objectClass=person)(|(uid={login})(sAMAccountName={login})(mail={login})))"
    );
    assert_eq!(d.attributes, Attributes::default());
    assert_eq!(
        (
            d.attributes.email.as_str(),
            d.attributes.first_name.as_str(),
            d.attributes.last_name.as_str()
        ),
        ("mail", "givenName", "sn")
    );
    assert_eq!(d.attributes.mobile.as_deref(), Some("mobile"));
    assert_eq!(d.attributes.disabled, None);
    assert_eq!(d.timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
    assert_eq!(d.pool_size, DEFAULT_POOL_SIZE);
    assert_eq!(d.portals, None);
    assert_eq!(d.group_dn, None);
    assert_eq!(d.bind_password, BindPassword::File("/etc/auth/ldap.secret".into()));
    assert!(load("").unwrap().ldap.directories.is_empty());
}

#[test]
fn every_key_is_read() {
    let toml = "[[ldap.directories]]\nname = \"ad\"\nportals = [\"Portal.Example.com\"]\n\
        url = \"ldap://dc1.corp.example:3268\"\nstart_tls = true\nca_file = \"/etc/auth/ca.pem\"\n\
        bind_dn = \"CN=svc,DC=corp\"\nbind_password_env = \"CORP_LDAP_PASSWORD\"\n\
        user_base = \"DC=corp\"\nuser_filter = \"(&(objectClass=user)(sAMAccountName={login}))\"\n\
        group_dn = \"CN=Portal,DC=corp\"\ntimeout_secs = 7\npool_size = 9\n\
        [ldap.directories.attributes]\nemail = \"userPrincipalName\"\nfirst_name = \"givenName\"\n\
        last_name = \"sn\"\nmobile = \"\"\ndisabled = \"userAccountControl\"\n";
    let c = load(toml).unwrap();
    let d = &c.ldap.directories[0];
    assert_eq!(d.portals.as_deref(), Some(&["portal.example.com".to_owned()][..]));
    assert_eq!(d.url.to_string(), "ldap://dc1.corp.example:3268");
    assert!(d.start_tls);
    assert_eq!(d.ca_file.as_deref(), Some(Path::new("/etc/auth/ca.pem")));
    assert_eq!(d.bind_password, BindPassword::Env("CORP_LDAP_PASSWORD".into()));
    assert_eq!(d.group_dn.as_deref(), Some("CN=Portal,DC=corp"));
    assert_eq!((d.timeout, d.pool_size), (Duration::from_secs(7), 9));
    assert_eq!(d.attributes.email, "userPrincipalName");
    assert_eq!(d.attributes.mobile, None, "an empty name reads no mobile");
    assert_eq!(d.attributes.disabled.as_deref(), Some("userAccountControl"));
    assert!(d.serves_hosts(&["portal.example.com".into()]));
    assert!(!d.serves_hosts(&["other.example.com".into()]));
}

/// Every refused configuration, with the words its message must contain.
#[test]
fn bad_configurations_are_refused_with_the_key_named() {
    let check = |toml: String, needle: &str| {
        let e = format!("{:#}", load(&toml).unwrap_err());
        assert!(e.contains(needle), "{needle:?} not in {e:?} for\n{toml}");
    };
    let cases: &[(&str, &str)] = &[
        ("start_tls = true\n", "start_tls: an ldaps:// connection is TLS already"),
        ("user_filter = \"(uid=admin)\"\n", "user_filter: must contain {login}"),
        ("user_filter = \"uid={login}\"\n", "user_filter: must be one filter in parentheses"),
        ("user_filter = \"(&(uid={login})\"\n", "user_filter: is not a valid LDAP filter"),
        ("timeout_secs = 0\n", "timeout_secs"),
        ("pool_size = 0\n", "pool_size"),
        ("bind_password_env = \"X\"\n", "set one, not both"),
        ("portals = [\"a b\"]\n", "portals"),
        ("[ldap.directories.attributes]\nemail = \"mail)(x\"\n", "attributes.email"),
        ("[ldap.directories.attributes]\ndisabled = \"a b\"\n", "attributes.disabled"),
        ("bind_password = \"hunter2\"\n", "unknown field"),
    ];
    for (extra, needle) in cases {
        check(table(extra), needle);
    }
    let replaced = |from: &str, to: &str| table("").replace(from, to);
    check(replaced("ldaps://dc1.corp.example", "ldap://dc1.corp.example"), "clear text");
    check(replaced("ldaps://dc1.corp.example", "ldap://localhost"), "clear text");
    check(replaced("ldaps://dc1.corp.example", "http://dc1"), "must start with ldaps://");
    check(replaced("ldaps://dc1.corp.example", "ldaps://dc1/dc=corp"), "only a host and a port");
    check(replaced("ldaps://dc1.corp.example", "ldaps://dc1:0"), "is not a port");
    check(replaced("name = \"corp\"", "name = \"Corp\""), "name: must be");
    check(replaced("bind_dn = \"cn=svc,dc=corp\"", "bind_dn = \"\""), "bind_dn");
    check(replaced("user_base = \"dc=corp\"", "user_base = \" \""), "user_base");
    check(
        replaced("bind_password_file = \"/etc/auth/ldap.secret\"", ""),
        "the service account needs a password",
    );
    check(format!("{}\n{}", table(""), table("")), "used twice");
    // An unknown key's line is not quoted: it may be a password written where none belongs.
    let e = format!("{:#}", load(&table("bind_password = \"hunter2\"\n")).unwrap_err());
    assert!(!e.contains("hunter2"), "{e}");
    let e = format!(
        "{:#}",
        Config::load(None, vec![("AUTH_LDAP__URL".into(), "x".into())], &Overrides::default())
            .unwrap_err()
    );
    assert!(e.contains("unknown environment variable AUTH_LDAP__URL"), "{e}");
}

#[test]
fn plain_ldap_is_allowed_to_loopback_only() {
    for (url, ok) in [
        ("ldap://127.0.0.1:389", true),
        ("ldap://127.9.9.9", true),
        ("ldap://[::1]:1389", true),
        ("ldap://localhost", false),
        ("ldap://10.0.0.1", false),
        ("ldaps://10.0.0.1", true),
    ] {
        let toml = table("").replace("ldaps://dc1.corp.example", url);
        assert_eq!(load(&toml).is_ok(), ok, "{url}");
    }
    let u = parse_url("LDAPS://DC1.Corp.Example/").unwrap();
    assert_eq!((u.ldaps, u.host.as_str(), u.port), (true, "dc1.corp.example", 636));
    assert_eq!(parse_url("ldap://[::1]").unwrap().port, 389);
}

#[test]
fn the_disabled_flag_is_read_like_each_directory_writes_it() {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    for (attribute, values, disabled) in [
        ("userAccountControl", v(&["512"]), false),
        ("userAccountControl", v(&["514"]), true),
        ("userAccountControl", v(&["66050"]), true),
        ("userAccountControl", v(&["66048"]), false),
        ("useraccountcontrol", v(&["2"]), true),
        ("userAccountControl", v(&["TRUE"]), false),
        ("nsAccountLock", v(&["TRUE"]), true),
        ("nsAccountLock", v(&["true"]), true),
        ("nsAccountLock", v(&["FALSE"]), false),
        ("employeeType", v(&["1"]), true),
        ("employeeType", v(&["yes"]), true),
        ("employeeType", v(&["staff"]), false),
        ("employeeType", v(&[]), false),
    ] {
        assert_eq!(is_disabled(attribute, &values), disabled, "{attribute}: {values:?}");
    }
}

#[test]
fn a_refused_bind_is_never_unavailable() {
    let result = |rc: u32, text: &str| LdapResult {
        rc,
        matched: String::new(),
        text: text.to_owned(),
        refs: Vec::new(),
        ctrls: Vec::new(),
    };
    let outcome = |r: LdapResult| match classify_bind(&r) {
        Ok(()) => "ok",
        Err(Failure::Unavailable(_)) => "unavailable",
        Err(Failure::Refused(DirectoryError::WrongPassword)) => "wrong password",
        Err(Failure::Refused(DirectoryError::Disabled)) => "disabled",
        Err(Failure::Refused(_)) => "other refusal",
    };
    let ad = |data: &str| {
        format!(
            "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {data}, v4563"
        )
    };
    for (r, expected) in [
        (result(0, ""), "ok"),
        (result(49, "Invalid credentials"), "wrong password"),
        (result(49, &ad("52e")), "wrong password"),
        (result(49, &ad("533")), "disabled"),
        (result(49, &ad("775")), "disabled"),
        (result(48, ""), "wrong password"),
        (result(53, "unauthenticated bind (DN with no password) disallowed"), "wrong password"),
        (result(51, ""), "unavailable"),
        (result(52, ""), "unavailable"),
        (result(13, "TLS confidentiality required"), "unavailable"),
    ] {
        assert_eq!(outcome(r.clone()), expected, "{r:?}");
    }
}

#[test]
fn the_password_is_read_from_its_file_or_variable_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ldap.secret");
    std::fs::write(&file, "s3cret-pass\n").unwrap();
    let outbound = Outbound::new(4);
    let build = |toml: String, env: &[(&str, &str)]| {
        let c = load(&toml).unwrap();
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        LdapDirectories::with_env(&c.ldap, &outbound, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    };
    let with_file =
        |path: &Path| table("").replace("/etc/auth/ldap.secret", path.to_str().unwrap());
    let ok = build(with_file(&file), &[]).unwrap();
    assert_eq!(ok.names(), vec!["corp"]);
    assert!(!format!("{ok:?}").contains("s3cret"));

    let missing = dir.path().join("nope.secret");
    let e = build(with_file(&missing), &[]).unwrap_err().to_string();
    assert!(e.contains("cannot read bind_password_file") && e.contains("nope.secret"), "{e}");
    std::fs::write(&file, "\n").unwrap();
    let e = build(with_file(&file), &[]).unwrap_err().to_string();
    assert!(e.contains("is empty"), "{e}");

    let by_env = table("").replace(
        "bind_password_file = \"/etc/auth/ldap.secret\"",
        "bind_password_env = \"CORP_LDAP_PASSWORD\"",
    );
    assert!(build(by_env.clone(), &[("CORP_LDAP_PASSWORD", "s3cret-pass")]).is_ok());
    let e = build(by_env, &[]).unwrap_err().to_string();
    assert!(e.contains("CORP_LDAP_PASSWORD") && e.contains("not set"), "{e}");
}

// ----- against a real OpenLDAP --------------------------------------------------------------------

const ADA_PASSWORD: &str = "ada's directory password";

fn people() -> Vec<LdapUser> {
    vec![
        LdapUser::new("ada", "ada@example.test", ADA_PASSWORD)
            .names("Ada", "Lovelace")
            .mobile("+7 (912) 345-67-89"),
        LdapUser::new("bob", "bob@example.test", "bob-password").outside_group(),
        LdapUser::new("cid", "cid@example.test", "cid-password").disabled(),
        // Two people sharing one e-mail: that login names no one.
        LdapUser::new("dee", "shared@example.test", "dee-password"),
        LdapUser::new("eve", "shared@example.test", "eve-password"),
        // No e-mail: an entry that cannot become a portal user.
        LdapUser::new("nomail", "", "nomail-password"),
    ]
}

fn directories(slapd: &Slapd, transport: Transport, extra: &str) -> LdapDirectories {
    let toml = slapd.directory_toml("corp", transport, extra);
    let c = load(&toml).unwrap();
    LdapDirectories::new(&c.ldap, &Outbound::new(4)).unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s)
}

async fn outcome(d: &LdapDirectories, login: &str, password: &str) -> Result<String, String> {
    match d.authenticate("corp", login, &pw(password)).await {
        Ok(e) => Ok(e.email),
        Err(e) => Err(match e {
            DirectoryError::Unavailable(_) => "unavailable".to_owned(),
            other => other.to_string(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_against_a_real_directory_over_ldaps_and_start_tls() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    for transport in [Transport::Ldaps, Transport::StartTls] {
        let d = directories(&slapd, transport, "");
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("ada", ADA_PASSWORD, Ok("ada@example.test")),
            ("ada@example.test", ADA_PASSWORD, Ok("ada@example.test")),
            ("ADA", ADA_PASSWORD, Ok("ada@example.test")),
            ("ada", "wrong", Err("directory refused the password")),
            ("ada", "", Err("directory refused the password")),
            ("nobody", "x", Err("login unknown to the directory")),
            ("*", ADA_PASSWORD, Err("login unknown to the directory")),
            ("*)(uid=*", ADA_PASSWORD, Err("login unknown to the directory")),
            ("ada)(|(uid=*", ADA_PASSWORD, Err("login unknown to the directory")),
            ("shared@example.test", "dee-password", Err("login unknown to the directory")),
            ("bob", "bob-password", Err("not a member of the required group")),
            ("nomail", "nomail-password", Err("login unknown to the directory")),
            ("cid", "cid-password", Err("disabled in the directory")),
        ];
        for (login, password, expected) in cases {
            let got = outcome(&d, login, password).await;
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, expected, "{transport:?}: {login:?}");
        }
        let ada = d.authenticate("corp", "ada", &pw(ADA_PASSWORD)).await.unwrap();
        assert_eq!(
            ada,
            DirectoryEntry {
                directory: "corp".into(),
                dn: format!("uid=ada,{PEOPLE_DN}"),
                email: "ada@example.test".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                mobile: Some("+7 (912) 345-67-89".into()),
                disabled: false,
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_test_says_which_step_failed() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    let d = directories(&slapd, Transport::StartTls, "");
    let steps = |login: &'static str, password: &'static str| {
        let d = &d;
        async move {
            let mut trace = Trace::on();
            let _ = d.authenticate_traced("corp", login, &pw(password), &mut trace).await;
            trace
                .into_steps()
                .iter()
                .map(|s| format!("{} {}", s.step.as_str(), if s.ok { "ok" } else { "FAILED" }))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        steps("ada", ADA_PASSWORD).await,
        [
            "connect ok",
            "service bind ok",
            "search ok",
            "user connect ok",
            "user bind ok",
            "group ok",
            "disabled ok"
        ]
    );
    // The service connection is reused by the next login: no second connect or service bind.
    assert_eq!(steps("ada", "wrong").await, ["search ok", "user connect ok", "user bind FAILED"]);
    assert_eq!(steps("nobody", "x").await, ["search FAILED"]);
    assert_eq!(
        steps("bob", "bob-password").await,
        ["search ok", "user connect ok", "user bind ok", "group FAILED"]
    );
    let mut trace = Trace::on();
    let _ = d.authenticate_traced("corp", "ada", &pw(ADA_PASSWORD), &mut trace).await;
    let search = &trace.into_steps()[0];
    assert_eq!(search.detail, format!("found 1 entry: uid=ada,{PEOPLE_DN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_directory_is_unavailable_and_a_restarted_one_is_used_again() {
    let Some(mut slapd) = Slapd::start(&people()) else { return };
    let d = directories(&slapd, Transport::Ldaps, "");
    assert!(outcome(&d, "ada", ADA_PASSWORD).await.is_ok());
    slapd.stop();
    let t = Instant::now();
    assert_eq!(outcome(&d, "ada", ADA_PASSWORD).await, Err("unavailable".into()));
    assert!(t.elapsed() < Duration::from_secs(3), "refused connections must fail fast");
    // A wrong password is unavailable too while no one can judge it: never a 401's "wrong password".
    assert_eq!(outcome(&d, "ada", "wrong").await, Err("unavailable".into()));
    assert!(matches!(d.entries("corp").await, Err(DirectoryError::Unavailable(_))));
    slapd.start_again();
    assert_eq!(outcome(&d, "ada", ADA_PASSWORD).await, Ok("ada@example.test".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_the_service_account_must_be_right() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    // A CA that did not sign the directory's certificate: the handshake fails; so does a service
    // account with the wrong password. Both are "the directory cannot be used", not a wrong password.
    let ca = slapd.ca_file().display().to_string();
    let unrelated = slapd.unrelated_ca_file().display().to_string();
    for transport in [Transport::Ldaps, Transport::StartTls] {
        let toml = slapd.directory_toml("corp", transport, "").replace(&ca, &unrelated);
        let c = load(&toml).unwrap();
        let d = LdapDirectories::new(&c.ldap, &Outbound::new(4)).unwrap();
        let mut trace = Trace::on();
        let e = d.authenticate_traced("corp", "ada", &pw(ADA_PASSWORD), &mut trace).await;
        assert!(matches!(e, Err(DirectoryError::Unavailable(_))), "{transport:?}: {e:?}");
        let steps = trace.into_steps();
        assert_eq!((steps[0].step, steps[0].ok), (Step::Connect, false), "{steps:?}");
        assert!(steps[0].detail.contains("certificate"), "{steps:?}");
    }
    let wrong = slapd.dir().join("wrong.secret");
    std::fs::write(&wrong, "not the service password").unwrap();
    let toml = slapd
        .directory_toml("corp", Transport::Ldaps, "")
        .replace(slapd.service_password_file().to_str().unwrap(), wrong.to_str().unwrap());
    let d = LdapDirectories::new(&load(&toml).unwrap().ldap, &Outbound::new(4)).unwrap();
    let mut trace = Trace::on();
    let e = d.authenticate_traced("corp", "ada", &pw(ADA_PASSWORD), &mut trace).await;
    assert!(matches!(e, Err(DirectoryError::Unavailable(_))), "{e:?}");
    let steps = trace.into_steps();
    assert_eq!((steps[1].step, steps[1].ok), (Step::ServiceBind, false), "{steps:?}");
    assert!(steps[1].detail.contains(SERVICE_DN), "{steps:?}");
    assert!(!steps[1].detail.contains("not the service password"), "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lists_the_group_members_with_their_flags() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    let d = directories(&slapd, Transport::Ldaps, "");
    let mut emails: Vec<(String, bool)> =
        d.entries("corp").await.unwrap().into_iter().map(|e| (e.email, e.disabled)).collect();
    emails.sort();
    // bob is outside the group; the entry without an e-mail is left out; cid is listed, disabled.
    assert_eq!(
        emails,
        [
            ("ada@example.test".to_owned(), false),
            ("cid@example.test".to_owned(), true),
            ("shared@example.test".to_owned(), false),
            ("shared@example.test".to_owned(), false),
        ]
    );
    // Without a group, everyone the filter admits.
    let toml = slapd
        .directory_toml("corp", Transport::Ldaps, "")
        .replace(&format!("group_dn = \"{GROUP_DN}\"\n"), "");
    let d = LdapDirectories::new(&load(&toml).unwrap().ldap, &Outbound::new(4)).unwrap();
    assert_eq!(d.entries("corp").await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_bounds_logins_in_flight() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    let d = Arc::new(directories(&slapd, Transport::Ldaps, "pool_size = 2\n"));
    let logins = (0..12).map(|i| {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            let password = if i % 3 == 0 { "wrong" } else { ADA_PASSWORD };
            (i, outcome(&d, "ada", password).await)
        })
    });
    for login in logins {
        let (i, got) = login.await.unwrap();
        if i % 3 == 0 {
            assert_eq!(got, Err("directory refused the password".into()));
        } else {
            assert_eq!(got, Ok("ada@example.test".into()));
        }
    }
    let client = d.get("corp").unwrap();
    assert!(client.idle_connections() <= 2, "{} idle", client.idle_connections());
}

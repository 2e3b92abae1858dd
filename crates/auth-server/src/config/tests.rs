//! Unit tests of configuration loading: layering, key coverage, and error messages.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn load(file: Option<&str>, e: &[(&str, &str)], o: &Overrides) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    Config::load(file.map(|_| path.as_path()), env(e), o)
}

fn err(file: Option<&str>, e: &[(&str, &str)]) -> String {
    format!("{:#}", load(file, e, &Overrides::default()).unwrap_err())
}

#[test]
fn foreign_auth_variables_are_ignored_and_the_short_database_url_works() {
    let c = load(
        None,
        &[("AUTH_TEST_POSTGRES_URL", "postgres://x"), ("AUTH_SERVER_BIN", "/bin/x")],
        &Overrides::default(),
    );
    assert!(c.is_ok(), "{c:?}");
    let e = err(None, &[("AUTH_DATABASE_URL", "mysql://db/auth")]);
    assert!(e.contains("database.url"), "{e}");
}

#[test]
fn a_postgres_url_selects_postgres() {
    let c = load(
        None,
        &[("AUTH_DATABASE_URL", "postgres://u@db:5432/auth"), ("AUTH_DATABASE__POOL_SIZE", "4")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.database_url.as_deref(), Some("postgres://u@db:5432/auth"));
    assert_eq!(c.database_pool_size, 4);
    let c =
        load(None, &[("AUTH_DATABASE__URL", "sqlite:/tmp/x.db")], &Overrides::default()).unwrap();
    assert_eq!((c.database_url, c.database_path), (None, PathBuf::from("/tmp/x.db")));
}

#[test]
fn defaults_need_no_input() {
    let c = load(None, &[], &Overrides::default()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.database_path, PathBuf::from("./data/auth.db"));
    assert_eq!(c.server_key_file, PathBuf::from("./data/server.key"));
    assert_eq!(c.sms, SmsConfig::File { path: PathBuf::from("./data/sms-outbox.jsonl") });
    assert_eq!(c.hashing.params, HashParams::default());
    assert!(c.hashing.workers >= 1);
    assert_eq!(c.hashing.queue, 64);
    assert_eq!(c.http.body_limit, 65536);
    assert_eq!(c.http.header_timeout, Duration::from_secs(10));
    assert_eq!(c.http.body_timeout, Duration::from_secs(30));
    assert_eq!(c.http.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.log, LogConfig { format: LogFormat::Human, level: "info".to_owned() });
    assert_eq!(c.outbox.poll_interval, Duration::from_millis(200));
    assert_eq!(c.bootstrap.admin_email, DEFAULT_ADMIN_EMAIL);
}

#[test]
fn file_then_env_then_flags() {
    let file = r#"
        listen = "127.0.0.1:9000"
        data_dir = "/srv/file"
        [hashing]
        m_cost_kib = 4096
        t_cost = 3
        [http]
        trusted_proxies = ["10.0.0.0/8"]
        body_limit_bytes = 1000
    "#;
    let only_file = load(Some(file), &[], &Overrides::default()).unwrap();
    assert_eq!(only_file.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(only_file.database_path, PathBuf::from("/srv/file/auth.db"));
    assert_eq!(only_file.hashing.params, HashParams { m_cost_kib: 4096, t_cost: 3, p_cost: 1 });
    assert_eq!(only_file.http.trusted_proxies, vec!["10.0.0.0/8".parse().unwrap()]);

    let e = [
        ("AUTH_LISTEN", "127.0.0.1:9001"),
        ("AUTH_DATA_DIR", "/srv/env"),
        ("AUTH_HASHING__M_COST_KIB", "8"),
        ("AUTH_HTTP__TRUSTED_PROXIES", "127.0.0.1, 192.168.0.0/16"),
        ("AUTH_CONFIG", "/ignored/by/the/loader.toml"),
        ("HOME", "/root"),
    ];
    let with_env = load(Some(file), &e, &Overrides::default()).unwrap();
    assert_eq!(with_env.listen, "127.0.0.1:9001".parse().unwrap());
    assert_eq!(with_env.data_dir, PathBuf::from("/srv/env"));
    assert_eq!(with_env.server_key_file, PathBuf::from("/srv/env/server.key"));
    // A key set only in the file survives an override of its neighbour.
    assert_eq!(with_env.hashing.params, HashParams { m_cost_kib: 8, t_cost: 3, p_cost: 1 });
    assert_eq!(with_env.http.body_limit, 1000);
    assert_eq!(
        with_env.http.trusted_proxies,
        vec!["127.0.0.1/32".parse().unwrap(), "192.168.0.0/16".parse().unwrap()]
    );

    let flags = Overrides {
        data_dir: Some(PathBuf::from("/srv/flag")),
        listen: Some("127.0.0.1:0".to_owned()),
        log_json: true,
    };
    let with_flags = load(Some(file), &e, &flags).unwrap();
    assert_eq!(with_flags.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(with_flags.database_path, PathBuf::from("/srv/flag/auth.db"));
    assert_eq!(with_flags.sms.file_path(), Some(Path::new("/srv/flag/sms-outbox.jsonl")));
    assert_eq!(with_flags.log.format, LogFormat::Json);
}

#[test]
fn explicit_paths_beat_the_data_dir() {
    let c = load(
        None,
        &[
            ("AUTH_DATABASE__PATH", "/db/a.db"),
            ("AUTH_SERVER_KEY_FILE", "/keys/k"),
            ("AUTH_SMS__FILE_PATH", "/var/sms.jsonl"),
        ],
        &Overrides { data_dir: Some(PathBuf::from("/d")), ..Overrides::default() },
    )
    .unwrap();
    assert_eq!(c.database_path, PathBuf::from("/db/a.db"));
    assert_eq!(c.server_key_file, PathBuf::from("/keys/k"));
    assert_eq!(c.sms.file_path(), Some(Path::new("/var/sms.jsonl")));
}

#[test]
fn every_key_has_an_env_override() {
    let values = |kind: Kind, key: &str| match (kind, key) {
        (_, "listen") => "127.0.0.1:1",
        (_, "log.format") => "json",
        (_, "log.level") => "debug",
        (_, "database.url") => "sqlite:///tmp/x.db",
        (_, "sms.gateway") => "webhook",
        (_, "sms.webhook_url") => "http://127.0.0.1:9/sms",
        (_, "bootstrap.admin_email") => "root@example.com",
        (_, "hashing.p_cost") => "2",
        (Kind::Str, _) => "/some/path",
        (Kind::U32 | Kind::U64, _) => "16",
        (Kind::List, _) => "10.0.0.0/8",
    };
    let e: Vec<(String, String)> =
        KEYS.iter().map(|(k, kind)| (env_name(k), values(*kind, k).to_owned())).collect();
    let c = Config::load(None, e, &Overrides::default()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(c.database_path, PathBuf::from("/tmp/x.db"));
    assert_eq!(c.hashing.workers, 16);
    assert_eq!(c.outbox.poll_interval, Duration::from_millis(16));
    assert!(
        matches!(c.sms, SmsConfig::Webhook { timeout, .. } if timeout == Duration::from_secs(16))
    );
}

#[test]
fn every_key_is_documented() {
    let doc = include_str!("../../../../docs/configuration.md");
    for key in keys() {
        let name = env_name(key);
        assert!(doc.contains(&format!("`{name}`")), "{name} is missing from docs/configuration.md");
        let leaf = key.rsplit('.').next().unwrap();
        assert!(doc.contains(&format!("`{leaf}`")), "{key} is missing from docs/configuration.md");
    }
    let example = include_str!("../../../../docs/auth-server.example.toml");
    toml::from_str::<RawConfig>(example).unwrap();
    for key in keys() {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(example.contains(&format!("{leaf} =")), "{key} is missing from the example");
    }
}

#[test]
fn invalid_values_name_their_key() {
    for (e, needle) in [
        (("AUTH_HTTP__BODY_LIMIT_BYTES", "lots"), "AUTH_HTTP__BODY_LIMIT_BYTES"),
        (("AUTH_HASHING__T_COST", "-1"), "AUTH_HASHING__T_COST"),
        (("AUTH_HASHING__T_COST", "0"), "hashing.t_cost"),
        (("AUTH_HTTP__BODY_LIMIT_BYTES", "0"), "http.body_limit_bytes"),
        (("AUTH_LISTEN", "localhost"), "listen"),
        (("AUTH_LOG__FORMAT", "xml"), "log.format"),
        (("AUTH_HTTP__TRUSTED_PROXIES", "10.0.0.0/8,nope"), "http.trusted_proxies"),
        (("AUTH_SMS__GATEWAY", "pigeon"), "sms.gateway"),
        (("AUTH_SMS__GATEWAY", "webhook"), "sms.webhook_url: required"),
        (
            ("AUTH_HTTP_BODY_LIMIT_BYTES", "1"),
            "unknown environment variable AUTH_HTTP_BODY_LIMIT_BYTES",
        ),
        (("AUTH_DATABASE__POOL_SIZE", "0"), "database.pool_size"),
        (("AUTH_DATABASE__URL", "mysql://db/auth"), "database.url"),
    ] {
        let message = err(None, &[e]);
        assert!(message.contains(needle), "{e:?}: {message}");
    }
    let message = err(Some("[sms]\ngateway = \"webhook\"\nwebhook_url = \"https://x/y\"\n"), &[]);
    assert!(message.contains("https is not supported"), "{message}");
}

#[test]
fn invalid_files_name_file_and_key() {
    let message = err(Some("[http]\nbody_limit = 5\n"), &[]);
    assert!(message.contains("invalid config file"), "{message}");
    assert!(message.contains("body_limit"), "{message}");
    let message = err(Some("[hashing]\nt_cost = \"two\"\n"), &[]);
    assert!(message.contains("t_cost"), "{message}");
    let missing =
        Config::load(Some(Path::new("/nonexistent/auth.toml")), Vec::new(), &Overrides::default())
            .unwrap_err();
    assert!(format!("{missing:#}").contains("cannot read config file /nonexistent/auth.toml"));
}

#[test]
fn empty_optional_values_mean_unset() {
    let c = load(
        None,
        &[("AUTH_DATABASE__URL", ""), ("AUTH_DATABASE__PATH", ""), ("AUTH_SMS__WEBHOOK_URL", "")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.database_path, PathBuf::from("./data/auth.db"));
}

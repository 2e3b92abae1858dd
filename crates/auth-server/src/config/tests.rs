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
        &[
            ("AUTH_DATABASE_URL", "postgres://u@db:5432/auth?sslmode=verify-full"),
            ("AUTH_DATABASE__POOL_SIZE", "4"),
        ],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.database_url.as_deref(), Some("postgres://u@db:5432/auth?sslmode=verify-full"));
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
    assert_eq!(c.sms.gateway, crate::sms::GatewayName::File);
    assert_eq!(c.sms.file_path(), Some(Path::new("./data/sms-outbox.jsonl")));
    assert!(c.sms.routes.is_empty() && c.sms.webhook.is_none() && c.sms.smsc.is_none());
    assert_eq!(c.hashing.params, HashParams::default());
    assert!(c.hashing.workers >= 1);
    assert_eq!(c.hashing.queue, 64);
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    assert_eq!(c.runtime_workers, default_runtime_workers(cores));
    assert_eq!(c.runtime_flood_pause, Duration::from_millis(5));
    assert_eq!(c.http.body_limit, 65536);
    assert_eq!(c.http.header_timeout, Duration::from_secs(10));
    assert_eq!(c.http.body_timeout, Duration::from_secs(30));
    assert_eq!(c.http.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.log, LogConfig { format: LogFormat::Human, level: "info".to_owned() });
    assert_eq!(c.outbox.poll_interval, Duration::from_millis(200));
    assert_eq!(c.bootstrap.admin_email, DEFAULT_ADMIN_EMAIL);
    assert_eq!(c.audit_retention, Some(Duration::from_secs(365 * 86_400)));
    assert_eq!(c.outbox_retention, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(c.last_used_granularity, Duration::from_secs(300));
}

/// Issue 18: the runtime gets half the cores by default (the hashing threads have one each), and
/// at least one worker.
#[test]
fn the_runtime_gets_half_the_cores_at_least_one() {
    assert_eq!(
        [1, 2, 3, 4, 8, 64].map(default_runtime_workers),
        [1, 1, 1, 2, 4, 32],
        "workers for 1, 2, 3, 4, 8 and 64 cores"
    );
    let c = load(Some("[runtime]\nworkers = 3\n"), &[], &Overrides::default()).unwrap();
    assert_eq!(c.runtime_workers, 3);
}

/// The flood pause: milliseconds, 0 turning it off, and no more than a refused login's latency
/// budget allows.
#[test]
fn the_flood_pause_is_bounded_and_may_be_off() {
    let c = load(Some("[runtime]\nflood_pause_ms = 0\n"), &[], &Overrides::default()).unwrap();
    assert_eq!(c.runtime_flood_pause, Duration::ZERO);
    let c = load(None, &[("AUTH_RUNTIME__FLOOD_PAUSE_MS", "50")], &Overrides::default()).unwrap();
    assert_eq!(c.runtime_flood_pause, Duration::from_millis(50));
    let e = load(None, &[("AUTH_RUNTIME__FLOOD_PAUSE_MS", "51")], &Overrides::default());
    assert!(format!("{:#}", e.unwrap_err()).contains("runtime.flood_pause_ms: at most 50"));
}

/// Issue 17: the outbox retention and the "last used" granularity, with 0 meaning forever and
/// every use, and their bounds.
#[test]
fn retention_and_last_used_settings() {
    let c = load(
        Some("[retention]\noutbox_days = 0\n[security]\nlast_used_granularity_secs = 0\n"),
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!((c.outbox_retention, c.last_used_granularity), (None, Duration::ZERO));
    let c = load(None, &[("AUTH_RETENTION__OUTBOX_DAYS", "30")], &Overrides::default()).unwrap();
    assert_eq!(c.outbox_retention, Some(Duration::from_secs(30 * 86_400)));
    for (e, needle) in [
        (("AUTH_RETENTION__OUTBOX_DAYS", "36501"), "retention.outbox_days"),
        (("AUTH_SECURITY__LAST_USED_GRANULARITY_SECS", "86401"), "last_used_granularity_secs"),
        (("AUTH_RETENTION__OUTBOX_DAYS", "a week"), "AUTH_RETENTION__OUTBOX_DAYS"),
    ] {
        let message = err(None, &[e]);
        assert!(message.contains(needle), "{e:?}: {message}");
    }
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
    let values = |kind: Kind, key: &str| match (kind, key.rsplit('.').next().unwrap_or(key)) {
        (_, "listen") => "127.0.0.1:1",
        (_, "metrics_listen") => "127.0.0.1:2",
        (_, "format") => "json",
        (_, "level") => "debug",
        (_, "admin_email") => "root@example.com",
        (_, "p_cost") => "2",
        _ if key == "database.url" => "sqlite:///tmp/x.db",
        _ if key == "sms.gateway" => "webhook",
        // The first version's spellings and the new ones may not both be set.
        _ if key == "sms.webhook_url" || key == "sms.webhook_timeout_secs" => "",
        (_, "url" | "base_url") => "https://relay.example",
        (_, "smtp_url") => "smtps://mailer@mail.example",
        (_, "public_url") => "https://portal.example",
        _ if key == "email.from" => "noreply@portal.example",
        (_, "account_sid") => "AC123",
        (_, "messaging_service_sid") => "MG123",
        (Kind::Secret, _) => "from-the-environment",
        (Kind::Str, _) => "/some/path",
        (Kind::U32 | Kind::U64, _) => "16",
        (Kind::List, _) => "10.0.0.0/8",
        (Kind::Bool, _) => "true",
    };
    let e: Vec<(String, String)> = KEYS
        .iter()
        .map(|(k, kind)| (env_name(k), values(*kind, k).to_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let c = Config::load(None, e, &Overrides::default()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(c.metrics_listen, Some("127.0.0.1:2".parse().unwrap()));
    assert_eq!(c.database_path, PathBuf::from("/tmp/x.db"));
    assert_eq!(c.hashing.workers, 16);
    assert_eq!(c.runtime_workers, 16);
    assert_eq!(c.runtime_flood_pause, Duration::from_millis(16));
    assert_eq!(c.outbox.poll_interval, Duration::from_millis(16));
    let webhook = c.sms.webhook.as_ref().unwrap();
    assert_eq!(webhook.timeout, Duration::from_secs(16));
    // The environment's secret wins over the `_file` set beside it.
    let env_secret = crate::sms::Secret::Value("from-the-environment".into());
    assert_eq!(webhook.secret.as_ref(), Some(&env_secret));
    let smsc = c.sms.smsc.as_ref().unwrap();
    assert_eq!((smsc.login.as_str(), &smsc.password), ("/some/path", &env_secret));
    assert_eq!(smsc.endpoint.base_url, "https://relay.example");
    assert_eq!(c.sms.twilio.as_ref().unwrap().account_sid, "AC123");
    assert_eq!(c.sms.clickatell_usa.as_ref().unwrap().api_key, env_secret);
    assert_eq!(c.sms.smsru.as_ref().unwrap().api_id, env_secret);
    let email = c.email.as_ref().unwrap();
    assert_eq!((email.smtp.port, email.timeout), (465, Duration::from_secs(16)));
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
fn a_remote_database_needs_tls_or_an_explicit_plaintext_allowance() {
    let load = |vars: &[(&str, &str)]| {
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::load(None, env, &Overrides::default())
    };
    for ok in [
        vec![("AUTH_DATABASE__URL", "postgres://auth@127.0.0.1:5432/auth")],
        vec![("AUTH_DATABASE__URL", "postgres://auth@db.example/auth?sslmode=verify-full")],
        vec![("AUTH_DATABASE__URL", "postgres://auth@db.example/auth?sslmode=require")],
        vec![
            ("AUTH_DATABASE__URL", "postgres://auth@db.example/auth"),
            ("AUTH_DATABASE__ALLOW_PLAINTEXT", "true"),
        ],
    ] {
        let config = load(&ok).unwrap_or_else(|e| panic!("{ok:?}: {e:#}"));
        assert!(config.database_url.is_some());
    }
    let refused = load(&[("AUTH_DATABASE__URL", "postgres://auth:hunter2@db.example/auth")]);
    let message = format!("{:#}", refused.unwrap_err());
    assert!(!message.contains("hunter2"), "the password reached the message: {message}");
}

#[test]
fn invalid_values_name_their_key() {
    for (e, needle) in [
        (("AUTH_HTTP__BODY_LIMIT_BYTES", "lots"), "AUTH_HTTP__BODY_LIMIT_BYTES"),
        (("AUTH_HASHING__T_COST", "-1"), "AUTH_HASHING__T_COST"),
        (("AUTH_HASHING__T_COST", "0"), "hashing.t_cost"),
        (("AUTH_HTTP__BODY_LIMIT_BYTES", "0"), "http.body_limit_bytes"),
        (("AUTH_LISTEN", "localhost"), "listen"),
        (("AUTH_METRICS_LISTEN", "9090"), "metrics_listen"),
        (("AUTH_METRICS_LISTEN", "127.0.0.1:8080"), "metrics_listen: 127.0.0.1:8080 is the main"),
        (("AUTH_LOG__FORMAT", "xml"), "log.format"),
        (("AUTH_HTTP__TRUSTED_PROXIES", "10.0.0.0/8,nope"), "http.trusted_proxies"),
        (("AUTH_SMS__GATEWAY", "pigeon"), "sms.gateway"),
        (("AUTH_SMS__GATEWAY", "webhook"), "sms.webhook: the webhook gateway is used"),
        (("AUTH_SMS__GATEWAY", "smsc"), "[sms.smsc] has no credentials"),
        (("AUTH_SMS__SMSC__PASSWORD", "x"), "AUTH_SMS__SMSC__PASSWORD: given in the environment"),
        (("AUTH_SMS__SMSC__LOGNI", "x"), "unknown environment variable AUTH_SMS__SMSC__LOGNI"),
        (
            ("AUTH_HTTP_BODY_LIMIT_BYTES", "1"),
            "unknown environment variable AUTH_HTTP_BODY_LIMIT_BYTES",
        ),
        (("AUTH_DATABASE__POOL_SIZE", "0"), "database.pool_size"),
        (("AUTH_RUNTIME__WORKERS", "1025"), "runtime.workers: at most 1024"),
        (("AUTH_DATABASE__URL", "mysql://db/auth"), "database.url"),
        (("AUTH_TLS__CERT_FILE", "/etc/auth/cert.pem"), "tls.cert_file and tls.key_file"),
        (("AUTH_DATABASE__URL", "postgres://auth@db.example/auth"), "does not ask for TLS"),
        (("AUTH_DATABASE__URL", "postgres://db.example/a?sslmode=prefer"), "does not ask for TLS"),
        (("AUTH_DATABASE__URL", "postgres://db.example/a?sslmode=sometimes"), "sslmode"),
        (("AUTH_DATABASE__ALLOW_PLAINTEXT", "yes"), "neither true nor false"),
    ] {
        let message = err(None, &[e]);
        assert!(message.contains(needle), "{e:?}: {message}");
    }
    // The webhook goes over the outbound client: https, or http to a loopback address only.
    let message =
        err(Some("[sms]\ngateway = \"webhook\"\nwebhook_url = \"http://relay.example/y\"\n"), &[]);
    assert!(message.contains("sms.webhook.url") && message.contains("https://"), "{message}");
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

const PROVIDERS: &str = r#"
[[social.providers]]
name = "google"
kind = "google"
client_id = "id-1"
client_secret = "inline-secret"
portals = ["Portal.Example.com"]
link_by_verified_email = true

[[social.providers]]
name = "corp-idp"
kind = "oidc"
issuer = "https://id.corp.example"
client_id = "portal"
client_secret_file = "/etc/auth/corp.secret"
redirect_uri = "https://portal.example.com/login/oauth/callback"
ca_file = "/etc/auth/corp-ca.pem"
timeout_secs = 9

[[social.providers]]
name = "legacy"
kind = "oauth2"
token_endpoint = "http://127.0.0.1:9000/token"
userinfo_endpoint = "http://127.0.0.1:9000/me"
client_id = "x"
subject_field = "user.id"
email_field = "user.mail"
"#;

#[test]
fn social_providers_are_read_in_order_with_defaults() {
    use crate::social::{ClientSecret, ProviderKind};
    let c = load(Some(PROVIDERS), &[], &Overrides::default()).unwrap();
    let names: Vec<&str> = c.social.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["google", "corp-idp", "legacy"]);
    let [google, corp, legacy] = &c.social.providers[..] else { unreachable!() };
    assert_eq!(google.kind, ProviderKind::Google);
    assert_eq!(google.portals.as_deref(), Some(&["portal.example.com".to_owned()][..]));
    assert!(google.link_by_verified_email);
    assert_eq!(google.timeout, Duration::from_secs(5));
    assert_eq!(google.client_secret, ClientSecret::Inline(SecretString::from("inline-secret")));
    assert_eq!(corp.client_secret, ClientSecret::File(PathBuf::from("/etc/auth/corp.secret")));
    assert_eq!((corp.portals.clone(), corp.link_by_verified_email), (None, false));
    assert_eq!(corp.timeout, Duration::from_secs(9));
    assert_eq!(legacy.fields.subject.as_deref(), Some("user.id"));
    assert_eq!(legacy.client_secret, ClientSecret::None);
    assert_eq!(c.outbound.max_in_flight, 32);
    // No provider configured: no social login.
    assert!(load(None, &[], &Overrides::default()).unwrap().social.providers.is_empty());
}

#[test]
fn provider_secrets_come_from_the_environment() {
    use crate::social::ClientSecret;
    let c = load(
        Some(PROVIDERS),
        &[
            ("AUTH_SOCIAL__CORP_IDP__CLIENT_SECRET", "from-env"),
            ("AUTH_SOCIAL__GOOGLE__CLIENT_SECRET", " env-google \n"),
        ],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        c.social.providers[0].client_secret,
        ClientSecret::Env(SecretString::from("env-google"))
    );
    assert_eq!(
        c.social.providers[1].client_secret,
        ClientSecret::Env(SecretString::from("from-env"))
    );
    let e = err(Some(PROVIDERS), &[("AUTH_SOCIAL__GOOGEL__CLIENT_SECRET", "x")]);
    assert!(e.contains("AUTH_SOCIAL__GOOGEL__CLIENT_SECRET"), "{e}");
    let e = err(None, &[("AUTH_SOCIAL__GOOGLE__CLIENT_ID", "x")]);
    assert!(e.contains("unknown environment variable AUTH_SOCIAL__GOOGLE__CLIENT_ID"), "{e}");
}

#[test]
fn secrets_stay_out_of_debug_and_file_errors() {
    let c = load(
        Some(PROVIDERS),
        &[("AUTH_SOCIAL__CORP_IDP__CLIENT_SECRET", "env-value")],
        &Overrides::default(),
    )
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("inline-secret") && !debug.contains("env-value"), "{debug}");
    // toml quotes the offending line; a line with a secret on it is not quoted.
    let file = "[[social.providers]]\nname = \"g\"\nkind = \"google\"\nclient_id = \"i\"\nclient_secrt = \"hunter2\"\n";
    let message = err(Some(file), &[]);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("line 5") && message.contains("client_secrt"), "{message}");
}

#[test]
fn invalid_providers_name_the_provider_and_the_key() {
    let base = "[[social.providers]]\nname = \"p\"\nclient_id = \"id\"\n";
    for (extra, needle) in [
        ("kind = \"myspace\"", "kind"),
        ("kind = \"oidc\"", "issuer: required"),
        ("kind = \"oidc\"\nissuer = \"http://id.example\"", "issuer"),
        (
            "kind = \"google\"\nissuer = \"https://accounts.google.com/\"\nsubject_field = \"id\"",
            "subject_field",
        ),
        ("kind = \"yandex\"\njwks_uri = \"https://x/jwks\"", "jwks_uri"),
        ("kind = \"yandex\"\nissuer = \"https://x\"", "issuer"),
        ("kind = \"oauth2\"\nuserinfo_endpoint = \"https://x/me\"", "token_endpoint"),
        (
            "kind = \"oauth2\"\nuserinfo_endpoint = \"https://x/me\"\ntoken_endpoint = \"https://x/t\"\nsubject_field = \"id\"",
            "email_field",
        ),
        ("kind = \"github\"\nclient_secret = \"a\"\nclient_secret_file = \"/b\"", "not both"),
        ("kind = \"github\"\ntimeout_secs = 0", "timeout_secs"),
        ("kind = \"github\"\nportals = [\"\"]", "portals"),
        ("kind = \"github\"\nredirect_uri = \"/callback\"", "redirect_uri"),
        ("kind = \"github\"\nuserinfo_endpoint = \"http://10.0.0.1/user\"", "userinfo_endpoint"),
        ("kind = \"github\"\nscope = \"x\"", "scope"),
    ] {
        let message = err(Some(&format!("{base}{extra}\n")), &[]);
        assert!(message.contains(needle), "{extra}: {message}");
    }
    let message = err(
        Some("[[social.providers]]\nname = \"Google\"\nkind = \"google\"\nclient_id = \"i\"\n"),
        &[],
    );
    assert!(message.contains("name"), "{message}");
    let message = err(
        Some("[[social.providers]]\nname = \"email\"\nkind = \"google\"\nclient_id = \"i\"\n"),
        &[],
    );
    assert!(message.contains("reserved"), "{message}");
    let twice = "[[social.providers]]\nname = \"a-b\"\nkind = \"github\"\nclient_id = \"i\"\n\
                 [[social.providers]]\nname = \"a_b\"\nkind = \"github\"\nclient_id = \"i\"\n";
    let message = err(Some(twice), &[]);
    assert!(message.contains("clash"), "{message}");
    let message = err(None, &[("AUTH_OUTBOUND__MAX_IN_FLIGHT", "0")]);
    assert!(message.contains("outbound.max_in_flight"), "{message}");
}

#[test]
fn every_provider_key_is_documented() {
    let doc = include_str!("../../../../docs/configuration.md");
    let example = include_str!("../../../../docs/auth-server.example.toml");
    assert!(doc.contains("`AUTH_SOCIAL__<NAME>__CLIENT_SECRET`"));
    for key in crate::social::PROVIDER_KEYS {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "{key} is missing from docs/configuration.md"
        );
        assert!(example.contains(&format!("# {key} =")), "{key} is missing from the example");
    }
    // The commented-out example provider, uncommented, is a valid configuration.
    let provider: String = example
        .lines()
        .skip_while(|l| !l.starts_with("# [[social.providers]]"))
        // The block ends at the first blank line (the LDAP example follows it).
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("# "))
        // One secret source, and no field map (the example's provider is OpenID; the map is oauth2's).
        .filter(|l| {
            !l.starts_with('#') && !l.starts_with("client_secret =") && !l.contains("_field =")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let c = load(Some(&provider), &[], &Overrides::default()).unwrap();
    assert_eq!(c.social.providers.len(), 1);
}

#[test]
fn every_directory_key_is_documented() {
    let doc = include_str!("../../../../docs/configuration.md");
    let example = include_str!("../../../../docs/auth-server.example.toml");
    for key in crate::ldap::DIRECTORY_KEYS.iter().chain(crate::ldap::ATTRIBUTE_KEYS) {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "{key} is missing from docs/configuration.md"
        );
        assert!(example.contains(&format!("# {key} =")), "{key} is missing from the example");
    }
    // The commented-out example directory, uncommented, is a valid configuration (with one
    // password source).
    let directory: String = example
        .lines()
        .skip_while(|l| !l.starts_with("# [[ldap.directories]]"))
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with('#') && !l.starts_with("bind_password_env ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = load(Some(&directory), &[], &Overrides::default()).unwrap();
    assert_eq!(c.ldap.directories.len(), 1);
    assert_eq!(c.ldap.directories[0].attributes.disabled.as_deref(), Some("userAccountControl"));
}

const GATEWAYS: &str = r#"
[sms]
gateway = "smsc"

[[sms.routes]]
prefix = "1"
gateway = "clickatell_usa"

[[sms.routes]]
prefix = "+7701"
gateway = "smsru"

[sms.smsc]
login = "acme"
password = "inline-password"
sender = "ACME"

[sms.clickatell_usa]
api_key_file = "/etc/auth/clickatell-usa.key"
from = "15550001111"

[sms.smsru]
api_id = "inline-api-id"
base_url = "https://relay.example/smsru/"
timeout_secs = 3
"#;

#[test]
fn sms_gateways_routes_and_defaults() {
    use crate::sms::{GatewayName, Route, Secret};
    let c = load(Some(GATEWAYS), &[], &Overrides::default()).unwrap();
    let sms = &c.sms;
    assert_eq!(sms.gateway, GatewayName::Smsc);
    assert_eq!(
        sms.routes,
        vec![
            Route { prefix: "1".into(), gateway: GatewayName::ClickatellUsa },
            Route { prefix: "7701".into(), gateway: GatewayName::SmsRu },
        ]
    );
    assert_eq!(sms.file_path(), None, "no message goes to the file");
    let smsc = sms.smsc.as_ref().unwrap();
    assert_eq!(smsc.password, Secret::Value("inline-password".into()));
    assert_eq!(smsc.endpoint.base_url, "https://smsc.ru");
    assert_eq!(smsc.endpoint.timeout, Duration::from_secs(10));
    let usa = sms.clickatell_usa.as_ref().unwrap();
    assert_eq!(usa.api_key, Secret::File("/etc/auth/clickatell-usa.key".into()));
    assert_eq!(usa.endpoint.base_url, "https://platform.clickatell.com");
    let smsru = sms.smsru.as_ref().unwrap();
    assert_eq!(smsru.endpoint.base_url, "https://relay.example/smsru");
    assert_eq!(smsru.endpoint.timeout, Duration::from_secs(3));
    assert!(sms.twilio.is_none() && sms.clickatell.is_none() && sms.webhook.is_none());

    // The environment's secret wins over the file's; the first version's webhook keys still work.
    let c = load(
        Some(GATEWAYS),
        &[
            ("AUTH_SMS__SMSC__PASSWORD", " env-password "),
            ("AUTH_SMS__WEBHOOK_URL", "http://127.0.0.1:9/sms"),
            ("AUTH_SMS__WEBHOOK_TIMEOUT_SECS", "2"),
        ],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.sms.smsc.unwrap().password, Secret::Value("env-password".into()));
    let webhook = c.sms.webhook.unwrap();
    assert_eq!(webhook.url, "http://127.0.0.1:9/sms");
    assert_eq!((webhook.timeout, webhook.secret), (Duration::from_secs(2), None));
}

#[test]
fn invalid_sms_settings_name_the_key() {
    let with = |extra: &str| format!("{GATEWAYS}{extra}");
    for (file, needle) in [
        (
            with("[sms.twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"\n"),
            "sms.twilio.from or sms.twilio.messaging_service_sid",
        ),
        (
            with("[sms.twilio]\naccount_sid = \"AC/1\"\nauth_token = \"t\"\nfrom = \"x\"\n"),
            "sms.twilio.account_sid",
        ),
        (
            GATEWAYS.replace(
                "password = \"inline-password\"",
                "password = \"p\"\npassword_file = \"/x\"",
            ),
            "sms.smsc.password and sms.smsc.password_file: set one, not both",
        ),
        (GATEWAYS.replace("login = \"acme\"\n", ""), "sms.smsc.login: required"),
        (GATEWAYS.replace("prefix = \"1\"", "prefix = \"US\""), "sms.routes[0].prefix"),
        (
            GATEWAYS.replace("prefix = \"+7701\"", "prefix = \"1\""),
            "sms.routes[1].prefix: \"1\" is routed twice",
        ),
        (GATEWAYS.replace("gateway = \"smsru\"", "gateway = \"sms.ru\""), "sms.routes[1].gateway"),
        (
            GATEWAYS.replace("gateway = \"smsc\"", "gateway = \"twilio\""),
            "[sms.twilio] has no credentials",
        ),
        (
            GATEWAYS.replace("timeout_secs = 3", "timeout_secs = 60"),
            "sms.smsru.timeout_secs: must be between 1 and 30",
        ),
        (
            GATEWAYS.replace("https://relay.example/smsru/", "http://relay.example"),
            "sms.smsru.base_url",
        ),
        (with("[sms.webhook]\nurl = \"https://a/x\"\n[sms.x]\n"), "unknown field `x`"),
    ] {
        let message = err(Some(&file), &[]);
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[test]
fn sms_secrets_stay_out_of_debug_and_file_errors() {
    let c =
        load(Some(GATEWAYS), &[("AUTH_SMS__SMSRU__API_ID", "env-api-id")], &Overrides::default())
            .unwrap();
    let debug = format!("{c:?}");
    for secret in ["inline-password", "env-api-id"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    // A misspelt secret key in a gateway's table: its line is not quoted.
    let file = "[sms.smsc]\nlogin = \"a\"\npasword = \"hunter2\"\n";
    let message = err(Some(file), &[]);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("line 3") && message.contains("pasword"), "{message}");
}

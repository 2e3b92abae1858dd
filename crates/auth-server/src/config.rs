//! The server's configuration: defaults, then an optional TOML file, then `AUTH_…` environment
//! variables, then the command-line globals (`--data-dir`, `--listen`, `--log-json`), later layers winning.
//!
//! Loading is a pure function of its inputs ([`Config::load`] takes the file path, the environment as
//! an iterator and the flags), so tests never touch the process environment. Every key has an
//! environment name derived mechanically from its path (`http.body_limit_bytes` is
//! `AUTH_HTTP__BODY_LIMIT_BYTES`); the table of keys in this file is the single list of what exists, and
//! `docs/configuration.md` documents each one (a unit test keeps the two in step).
//! Anything invalid, including an unknown key in the file or an unknown `AUTH_SECTION__KEY` variable, fails at
//! startup with a message that names the key: a misspelt security setting must not be silently ignored.
//! This module only reads and checks values; opening files, binding sockets and the like is `app`'s job.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use auth_core::SecretString;
use auth_core::model::parse_net;
use auth_core::password::HashParams;
use auth_http::HttpConfig;
use serde::Deserialize;

use crate::email::{EmailConfig, RawEmail};
use crate::ldap::{LdapConfig, RawLdap};
pub use crate::sms::SmsConfig;
use crate::sms::{EnvSecrets, RawSms};
use crate::social::{self, RawSocial, SocialConfig};

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "AUTH_";

/// The environment variable naming the config file; read by the command line, not a config key.
pub const CONFIG_ENV: &str = "AUTH_CONFIG";

/// The e-mail of the administrator created on an empty database, unless configured otherwise.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost.localdomain";

/// The fully resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the HTTP listener binds (port 0 picks a free port).
    pub listen: SocketAddr,
    /// A listener of its own for `GET /metrics` (and `/healthz`, `/readyz`); when set, the main
    /// listener no longer serves `/metrics` (spec §13).
    pub metrics_listen: Option<SocketAddr>,
    /// Directory holding the database, the server key and the SMS file by default.
    pub data_dir: PathBuf,
    /// The 32-byte server key file (created with mode 0600 on first start).
    pub server_key_file: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The SQLite database file (used unless `database_url` names PostgreSQL).
    pub database_path: PathBuf,
    /// A PostgreSQL URL (`postgres://…`): when set, the store is PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub database_pool_size: usize,
    /// Whether this process caches token lookups (kept exact across PostgreSQL nodes by
    /// LISTEN/NOTIFY, across SQLite processes by the counter files beside the database).
    pub database_session_cache: bool,
    /// Transport limits, handed to auth-http as they are.
    pub http: HttpConfig,
    /// Password hashing.
    pub hashing: HashingConfig,
    /// Worker threads of the async runtime ([`default_runtime_workers`] unless configured).
    pub runtime_workers: usize,
    /// How long a runtime worker pauses before waiting for work while the hashing queue is full
    /// (`runtime.flood_pause_ms`; zero never pauses; [`crate::runtime::FloodPause`]).
    pub runtime_flood_pause: Duration,
    /// SMS delivery.
    pub sms: SmsConfig,
    /// The SMS outbox worker.
    pub outbox: OutboxConfig,
    /// What to create on an empty database.
    pub bootstrap: BootstrapConfig,
    /// How long after its login a token may change the second factor (spec §5.8).
    pub fresh_token: Duration,
    /// Outbound HTTPS calls (social providers).
    pub outbound: OutboundConfig,
    /// The social login providers (spec §5.4), in configuration order.
    pub social: SocialConfig,
    /// How long audit events are kept (`retention.audit_days`; 0 keeps them forever, spec §13).
    pub audit_retention: Option<Duration>,
    /// How long delivered and given-up outbox messages are kept (`retention.outbox_days`; 0 keeps
    /// them forever, spec §13).
    pub outbox_retention: Option<Duration>,
    /// How stale a token's "last used" may get before a use records it again
    /// (`security.last_used_granularity_secs`, the sessions list of spec §13).
    pub last_used_granularity: Duration,
    /// The LDAP / Active Directory directories (spec §5.9), in configuration order.
    pub ldap: LdapConfig,
    /// HTTPS on the listener (spec §10): the certificate chain and key; `None` serves plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// E-mail over SMTP (spec §14); `None` when `email.smtp_url` is not set.
    pub email: Option<EmailConfig>,
}

/// Outbound HTTPS settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Calls to other services in flight at once; beyond it a call fails at once as unavailable.
    pub max_in_flight: usize,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `warn,auth_http=debug`, …).
    pub level: String,
}

/// Password hashing settings: argon2id cost and the pool that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingConfig {
    /// argon2id cost.
    pub params: HashParams,
    /// Dedicated hashing threads.
    pub workers: usize,
    /// Hash jobs allowed to wait for a thread; beyond this requests are answered "busy".
    pub queue: usize,
}

/// The threads of the async runtime that serve requests and run the store's I/O, for a core count
/// (`workers = 0` in the file): half the cores, at least one.
///
/// The hashing pool already has a thread per core, and a password login is mostly its hash. What
/// is left to the runtime is short (a cheap request costs about ten microseconds, a login's store
/// work beside its hash under a millisecond), and every extra worker costs wake-ups: a worker that
/// finds work wakes a parked one to share it, a context switch on a core that was hashing. On two
/// cores under a login flood that was 8 of the server's 21 wake-ups per admitted login
/// (docs/PERFORMANCE.md, round eight). Half the cores keeps more than one worker where there are
/// cores to spare for TLS handshakes and the like.
pub fn default_runtime_workers(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// Outbox worker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Pause between delivery rounds.
    pub poll_interval: Duration,
}

/// What the server creates on an empty database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// E-mail of the first administrator.
    pub admin_email: String,
}

/// The command-line globals, the last and strongest layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--log-json`.
    pub log_json: bool,
}

/// The type of a key's value, which decides how an environment string is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    U32,
    U64,
    List,
    /// Text that is a secret: read from the environment into a `SecretString`, never into the
    /// merged table (whose errors could quote it).
    Secret,
    Bool,
}

/// Every configuration key, by its dotted path in the TOML file.
const KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Str),
    ("metrics_listen", Kind::Str),
    ("data_dir", Kind::Str),
    ("server_key_file", Kind::Str),
    ("log.format", Kind::Str),
    ("log.level", Kind::Str),
    ("database.path", Kind::Str),
    ("database.url", Kind::Str),
    ("database.pool_size", Kind::U64),
    ("database.allow_plaintext", Kind::Bool),
    ("database.session_cache", Kind::Bool),
    ("http.body_limit_bytes", Kind::U64),
    ("http.header_timeout_secs", Kind::U64),
    ("http.body_timeout_secs", Kind::U64),
    ("http.shutdown_grace_secs", Kind::U64),
    ("http.max_connections", Kind::U64),
    ("http.max_connections_per_ip", Kind::U64),
    ("http.write_timeout_secs", Kind::U64),
    ("http.trusted_proxies", Kind::List),
    ("hashing.m_cost_kib", Kind::U32),
    ("hashing.t_cost", Kind::U32),
    ("hashing.p_cost", Kind::U32),
    ("hashing.workers", Kind::U64),
    ("hashing.queue", Kind::U64),
    ("runtime.workers", Kind::U64),
    ("runtime.flood_pause_ms", Kind::U64),
    ("sms.gateway", Kind::Str),
    ("sms.file_path", Kind::Str),
    ("sms.webhook_url", Kind::Str),
    ("sms.webhook_timeout_secs", Kind::U64),
    ("sms.webhook.url", Kind::Str),
    ("sms.webhook.secret", Kind::Secret),
    ("sms.webhook.secret_file", Kind::Str),
    ("sms.webhook.ca_file", Kind::Str),
    ("sms.webhook.timeout_secs", Kind::U64),
    ("sms.smsc.login", Kind::Str),
    ("sms.smsc.password", Kind::Secret),
    ("sms.smsc.password_file", Kind::Str),
    ("sms.smsc.sender", Kind::Str),
    ("sms.smsc.base_url", Kind::Str),
    ("sms.smsc.ca_file", Kind::Str),
    ("sms.smsc.timeout_secs", Kind::U64),
    ("sms.twilio.account_sid", Kind::Str),
    ("sms.twilio.auth_token", Kind::Secret),
    ("sms.twilio.auth_token_file", Kind::Str),
    ("sms.twilio.from", Kind::Str),
    ("sms.twilio.messaging_service_sid", Kind::Str),
    ("sms.twilio.base_url", Kind::Str),
    ("sms.twilio.ca_file", Kind::Str),
    ("sms.twilio.timeout_secs", Kind::U64),
    ("sms.clickatell.api_key", Kind::Secret),
    ("sms.clickatell.api_key_file", Kind::Str),
    ("sms.clickatell.from", Kind::Str),
    ("sms.clickatell.base_url", Kind::Str),
    ("sms.clickatell.ca_file", Kind::Str),
    ("sms.clickatell.timeout_secs", Kind::U64),
    ("sms.clickatell_usa.api_key", Kind::Secret),
    ("sms.clickatell_usa.api_key_file", Kind::Str),
    ("sms.clickatell_usa.from", Kind::Str),
    ("sms.clickatell_usa.base_url", Kind::Str),
    ("sms.clickatell_usa.ca_file", Kind::Str),
    ("sms.clickatell_usa.timeout_secs", Kind::U64),
    ("sms.smsru.api_id", Kind::Secret),
    ("sms.smsru.api_id_file", Kind::Str),
    ("sms.smsru.from", Kind::Str),
    ("sms.smsru.base_url", Kind::Str),
    ("sms.smsru.ca_file", Kind::Str),
    ("sms.smsru.timeout_secs", Kind::U64),
    ("outbox.poll_interval_ms", Kind::U64),
    ("security.fresh_token_secs", Kind::U64),
    ("security.last_used_granularity_secs", Kind::U64),
    ("retention.audit_days", Kind::U64),
    ("retention.outbox_days", Kind::U64),
    ("bootstrap.admin_email", Kind::Str),
    ("outbound.max_in_flight", Kind::U64),
    ("tls.cert_file", Kind::Str),
    ("tls.key_file", Kind::Str),
    ("email.smtp_url", Kind::Str),
    ("email.password_file", Kind::Str),
    ("email.from", Kind::Str),
    ("email.ca_file", Kind::Str),
    ("email.public_url", Kind::Str),
    ("email.timeout_secs", Kind::U64),
];

/// The environment variable that overrides a key: `http.body_limit_bytes` → `AUTH_HTTP__BODY_LIMIT_BYTES`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// Every key's dotted path, in documentation order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

// The file layer: exactly the TOML shape, every field optional with its default.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    listen: String,
    metrics_listen: Option<String>,
    data_dir: PathBuf,
    server_key_file: Option<PathBuf>,
    log: RawLog,
    database: RawDatabase,
    http: RawHttp,
    hashing: RawHashing,
    runtime: RawRuntime,
    sms: RawSms,
    outbox: RawOutbox,
    bootstrap: RawBootstrap,
    security: RawSecurity,
    outbound: RawOutbound,
    social: RawSocial,
    retention: RawRetention,
    ldap: RawLdap,
    tls: RawTls,
    email: RawEmail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    audit_days: u64,
    outbox_days: u64,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self { audit_days: 365, outbox_days: 7 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbound {
    max_in_flight: u64,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self { max_in_flight: 32 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSecurity {
    fresh_token_secs: u64,
    last_used_granularity_secs: u64,
}

impl Default for RawSecurity {
    fn default() -> Self {
        Self { fresh_token_secs: 900, last_used_granularity_secs: 300 }
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            metrics_listen: None,
            data_dir: PathBuf::from("./data"),
            server_key_file: None,
            log: RawLog::default(),
            database: RawDatabase::default(),
            http: RawHttp::default(),
            hashing: RawHashing::default(),
            runtime: RawRuntime::default(),
            sms: RawSms::default(),
            outbox: RawOutbox::default(),
            bootstrap: RawBootstrap::default(),
            security: RawSecurity::default(),
            retention: RawRetention::default(),
            outbound: RawOutbound::default(),
            social: RawSocial::default(),
            ldap: RawLdap::default(),
            tls: RawTls::default(),
            email: RawEmail::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: String,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self { format: "human".to_owned(), level: "info".to_owned() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    path: Option<PathBuf>,
    url: Option<String>,
    pool_size: Option<u64>,
    allow_plaintext: bool,
    session_cache: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    body_limit_bytes: u64,
    header_timeout_secs: u64,
    body_timeout_secs: u64,
    shutdown_grace_secs: u64,
    max_connections: u64,
    max_connections_per_ip: u64,
    write_timeout_secs: u64,
    trusted_proxies: Vec<String>,
}

impl Default for RawHttp {
    fn default() -> Self {
        let d = HttpConfig::default();
        Self {
            body_limit_bytes: d.body_limit as u64,
            header_timeout_secs: d.header_timeout.as_secs(),
            body_timeout_secs: d.body_timeout.as_secs(),
            shutdown_grace_secs: d.shutdown_grace.as_secs(),
            max_connections: d.max_connections as u64,
            max_connections_per_ip: d.max_connections_per_ip as u64,
            write_timeout_secs: d.write_timeout.as_secs(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHashing {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    /// 0 means one per core.
    workers: u64,
    queue: u64,
}

impl Default for RawHashing {
    fn default() -> Self {
        let p = HashParams::default();
        Self { m_cost_kib: p.m_cost_kib, t_cost: p.t_cost, p_cost: p.p_cost, workers: 0, queue: 64 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRuntime {
    /// 0 means half the cores, at least one.
    workers: u64,
    /// 0 never pauses.
    flood_pause_ms: u64,
}

impl Default for RawRuntime {
    fn default() -> Self {
        Self { workers: 0, flood_pause_ms: 5 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbox {
    poll_interval_ms: u64,
}

impl Default for RawOutbox {
    fn default() -> Self {
        Self { poll_interval_ms: 200 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBootstrap {
    admin_email: String,
}

impl Default for RawBootstrap {
    fn default() -> Self {
        Self { admin_email: DEFAULT_ADMIN_EMAIL.to_owned() }
    }
}

impl Config {
    /// Loads the configuration from the process: the file (if any), the process environment and the
    /// command-line globals.
    pub fn from_process(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if !k.starts_with(ENV_PREFIX) {
                continue;
            }
            let v = v
                .into_string()
                .map_err(|_| anyhow::anyhow!("environment variable {k} is not valid UTF-8"))?;
            env.push((k.to_owned(), v));
        }
        Self::load(file, env, overrides)
    }

    /// Loads the configuration from explicit inputs: defaults < `file` < `env` < `overrides`.
    ///
    /// `env` may hold unrelated variables; only those starting with `AUTH_` are read.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        let mut env: Vec<(String, String)> =
            env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        // Sorted, so that the first unknown variable reported is the same on every run.
        env.sort();
        // Provider secrets (`AUTH_SOCIAL__<NAME>__CLIENT_SECRET`) name a list entry, not a key, so
        // they are matched to the providers once the list is read.
        let mut social_secrets = BTreeMap::new();
        let mut sms_secrets = EnvSecrets::new();
        for (name, value) in &env {
            if social::is_secret_env(name) {
                social_secrets.insert(name.clone(), SecretString::from(value.as_str()));
                continue;
            }
            if let Some((key, Kind::Secret)) = KEYS.iter().find(|(k, _)| env_name(k) == *name) {
                sms_secrets.insert((*key).to_owned(), SecretString::from(value.as_str()));
                continue;
            }
            apply_env(&mut table, name, value)?;
        }
        let raw = RawConfig::deserialize(toml::Value::Table(table))
            .context("invalid configuration from the environment")?;
        Self::resolve(raw, social_secrets, sms_secrets, overrides)
    }

    fn resolve(
        mut raw: RawConfig,
        social_secrets: BTreeMap<String, SecretString>,
        sms_secrets: EnvSecrets,
        overrides: &Overrides,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = &overrides.data_dir {
            raw.data_dir = dir.clone();
        }
        if let Some(listen) = &overrides.listen {
            raw.listen = listen.clone();
        }
        if overrides.log_json {
            raw.log.format = "json".to_owned();
        }

        let listen: SocketAddr = raw.listen.trim().parse().with_context(|| {
            format!(
                "listen: {:?} is not an IP address with a port, such as 127.0.0.1:8080",
                raw.listen
            )
        })?;
        let metrics_listen = match raw.metrics_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let addr: SocketAddr = text.parse().with_context(|| {
                    format!(
                        "metrics_listen: {text:?} is not an IP address with a port, such as \
                         127.0.0.1:9090"
                    )
                })?;
                if addr == listen && addr.port() != 0 {
                    bail!(
                        "metrics_listen: {addr} is the main listener's address; pick another port"
                    );
                }
                Some(addr)
            }
        };
        if raw.data_dir.as_os_str().is_empty() {
            bail!("data_dir: must not be empty");
        }
        let data_dir = raw.data_dir;
        let in_data_dir = |p: Option<PathBuf>, name: &str| {
            p.filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| data_dir.join(name))
        };

        let log = LogConfig {
            format: match raw.log.format.trim() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => bail!("log.format: {other:?} is neither \"human\" nor \"json\""),
            },
            level: raw.log.level.trim().to_owned(),
        };
        tracing_subscriber::EnvFilter::try_new(&log.level)
            .with_context(|| format!("log.level: {:?} is not a valid tracing filter", log.level))?;

        let url = raw.database.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let is_postgres = url.is_some_and(|u| {
            let lower = u.to_ascii_lowercase();
            lower.starts_with("postgres://") || lower.starts_with("postgresql://")
        });
        let database_url = url.filter(|_| is_postgres).map(str::to_owned);
        if let Some(url) = &database_url {
            // Passwords and every user's data cross the network: plain text only on this machine,
            // or when the operator says the network is trusted.
            let tls = auth_postgres::tls::tls_settings(url)
                .map_err(|e| anyhow::anyhow!("database.url: {e}"))?;
            if !tls.mode.always_encrypted() && !tls.only_loopback() && !raw.database.allow_plaintext
            {
                bail!(
                    "database.url: the database is not on this machine and the URL does not ask for TLS; \
                     add sslmode=verify-full (with sslrootcert=CA file), or set database.allow_plaintext = true \
                     for a trusted network"
                );
            }
        }
        let database_path = match url.filter(|_| !is_postgres) {
            None => in_data_dir(raw.database.path, "auth.db"),
            Some(url) => database_url_path(url)?,
        };
        let database_pool_size = match raw.database.pool_size {
            None => 16,
            Some(0) => bail!("database.pool_size: must be at least 1"),
            Some(n) => usize::try_from(n).context("database.pool_size: too large")?,
        };

        let h = raw.http;
        let positive = |v: u64, key: &str| -> anyhow::Result<u64> {
            if v == 0 { bail!("{key}: must be at least 1") } else { Ok(v) }
        };
        let mut http = HttpConfig {
            body_limit: usize::try_from(positive(h.body_limit_bytes, "http.body_limit_bytes")?)
                .context("http.body_limit_bytes: too large")?,
            header_timeout: Duration::from_secs(positive(
                h.header_timeout_secs,
                "http.header_timeout_secs",
            )?),
            body_timeout: Duration::from_secs(positive(
                h.body_timeout_secs,
                "http.body_timeout_secs",
            )?),
            shutdown_grace: Duration::from_secs(positive(
                h.shutdown_grace_secs,
                "http.shutdown_grace_secs",
            )?),
            max_connections: usize::try_from(positive(h.max_connections, "http.max_connections")?)
                .context("http.max_connections: too large")?,
            max_connections_per_ip: usize::try_from(positive(
                h.max_connections_per_ip,
                "http.max_connections_per_ip",
            )?)
            .context("http.max_connections_per_ip: too large")?,
            write_timeout: Duration::from_secs(positive(
                h.write_timeout_secs,
                "http.write_timeout_secs",
            )?),
            // Set below from the hashing pool, which these requests wait for.
            max_credential_requests: 1,
            trusted_proxies: h
                .trusted_proxies
                .iter()
                .map(|n| {
                    parse_net(n.trim()).with_context(|| {
                        format!(
                            "http.trusted_proxies: {n:?} is not an IP network such as 10.0.0.0/8"
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };

        let hs = raw.hashing;
        if hs.t_cost == 0 || hs.p_cost == 0 {
            bail!("hashing.t_cost and hashing.p_cost: must be at least 1");
        }
        if hs.m_cost_kib < 8 * hs.p_cost {
            bail!("hashing.m_cost_kib: argon2 needs at least 8 KiB per lane (8 × p_cost)");
        }
        // The machine's cores, which both thread counts default from.
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        let workers = match hs.workers {
            0 => cores,
            n => usize::try_from(n).context("hashing.workers: too large")?,
        };
        let hashing = HashingConfig {
            params: HashParams { m_cost_kib: hs.m_cost_kib, t_cost: hs.t_cost, p_cost: hs.p_cost },
            workers,
            queue: usize::try_from(positive(hs.queue, "hashing.queue")?)
                .context("hashing.queue: too large")?,
        };

        let runtime_workers = match raw.runtime.workers {
            0 => default_runtime_workers(cores),
            n => usize::try_from(n)
                .ok()
                .filter(|n| *n <= 1024)
                .context("runtime.workers: at most 1024 (0 picks half the cores)")?,
        };
        let runtime_flood_pause = Duration::from_millis(raw.runtime.flood_pause_ms);
        anyhow::ensure!(
            runtime_flood_pause <= crate::runtime::MAX_FLOOD_PAUSE,
            "runtime.flood_pause_ms: at most {} (0 never pauses)",
            crate::runtime::MAX_FLOOD_PAUSE.as_millis()
        );

        let sms = raw.sms.resolve(sms_secrets, data_dir.join("sms-outbox.jsonl"))?;

        let outbox = OutboxConfig {
            poll_interval: Duration::from_millis(positive(
                raw.outbox.poll_interval_ms,
                "outbox.poll_interval_ms",
            )?),
        };

        let fresh_token = Duration::from_secs(positive(
            raw.security.fresh_token_secs,
            "security.fresh_token_secs",
        )?);
        let audit_retention = match raw.retention.audit_days {
            0 => None,
            d if d > 100 * 365 => {
                anyhow::bail!("retention.audit_days: at most 36500 (0 keeps events forever)");
            }
            d => Some(Duration::from_secs(d * 86_400)),
        };
        let outbox_retention = match raw.retention.outbox_days {
            0 => None,
            d if d > 100 * 365 => {
                anyhow::bail!("retention.outbox_days: at most 36500 (0 keeps messages forever)");
            }
            d => Some(Duration::from_secs(d * 86_400)),
        };
        let last_used_granularity = match raw.security.last_used_granularity_secs {
            s if s > 86_400 => {
                anyhow::bail!("security.last_used_granularity_secs: at most 86400 (a day)");
            }
            s => Duration::from_secs(s),
        };

        let outbound = OutboundConfig {
            max_in_flight: usize::try_from(positive(
                raw.outbound.max_in_flight,
                "outbound.max_in_flight",
            )?)
            .context("outbound.max_in_flight: too large")?,
        };
        let social = raw.social.resolve(social_secrets)?;
        let ldap = raw.ldap.resolve()?;
        let email = raw.email.resolve()?;

        let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let tls = match (given(raw.tls.cert_file), given(raw.tls.key_file)) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => Some(crate::tls::TlsFiles { cert_file, key_file }),
            _ => bail!("tls.cert_file and tls.key_file: give both, or neither for plain HTTP"),
        };

        let admin_email = raw.bootstrap.admin_email.trim().to_owned();
        if !admin_email.contains('@') {
            bail!("bootstrap.admin_email: {admin_email:?} is not an e-mail address");
        }

        // A credential request beyond what the hashing pool can hold or queue is answered 503 by
        // the transport before it touches the store (issue 6: overload must stay cheap).
        http.max_credential_requests = hashing.workers.saturating_add(hashing.queue);
        Ok(Config {
            listen,
            metrics_listen,
            server_key_file: in_data_dir(raw.server_key_file, "server.key"),
            data_dir,
            log,
            database_path,
            database_url,
            database_pool_size,
            database_session_cache: raw.database.session_cache.unwrap_or(true),
            http,
            hashing,
            runtime_workers,
            runtime_flood_pause,
            sms,
            outbox,
            bootstrap: BootstrapConfig { admin_email },
            fresh_token,
            audit_retention,
            outbox_retention,
            last_used_granularity,
            outbound,
            social,
            ldap,
            tls,
            email,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    // Checking the file against the typed shape first gives errors with a line, a column and the
    // key; the merged table checked later has no positions to report.
    toml::from_str::<RawConfig>(&text).map_err(|e| file_error(&text, &e, path))?;
    toml::from_str(&text).map_err(|e| file_error(&text, &e, path))
}

/// A file error, without the quoted line when that line may hold a secret: toml's message quotes
/// the offending line, and a secret must not reach the log. That is any line in a `[social…]`,
/// `[ldap…]` or `[email]` table (where a misspelt `client_secret`, a `bind_password` that does not
/// exist, or an SMTP password written inline, is an unknown key whose line holds the secret) or in a
/// gateway's `[sms.…]` table (a misspelt `password`, `auth_token`, `api_key`, `api_id` or `secret`),
/// and any line that mentions one of those words.
fn file_error(text: &str, e: &toml::de::Error, path: &Path) -> anyhow::Error {
    let context = format!("invalid config file {}", path.display());
    let Some(span) = e.span() else {
        return anyhow::anyhow!("{context}: {e}");
    };
    let start = text.get(..span.start).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let end = text.get(span.end..).and_then(|t| t.find('\n')).map_or(text.len(), |i| span.end + i);
    let line = text.get(start..end).unwrap_or("");
    let table = text
        .get(..start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim_start)
        .find(|l| l.starts_with('['))
        .unwrap_or("");
    let table_name = table.trim_start_matches('[').trim_start();
    let in_secret_table = table_name.starts_with("social")
        || table_name.starts_with("ldap")
        || table_name.starts_with("sms.")
        || table_name.starts_with("email");
    let lower = line.to_ascii_lowercase();
    let mentions_secret = ["secret", "password", "psw", "token", "api_key", "apikey", "api_id"]
        .iter()
        .any(|word| lower.contains(word));
    if in_secret_table || mentions_secret {
        let number = text.get(..start).map_or(0, |t| t.matches('\n').count()) + 1;
        anyhow::anyhow!(
            "{context}: line {number}: {} (the line is not shown: it may hold a secret)",
            e.message()
        )
    } else {
        anyhow::anyhow!("{context}: {e}")
    }
}

/// Sets the key named by the environment variable `name` in `table`, reading `value` by the key's type.
fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> anyhow::Result<()> {
    if name == CONFIG_ENV {
        return Ok(());
    }
    // `AUTH_DATABASE_URL` is the short spelling operators expect for the database URL.
    let lookup = if name == "AUTH_DATABASE_URL" { "AUTH_DATABASE__URL" } else { name };
    let Some((key, kind)) = KEYS.iter().find(|(k, _)| env_name(k) == lookup) else {
        // A nested name (`AUTH_SECTION__KEY`, or a section's name with a single underscore) can only be
        // meant for us, so a typo there is an error. Other `AUTH_` names belong to other tools (test
        // harnesses, scripts such as `AUTH_TEST_POSTGRES_URL`) and are left alone.
        let sections = [
            "LOG",
            "DATABASE",
            "HTTP",
            "HASHING",
            "SMS",
            "OUTBOX",
            "BOOTSTRAP",
            "OUTBOUND",
            "SOCIAL",
            "LDAP",
            "TLS",
            "EMAIL",
        ];
        let rest = name.strip_prefix(ENV_PREFIX).unwrap_or(name);
        if name.contains("__") || sections.iter().any(|s| rest.starts_with(&format!("{s}_"))) {
            bail!(
                "unknown environment variable {name}: it is not a configuration key (see docs/configuration.md)"
            );
        }
        return Ok(());
    };
    let value = value.trim();
    let parsed = match kind {
        // Secrets are taken out before this (see `Config::load`); should one arrive, it is text.
        Kind::Str | Kind::Secret => toml::Value::String(value.to_owned()),
        Kind::Bool => match value {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => bail!("{name}: {value:?} is neither true nor false"),
        },
        Kind::U32 => toml::Value::Integer(i64::from(
            value
                .parse::<u32>()
                .with_context(|| format!("{name}: {value:?} is not a whole number"))?,
        )),
        Kind::U64 => toml::Value::Integer(
            value
                .parse::<u64>()
                .ok()
                .and_then(|v| i64::try_from(v).ok())
                .with_context(|| format!("{name}: {value:?} is not a whole number"))?,
        ),
        Kind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let leaf = parts.pop().unwrap_or(key);
    let mut node = table;
    for part in parts {
        let entry =
            node.entry(part.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            bail!("config key {part} must be a table, to hold {key}");
        };
        node = inner;
    }
    node.insert(leaf.to_owned(), parsed);
    Ok(())
}

/// The SQLite path named by a `sqlite:` `database.url` (PostgreSQL URLs are taken before this).
fn database_url_path(url: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if path.is_empty() {
            bail!("database.url: {url:?} names no file");
        }
        return Ok(PathBuf::from(path));
    }
    bail!("database.url: {url:?} is neither a postgres:// nor a sqlite: URL")
}

#[cfg(test)]
mod tests;

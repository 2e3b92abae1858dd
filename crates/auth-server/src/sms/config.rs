//! The `[sms]` configuration (spec §12): the default gateway, `[[sms.routes]]`, and one section per
//! gateway (`[sms.webhook]`, `[sms.smsc]`, `[sms.twilio]`, `[sms.clickatell]`, `[sms.clickatell_usa]`,
//! `[sms.smsru]`), each in its provider's own vocabulary.
//!
//! Loading only reads and checks values, like the rest of `config`: secret files and CA files are
//! opened when the gateways are built (`Gateways::build`). Every check names the key, because a
//! misconfigured gateway must fail the start, not the first login. Secrets are held as `SecretString`
//! (or as the path of a file holding one), so no `Debug` of the configuration shows them. A secret
//! given in the environment (`AUTH_SMS__SMSC__PASSWORD`, …) wins over the file's `password` and
//! `password_file`; the file may set one of those two, not both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_core::SecretString;
use serde::{Deserialize, Deserializer};

use super::GatewayName;
use crate::outbound::url_allowed;

/// The default deadline of one call to a provider.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// The default deadline of one webhook call (the first version's `webhook_timeout_secs`).
pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 5;

/// The longest deadline a gateway may have. The outbox leases a message for 60 s before each send;
/// a send that could outlive its lease might be sent again by another node.
pub const MAX_TIMEOUT_SECS: u64 = 30;

/// The secrets the environment gave, by dotted key (`sms.smsc.password`).
pub(crate) type EnvSecrets = BTreeMap<String, SecretString>;

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    // Read straight into a `SecretString`, so the plain `String` never outlives the parse.
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

/// What the `[sms]` table holds, exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSms {
    gateway: String,
    file_path: Option<PathBuf>,
    /// The first version's spelling of `[sms.webhook] url`.
    webhook_url: Option<String>,
    /// The first version's spelling of `[sms.webhook] timeout_secs`.
    webhook_timeout_secs: Option<u64>,
    routes: Vec<RawRoute>,
    webhook: Option<RawWebhook>,
    smsc: Option<RawSmsc>,
    twilio: Option<RawTwilio>,
    clickatell: Option<RawClickatell>,
    clickatell_usa: Option<RawClickatell>,
    smsru: Option<RawSmsRu>,
}

impl Default for RawSms {
    fn default() -> Self {
        Self {
            gateway: "file".to_owned(),
            file_path: None,
            webhook_url: None,
            webhook_timeout_secs: None,
            routes: Vec::new(),
            webhook: None,
            smsc: None,
            twilio: None,
            clickatell: None,
            clickatell_usa: None,
            smsru: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWebhook {
    url: Option<String>,
    #[serde(deserialize_with = "secret")]
    secret: Option<SecretString>,
    secret_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSmsc {
    login: Option<String>,
    #[serde(deserialize_with = "secret")]
    password: Option<SecretString>,
    password_file: Option<PathBuf>,
    sender: Option<String>,
    base_url: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTwilio {
    account_sid: Option<String>,
    #[serde(deserialize_with = "secret")]
    auth_token: Option<SecretString>,
    auth_token_file: Option<PathBuf>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    base_url: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawClickatell {
    #[serde(deserialize_with = "secret")]
    api_key: Option<SecretString>,
    api_key_file: Option<PathBuf>,
    from: Option<String>,
    base_url: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSmsRu {
    #[serde(deserialize_with = "secret")]
    api_id: Option<SecretString>,
    api_id_file: Option<PathBuf>,
    from: Option<String>,
    base_url: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// Written in the configuration file, or given in the environment.
    Value(SecretString),
    /// Read from this file when the gateways are built; surrounding white space is dropped.
    File(PathBuf),
}

/// How one provider is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The API root, without a trailing `/` (the provider's public one unless `base_url` is set);
    /// the provider's own request paths are appended to it.
    pub base_url: String,
    /// PEM certificates trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Deadline of one call.
    pub timeout: Duration,
}

/// `[sms.webhook]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where messages are POSTed.
    pub url: http::Uri,
    /// The key of the `X-Signature` HMAC; no signature without one.
    pub secret: Option<Secret>,
    /// Extra trust roots.
    pub ca_file: Option<PathBuf>,
    /// Deadline of one call.
    pub timeout: Duration,
}

/// `[sms.smsc]` (smsc.ru).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmscConfig {
    /// The account's login.
    pub login: String,
    /// Its password (or an API password set in the account).
    pub password: Secret,
    /// The sender name, when not the account's default.
    pub sender: Option<String>,
    /// Where and how.
    pub endpoint: Endpoint,
}

/// `[sms.twilio]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioConfig {
    /// The account SID (`AC…`): the user of HTTP Basic and part of the path.
    pub account_sid: String,
    /// The auth token: the password of HTTP Basic.
    pub auth_token: Secret,
    /// The sending number (E.164) or alphanumeric sender ID.
    pub from: Option<String>,
    /// A Messaging Service (`MG…`) that picks the sender instead.
    pub messaging_service_sid: Option<String>,
    /// Where and how.
    pub endpoint: Endpoint,
}

/// `[sms.clickatell]` and `[sms.clickatell_usa]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickatellConfig {
    /// The integration's API key.
    pub api_key: Secret,
    /// The sender (a two-way number or a registered sender ID), when the integration needs one.
    pub from: Option<String>,
    /// Where and how.
    pub endpoint: Endpoint,
}

/// `[sms.smsru]` (sms.ru).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRuConfig {
    /// The account's `api_id`.
    pub api_id: Secret,
    /// The sender name, when not the account's default.
    pub from: Option<String>,
    /// Where and how.
    pub endpoint: Endpoint,
}

/// One `[[sms.routes]]` entry: numbers starting with `prefix` go to `gateway`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Leading digits of the number in international format (`1` for the USA and Canada).
    pub prefix: String,
    /// Where they go.
    pub gateway: GatewayName,
}

/// The checked `[sms]` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsConfig {
    /// Where a number no route matches goes.
    pub gateway: GatewayName,
    /// Routes by number prefix, as written (the longest matching prefix wins).
    pub routes: Vec<Route>,
    /// The `file` gateway's file.
    pub file_path: PathBuf,
    /// `[sms.webhook]`, when configured.
    pub webhook: Option<WebhookConfig>,
    /// `[sms.smsc]`, when configured.
    pub smsc: Option<SmscConfig>,
    /// `[sms.twilio]`, when configured.
    pub twilio: Option<TwilioConfig>,
    /// `[sms.clickatell]`, when configured.
    pub clickatell: Option<ClickatellConfig>,
    /// `[sms.clickatell_usa]`, when configured (upstream's second Clickatell account for US numbers).
    pub clickatell_usa: Option<ClickatellConfig>,
    /// `[sms.smsru]`, when configured.
    pub smsru: Option<SmsRuConfig>,
}

impl SmsConfig {
    /// The file the `file` gateway writes, if any message can go there (as the default or by a route).
    pub fn file_path(&self) -> Option<&Path> {
        self.uses(GatewayName::File).then_some(self.file_path.as_path())
    }

    /// Whether the default or a route names `gateway`.
    pub fn uses(&self, gateway: GatewayName) -> bool {
        self.gateway == gateway || self.routes.iter().any(|r| r.gateway == gateway)
    }

    /// Every gateway in use, each once, in the order of [`GatewayName::ALL`].
    pub fn gateways_in_use(&self) -> Vec<GatewayName> {
        GatewayName::ALL.iter().map(|(_, g)| *g).filter(|g| self.uses(*g)).collect()
    }
}

/// A configuration error; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SmsConfigError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, SmsConfigError> {
    Err(SmsConfigError(message.into()))
}

/// The provider's public API root, used unless `base_url` says otherwise.
fn default_base_url(gateway: GatewayName) -> &'static str {
    match gateway {
        GatewayName::Smsc => "https://smsc.ru",
        GatewayName::Twilio => "https://api.twilio.com",
        GatewayName::Clickatell | GatewayName::ClickatellUsa => "https://platform.clickatell.com",
        GatewayName::SmsRu => "https://sms.ru",
        GatewayName::File | GatewayName::Webhook => "",
    }
}

/// A trimmed, non-empty text value.
fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A path that is not empty (an empty environment value means "not set").
fn path(value: Option<PathBuf>) -> Option<PathBuf> {
    value.filter(|p| !p.as_os_str().is_empty())
}

fn timeout(at: &str, secs: Option<u64>, default: u64) -> Result<Duration, SmsConfigError> {
    let secs = secs.unwrap_or(default);
    if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
        return fail(format!(
            "{at}.timeout_secs: must be between 1 and {MAX_TIMEOUT_SECS} (a send must end well within the outbox's 60 s lease)"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Checks a URL against the outbound client's rule (https, or http to a loopback address).
fn checked_url(key: &str, value: &str) -> Result<http::Uri, SmsConfigError> {
    let uri: http::Uri = match value.parse() {
        Ok(u) => u,
        Err(_) => return fail(format!("{key}: {value:?} is not a URL")),
    };
    if !url_allowed(&uri) {
        return fail(format!(
            "{key}: {value:?} must be an https:// URL (http:// only to a loopback address such as 127.0.0.1)"
        ));
    }
    Ok(uri)
}

fn endpoint(
    gateway: GatewayName,
    base_url: Option<String>,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
) -> Result<Endpoint, SmsConfigError> {
    let at = format!("sms.{}", gateway.as_str());
    let base_url = match text(base_url) {
        None => default_base_url(gateway).to_owned(),
        Some(url) => {
            let uri = checked_url(&format!("{at}.base_url"), &url)?;
            if uri.query().is_some() {
                return fail(format!("{at}.base_url: {url:?} must not have a query"));
            }
            url.trim_end_matches('/').to_owned()
        }
    };
    Ok(Endpoint {
        base_url,
        ca_file: path(ca_file),
        timeout: timeout(&at, timeout_secs, DEFAULT_TIMEOUT_SECS)?,
    })
}

/// The secret of `sms.<gateway>.<key>`: the environment's, else the file's value or file, never both.
fn secret_source(
    gateway: &str,
    key: &str,
    inline: Option<SecretString>,
    file: Option<PathBuf>,
    env: &mut EnvSecrets,
) -> Result<Option<Secret>, SmsConfigError> {
    let from_env = env.remove(&format!("sms.{gateway}.{key}"));
    let from_env = from_env.filter(|s| !s.expose().trim().is_empty());
    let inline = inline.filter(|s| !s.expose().trim().is_empty());
    match (from_env, inline, path(file)) {
        (Some(env), _, _) => Ok(Some(Secret::Value(SecretString::from(env.expose().trim())))),
        (None, Some(_), Some(_)) => {
            fail(format!("sms.{gateway}.{key} and sms.{gateway}.{key}_file: set one, not both"))
        }
        (None, Some(v), None) => Ok(Some(Secret::Value(SecretString::from(v.expose().trim())))),
        (None, None, Some(p)) => Ok(Some(Secret::File(p))),
        (None, None, None) => Ok(None),
    }
}

fn required<T>(value: Option<T>, key: &str, why: &str) -> Result<T, SmsConfigError> {
    match value {
        Some(v) => Ok(v),
        None => fail(format!("{key}: required{why}")),
    }
}

/// A value that goes into a URL path or a form field as it is: printable ASCII without spaces.
fn identifier(key: &str, value: String) -> Result<String, SmsConfigError> {
    if value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(value)
    } else {
        fail(format!("{key}: {value:?} may hold only letters and digits"))
    }
}

impl RawSms {
    /// Checks the configuration; `env` holds the secrets the environment gave (see [`SECRET_KEYS`]);
    /// `default_file` is the `file` gateway's file unless `file_path` is set.
    pub(crate) fn resolve(
        self,
        mut env: EnvSecrets,
        default_file: PathBuf,
    ) -> Result<SmsConfig, SmsConfigError> {
        let gateway_named = |key: &str, name: &str| -> Result<GatewayName, SmsConfigError> {
            match GatewayName::parse(name.trim()) {
                Some(g) => Ok(g),
                None => {
                    let names: Vec<&str> = GatewayName::ALL.iter().map(|(n, _)| *n).collect();
                    fail(format!("{key}: {name:?} is not one of {}", names.join(", ")))
                }
            }
        };
        let gateway = gateway_named("sms.gateway", &self.gateway)?;

        let mut routes: Vec<Route> = Vec::with_capacity(self.routes.len());
        for (index, raw) in self.routes.into_iter().enumerate() {
            let at = format!("sms.routes[{index}]");
            let prefix = raw.prefix.trim().trim_start_matches('+').to_owned();
            if prefix.is_empty()
                || prefix.len() > auth_core::phone::Phone::MAX_DIGITS
                || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return fail(format!(
                    "{at}.prefix: {:?} is not the leading digits of an international number, such as \"1\" or \"7\"",
                    raw.prefix
                ));
            }
            if routes.iter().any(|r| r.prefix == prefix) {
                return fail(format!("{at}.prefix: {prefix:?} is routed twice"));
            }
            let gateway = gateway_named(&format!("{at}.gateway"), &raw.gateway)?;
            routes.push(Route { prefix, gateway });
        }

        // The old `webhook_timeout_secs` alone (the first example file set it) configures nothing.
        let alias_url = text(self.webhook_url);
        let webhook_section = self.webhook.is_some() || alias_url.is_some();
        let raw_webhook = self.webhook.unwrap_or_default();
        let url = match (text(raw_webhook.url), alias_url) {
            (Some(_), Some(_)) => {
                return fail(
                    "sms.webhook.url and sms.webhook_url: set one, not both (webhook_url is the first version's spelling)",
                );
            }
            (a, b) => a.or(b),
        };
        let timeout_secs = match (raw_webhook.timeout_secs, self.webhook_timeout_secs) {
            (Some(_), Some(_)) => {
                return fail(
                    "sms.webhook.timeout_secs and sms.webhook_timeout_secs: set one, not both",
                );
            }
            (a, b) => a.or(b),
        };
        let webhook_secret = secret_source(
            "webhook",
            "secret",
            raw_webhook.secret,
            raw_webhook.secret_file,
            &mut env,
        )?;
        let webhook = if webhook_section || webhook_secret.is_some() || url.is_some() {
            let url = required(url, "sms.webhook.url", " when the webhook gateway is configured")?;
            Some(WebhookConfig {
                url: checked_url("sms.webhook.url", &url)?,
                secret: webhook_secret,
                ca_file: path(raw_webhook.ca_file),
                timeout: timeout("sms.webhook", timeout_secs, DEFAULT_WEBHOOK_TIMEOUT_SECS)?,
            })
        } else {
            None
        };

        let smsc = match self.smsc {
            None => None,
            Some(raw) => {
                let password =
                    secret_source("smsc", "password", raw.password, raw.password_file, &mut env)?;
                Some(SmscConfig {
                    login: required(text(raw.login), "sms.smsc.login", "")?,
                    password: required(
                        password,
                        "sms.smsc.password",
                        " (or password_file, or AUTH_SMS__SMSC__PASSWORD)",
                    )?,
                    sender: text(raw.sender),
                    endpoint: endpoint(
                        GatewayName::Smsc,
                        raw.base_url,
                        raw.ca_file,
                        raw.timeout_secs,
                    )?,
                })
            }
        };

        let twilio = match self.twilio {
            None => None,
            Some(raw) => {
                let token = secret_source(
                    "twilio",
                    "auth_token",
                    raw.auth_token,
                    raw.auth_token_file,
                    &mut env,
                )?;
                let account_sid = required(text(raw.account_sid), "sms.twilio.account_sid", "")?;
                let from = text(raw.from);
                let service = text(raw.messaging_service_sid)
                    .map(|s| identifier("sms.twilio.messaging_service_sid", s))
                    .transpose()?;
                if from.is_none() && service.is_none() {
                    return fail(
                        "sms.twilio.from or sms.twilio.messaging_service_sid: one is required (who the message is from)",
                    );
                }
                Some(TwilioConfig {
                    account_sid: identifier("sms.twilio.account_sid", account_sid)?,
                    auth_token: required(
                        token,
                        "sms.twilio.auth_token",
                        " (or auth_token_file, or AUTH_SMS__TWILIO__AUTH_TOKEN)",
                    )?,
                    from,
                    messaging_service_sid: service,
                    endpoint: endpoint(
                        GatewayName::Twilio,
                        raw.base_url,
                        raw.ca_file,
                        raw.timeout_secs,
                    )?,
                })
            }
        };

        let clickatell = |name: GatewayName,
                          raw: Option<RawClickatell>,
                          env: &mut EnvSecrets|
         -> Result<Option<ClickatellConfig>, SmsConfigError> {
            let Some(raw) = raw else { return Ok(None) };
            let section = name.as_str();
            let key = secret_source(section, "api_key", raw.api_key, raw.api_key_file, env)?;
            let why = format!(
                " (or api_key_file, or AUTH_SMS__{}__API_KEY)",
                section.to_ascii_uppercase()
            );
            Ok(Some(ClickatellConfig {
                api_key: required(key, &format!("sms.{section}.api_key"), &why)?,
                from: text(raw.from),
                endpoint: endpoint(name, raw.base_url, raw.ca_file, raw.timeout_secs)?,
            }))
        };
        let clickatell_main = clickatell(GatewayName::Clickatell, self.clickatell, &mut env)?;
        let clickatell_usa = clickatell(GatewayName::ClickatellUsa, self.clickatell_usa, &mut env)?;

        let smsru = match self.smsru {
            None => None,
            Some(raw) => {
                let api_id =
                    secret_source("smsru", "api_id", raw.api_id, raw.api_id_file, &mut env)?;
                Some(SmsRuConfig {
                    api_id: required(
                        api_id,
                        "sms.smsru.api_id",
                        " (or api_id_file, or AUTH_SMS__SMSRU__API_ID)",
                    )?,
                    from: text(raw.from),
                    endpoint: endpoint(
                        GatewayName::SmsRu,
                        raw.base_url,
                        raw.ca_file,
                        raw.timeout_secs,
                    )?,
                })
            }
        };

        // A secret for a section that is not configured at all would be silently unused.
        if let Some(key) = env.keys().next() {
            let (section, _) = key.trim_start_matches("sms.").split_once('.').unwrap_or((key, ""));
            return fail(format!(
                "{}: given in the environment, but [sms.{section}] has no other setting",
                crate::config::env_name(key)
            ));
        }

        let config = SmsConfig {
            gateway,
            routes,
            file_path: path(self.file_path).unwrap_or(default_file),
            webhook,
            smsc,
            twilio,
            clickatell: clickatell_main,
            clickatell_usa,
            smsru,
        };
        for used in config.gateways_in_use() {
            let configured = match used {
                GatewayName::File => true,
                GatewayName::Webhook => config.webhook.is_some(),
                GatewayName::Smsc => config.smsc.is_some(),
                GatewayName::Twilio => config.twilio.is_some(),
                GatewayName::Clickatell => config.clickatell.is_some(),
                GatewayName::ClickatellUsa => config.clickatell_usa.is_some(),
                GatewayName::SmsRu => config.smsru.is_some(),
            };
            if !configured {
                let name = used.as_str();
                let hint = if used == GatewayName::Webhook {
                    "url (sms.webhook.url, or the first version's sms.webhook_url)"
                } else {
                    "credentials"
                };
                return fail(format!(
                    "sms.{name}: the {name} gateway is used (sms.gateway or sms.routes) but [sms.{name}] has no {hint}"
                ));
            }
        }
        Ok(config)
    }
}

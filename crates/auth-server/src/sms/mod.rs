//! SMS delivery (spec §5.3, §12): the gateways the outbox worker hands each message to, the routing
//! between them, and the classes every failure falls into.
//!
//! [`Gateways`] is the `SmsGateway` the outbox sees. For each message it picks a gateway by the
//! number's prefix (`[[sms.routes]]`, the longest prefix wins; `sms.gateway` otherwise), lets that
//! gateway send it, counts the outcome (`auth_sms_sends_total{gateway,outcome}` on `/metrics`), logs
//! it, and answers the outbox in its two words:
//! - sent;
//! - [`SendError::Temporary`] (network, timeout, 5xx, 429, the provider's "try later" codes): retried
//!   with backoff, logged as a warning;
//! - [`SendError::Permanent`] (invalid number, forbidden destination or text): refused for good, so the
//!   outbox drops the message and audits it (`SmsUndeliverable`), logged as a warning;
//! - [`SendError::Credentials`] (wrong key or password, an account the provider will not send for:
//!   inactive, out of funds, a sender it does not allow): nothing the message can change, so it is
//!   retried like a temporary failure, but logged as an error on every attempt, since only the
//!   operator can fix it.
//!
//! The gateways: `file` ([`file`]), `webhook` ([`webhook`]), and the providers' own HTTP APIs:
//! [`smsc`], [`twilio`], [`clickatell`] (twice: `clickatell` and `clickatell_usa`, upstream's second
//! account for US numbers) and [`smsru`]. Every provider call goes through the shared
//! [`crate::outbound`] client. A message's text holds a code, and the configuration holds credentials:
//! neither is ever logged, put in an error, or shown by `Debug`; what a provider said is quoted only
//! after [`scrub`] has cut it short and blanked any credential in it.

pub mod clickatell;
mod config;
pub mod file;
pub mod metrics;
pub mod routes;
pub mod smsc;
pub mod smsru;
pub mod twilio;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::{Clock, SmsError, SmsGateway, SmsMessage};
use bytes::Bytes;
use http::StatusCode;

pub use self::config::{
    ClickatellConfig, DEFAULT_TIMEOUT_SECS, DEFAULT_WEBHOOK_TIMEOUT_SECS, Endpoint,
    MAX_TIMEOUT_SECS, Route, Secret, SmsConfig, SmsConfigError, SmsRuConfig, SmscConfig,
    TwilioConfig, WebhookConfig,
};
pub(crate) use self::config::{EnvSecrets, RawSms};
pub use self::file::FileGateway;
pub use self::metrics::{Outcome, SmsMetrics};
pub use self::routes::Routes;
pub use self::webhook::{WebhookGateway, redacted_url};
use crate::outbound::{ClientOptions, HttpsClient, Outbound, OutboundError};

/// The gateways, by their names in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GatewayName {
    /// One JSON line per message in a file.
    File,
    /// A signed JSON POST to a URL.
    Webhook,
    /// SMSC (smsc.ru).
    Smsc,
    /// Twilio.
    Twilio,
    /// Clickatell.
    Clickatell,
    /// A second Clickatell account, as upstream keeps for US numbers.
    ClickatellUsa,
    /// SMS.ru.
    SmsRu,
}

impl GatewayName {
    /// Every gateway with its name, in documentation order.
    pub const ALL: [(&'static str, GatewayName); 7] = [
        ("file", GatewayName::File),
        ("webhook", GatewayName::Webhook),
        ("smsc", GatewayName::Smsc),
        ("twilio", GatewayName::Twilio),
        ("clickatell", GatewayName::Clickatell),
        ("clickatell_usa", GatewayName::ClickatellUsa),
        ("smsru", GatewayName::SmsRu),
    ];

    /// The name in the configuration (and the `gateway` label of the metrics).
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, g)| *g == self).map_or("?", |(name, _)| name)
    }

    /// The gateway with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, g)| *g)
    }
}

impl std::fmt::Display for GatewayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a gateway did not take a message: the three classes of spec §12.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// This message can never be sent.
    #[error("refused for good: {0}")]
    Permanent(String),
    /// The provider refused the account; retried, and only the operator can fix it.
    #[error("credentials or account refused: {0}")]
    Credentials(String),
}

impl SendError {
    /// The outcome label of this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            SendError::Temporary(_) => Outcome::Temporary,
            SendError::Permanent(_) => Outcome::Permanent,
            SendError::Credentials(_) => Outcome::Credentials,
        }
    }
}

/// What a gateway said when it took a message (its id for the message, say), for `sms test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's answer in a few words; never a credential or the text.
    pub answer: String,
}

impl Receipt {
    fn new(answer: impl Into<String>) -> Self {
        Self { answer: answer.into() }
    }
}

/// One gateway: hands one message to its service and classifies the answer.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Sends one message.
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError>;
}

/// Why the gateways could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SmsSetupError {
    /// A secret file could not be read.
    #[error("sms.{gateway}.{key}_file: cannot read {}: {source}", path.display())]
    SecretFile {
        /// The gateway's section.
        gateway: &'static str,
        /// The secret's key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secret file is empty.
    #[error("sms.{gateway}.{key}_file: {} is empty", path.display())]
    EmptySecretFile {
        /// The gateway's section.
        gateway: &'static str,
        /// The secret's key.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The HTTPS client could not be made (a CA file).
    #[error("sms.{gateway}: {source}")]
    Client {
        /// The gateway's section.
        gateway: &'static str,
        /// Why.
        source: crate::outbound::SetupError,
    },
    /// A URL built from the configuration is not valid.
    #[error("sms.{gateway}: {what}")]
    Url {
        /// The gateway's section.
        gateway: &'static str,
        /// What is wrong.
        what: String,
    },
}

/// Reads a configured secret (at start-up).
fn read_secret(
    gateway: &'static str,
    key: &'static str,
    secret: &Secret,
) -> Result<SecretString, SmsSetupError> {
    match secret {
        Secret::Value(s) => Ok(s.clone()),
        Secret::File(path) => {
            use crate::secret_file::{SecretFileError, Trim, read};
            read(path, Trim::Whitespace, gateway).map_err(|e| match e {
                SecretFileError::Read(source) => {
                    SmsSetupError::SecretFile { gateway, key, path: path.clone(), source }
                }
                SecretFileError::Empty => {
                    SmsSetupError::EmptySecretFile { gateway, key, path: path.clone() }
                }
            })
        }
    }
}

/// Answers from providers are small JSON objects; anything larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The HTTPS client of one provider.
fn client(
    outbound: &Outbound,
    gateway: &'static str,
    ca_file: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<HttpsClient, SmsSetupError> {
    let options = ClientOptions {
        ca_file: ca_file.map(Path::to_path_buf),
        timeout,
        max_body_bytes: MAX_ANSWER_BYTES,
    };
    outbound.client(&options).map_err(|source| SmsSetupError::Client { gateway, source })
}

/// `base_url` joined with a provider's own path.
fn join(gateway: &'static str, base_url: &str, path: &str) -> Result<http::Uri, SmsSetupError> {
    format!("{base_url}{path}").parse().map_err(|_| SmsSetupError::Url {
        gateway,
        what: format!("{base_url:?} + {path:?} is not a URL"),
    })
}

/// A form body (`application/x-www-form-urlencoded`, UTF-8, as every provider here reads it).
fn form(pairs: &[(&str, &str)]) -> Bytes {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    Bytes::from(body.finish())
}

/// `application/x-www-form-urlencoded`.
const FORM: &str = "application/x-www-form-urlencoded";

/// What not getting an answer means: try later, except for a URL the client refuses, which only the
/// configuration can fix (and which start-up checks already refuse).
fn transport_error(e: OutboundError) -> SendError {
    match e {
        OutboundError::UrlNotAllowed(_) => SendError::Credentials(e.to_string()),
        OutboundError::Busy
        | OutboundError::Timeout { .. }
        | OutboundError::Network { .. }
        | OutboundError::TooLarge { .. } => SendError::Temporary(e.to_string()),
    }
}

/// What an HTTP status alone says, for answers without the provider's own error: 408, 429 and 5xx
/// are "try later"; 401 and 403 refuse the credentials; 404 and 405 show a `base_url` that is not the
/// provider's API; any other 4xx refuses the message.
fn status_error(gateway: GatewayName, status: StatusCode) -> SendError {
    let what = format!("{gateway} answered HTTP {}", status.as_u16());
    match status.as_u16() {
        408 | 425 | 429 | 500..=599 => SendError::Temporary(what),
        401 | 403 => SendError::Credentials(what),
        404 | 405 => {
            SendError::Credentials(format!("{what} (is base_url the provider's API root?)"))
        }
        _ if status.is_client_error() => SendError::Permanent(what),
        _ => SendError::Temporary(what),
    }
}

/// A provider's own words, fit to quote: control characters replaced, at most 200 characters, and
/// every occurrence of a credential blanked (a provider that echoes a request must not put a key
/// into the log).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
        // A credential cut off at the end by the length cap would survive the replacement.
        for cut in (4..secret.len()).rev() {
            if let Some(head) = secret.get(..cut)
                && out.ends_with(head)
            {
                out.truncate(out.len() - head.len());
                out.push_str("<redacted>");
                break;
            }
        }
    }
    out.trim().to_owned()
}

/// Every configured gateway, the routing between them, and their counters: the `SmsGateway` of the
/// outbox.
pub struct Gateways {
    routes: Routes,
    providers: BTreeMap<GatewayName, Arc<dyn Provider>>,
    metrics: Arc<SmsMetrics>,
}

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateways")
            .field("routes", &self.routes)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl Gateways {
    /// Builds every gateway the configuration uses (the default and the routes' targets): reads
    /// their secret and CA files and makes their HTTPS clients.
    pub fn build(
        config: &SmsConfig,
        outbound: &Outbound,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SmsSetupError> {
        let mut providers: BTreeMap<GatewayName, Arc<dyn Provider>> = BTreeMap::new();
        let used = config.gateways_in_use();
        for name in &used {
            let provider: Arc<dyn Provider> = match name {
                GatewayName::File => {
                    Arc::new(FileGateway::new(config.file_path.clone(), Arc::clone(&clock)))
                }
                GatewayName::Webhook => match &config.webhook {
                    Some(c) => Arc::new(WebhookGateway::build(c, outbound, Arc::clone(&clock))?),
                    None => continue,
                },
                GatewayName::Smsc => match &config.smsc {
                    Some(c) => Arc::new(smsc::Smsc::build(c, outbound)?),
                    None => continue,
                },
                GatewayName::Twilio => match &config.twilio {
                    Some(c) => Arc::new(twilio::Twilio::build(c, outbound)?),
                    None => continue,
                },
                GatewayName::Clickatell => match &config.clickatell {
                    Some(c) => Arc::new(clickatell::Clickatell::build(*name, c, outbound)?),
                    None => continue,
                },
                GatewayName::ClickatellUsa => match &config.clickatell_usa {
                    Some(c) => Arc::new(clickatell::Clickatell::build(*name, c, outbound)?),
                    None => continue,
                },
                GatewayName::SmsRu => match &config.smsru {
                    Some(c) => Arc::new(smsru::SmsRu::build(c, outbound)?),
                    None => continue,
                },
            };
            providers.insert(*name, provider);
        }
        Ok(Self {
            routes: Routes::new(config.gateway, &config.routes),
            providers,
            metrics: Arc::new(SmsMetrics::new(&used)),
        })
    }

    /// Gateways from parts, for tests.
    pub fn from_parts(routes: Routes, providers: BTreeMap<GatewayName, Arc<dyn Provider>>) -> Self {
        let used: Vec<GatewayName> = providers.keys().copied().collect();
        Self { routes, providers, metrics: Arc::new(SmsMetrics::new(&used)) }
    }

    /// The counters, for `/metrics`.
    pub fn metrics(&self) -> Arc<SmsMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Which gateway a number goes to.
    pub fn route(&self, to: &str) -> GatewayName {
        self.routes.route(to)
    }

    /// Sends one message through its route and counts the outcome; answers which gateway took it
    /// and what it said. Nothing is logged here: the outbox logs each attempt (`deliver`), and
    /// `sms test` prints its one.
    pub async fn send(&self, msg: &SmsMessage) -> (GatewayName, Result<Receipt, SendError>) {
        let gateway = self.route(&msg.to);
        let result = match self.providers.get(&gateway) {
            Some(provider) => provider.send(msg).await,
            // `build` makes every gateway a route names, so this is a bug, not an outage.
            None => Err(SendError::Credentials(format!("the {gateway} gateway is not set up"))),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Sent,
            Err(e) => e.outcome(),
        };
        self.metrics.count(gateway, outcome);
        (gateway, result)
    }
}

#[async_trait]
impl SmsGateway for Gateways {
    async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        // The outbox id, never the number or the text.
        let id = msg.id;
        match self.send(msg).await {
            (gateway, Ok(receipt)) => {
                tracing::debug!(%gateway, id, answer = %receipt.answer, "sms handed over");
                Ok(())
            }
            (gateway, Err(e @ SendError::Temporary(_))) => {
                tracing::warn!(%gateway, id, error = %e, "sms not sent; will retry");
                Err(SmsError::Unavailable(format!("{gateway}: {e}")))
            }
            (gateway, Err(SendError::Permanent(why))) => {
                tracing::warn!(%gateway, id, error = %why, "sms refused for good; it is dropped");
                Err(SmsError::Rejected(format!("{gateway}: {why}")))
            }
            (gateway, Err(e @ SendError::Credentials(_))) => {
                tracing::error!(
                    %gateway,
                    id,
                    error = %e,
                    "sms provider refused the account; check [sms.{gateway}] (will retry)"
                );
                Err(SmsError::Unavailable(format!("{gateway}: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests;

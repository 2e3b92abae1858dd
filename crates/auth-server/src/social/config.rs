//! The `[[social.providers]]` configuration (spec §5.4): its TOML shape, the checks that run at
//! start-up, and the `AUTH_SOCIAL__<NAME>__CLIENT_SECRET` environment variables.
//!
//! Loading only reads and checks values, like the rest of `config`: the secret file and the CA file are
//! opened when the providers are built (`SocialProviders::new`). Every check names the provider and the
//! key, because a misconfigured login provider must fail the start, not the first login. The client
//! secret is held as a `SecretString`, so no `Debug` of the configuration shows it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use auth_core::SecretString;
use serde::{Deserialize, Deserializer};

use crate::outbound::url_allowed;

/// Every key of one `[[social.providers]]` table, in documentation order (a unit test checks that
/// `docs/configuration.md` and the example file name each one).
pub const PROVIDER_KEYS: &[&str] = &[
    "name",
    "kind",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "client_id",
    "client_secret",
    "client_secret_file",
    "redirect_uri",
    "portals",
    "link_by_verified_email",
    "ca_file",
    "timeout_secs",
    "clock_skew_secs",
    "subject_field",
    "email_field",
    "email_verified_field",
    "first_name_field",
    "last_name_field",
];

/// The default deadline of one call to a provider.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// The default skew allowed around an ID token's `exp` and `nbf`.
pub(super) const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;

/// What the `[social]` table holds, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSocial {
    providers: Vec<RawProvider>,
}

/// One `[[social.providers]]` table, exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    kind: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    client_id: String,
    #[serde(default, deserialize_with = "secret")]
    client_secret: Option<SecretString>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    portals: Option<Vec<String>>,
    #[serde(default)]
    link_by_verified_email: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    clock_skew_secs: Option<u64>,
    #[serde(default)]
    subject_field: Option<String>,
    #[serde(default)]
    email_field: Option<String>,
    #[serde(default)]
    email_verified_field: Option<String>,
    #[serde(default)]
    first_name_field: Option<String>,
    #[serde(default)]
    last_name_field: Option<String>,
}

/// Reads a secret straight into a `SecretString`, so the plain `String` never outlives the parse.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

/// The kinds of provider: two generic ones and the presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Any OpenID Connect provider, by discovery from its `issuer`.
    Oidc,
    /// Any OAuth 2.0 provider with a user-info endpoint, described by its endpoints and a field map.
    OAuth2,
    /// Google (OpenID Connect).
    Google,
    /// Microsoft identity platform v2.0 (OpenID Connect).
    Microsoft,
    /// Yandex ID.
    Yandex,
    /// VK ID.
    Vk,
    /// Mail.ru.
    MailRu,
    /// Facebook (Graph API).
    Facebook,
    /// GitHub.
    GitHub,
}

impl ProviderKind {
    /// Every kind, with its name in the configuration.
    pub const ALL: [(&'static str, ProviderKind); 9] = [
        ("oidc", ProviderKind::Oidc),
        ("oauth2", ProviderKind::OAuth2),
        ("google", ProviderKind::Google),
        ("yandex", ProviderKind::Yandex),
        ("vk", ProviderKind::Vk),
        ("mailru", ProviderKind::MailRu),
        ("facebook", ProviderKind::Facebook),
        ("microsoft", ProviderKind::Microsoft),
        ("github", ProviderKind::GitHub),
    ];

    /// The kind's name in the configuration.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("?", |(name, _)| name)
    }

    /// Whether identities come from OpenID Connect (discovery, ID tokens, `sub`).
    pub fn is_oidc(self) -> bool {
        matches!(self, ProviderKind::Oidc | ProviderKind::Google | ProviderKind::Microsoft)
    }
}

/// Where the client secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientSecret {
    /// None configured: a public client (ID tokens and access tokens need no secret; a code is
    /// exchanged with the client id alone).
    None,
    /// Written in the file (or in the merged configuration).
    Inline(SecretString),
    /// Read from this file when the providers are built; surrounding white space is dropped.
    File(PathBuf),
    /// From `AUTH_SOCIAL__<NAME>__CLIENT_SECRET`, which wins over the file's settings.
    Env(SecretString),
}

/// The user-info field map of an `oauth2` provider (or the override of a preset's): dotted paths
/// into the JSON answer, such as `id` or `user.email`; a numeric segment indexes an array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMap {
    /// The stable account id.
    pub subject: Option<String>,
    /// The e-mail.
    pub email: Option<String>,
    /// A boolean (or `"true"`, 1) saying the e-mail is verified; without it no e-mail counts as verified.
    pub email_verified: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
}

impl FieldMap {
    fn is_empty(&self) -> bool {
        *self == FieldMap::default()
    }
}

/// Endpoints that override a preset's or the discovery document's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Where clients send users to sign in (not called by the server; kept for completeness).
    pub authorization: Option<String>,
    /// Where codes are exchanged.
    pub token: Option<String>,
    /// Where access tokens are turned into profiles.
    pub userinfo: Option<String>,
    /// The key set of ID tokens.
    pub jwks: Option<String>,
}

/// One provider, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    /// What clients send as `provider`: lower-case, unique.
    pub name: String,
    /// The kind.
    pub kind: ProviderKind,
    /// The OpenID issuer (OpenID kinds only; the presets have their own).
    pub issuer: Option<String>,
    /// Endpoint overrides.
    pub endpoints: Endpoints,
    /// The client id (the `aud` of its ID tokens).
    pub client_id: String,
    /// The client secret's source.
    pub client_secret: ClientSecret,
    /// Sent with every code exchange.
    pub redirect_uri: Option<String>,
    /// Hosts (lower-case) whose portals offer the provider; `None` is every portal.
    pub portals: Option<Vec<String>>,
    /// Whether an unlinked identity may be linked by its verified e-mail.
    pub link_by_verified_email: bool,
    /// Extra trust roots for this provider's HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Deadline of one call.
    pub timeout: Duration,
    /// Clock skew allowed around an ID token's `exp` and `nbf` (default 60 s).
    pub clock_skew: Duration,
    /// Field map (`oauth2`; an override on the non-OpenID presets).
    pub fields: FieldMap,
}

/// Every configured provider, in configuration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocialConfig {
    /// The providers.
    pub providers: Vec<ProviderConfig>,
}

/// A configuration error; the message names the provider and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SocialConfigError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, SocialConfigError> {
    Err(SocialConfigError(message.into()))
}

/// The environment variable prefix of provider secrets.
const ENV_PREFIX: &str = "AUTH_SOCIAL__";
/// The environment variable suffix of provider secrets.
const ENV_SUFFIX: &str = "__CLIENT_SECRET";

/// The variable carrying a provider's secret: `google` → `AUTH_SOCIAL__GOOGLE__CLIENT_SECRET`
/// (upper case, `-` as `_`, since shells allow no `-` in names).
pub fn secret_env_name(provider: &str) -> String {
    format!("{ENV_PREFIX}{}{ENV_SUFFIX}", provider.to_ascii_uppercase().replace('-', "_"))
}

/// Whether `name` is a provider-secret variable (`AUTH_SOCIAL__<NAME>__CLIENT_SECRET`), whichever
/// provider it names.
pub fn is_secret_env(name: &str) -> bool {
    name.strip_prefix(ENV_PREFIX)
        .and_then(|rest| rest.strip_suffix(ENV_SUFFIX))
        .is_some_and(|middle| !middle.is_empty() && !middle.contains("__"))
}

impl RawSocial {
    /// Checks the providers and applies the secrets from the environment (variable name → value;
    /// only names for which [`is_secret_env`] holds). A variable naming no configured provider is an
    /// error, since a misspelt secret must not go unnoticed.
    pub(crate) fn resolve(
        self,
        env_secrets: BTreeMap<String, SecretString>,
    ) -> Result<SocialConfig, SocialConfigError> {
        let mut providers: Vec<ProviderConfig> = Vec::with_capacity(self.providers.len());
        let mut env_secrets = env_secrets;
        for (index, raw) in self.providers.into_iter().enumerate() {
            let provider = resolve_provider(index, raw, &mut env_secrets)?;
            if let Some(other) = providers.iter().find(|p| {
                p.name == provider.name
                    || secret_env_name(&p.name) == secret_env_name(&provider.name)
            }) {
                return fail(format!(
                    "social.providers: the names {:?} and {:?} clash (names must be unique, also as {})",
                    other.name,
                    provider.name,
                    secret_env_name(&provider.name)
                ));
            }
            providers.push(provider);
        }
        if let Some(name) = env_secrets.keys().next() {
            return fail(format!(
                "unknown environment variable {name}: no [[social.providers]] entry has that name"
            ));
        }
        Ok(SocialConfig { providers })
    }
}

fn resolve_provider(
    index: usize,
    raw: RawProvider,
    env_secrets: &mut BTreeMap<String, SecretString>,
) -> Result<ProviderConfig, SocialConfigError> {
    let name = raw.name.trim().to_owned();
    let at = if name.is_empty() {
        format!("social.providers[{index}]")
    } else {
        format!("social.providers[{index}] ({name:?})")
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return fail(format!(
            "{at}: name: must be non-empty lower-case letters, digits, '_' or '-' (clients send it as `provider`)"
        ));
    }
    if name == "email" {
        return fail(format!("{at}: name: \"email\" is reserved for password login"));
    }
    let kind_text = raw.kind.trim();
    let Some(kind) = ProviderKind::ALL.iter().find(|(k, _)| *k == kind_text).map(|(_, k)| *k)
    else {
        let kinds: Vec<&str> = ProviderKind::ALL.iter().map(|(k, _)| *k).collect();
        return fail(format!("{at}: kind: {kind_text:?} is not one of {}", kinds.join(", ")));
    };

    let url = |key: &str, value: Option<String>| -> Result<Option<String>, SocialConfigError> {
        let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let allowed = value.parse::<http::Uri>().is_ok_and(|u| url_allowed(&u));
        if !allowed {
            return fail(format!(
                "{at}: {key}: {value:?} must be an https:// URL (http:// only to a loopback address such as 127.0.0.1)"
            ));
        }
        Ok(Some(value))
    };
    let issuer = url("issuer", raw.issuer)?;
    let endpoints = Endpoints {
        authorization: url("authorization_endpoint", raw.authorization_endpoint)?,
        token: url("token_endpoint", raw.token_endpoint)?,
        userinfo: url("userinfo_endpoint", raw.userinfo_endpoint)?,
        jwks: url("jwks_uri", raw.jwks_uri)?,
    };
    let redirect_uri = raw.redirect_uri.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(redirect) = &redirect_uri {
        let absolute = redirect
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some());
        if !absolute {
            return fail(format!(
                "{at}: redirect_uri: {redirect:?} is not an absolute http(s) URL"
            ));
        }
    }

    let client_id = raw.client_id.trim().to_owned();
    if client_id.is_empty() {
        return fail(format!("{at}: client_id: must not be empty"));
    }
    let inline = raw.client_secret.filter(|s| !s.expose().trim().is_empty());
    let file = raw.client_secret_file.filter(|p| !p.as_os_str().is_empty());
    let client_secret = match (env_secrets.remove(&secret_env_name(&name)), inline, file) {
        (Some(env), _, _) if !env.expose().trim().is_empty() => {
            ClientSecret::Env(SecretString::from(env.expose().trim()))
        }
        (_, Some(_), Some(_)) => {
            return fail(format!("{at}: client_secret and client_secret_file: set one, not both"));
        }
        (_, Some(inline), None) => ClientSecret::Inline(SecretString::from(inline.expose().trim())),
        (_, None, Some(path)) => ClientSecret::File(path),
        (_, None, None) => ClientSecret::None,
    };

    let portals = match raw.portals {
        None => None,
        Some(hosts) => {
            let hosts: Vec<String> = hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
            if let Some(bad) = hosts.iter().find(|h| h.is_empty() || h.contains(['/', ' ', '@'])) {
                return fail(format!("{at}: portals: {bad:?} is not a host name"));
            }
            Some(hosts)
        }
    };
    let clock_skew_secs = raw.clock_skew_secs.unwrap_or(DEFAULT_CLOCK_SKEW_SECS);
    if clock_skew_secs > 300 {
        return fail(format!("{at}: clock_skew_secs: must be at most 300"));
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=300).contains(&timeout_secs) {
        return fail(format!("{at}: timeout_secs: must be between 1 and 300"));
    }
    let field = |v: Option<String>| v.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty());
    let fields = FieldMap {
        subject: field(raw.subject_field),
        email: field(raw.email_field),
        email_verified: field(raw.email_verified_field),
        first_name: field(raw.first_name_field),
        last_name: field(raw.last_name_field),
    };

    // What each kind needs, and what it cannot use (so a key that would be ignored is an error).
    match kind {
        ProviderKind::Oidc if issuer.is_none() => {
            return fail(format!(
                "{at}: issuer: required for kind = \"oidc\" (endpoints come from its discovery document)"
            ));
        }
        ProviderKind::OAuth2 => {
            if endpoints.userinfo.is_none() || endpoints.token.is_none() {
                return fail(format!(
                    "{at}: token_endpoint and userinfo_endpoint: required for kind = \"oauth2\""
                ));
            }
            if fields.subject.is_none() || fields.email.is_none() {
                return fail(format!(
                    "{at}: subject_field and email_field: required for kind = \"oauth2\""
                ));
            }
        }
        _ => {}
    }
    if !kind.is_oidc() {
        if issuer.is_some() {
            return fail(format!(
                "{at}: issuer: only OpenID kinds (oidc, google, microsoft) have one"
            ));
        }
        if endpoints.jwks.is_some() {
            return fail(format!(
                "{at}: jwks_uri: only OpenID kinds (oidc, google, microsoft) verify ID tokens"
            ));
        }
    } else if !fields.is_empty() {
        return fail(format!(
            "{at}: subject_field, email_field, …: OpenID kinds read the standard claims (sub, email, email_verified)"
        ));
    }

    Ok(ProviderConfig {
        name,
        kind,
        issuer,
        endpoints,
        client_id,
        client_secret,
        redirect_uri,
        portals,
        link_by_verified_email: raw.link_by_verified_email,
        ca_file: raw.ca_file.filter(|p| !p.as_os_str().is_empty()),
        timeout: Duration::from_secs(timeout_secs),
        clock_skew: Duration::from_secs(clock_skew_secs),
        fields,
    })
}

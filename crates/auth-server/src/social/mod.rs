//! Social login (spec §5.4): the real implementation of auth-core's `SocialProvider` port.
//!
//! [`SocialProviders`] holds the configured `[[social.providers]]` in configuration order. Each has a
//! kind: `oidc` (any OpenID Connect provider, by discovery), `oauth2` (any OAuth 2.0 provider with a
//! user-info endpoint and a field map), or a preset (`google`, `microsoft`, `yandex`, `vk`, `mailru`,
//! `facebook`, `github`) carrying that provider's documented endpoints and profile fields.
//!
//! A proof becomes an identity in one of three ways:
//! - an access token that is a JWT (three dot-separated parts) on an OpenID provider is an ID token,
//!   verified locally against the provider's cached key set (module `oidc`): no call per login;
//! - any other access token is shown to the provider's user-info endpoint;
//! - a code (when there is no access token) is exchanged at the token endpoint, with the client
//!   authentication discovery names, and the ID token (or the access token) it gives is read as above.
//!
//! Outcomes follow the port's contract: a provider that is not configured, or not offered on the
//! portal, is `UnknownProvider`; a refusal is `Rejected`; no answer is `Unavailable` (module `transport`
//! holds the one classification). Every call goes through the shared [`crate::outbound`] client, so
//! TLS, the deadline and the limit on calls in flight apply to all of them. Tokens, codes and the
//! client secret are never logged, never put in an error, and never shown by `Debug`.

mod config;
mod oidc;
mod presets;
mod profile;
mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::model::Portal;
use auth_core::ports::{Clock, SocialError, SocialIdentity, SocialProvider};
use auth_core::{SecretString, Timestamp};
use base64::Engine as _;
use bytes::Bytes;
use hmac::Mac as _;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

pub(crate) use config::RawSocial;
pub use config::{
    ClientSecret, DEFAULT_TIMEOUT_SECS, Endpoints, FieldMap, PROVIDER_KEYS, ProviderConfig,
    ProviderKind, SocialConfig, SocialConfigError, is_secret_env, secret_env_name,
};

use self::oidc::Oidc;
use self::presets::{ClientAuth, OIDC_FIELDS, Preset, TokenPresentation};
use self::profile::ProfileFields;
use self::transport::Step;
use crate::outbound::{ClientOptions, HttpsClient, Outbound};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Why the providers could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SocialSetupError {
    /// The secret file could not be read.
    #[error("social provider {provider:?}: cannot read client_secret_file {}: {source}", path.display())]
    SecretFile {
        /// The provider.
        provider: String,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret file is empty.
    #[error("social provider {provider:?}: client_secret_file {} is empty", path.display())]
    EmptySecretFile {
        /// The provider.
        provider: String,
        /// The file.
        path: std::path::PathBuf,
    },
    /// The HTTPS client could not be made (CA file, trust roots).
    #[error("social provider {provider:?}: {source}")]
    Client {
        /// The provider.
        provider: String,
        /// Why.
        source: crate::outbound::SetupError,
    },
    /// The JWT library has no usable crypto backend (a build with none, or with both).
    #[error("no crypto backend for ID tokens is available in this build")]
    NoJwtCrypto,
}

/// The configured social providers, implementing the core's port.
pub struct SocialProviders {
    providers: Vec<Provider>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SocialProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, &str)> =
            self.providers.iter().map(|p| (p.name.as_str(), p.kind.as_str())).collect();
        f.debug_struct("SocialProviders").field("providers", &names).finish_non_exhaustive()
    }
}

/// One configured provider, ready to call.
struct Provider {
    name: String,
    kind: ProviderKind,
    portals: Option<Vec<String>>,
    link_by_verified_email: bool,
    client_id: String,
    client_secret: Option<SecretString>,
    redirect_uri: Option<String>,
    preset: Preset,
    /// Authorization, token and user-info endpoints of a non-OpenID provider (preset, or configured).
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    fields: ProfileFields,
    http: HttpsClient,
    oidc: Option<Oidc>,
}

impl SocialProviders {
    /// Builds the providers of `config`: reads their secret files and CA files, and makes their
    /// clients from `outbound` (which bounds the calls in flight). Nothing is fetched yet: discovery
    /// and key sets are fetched on first use.
    pub fn new(
        config: &SocialConfig,
        outbound: &Outbound,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SocialSetupError> {
        if config.providers.iter().any(|p| p.kind.is_oidc())
            && jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none()
        {
            return Err(SocialSetupError::NoJwtCrypto);
        }
        let providers = config
            .providers
            .iter()
            .map(|p| Provider::new(p, outbound))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { providers, clock })
    }

    /// Whether no provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    fn find(&self, name: &str) -> Option<&Provider> {
        let name = name.trim();
        self.providers.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

#[async_trait]
impl SocialProvider for SocialProviders {
    fn offered(&self, portal: &Portal) -> Vec<String> {
        self.providers.iter().filter(|p| p.offered_on(portal)).map(|p| p.name.clone()).collect()
    }

    fn links_by_verified_email(&self, provider: &str) -> bool {
        self.find(provider).is_some_and(|p| p.link_by_verified_email)
    }

    async fn identify(
        &self,
        portal: &Portal,
        provider: &str,
        access_token: Option<&SecretString>,
        code: Option<&SecretString>,
    ) -> Result<SocialIdentity, SocialError> {
        let Some(p) = self.find(provider).filter(|p| p.offered_on(portal)) else {
            return Err(SocialError::UnknownProvider);
        };
        let now = self.clock.now();
        let access_token = access_token.filter(|t| !t.expose().trim().is_empty());
        let code = code.filter(|c| !c.expose().trim().is_empty());
        let result = match (access_token, code) {
            (Some(token), _) => p.by_access_token(token.expose().trim(), now).await,
            (None, Some(code)) => p.by_code(code.expose().trim(), None, now).await,
            (None, None) => {
                Err(SocialError::Rejected("neither an access token nor a code".to_owned()))
            }
        };
        Self::log_outcome(&p.name, &result);
        result
    }

    async fn identify_code_with_verifier(
        &self,
        portal: &Portal,
        provider: &str,
        code: &SecretString,
        code_verifier: &SecretString,
    ) -> Result<SocialIdentity, SocialError> {
        let Some(p) = self.find(provider).filter(|p| p.offered_on(portal)) else {
            return Err(SocialError::UnknownProvider);
        };
        let now = self.clock.now();
        let code = code.expose().trim();
        if code.is_empty() {
            return Err(SocialError::Rejected("an empty code".to_owned()));
        }
        let result = p.by_code(code, Some(code_verifier.expose().trim()), now).await;
        Self::log_outcome(&p.name, &result);
        result
    }

    async fn authorization_url(
        &self,
        portal: &Portal,
        provider: &str,
        state: &str,
        code_challenge: &str,
    ) -> Result<Option<String>, SocialError> {
        let Some(p) = self.find(provider).filter(|p| p.offered_on(portal)) else {
            return Ok(None);
        };
        // The code comes back to the redirect URI the exchange will name; without one there is
        // nowhere to come back to.
        let Some(redirect) = &p.redirect_uri else { return Ok(None) };
        let endpoint = match &p.oidc {
            Some(oidc) => {
                oidc.discovery(&p.http, self.clock.now()).await?.authorization_endpoint.clone()
            }
            None => p.authorization_endpoint.clone(),
        };
        let Some(endpoint) = endpoint else { return Ok(None) };
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", p.client_id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("state", state),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
        ];
        // OpenID kinds ask for the ID token's identity claims; GitHub needs a scope for the
        // verified e-mail; the other presets' defaults give what their profile fields read.
        match (p.oidc.is_some(), p.kind) {
            (true, _) => pairs.push(("scope", "openid email profile")),
            (false, ProviderKind::GitHub) => pairs.push(("scope", "read:user user:email")),
            _ => {}
        }
        Ok(Some(with_query(&endpoint, &pairs)))
    }
}

impl SocialProviders {
    /// Logs an outcome the same way for every kind of proof.
    fn log_outcome(name: &str, result: &Result<SocialIdentity, SocialError>) {
        match result {
            Ok(_) => tracing::debug!(provider = %name, "social proof accepted"),
            Err(SocialError::Rejected(reason)) => {
                tracing::info!(provider = %name, %reason, "social proof refused")
            }
            Err(SocialError::Unavailable(reason)) => {
                tracing::warn!(provider = %name, %reason, "social provider unavailable")
            }
            Err(SocialError::UnknownProvider) => {}
        }
    }
}

/// Whether an access token has the shape of a JWS: three dot-separated base64url parts.
fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !header.is_empty()
        && !payload.is_empty()
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `url` with more query parameters.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", query.finish())
}

fn read_secret(config: &ProviderConfig) -> Result<Option<SecretString>, SocialSetupError> {
    match &config.client_secret {
        ClientSecret::None => Ok(None),
        ClientSecret::Inline(s) | ClientSecret::Env(s) => Ok(Some(s.clone())),
        ClientSecret::File(path) => {
            use crate::secret_file::{SecretFileError, Trim, read};
            let secret = read(path, Trim::Whitespace, &config.name).map_err(|e| match e {
                SecretFileError::Read(source) => SocialSetupError::SecretFile {
                    provider: config.name.clone(),
                    path: path.clone(),
                    source,
                },
                SecretFileError::Empty => SocialSetupError::EmptySecretFile {
                    provider: config.name.clone(),
                    path: path.clone(),
                },
            })?;
            Ok(Some(secret))
        }
    }
}

impl Provider {
    fn new(config: &ProviderConfig, outbound: &Outbound) -> Result<Self, SocialSetupError> {
        let preset = presets::preset(config.kind);
        let http = outbound
            .client(&ClientOptions {
                ca_file: config.ca_file.clone(),
                timeout: config.timeout,
                ..ClientOptions::default()
            })
            .map_err(|source| SocialSetupError::Client { provider: config.name.clone(), source })?;
        let client_secret = read_secret(config)?;
        let (oidc, fields) = if config.kind.is_oidc() {
            // The preset's extra `iss` spellings only hold for the preset's own issuer.
            let (issuer, extra) = match (&config.issuer, preset.issuer) {
                (Some(configured), _) => (configured.clone(), Vec::new()),
                (None, Some(issuer)) => (
                    issuer.to_owned(),
                    preset.extra_issuers.iter().map(|s| (*s).to_owned()).collect(),
                ),
                // Configuration checks make `oidc` carry an issuer; this arm is unreachable in
                // practice and fails every login rather than guessing.
                (None, None) => (String::new(), Vec::new()),
            };
            let oidc = Oidc::new(
                issuer,
                extra,
                preset.tenant_template,
                config.endpoints.clone(),
                config.clock_skew,
            );
            (Some(oidc), ProfileFields::from_preset(OIDC_FIELDS, preset.extra_verified_claim))
        } else {
            let base = ProfileFields::from_preset(preset.fields, None);
            let f = &config.fields;
            let fields = if config.kind == ProviderKind::OAuth2 {
                // The generic kind has no defaults: only what the field map names is read.
                ProfileFields {
                    subject: f.subject.clone().unwrap_or_default(),
                    email: f.email.clone(),
                    email_verified: f.email_verified.clone(),
                    extra_verified: None,
                    first_name: f.first_name.clone(),
                    last_name: f.last_name.clone(),
                }
            } else {
                ProfileFields {
                    subject: f.subject.clone().unwrap_or(base.subject),
                    email: f.email.clone().or(base.email),
                    email_verified: f.email_verified.clone().or(base.email_verified),
                    extra_verified: None,
                    first_name: f.first_name.clone().or(base.first_name),
                    last_name: f.last_name.clone().or(base.last_name),
                }
            };
            (None, fields)
        };
        Ok(Self {
            name: config.name.clone(),
            kind: config.kind,
            portals: config.portals.clone(),
            link_by_verified_email: config.link_by_verified_email,
            client_id: config.client_id.clone(),
            client_secret,
            redirect_uri: config.redirect_uri.clone(),
            preset,
            authorization_endpoint: config
                .endpoints
                .authorization
                .clone()
                .or_else(|| preset.authorization_endpoint.map(str::to_owned)),
            token_endpoint: config
                .endpoints
                .token
                .clone()
                .or_else(|| preset.token_endpoint.map(str::to_owned)),
            userinfo_endpoint: config
                .endpoints
                .userinfo
                .clone()
                .or_else(|| preset.userinfo_endpoint.map(str::to_owned)),
            fields,
            http,
            oidc,
        })
    }

    fn offered_on(&self, portal: &Portal) -> bool {
        match &self.portals {
            // The first version chose providers per portal (`social_providers`); a portal that still
            // has that setting keeps its choice for providers without a `portals` list of their own,
            // which is how the old values carry over (spec §5.4).
            None => {
                let legacy = &portal.settings.social_providers;
                legacy.is_empty() || legacy.iter().any(|n| n.eq_ignore_ascii_case(&self.name))
            }
            Some(hosts) => {
                portal.hosts.iter().any(|h| hosts.iter().any(|p| p.eq_ignore_ascii_case(h)))
            }
        }
    }

    async fn by_access_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<SocialIdentity, SocialError> {
        if let Some(oidc) = &self.oidc
            && looks_like_jwt(token)
        {
            return oidc.verify(&self.http, token, &self.client_id, &self.fields, now).await;
        }
        self.userinfo(token, now).await
    }

    async fn userinfo_endpoint(&self, now: Timestamp) -> Result<String, SocialError> {
        let endpoint = match &self.oidc {
            Some(oidc) => oidc.discovery(&self.http, now).await?.userinfo_endpoint.clone(),
            None => self.userinfo_endpoint.clone(),
        };
        endpoint.ok_or_else(|| {
            SocialError::Unavailable(format!("provider {:?} has no user-info endpoint", self.name))
        })
    }

    /// The profile behind an access token, from the user-info endpoint.
    async fn userinfo(&self, token: &str, now: Timestamp) -> Result<SocialIdentity, SocialError> {
        let url = self.userinfo_endpoint(now).await?;
        let accept = if self.preset.emails_list { "application/vnd.github+json" } else { JSON };
        let request = match self.preset.presentation {
            TokenPresentation::Bearer | TokenPresentation::OAuthScheme => {
                let scheme = if self.preset.presentation == TokenPresentation::Bearer {
                    "Bearer"
                } else {
                    "OAuth"
                };
                let url = match (&self.client_secret, self.preset.appsecret_proof) {
                    (Some(secret), true) => {
                        with_query(&url, &[("appsecret_proof", &appsecret_proof(secret, token)?)])
                    }
                    _ => url.clone(),
                };
                let builder = transport::request(Method::GET, &url, accept)?
                    .header(AUTHORIZATION, transport::secret_header(format!("{scheme} {token}"))?);
                transport::build(self.github_headers(builder), Bytes::new())?
            }
            TokenPresentation::Query => transport::build(
                transport::request(
                    Method::GET,
                    &with_query(&url, &[("access_token", token)]),
                    accept,
                )?,
                Bytes::new(),
            )?,
            TokenPresentation::FormPost => {
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", &self.client_id)
                    .append_pair("access_token", token)
                    .finish();
                transport::build(
                    transport::request(Method::POST, &url, accept)?.header(CONTENT_TYPE, FORM),
                    Bytes::from(body),
                )?
            }
        };
        let response = transport::send(&self.http, Step::Userinfo, request).await?;
        let profile = transport::json(Step::Userinfo, &response)?;
        let mut identity = profile::identity(&profile, &self.fields)?;
        if self.preset.emails_list {
            self.github_emails(&url, token, &mut identity).await?;
        }
        Ok(identity)
    }

    fn github_headers(&self, builder: http::request::Builder) -> http::request::Builder {
        if self.preset.emails_list {
            builder.header("x-github-api-version", "2022-11-28")
        } else {
            builder
        }
    }

    /// GitHub's e-mail list: the primary address, verified only if GitHub says so. Without the
    /// `user:email` scope the list is refused, and the public address (if any) stays, unverified.
    async fn github_emails(
        &self,
        userinfo_url: &str,
        token: &str,
        identity: &mut SocialIdentity,
    ) -> Result<(), SocialError> {
        let base = userinfo_url.split('?').next().unwrap_or(userinfo_url).trim_end_matches('/');
        let builder = transport::request(
            Method::GET,
            &format!("{base}/emails"),
            "application/vnd.github+json",
        )?
        .header(AUTHORIZATION, transport::secret_header(format!("Bearer {token}"))?);
        let request = transport::build(self.github_headers(builder), Bytes::new())?;
        let list = match transport::send(&self.http, Step::Emails, request).await {
            Ok(response) => transport::json(Step::Emails, &response)?,
            Err(SocialError::Rejected(reason)) => {
                tracing::debug!(provider = %self.name, %reason, "no e-mail list; keeping the public address, unverified");
                identity.email_verified = false;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
        let address = |entry: &Value| profile::email(entry.get("email").and_then(profile::text));
        let verified = |entry: &Value| entry.get("verified").is_some_and(profile::truthy);
        let primary = entries.iter().find(|e| e.get("primary").is_some_and(profile::truthy));
        match primary.and_then(|p| address(p).map(|a| (a, verified(p)))) {
            Some((email, is_verified)) => {
                identity.email = Some(email);
                identity.email_verified = is_verified;
            }
            None => {
                // No primary address listed: the public one counts as verified only if the list says so.
                let public = identity.email.clone();
                identity.email_verified = public.is_some_and(|public| {
                    entries.iter().any(|e| {
                        address(e).is_some_and(|a| a.eq_ignore_ascii_case(&public)) && verified(e)
                    })
                });
            }
        }
        Ok(())
    }

    /// The code exchange request (a plain function: the form serializer is not `Send`, so it must not
    /// live across an await).
    fn token_request(
        &self,
        endpoint: &str,
        auth: ClientAuth,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<http::Request<Bytes>, SocialError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code").append_pair("code", code);
        if let Some(verifier) = code_verifier {
            // RFC 7636 §4.5: the verifier of the challenge the authorization request carried.
            form.append_pair("code_verifier", verifier);
        }
        if let Some(redirect) = &self.redirect_uri {
            form.append_pair("redirect_uri", redirect);
        }
        let mut builder =
            transport::request(Method::POST, endpoint, JSON)?.header(CONTENT_TYPE, FORM);
        match (&self.client_secret, auth) {
            (Some(secret), ClientAuth::Basic) => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and encoded.
                let pair = format!(
                    "{}:{}",
                    form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect::<String>(),
                    form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect::<String>()
                );
                let encoded = SecretString::from(
                    base64::engine::general_purpose::STANDARD
                        .encode(SecretString::from(pair).expose()),
                );
                builder = builder.header(
                    AUTHORIZATION,
                    transport::secret_header(format!("Basic {}", encoded.expose()))?,
                );
            }
            (Some(secret), ClientAuth::Post) => {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", secret.expose());
            }
            // A public client identifies itself and has nothing to prove.
            (None, _) => {
                form.append_pair("client_id", &self.client_id);
            }
        }
        transport::build(builder, Bytes::from(form.finish()))
    }

    /// Exchanges a code at the token endpoint, then reads the ID token or asks user-info.
    async fn by_code(
        &self,
        code: &str,
        code_verifier: Option<&str>,
        now: Timestamp,
    ) -> Result<SocialIdentity, SocialError> {
        let (endpoint, auth) = match &self.oidc {
            Some(oidc) => {
                let discovery = oidc.discovery(&self.http, now).await?;
                (discovery.token_endpoint.clone(), discovery.client_auth)
            }
            None => (self.token_endpoint.clone(), self.preset.client_auth),
        };
        let endpoint = endpoint.ok_or_else(|| {
            SocialError::Unavailable(format!("provider {:?} has no token endpoint", self.name))
        })?;
        let request = self.token_request(&endpoint, auth, code, code_verifier)?;
        let response = transport::send(&self.http, Step::Token, request).await?;
        let tokens = TokenAnswer::read(&response)?;

        if let (Some(oidc), Some(id_token)) = (&self.oidc, &tokens.id_token) {
            let mut identity = oidc
                .verify(&self.http, id_token.expose(), &self.client_id, &self.fields, now)
                .await?;
            if identity.email.is_none()
                && let Some(access) = &tokens.access_token
            {
                // Some providers leave the e-mail out of the ID token; user-info may have it, and
                // counts only for the same subject (OpenID Connect Core §5.3.2).
                match self.userinfo(access.expose(), now).await {
                    Ok(info) if info.subject == identity.subject => {
                        identity.email = info.email;
                        identity.email_verified = info.email_verified;
                        identity.first_name = identity.first_name.or(info.first_name);
                        identity.last_name = identity.last_name.or(info.last_name);
                    }
                    Ok(_) => {
                        tracing::warn!(provider = %self.name, "user-info named another subject than the ID token; ignored")
                    }
                    Err(e) => {
                        tracing::debug!(provider = %self.name, error = %e, "user-info after the code exchange failed; the ID token alone counts")
                    }
                }
            }
            return Ok(identity);
        }
        match &tokens.access_token {
            Some(access) => self.userinfo(access.expose(), now).await,
            None => Err(SocialError::Rejected("the token endpoint gave no token".to_owned())),
        }
    }
}

/// What a token endpoint gave.
struct TokenAnswer {
    access_token: Option<SecretString>,
    id_token: Option<SecretString>,
}

impl TokenAnswer {
    /// Reads a JSON answer, or the form-encoded one older endpoints give when `Accept` is ignored.
    fn read(response: &crate::outbound::OutboundResponse) -> Result<Self, SocialError> {
        let secret =
            |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(SecretString::from);
        if let Ok(value) = serde_json::from_slice::<Value>(&response.body)
            && value.is_object()
        {
            transport::refusal_in(Step::Token, &value)?;
            return Ok(Self {
                access_token: secret(value.get("access_token").and_then(Value::as_str)),
                id_token: secret(value.get("id_token").and_then(Value::as_str)),
            });
        }
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(&response.body).into_owned().collect();
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if field("error").is_some() {
            return Err(SocialError::Rejected("the token endpoint refused the code".to_owned()));
        }
        if field("access_token").is_none() && field("id_token").is_none() {
            return Err(SocialError::Unavailable(
                "the token endpoint's answer is unreadable".to_owned(),
            ));
        }
        Ok(Self {
            access_token: secret(field("access_token")),
            id_token: secret(field("id_token")),
        })
    }
}

/// Facebook's `appsecret_proof`: hex HMAC-SHA256 of the access token under the app secret.
fn appsecret_proof(secret: &SecretString, token: &str) -> Result<String, SocialError> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| SocialError::Unavailable("cannot compute appsecret_proof".to_owned()))?;
    mac.update(token.as_bytes());
    Ok(data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}

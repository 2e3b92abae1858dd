//! OpenID Connect: the discovery document and the key set, both fetched lazily and cached, and the
//! local verification of ID tokens (spec §5.4).
//!
//! An ID token is accepted only when its signature verifies under a key of the provider's JWKS (an
//! asymmetric algorithm the key is for: never `none` and never HMAC, whose "key" would be public), its
//! `iss` is the discovered issuer, its `aud` holds our `client_id`, and the clock (the server's `Clock`,
//! so tests can move it) is within `exp` and `nbf`, with a minute's leeway for skew. The nonce is not
//! checked: the login API carries none, so a token is bound to us by `aud` alone.
//!
//! The key set is fetched on first use and again when a token names a `kid` the cache does not hold,
//! but at most once a minute, so tokens with made-up key ids cannot make us hammer the provider; it is
//! also refreshed when a day old. Discovery is cached for a day. A failed refresh keeps what was
//! cached before.

use std::sync::{Arc, Mutex, PoisonError};

use auth_core::ports::{SocialError, SocialIdentity};
use auth_core::{SignedDuration, Timestamp};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::config::Endpoints;
use super::presets::ClientAuth;
use super::profile::{self, ProfileFields};
use super::transport::{self, Step};
use crate::outbound::HttpsClient;

/// The shortest time between two fetches of the key set caused by unknown key ids.
const MIN_REFRESH: SignedDuration = SignedDuration::from_secs(60);
/// How long a discovery document or key set is used before it is fetched again.
const MAX_AGE: SignedDuration = SignedDuration::from_hours(24);
/// How many keys of one set are tried for a token without `kid`.
const MAX_CANDIDATES: usize = 8;

/// The algorithms an ID token may use: the asymmetric ones.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What discovery (or the configuration, when it names every endpoint) says about a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    /// Where a browser starts the authorization-code flow (the sign-in page's social buttons).
    pub(crate) authorization_endpoint: Option<String>,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) userinfo_endpoint: Option<String>,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) client_auth: ClientAuth,
}

struct Dated<T> {
    value: T,
    at: Timestamp,
}

/// One verification key of the set.
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The cached key set and when it was last asked for.
#[derive(Default)]
struct KeySet {
    keys: Arc<Vec<Key>>,
    fetched_at: Option<Timestamp>,
    attempted_at: Option<Timestamp>,
}

/// One OpenID provider's cached documents.
pub(crate) struct Oidc {
    issuer: String,
    extra_issuers: Vec<String>,
    tenant_template: bool,
    overrides: Endpoints,
    /// Skew allowed around `exp` and `nbf`, in seconds.
    leeway_secs: f64,
    discovery: tokio::sync::Mutex<Option<Dated<Arc<Discovery>>>>,
    keys: Mutex<Arc<KeySet>>,
    /// Held while the key set is fetched, so concurrent logins with a new `kid` cause one fetch.
    refresh: tokio::sync::Mutex<()>,
}

/// The outcome of trying the cached keys on a token.
enum Tried {
    /// No key fits the token's `kid` and algorithm.
    NoKey,
    /// A key fits; this is what it said.
    Done(Result<Value, SocialError>),
}

impl Oidc {
    pub(crate) fn new(
        issuer: String,
        extra_issuers: Vec<String>,
        tenant_template: bool,
        overrides: Endpoints,
        clock_skew: std::time::Duration,
    ) -> Self {
        Self {
            leeway_secs: clock_skew.as_secs_f64(),
            issuer,
            extra_issuers,
            tenant_template,
            overrides,
            discovery: tokio::sync::Mutex::new(None),
            keys: Mutex::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The discovery document: from the cache, fetched when absent or a day old (a failed fetch
    /// falls back to the stale copy), or made up from the configuration when it names every endpoint.
    pub(crate) async fn discovery(
        &self,
        http: &HttpsClient,
        now: Timestamp,
    ) -> Result<Arc<Discovery>, SocialError> {
        if let (Some(token), Some(userinfo), Some(jwks)) =
            (&self.overrides.token, &self.overrides.userinfo, &self.overrides.jwks)
        {
            // Every endpoint is configured, so nothing needs discovering; Basic is the method every
            // server must support (RFC 6749 §2.3.1).
            return Ok(Arc::new(Discovery {
                issuer: self.issuer.clone(),
                authorization_endpoint: self.overrides.authorization.clone(),
                token_endpoint: Some(token.clone()),
                userinfo_endpoint: Some(userinfo.clone()),
                jwks_uri: Some(jwks.clone()),
                client_auth: ClientAuth::Basic,
            }));
        }
        let mut cached = self.discovery.lock().await;
        if let Some(doc) = cached.as_ref().filter(|d| age(now, d.at) < MAX_AGE) {
            return Ok(Arc::clone(&doc.value));
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let fetched = transport::get_json(http, Step::Discovery, &url)
            .await
            .and_then(|doc| self.read_discovery(&doc));
        match fetched {
            Ok(doc) => {
                let doc = Arc::new(doc);
                *cached = Some(Dated { value: Arc::clone(&doc), at: now });
                Ok(doc)
            }
            Err(e) => match cached.as_ref() {
                Some(stale) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "discovery refresh failed; using the cached document");
                    Ok(Arc::clone(&stale.value))
                }
                None => Err(e),
            },
        }
    }

    fn read_discovery(&self, doc: &Value) -> Result<Discovery, SocialError> {
        let unusable = |what: &str| {
            SocialError::Unavailable(format!("the discovery document of {} {what}", self.issuer))
        };
        let issuer =
            doc.get("issuer").and_then(Value::as_str).ok_or_else(|| unusable("has no issuer"))?;
        let same = issuer.trim_end_matches('/') == self.issuer.trim_end_matches('/');
        let template = self.tenant_template && issuer.contains("{tenantid}");
        if !(same || template) {
            // OpenID Connect Discovery §4.3: a document for another issuer must not be used.
            return Err(unusable(&format!("names another issuer ({issuer:?})")));
        }
        let endpoint = |key: &str,
                        configured: &Option<String>|
         -> Result<Option<String>, SocialError> {
            if let Some(url) = configured {
                return Ok(Some(url.clone()));
            }
            match doc.get(key).and_then(Value::as_str) {
                None => Ok(None),
                Some(url)
                    if url.parse::<http::Uri>().is_ok_and(|u| crate::outbound::url_allowed(&u)) =>
                {
                    Ok(Some(url.to_owned()))
                }
                Some(_) => Err(unusable(&format!("gives a {key} that is not https://"))),
            }
        };
        let methods: Vec<&str> = doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Discovery §3: absent means client_secret_basic. Basic is preferred when both are offered,
        // since it keeps the secret out of the body.
        let client_auth = if methods.is_empty() || methods.contains(&"client_secret_basic") {
            ClientAuth::Basic
        } else if methods.contains(&"client_secret_post") {
            ClientAuth::Post
        } else {
            tracing::warn!(issuer = %self.issuer, "the provider offers neither client_secret_basic nor client_secret_post; trying basic");
            ClientAuth::Basic
        };
        Ok(Discovery {
            issuer: issuer.to_owned(),
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &self.overrides.authorization,
            )?,
            token_endpoint: endpoint("token_endpoint", &self.overrides.token)?,
            userinfo_endpoint: endpoint("userinfo_endpoint", &self.overrides.userinfo)?,
            jwks_uri: endpoint("jwks_uri", &self.overrides.jwks)?,
            client_auth,
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Verifies an ID token and reads the identity in its claims.
    pub(crate) async fn verify(
        &self,
        http: &HttpsClient,
        token: &str,
        client_id: &str,
        fields: &ProfileFields,
        now: Timestamp,
    ) -> Result<SocialIdentity, SocialError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| SocialError::Rejected("the ID token is malformed".to_owned()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(SocialError::Rejected(format!(
                "the ID token's algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let discovery = self.discovery(http, now).await?;
        let kid = header.kid.as_deref();
        let tried = |set: &KeySet| try_keys(set, token, kid, header.alg, client_id);
        let fresh = |set: &KeySet| set.fetched_at.is_some_and(|at| age(now, at) < MAX_AGE);

        let cached = self.snapshot();
        let claims = match tried(&cached) {
            Tried::Done(result) if fresh(&cached) => result,
            _ => {
                // The set is old, absent, or lacks the token's key: fetch it, one login at a time.
                let _fetching = self.refresh.lock().await;
                let current = self.snapshot();
                let known = tried(&current);
                let recently_asked =
                    current.attempted_at.is_some_and(|at| age(now, at) < MIN_REFRESH);
                match known {
                    // Another login fetched the set while this one waited.
                    Tried::Done(result) if fresh(&current) => result,
                    // A set was fetched (or tried) less than a minute ago: no new fetch for a
                    // made-up key id, and a stale set is used until the provider answers again.
                    known if recently_asked && current.fetched_at.is_some() => match known {
                        Tried::Done(result) => result,
                        Tried::NoKey => return Err(unknown_key()),
                    },
                    known => match self.fetch_keys(http, &discovery, &current, now).await {
                        Ok(fetched) => match tried(&fetched) {
                            Tried::Done(result) => result,
                            Tried::NoKey => return Err(unknown_key()),
                        },
                        // A stale set that still knew the key is better than no answer.
                        Err(e) => match known {
                            Tried::Done(result) => result,
                            Tried::NoKey => return Err(e),
                        },
                    },
                }
            }
        }?;
        self.check_claims(&claims, &discovery, client_id, now)?;
        profile::identity(&claims, fields)
    }

    /// Fetches the key set, records the attempt, and keeps the old keys if the fetch fails.
    async fn fetch_keys(
        &self,
        http: &HttpsClient,
        discovery: &Discovery,
        current: &KeySet,
        now: Timestamp,
    ) -> Result<Arc<KeySet>, SocialError> {
        let Some(uri) = discovery.jwks_uri.as_deref() else {
            return Err(SocialError::Unavailable(format!(
                "{} publishes no jwks_uri to verify ID tokens with",
                self.issuer
            )));
        };
        let fetched = transport::get_json(http, Step::Jwks, uri).await;
        let (next, result) = match fetched {
            Ok(set) => {
                let keys = read_keys(&set);
                tracing::debug!(issuer = %self.issuer, keys = keys.len(), "fetched the key set");
                let next = Arc::new(KeySet {
                    keys: Arc::new(keys),
                    fetched_at: Some(now),
                    attempted_at: Some(now),
                });
                (Arc::clone(&next), Ok(next))
            }
            Err(e) => {
                let next = Arc::new(KeySet {
                    keys: Arc::clone(&current.keys),
                    fetched_at: current.fetched_at,
                    attempted_at: Some(now),
                });
                (next, Err(e))
            }
        };
        *self.keys.lock().unwrap_or_else(PoisonError::into_inner) = next;
        result
    }

    fn check_claims(
        &self,
        claims: &Value,
        discovery: &Discovery,
        client_id: &str,
        now: Timestamp,
    ) -> Result<(), SocialError> {
        let reject = |why: &str| Err(SocialError::Rejected(format!("the ID token {why}")));
        let now = now.as_second() as f64;
        let Some(exp) = claims.get("exp").and_then(Value::as_f64) else {
            return reject("has no exp");
        };
        if now > exp + self.leeway_secs {
            return reject("has expired");
        }
        if let Some(nbf) = claims.get("nbf") {
            match nbf.as_f64() {
                Some(nbf) if nbf - self.leeway_secs <= now => {}
                Some(_) => return reject("is not valid yet"),
                None => return reject("has an unreadable nbf"),
            }
        }
        let Some(iss) = claims.get("iss").and_then(Value::as_str) else {
            return reject("has no iss");
        };
        let templated = self.tenant_template
            && discovery.issuer.contains("{tenantid}")
            && claims
                .get("tid")
                .and_then(Value::as_str)
                .filter(|tid| {
                    !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .is_some_and(|tid| iss == discovery.issuer.replace("{tenantid}", tid));
        if iss != discovery.issuer && !self.extra_issuers.iter().any(|e| e == iss) && !templated {
            return reject("comes from another issuer");
        }
        // OpenID Connect Core §3.1.3.7: with several audiences, the authorized party must be us.
        let several = claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
        if several && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
            return reject("is for several audiences and not authorized for us");
        }
        Ok(())
    }
}

/// Verifies `token` with the cached keys that fit its `kid` and algorithm; `aud` is checked here
/// too, the times and the issuer by the caller.
fn try_keys(
    set: &KeySet,
    token: &str,
    kid: Option<&str>,
    alg: Algorithm,
    client_id: &str,
) -> Tried {
    let candidates: Vec<&Key> = set
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .filter(|k| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg))
        .take(MAX_CANDIDATES)
        .collect();
    if candidates.is_empty() {
        return Tried::NoKey;
    }
    let mut validation = Validation::new(alg);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Times are checked against the server's clock by the caller, not the crate's system time.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
            Ok(data) => return Tried::Done(Ok(data.claims)),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {}
            Err(e) => return Tried::Done(Err(SocialError::Rejected(reason(&e)))),
        }
    }
    Tried::Done(Err(SocialError::Rejected("the ID token's signature does not verify".to_owned())))
}

/// Why jsonwebtoken refused a token, in words that hold nothing of the token.
fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    let why = match e.kind() {
        ErrorKind::InvalidSignature => "its signature does not verify",
        ErrorKind::InvalidAudience => "is for another client (aud)",
        ErrorKind::InvalidIssuer => "comes from another issuer",
        ErrorKind::ExpiredSignature => "has expired",
        ErrorKind::ImmatureSignature => "is not valid yet",
        ErrorKind::MissingRequiredClaim(_) => "lacks a required claim (exp, iss, aud, sub)",
        ErrorKind::InvalidClaimFormat(_) => "has a claim of the wrong type",
        ErrorKind::InvalidAlgorithm => "uses an algorithm its key is not for",
        _ => "is malformed",
    };
    format!("the ID token {why}")
}

/// The usable signature keys of a JWKS document; keys this crate cannot read, and encryption keys,
/// are skipped rather than failing the whole set.
fn read_keys(set: &Value) -> Vec<Key> {
    let Some(keys) = set.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw.clone()).ok())
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => Some(Algorithm::try_from(a).ok()?),
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some(Key { kid: jwk.common.key_id.clone(), alg, key })
        })
        .collect()
}

fn unknown_key() -> SocialError {
    SocialError::Rejected("the ID token's key id is not in the provider's key set".to_owned())
}

fn age(now: Timestamp, then: Timestamp) -> SignedDuration {
    now.duration_since(then)
}

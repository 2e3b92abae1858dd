//! Tests of social login against local servers on 127.0.0.1 that answer as each provider documents,
//! and of ID-token verification against a key set made from the test RSA keys in `testdata/`
//! (test-only keys, generated for these tests and used nowhere else).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::model::{Portal, PortalId, PortalSettings};
use auth_core::ports::{SocialError, SocialIdentity, SocialProvider};
use auth_core::testkit::FakeClock;
use auth_core::{SecretString, SignedDuration, Timestamp};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::outbound::test_server::{Recorded, Reply, TestServer};

const CLIENT_ID: &str = "portal-client";
const CLIENT_SECRET: &str = "s3cret-of-the-client";
const KEY_1: &[u8] = include_bytes!("testdata/test-rsa-1.pem");
const KEY_2: &[u8] = include_bytes!("testdata/test-rsa-2.pem");

fn now() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::new(now()))
}

fn portal(hosts: &[&str]) -> Portal {
    Portal {
        id: PortalId::from_random_bytes([7; 16]),
        name: "Test".to_owned(),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        settings: PortalSettings::default(),
        created_at: now(),
        revision: 1,
    }
}

fn config(name: &str, kind: ProviderKind) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        kind,
        issuer: None,
        endpoints: Endpoints::default(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: ClientSecret::Inline(SecretString::from(CLIENT_SECRET)),
        redirect_uri: Some("https://portal.example.com/login/oauth/callback".to_owned()),
        portals: None,
        link_by_verified_email: false,
        ca_file: None,
        timeout: Duration::from_secs(3),
        clock_skew: Duration::from_secs(60),
        fields: FieldMap::default(),
    }
}

fn providers(configs: Vec<ProviderConfig>, clock: Arc<FakeClock>) -> SocialProviders {
    SocialProviders::new(&SocialConfig { providers: configs }, &Outbound::new(16), clock).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

async fn with_token(
    p: &SocialProviders,
    name: &str,
    token: &str,
) -> Result<SocialIdentity, SocialError> {
    p.identify(&portal(&["portal.example.com"]), name, Some(&secret(token)), None).await
}

async fn with_code(
    p: &SocialProviders,
    name: &str,
    code: &str,
) -> Result<SocialIdentity, SocialError> {
    p.identify(&portal(&["portal.example.com"]), name, None, Some(&secret(code))).await
}

fn rejected(r: Result<SocialIdentity, SocialError>) -> String {
    match r {
        Err(SocialError::Rejected(reason)) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn unavailable(r: Result<SocialIdentity, SocialError>) -> String {
    match r {
        Err(SocialError::Unavailable(reason)) => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---- A local OpenID provider ---------------------------------------------------------------------

fn encoding_key(pem: &[u8]) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem).unwrap()
}

/// The public JWK of a test key, as a provider's JWKS lists it.
fn jwk(pem: &[u8], kid: &str) -> Value {
    let mut value =
        serde_json::to_value(Jwk::from_encoding_key(&encoding_key(pem), Algorithm::RS256).unwrap())
            .unwrap();
    let object = value.as_object_mut().unwrap();
    object.insert("kid".to_owned(), json!(kid));
    object.insert("use".to_owned(), json!("sig"));
    object.insert("alg".to_owned(), json!("RS256"));
    value
}

fn sign(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &encoding_key(pem)).unwrap()
}

struct IdpState {
    issuer: String,
    /// The issuer the discovery document names (normally `issuer`).
    discovered_issuer: Option<String>,
    keys: Vec<Value>,
    auth_methods: Vec<&'static str>,
    token_reply: Option<Reply>,
    userinfo: Value,
}

struct Idp {
    server: TestServer,
    state: Arc<Mutex<IdpState>>,
}

impl Idp {
    /// A provider at `http://127.0.0.1:PORT{prefix}` with key 1 (`k1`) in its key set.
    async fn start_at(prefix: &str) -> Self {
        let state = Arc::new(Mutex::new(IdpState {
            issuer: String::new(),
            discovered_issuer: None,
            keys: vec![jwk(KEY_1, "k1")],
            auth_methods: vec!["client_secret_basic", "client_secret_post"],
            token_reply: None,
            userinfo: json!({"sub": "user-1", "email": "ann@example.com", "email_verified": true}),
        }));
        let shared = Arc::clone(&state);
        let prefix_owned = prefix.to_owned();
        let server = TestServer::start(move |r: &Recorded| {
            let s = shared.lock().unwrap();
            let base = s.issuer.clone();
            let path = r.path.strip_prefix(&prefix_owned).unwrap_or(&r.path);
            match path {
                "/.well-known/openid-configuration" => Reply::json(
                    200,
                    json!({
                        "issuer": s.discovered_issuer.clone().unwrap_or(base.clone()),
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "userinfo_endpoint": format!("{base}/userinfo"),
                        "jwks_uri": format!("{base}/jwks"),
                        "token_endpoint_auth_methods_supported": s.auth_methods,
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }),
                ),
                "/jwks" => Reply::json(200, json!({"keys": s.keys})),
                "/token" => s
                    .token_reply
                    .clone()
                    .unwrap_or_else(|| Reply::json(400, json!({"error": "invalid_grant"}))),
                "/userinfo" if r.header("authorization") == "Bearer opaque-token" => {
                    Reply::json(200, s.userinfo.clone())
                }
                "/userinfo" => Reply::json(401, json!({"error": "invalid_token"})),
                _ => Reply::not_found(),
            }
        })
        .await;
        let issuer = server.url(prefix);
        state.lock().unwrap().issuer = issuer;
        Self { server, state }
    }

    async fn start() -> Self {
        Self::start_at("").await
    }

    fn issuer(&self) -> String {
        self.state.lock().unwrap().issuer.clone()
    }

    fn config(&self, name: &str) -> ProviderConfig {
        ProviderConfig { issuer: Some(self.issuer()), ..config(name, ProviderKind::Oidc) }
    }

    fn claims(&self) -> Value {
        let t = now().as_second();
        json!({
            "iss": self.issuer(),
            "sub": "user-1",
            "aud": CLIENT_ID,
            "iat": t,
            "exp": t + 600,
            "email": "ann@example.com",
            "email_verified": true,
            "given_name": "Ann",
            "family_name": "Lee",
        })
    }

    fn token_with(&self, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims();
        change(claims.as_object_mut().unwrap());
        sign(KEY_1, "k1", &claims)
    }
}

// ---- ID tokens --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_good_id_token_is_verified_locally_with_cached_keys() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    let id = with_token(&social, "corp", &sign(KEY_1, "k1", &idp.claims())).await.unwrap();
    assert_eq!(
        id,
        SocialIdentity {
            subject: "user-1".to_owned(),
            email: Some("ann@example.com".to_owned()),
            email_verified: true,
            first_name: Some("Ann".to_owned()),
            last_name: Some("Lee".to_owned()),
        }
    );
    // A second login costs no call: discovery and keys are cached, and user-info is not asked.
    let again = idp.token_with(|c| {
        c.insert("sub".to_owned(), json!("user-2"));
        c.insert("email_verified".to_owned(), json!(false));
    });
    let id = with_token(&social, "CORP", &again).await.unwrap();
    assert_eq!((id.subject.as_str(), id.email_verified), ("user-2", false));
    assert_eq!(idp.server.count("/.well-known/openid-configuration"), 1);
    assert_eq!(idp.server.count("/jwks"), 1);
    assert_eq!(idp.server.count("/userinfo"), 0);
}

#[tokio::test]
async fn a_tampered_id_token_is_rejected() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    let token = sign(KEY_1, "k1", &idp.claims());
    let parts: Vec<&str> = token.split('.').collect();

    // Another payload under the original signature.
    let mut other = idp.claims();
    other["sub"] = json!("admin");
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(rejected(with_token(&social, "corp", &forged).await).contains("signature"));

    // A changed signature.
    let mut signature = parts[2].to_owned();
    let last = signature.pop().unwrap();
    signature.push(if last == 'A' { 'B' } else { 'A' });
    let flipped = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert!(matches!(with_token(&social, "corp", &flipped).await, Err(SocialError::Rejected(_))));

    // Signed by a key the provider does not have, under the provider's key id.
    let foreign = sign(KEY_2, "k1", &idp.claims());
    assert!(rejected(with_token(&social, "corp", &foreign).await).contains("signature"));
}

#[tokio::test]
async fn wrong_audience_issuer_or_times_are_rejected() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    let t = now().as_second();
    for (change, needle) in [
        (("aud", json!("someone-else")), "aud"),
        (("aud", json!(["someone-else", "another"])), "aud"),
        (("iss", json!("http://127.0.0.1:1")), "issuer"),
        (("exp", json!(t - 3600)), "expired"),
        (("exp", json!(t - 61)), "expired"),
        (("nbf", json!(t + 3600)), "not valid yet"),
    ] {
        let token = idp.token_with(|c| {
            c.insert(change.0.to_owned(), change.1.clone());
        });
        let reason = rejected(with_token(&social, "corp", &token).await);
        assert!(reason.contains(needle), "{change:?}: {reason}");
    }
    // Within the minute of leeway, for clocks that differ a little.
    let token = idp.token_with(|c| {
        c.insert("exp".to_owned(), json!(t - 30));
        c.insert("nbf".to_owned(), json!(t + 30));
    });
    assert!(with_token(&social, "corp", &token).await.is_ok());
    // Several audiences need us as the authorized party.
    let token = idp.token_with(|c| {
        c.insert("aud".to_owned(), json!([CLIENT_ID, "other"]));
        c.insert("azp".to_owned(), json!(CLIENT_ID));
    });
    assert!(with_token(&social, "corp", &token).await.is_ok());
    // A token without `sub` or `exp` is refused.
    for claim in ["sub", "exp"] {
        let token = idp.token_with(|c| {
            c.remove(claim);
        });
        assert!(
            matches!(with_token(&social, "corp", &token).await, Err(SocialError::Rejected(_))),
            "{claim}"
        );
    }
}

#[tokio::test]
async fn the_clock_decides_expiry() {
    let idp = Idp::start().await;
    let clock = clock();
    let social = providers(vec![idp.config("corp")], Arc::clone(&clock));
    let token = sign(KEY_1, "k1", &idp.claims());
    assert!(with_token(&social, "corp", &token).await.is_ok());
    clock.advance(SignedDuration::from_mins(12));
    assert!(rejected(with_token(&social, "corp", &token).await).contains("expired"));
}

#[tokio::test]
async fn symmetric_and_unsigned_tokens_are_rejected() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    // HS256 with the client secret as its key: the classic algorithm confusion.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".to_owned());
    let hs = jsonwebtoken::encode(
        &header,
        &idp.claims(),
        &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(rejected(with_token(&social, "corp", &hs).await).contains("algorithm"));
    // `alg: none`, with an empty signature.
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&idp.claims()));
    assert!(matches!(with_token(&social, "corp", &none).await, Err(SocialError::Rejected(_))));
    assert_eq!(idp.server.count("/userinfo"), 0);
}

#[tokio::test]
async fn an_unknown_key_id_refreshes_the_key_set_at_most_once_a_minute() {
    let idp = Idp::start().await;
    let clock = clock();
    let social = providers(vec![idp.config("corp")], Arc::clone(&clock));
    assert!(with_token(&social, "corp", &sign(KEY_1, "k1", &idp.claims())).await.is_ok());
    assert_eq!(idp.server.count("/jwks"), 1);

    // The provider rotates in a second key. Within the minute, the new key id is not fetched for.
    idp.state.lock().unwrap().keys.push(jwk(KEY_2, "k2"));
    let rotated = sign(KEY_2, "k2", &idp.claims());
    assert!(rejected(with_token(&social, "corp", &rotated).await).contains("key id"));
    assert_eq!(idp.server.count("/jwks"), 1);

    // A minute later, the unknown key id causes one fetch, and the token verifies.
    clock.advance(SignedDuration::from_secs(61));
    assert!(with_token(&social, "corp", &rotated).await.is_ok());
    assert_eq!(idp.server.count("/jwks"), 2);

    // Made-up key ids right after cause no fetch at all.
    for kid in ["k3", "k4", "k5"] {
        let made_up = sign(KEY_2, kid, &idp.claims());
        assert!(matches!(
            with_token(&social, "corp", &made_up).await,
            Err(SocialError::Rejected(_))
        ));
    }
    assert_eq!(idp.server.count("/jwks"), 2);
    // The known keys still verify without a call.
    assert!(with_token(&social, "corp", &sign(KEY_1, "k1", &idp.claims())).await.is_ok());
    assert_eq!(idp.server.count("/jwks"), 2);
}

#[tokio::test]
async fn concurrent_logins_with_a_new_key_fetch_the_set_once() {
    let idp = Idp::start().await;
    idp.state.lock().unwrap().keys.push(jwk(KEY_2, "k2"));
    let social = Arc::new(providers(vec![idp.config("corp")], clock()));
    let token = sign(KEY_2, "k2", &idp.claims());
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let social = Arc::clone(&social);
            let token = token.clone();
            tokio::spawn(async move { with_token(&social, "corp", &token).await })
        })
        .collect();
    for login in logins {
        assert!(login.await.unwrap().is_ok());
    }
    assert_eq!(idp.server.count("/jwks"), 1);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_used() {
    let idp = Idp::start().await;
    idp.state.lock().unwrap().discovered_issuer = Some("https://evil.example".to_owned());
    let social = providers(vec![idp.config("corp")], clock());
    let reason = unavailable(with_token(&social, "corp", &sign(KEY_1, "k1", &idp.claims())).await);
    assert!(reason.contains("another issuer"), "{reason}");
}

#[tokio::test]
async fn microsoft_accepts_each_tenant_by_its_tid() {
    // The `common` endpoint's discovery names a `{tenantid}` template as its issuer.
    let idp = Idp::start_at("/common/v2.0").await;
    let root = idp.server.url("");
    idp.state.lock().unwrap().discovered_issuer = Some(format!("{root}/{{tenantid}}/v2.0"));
    let ms = ProviderConfig { issuer: Some(idp.issuer()), ..config("ms", ProviderKind::Microsoft) };
    let social = providers(vec![ms], clock());
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let good = idp.token_with(|c| {
        c.insert("iss".to_owned(), json!(format!("{root}/{tenant}/v2.0")));
        c.insert("tid".to_owned(), json!(tenant));
        c.remove("email_verified");
        c.insert("xms_edov".to_owned(), json!(true));
    });
    let id = with_token(&social, "ms", &good).await.unwrap();
    assert!(id.email_verified, "xms_edov marks the e-mail verified");
    // Without either flag, a Microsoft e-mail is not verified.
    let unverified = idp.token_with(|c| {
        c.insert("iss".to_owned(), json!(format!("{root}/{tenant}/v2.0")));
        c.insert("tid".to_owned(), json!(tenant));
        c.remove("email_verified");
    });
    assert!(!with_token(&social, "ms", &unverified).await.unwrap().email_verified);
    // Another tenant's issuer with this tenant's id does not pass.
    let mismatched = idp.token_with(|c| {
        c.insert(
            "iss".to_owned(),
            json!(format!("{root}/00000000-0000-0000-0000-000000000000/v2.0")),
        );
        c.insert("tid".to_owned(), json!(tenant));
    });
    assert!(rejected(with_token(&social, "ms", &mismatched).await).contains("issuer"));
}

#[tokio::test]
async fn google_accepts_its_documented_second_issuer_spelling() {
    // Every endpoint configured: no discovery, the preset's issuer and its second spelling.
    let idp = Idp::start().await;
    let google = ProviderConfig {
        endpoints: Endpoints {
            token: Some(idp.server.url("/token")),
            userinfo: Some(idp.server.url("/userinfo")),
            jwks: Some(idp.server.url("/jwks")),
            authorization: None,
        },
        ..config("google", ProviderKind::Google)
    };
    let social = providers(vec![google], clock());
    for iss in ["https://accounts.google.com", "accounts.google.com"] {
        let token = idp.token_with(|c| {
            c.insert("iss".to_owned(), json!(iss));
        });
        assert!(with_token(&social, "google", &token).await.is_ok(), "{iss}");
    }
    let token = idp.token_with(|c| {
        c.insert("iss".to_owned(), json!("https://accounts.google.com.evil"));
    });
    assert!(matches!(with_token(&social, "google", &token).await, Err(SocialError::Rejected(_))));
    assert_eq!(idp.server.count("/.well-known/openid-configuration"), 0);
}

// ---- User-info and codes on an OpenID provider ---------------------------------------------------------

#[tokio::test]
async fn an_opaque_access_token_goes_to_userinfo() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    let id = with_token(&social, "corp", "opaque-token").await.unwrap();
    assert_eq!((id.subject.as_str(), id.email_verified), ("user-1", true));
    assert_eq!(idp.server.last("/userinfo").header("authorization"), "Bearer opaque-token");

    // An unverified e-mail, then a profile with no e-mail at all.
    idp.state.lock().unwrap().userinfo =
        json!({"sub": "u2", "email": "bob@example.com", "email_verified": false});
    let id = with_token(&social, "corp", "opaque-token").await.unwrap();
    assert_eq!((id.email.as_deref(), id.email_verified), (Some("bob@example.com"), false));
    idp.state.lock().unwrap().userinfo = json!({"sub": "u3", "email_verified": true});
    let id = with_token(&social, "corp", "opaque-token").await.unwrap();
    assert_eq!((id.email, id.email_verified), (None, false));

    // A token the provider does not know is refused (401 from user-info).
    assert!(rejected(with_token(&social, "corp", "other-token").await).contains("401"));
}

#[tokio::test]
async fn a_code_is_exchanged_with_basic_client_authentication() {
    let idp = Idp::start().await;
    let id_token = sign(KEY_1, "k1", &idp.claims());
    idp.state.lock().unwrap().token_reply = Some(Reply::json(
        200,
        json!({"access_token": "opaque-token", "token_type": "Bearer", "id_token": id_token}),
    ));
    let social = providers(vec![idp.config("corp")], clock());
    let id = with_code(&social, "corp", "the-code").await.unwrap();
    assert_eq!(id.subject, "user-1");

    let sent = idp.server.last("/token");
    assert_eq!(sent.method, http::Method::POST);
    assert_eq!(sent.header("content-type"), "application/x-www-form-urlencoded");
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(sent.header("authorization"), format!("Basic {expected}"));
    assert_eq!(sent.form_field("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(sent.form_field("code").as_deref(), Some("the-code"));
    assert_eq!(
        sent.form_field("redirect_uri").as_deref(),
        Some("https://portal.example.com/login/oauth/callback")
    );
    assert_eq!(sent.form_field("client_secret"), None);
    // The ID token had the e-mail: user-info was not needed.
    assert_eq!(idp.server.count("/userinfo"), 0);
}

#[tokio::test]
async fn a_code_is_exchanged_with_post_client_authentication_when_discovery_says_so() {
    let idp = Idp::start().await;
    let id_token = idp.token_with(|c| {
        c.remove("email");
        c.remove("email_verified");
    });
    {
        let mut s = idp.state.lock().unwrap();
        s.auth_methods = vec!["client_secret_post"];
        s.token_reply =
            Some(Reply::json(200, json!({"access_token": "opaque-token", "id_token": id_token})));
    }
    let social = providers(vec![idp.config("corp")], clock());
    let id = with_code(&social, "corp", "the-code").await.unwrap();
    let sent = idp.server.last("/token");
    assert_eq!(sent.header("authorization"), "");
    assert_eq!(sent.form_field("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(sent.form_field("client_secret").as_deref(), Some(CLIENT_SECRET));
    // The ID token had no e-mail, so user-info (same subject) filled it in.
    assert_eq!((id.email.as_deref(), id.email_verified), (Some("ann@example.com"), true));
    assert_eq!(idp.server.count("/userinfo"), 1);
}

#[tokio::test]
async fn a_code_answered_with_an_access_token_only_goes_to_userinfo() {
    let idp = Idp::start().await;
    idp.state.lock().unwrap().token_reply =
        Some(Reply::json(200, json!({"access_token": "opaque-token"})));
    let social = providers(vec![idp.config("corp")], clock());
    assert_eq!(with_code(&social, "corp", "c").await.unwrap().subject, "user-1");
}

#[tokio::test]
async fn token_endpoint_answers_are_classified() {
    let idp = Idp::start().await;
    let social = providers(vec![idp.config("corp")], clock());
    // The default answer: 400 invalid_grant.
    let reason = rejected(with_code(&social, "corp", "used-code").await);
    assert!(reason.contains("400") && reason.contains("invalid_grant"), "{reason}");
    for (status, unavailable_expected) in
        [(401, false), (403, false), (408, true), (429, true), (500, true), (503, true)]
    {
        idp.state.lock().unwrap().token_reply = Some(Reply::json(status, json!({"error": "x"})));
        let result = with_code(&social, "corp", "code").await;
        match (unavailable_expected, &result) {
            (true, Err(SocialError::Unavailable(_))) | (false, Err(SocialError::Rejected(_))) => {}
            _ => panic!("{status}: {result:?}"),
        }
    }
    // A 200 that is not JSON says nothing about the code.
    idp.state.lock().unwrap().token_reply =
        Some(Reply::text(200, "text/html", "<html>maintenance</html>"));
    assert!(matches!(with_code(&social, "corp", "code").await, Err(SocialError::Unavailable(_))));
}

#[tokio::test]
async fn an_unreachable_or_slow_provider_is_unavailable() {
    let port =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let gone = ProviderConfig {
        issuer: Some(format!("http://127.0.0.1:{port}")),
        ..config("gone", ProviderKind::Oidc)
    };
    let slow_server =
        TestServer::start(|_| Reply::json(200, json!({})).after(Duration::from_secs(3))).await;
    let slow = ProviderConfig {
        issuer: Some(slow_server.url("")),
        timeout: Duration::from_secs(1),
        ..config("slow", ProviderKind::Oidc)
    };
    let social = providers(vec![gone, slow], clock());
    assert!(matches!(
        with_token(&social, "gone", "opaque").await,
        Err(SocialError::Unavailable(_))
    ));
    let started = std::time::Instant::now();
    let reason = unavailable(with_token(&social, "slow", "opaque").await);
    assert!(reason.contains("no answer"), "{reason}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn beyond_the_calls_in_flight_a_login_is_unavailable_at_once() {
    let server = TestServer::start(|r| {
        if r.query_param("access_token").as_deref() == Some("slow") {
            Reply::json(200, json!({"id": "1"})).after(Duration::from_millis(800))
        } else {
            Reply::json(200, json!({"id": "2"}))
        }
    })
    .await;
    let mailru = ProviderConfig {
        endpoints: Endpoints { userinfo: Some(server.url("/userinfo")), ..Endpoints::default() },
        ..config("mailru", ProviderKind::MailRu)
    };
    let outbound = Outbound::new(1);
    let social = Arc::new(
        SocialProviders::new(&SocialConfig { providers: vec![mailru] }, &outbound, clock())
            .unwrap(),
    );
    let first = tokio::spawn({
        let social = Arc::clone(&social);
        async move { with_token(&social, "mailru", "slow").await }
    });
    while server.count("/userinfo") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reason = unavailable(with_token(&social, "mailru", "fast").await);
    assert!(reason.contains("in flight"), "{reason}");
    assert!(first.await.unwrap().is_ok());
}

// ---- The presets that are not OpenID ----------------------------------------------------------------

#[tokio::test]
async fn yandex_reads_login_yandex_ru_info() {
    let server = TestServer::start(|r| match (r.path.as_str(), r.header("authorization")) {
        ("/info", "OAuth with-mail") => Reply::json(
            200,
            json!({"id": "1000034426", "login": "ivan", "client_id": "x", "default_email": "ivan@yandex.ru",
                   "emails": ["ivan@yandex.ru"], "first_name": "Иван", "last_name": "Иванов", "psuid": "p"}),
        ),
        ("/info", "OAuth no-mail") => Reply::json(200, json!({"id": "1000034427", "login": "anon"})),
        _ => Reply::json(401, json!({"error": "invalid_token"})),
    })
    .await;
    let yandex = ProviderConfig {
        endpoints: Endpoints {
            userinfo: Some(server.url("/info?format=json")),
            ..Endpoints::default()
        },
        ..config("yandex", ProviderKind::Yandex)
    };
    let social = providers(vec![yandex], clock());
    let id = with_token(&social, "yandex", "with-mail").await.unwrap();
    assert_eq!(id.subject, "1000034426");
    assert_eq!(id.email.as_deref(), Some("ivan@yandex.ru"));
    assert!(!id.email_verified, "Yandex gives no verified flag");
    assert_eq!((id.first_name.as_deref(), id.last_name.as_deref()), (Some("Иван"), Some("Иванов")));
    assert_eq!(server.last("/info").query_param("format").as_deref(), Some("json"));

    let id = with_token(&social, "yandex", "no-mail").await.unwrap();
    assert_eq!((id.subject.as_str(), id.email), ("1000034427", None));
    assert!(rejected(with_token(&social, "yandex", "revoked").await).contains("401"));
}

#[tokio::test]
async fn vk_posts_the_token_to_vk_id_user_info() {
    let server = TestServer::start(|r| {
        if r.method != http::Method::POST || r.form_field("client_id").as_deref() != Some(CLIENT_ID)
        {
            return Reply::json(400, json!({"error": "invalid_request"}));
        }
        match r.form_field("access_token").as_deref() {
            Some("vk-token") => Reply::json(
                200,
                json!({"user": {"user_id": 1234567, "first_name": "Ivan", "last_name": "Ivanov",
                                "email": "ivan@vk.example", "verified": true, "sex": 2}}),
            ),
            Some("vk-no-mail") => {
                Reply::json(200, json!({"user": {"user_id": "7654321", "first_name": "Anna"}}))
            }
            _ => Reply::json(
                200,
                json!({"error": "invalid_token", "error_description": "token is invalid"}),
            ),
        }
    })
    .await;
    let vk = ProviderConfig {
        endpoints: Endpoints {
            userinfo: Some(server.url("/oauth2/user_info")),
            ..Endpoints::default()
        },
        ..config("vk", ProviderKind::Vk)
    };
    let social = providers(vec![vk], clock());
    let id = with_token(&social, "vk", "vk-token").await.unwrap();
    assert_eq!(id.subject, "1234567");
    assert_eq!(id.email.as_deref(), Some("ivan@vk.example"));
    assert!(!id.email_verified, "VK's `verified` is about the profile, not the e-mail");
    let id = with_token(&social, "vk", "vk-no-mail").await.unwrap();
    assert_eq!(
        (id.subject.as_str(), id.email, id.first_name.as_deref()),
        ("7654321", None, Some("Anna"))
    );
    // VK answers a bad token with 200 and an `error`.
    assert!(rejected(with_token(&social, "vk", "bad").await).contains("invalid_token"));
}

#[tokio::test]
async fn mailru_takes_the_token_in_the_query() {
    let server = TestServer::start(|r| match r.query_param("access_token").as_deref() {
        Some("mr-token") => Reply::json(
            200,
            json!({"id": "15410773191172635989", "email": "user@mail.ru", "first_name": "Ivan",
                   "last_name": "Ivanov", "name": "Ivan Ivanov", "gender": "m", "locale": "ru_RU"}),
        ),
        _ => Reply::json(200, json!({"error": "invalid_token", "error_code": 2})),
    })
    .await;
    let mailru = ProviderConfig {
        endpoints: Endpoints { userinfo: Some(server.url("/userinfo")), ..Endpoints::default() },
        ..config("mailru", ProviderKind::MailRu)
    };
    let social = providers(vec![mailru], clock());
    let id = with_token(&social, "mailru", "mr-token").await.unwrap();
    assert_eq!(
        (id.subject.as_str(), id.email.as_deref(), id.email_verified),
        ("15410773191172635989", Some("user@mail.ru"), false)
    );
    assert_eq!(server.last("/userinfo").header("authorization"), "");
    assert!(matches!(with_token(&social, "mailru", "bad").await, Err(SocialError::Rejected(_))));
}

#[tokio::test]
async fn facebook_asks_the_graph_with_an_appsecret_proof() {
    let server = TestServer::start(|r| {
        let expected_proof = {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
            mac.update(b"fb-token");
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
        };
        let good = r.header("authorization") == "Bearer fb-token"
            && r.query_param("fields").as_deref() == Some("id,email,first_name,last_name")
            && r.query_param("appsecret_proof") == Some(expected_proof);
        if good {
            Reply::json(200, json!({"id": "10158000000000001", "email": "jo@example.com", "first_name": "Jo", "last_name": "Doe"}))
        } else {
            Reply::json(400, json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}))
        }
    })
    .await;
    let facebook = ProviderConfig {
        endpoints: Endpoints {
            userinfo: Some(server.url("/me?fields=id,email,first_name,last_name")),
            ..Endpoints::default()
        },
        ..config("facebook", ProviderKind::Facebook)
    };
    let social = providers(vec![facebook], clock());
    let id = with_token(&social, "facebook", "fb-token").await.unwrap();
    assert_eq!(
        (id.subject.as_str(), id.email.as_deref(), id.email_verified),
        ("10158000000000001", Some("jo@example.com"), false)
    );
    assert_eq!(id.first_name.as_deref(), Some("Jo"));
    let reason = rejected(with_token(&social, "facebook", "expired").await);
    assert!(reason.contains("OAuthException"), "{reason}");
}

/// GitHub: `/user`, `/user/emails` and the token endpoint, for a token whose e-mail list is `emails`.
async fn github(emails: Reply) -> TestServer {
    TestServer::start(move |r| {
        let authorized = r.header("authorization") == "Bearer gh-token";
        match r.path.as_str() {
            "/login/oauth/access_token" => {
                if r.header("accept") != "application/json" {
                    return Reply::text(200, "application/x-www-form-urlencoded", "access_token=gh-token&token_type=bearer");
                }
                match r.form_field("code").as_deref() {
                    Some("gh-code") => Reply::json(200, json!({"access_token": "gh-token", "token_type": "bearer", "scope": "read:user,user:email"})),
                    // GitHub answers a bad code with 200.
                    _ => Reply::json(200, json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})),
                }
            }
            "/user" if authorized => {
                assert!(!r.header("user-agent").is_empty(), "GitHub refuses requests without a User-Agent");
                Reply::json(200, json!({"login": "octocat", "id": 583231, "name": "The Octocat", "email": "octocat@github.com"}))
            }
            "/user/emails" if authorized => emails.clone(),
            _ => Reply::json(401, json!({"message": "Bad credentials"})),
        }
    })
    .await
}

fn github_config(server: &TestServer) -> ProviderConfig {
    ProviderConfig {
        endpoints: Endpoints {
            token: Some(server.url("/login/oauth/access_token")),
            userinfo: Some(server.url("/user")),
            ..Endpoints::default()
        },
        ..config("github", ProviderKind::GitHub)
    }
}

#[tokio::test]
async fn github_takes_the_verified_primary_address() {
    let server = github(Reply::json(
        200,
        json!([
            {"email": "octocat@github.com", "primary": false, "verified": true, "visibility": "public"},
            {"email": "octo@private.example", "primary": true, "verified": true, "visibility": "private"},
        ]),
    ))
    .await;
    let social = providers(vec![github_config(&server)], clock());
    let id = with_token(&social, "github", "gh-token").await.unwrap();
    assert_eq!(id.subject, "583231");
    assert_eq!((id.email.as_deref(), id.email_verified), (Some("octo@private.example"), true));
    assert_eq!((id.first_name, id.last_name), (None, None));

    // The code flow: JSON asked for, credentials in the body, then /user.
    let id = with_code(&social, "github", "gh-code").await.unwrap();
    assert_eq!(id.subject, "583231");
    let sent = server.last("/login/oauth/access_token");
    assert_eq!(sent.form_field("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert!(
        rejected(with_code(&social, "github", "stale-code").await)
            .contains("bad_verification_code")
    );
}

#[tokio::test]
async fn github_unverified_primary_or_no_list_is_not_verified() {
    let server = github(Reply::json(
        200,
        json!([{"email": "new@example.com", "primary": true, "verified": false, "visibility": "private"}]),
    ))
    .await;
    let social = providers(vec![github_config(&server)], clock());
    let id = with_token(&social, "github", "gh-token").await.unwrap();
    assert_eq!((id.email.as_deref(), id.email_verified), (Some("new@example.com"), false));

    // Without the user:email scope the list is refused; the public address stays, unverified.
    let server =
        github(Reply::json(403, json!({"message": "Resource not accessible by integration"})))
            .await;
    let social = providers(vec![github_config(&server)], clock());
    let id = with_token(&social, "github", "gh-token").await.unwrap();
    assert_eq!((id.email.as_deref(), id.email_verified), (Some("octocat@github.com"), false));
}

#[tokio::test]
async fn oauth2_reads_the_configured_field_map() {
    let server = TestServer::start(|r| {
        if r.header("authorization") != "Bearer tok" {
            return Reply::json(401, json!({}));
        }
        Reply::json(200, json!({"data": {"uid": 99, "contact": {"mail": "x@corp.example", "confirmed": "true"}, "names": ["X", "Y"]}}))
    })
    .await;
    let generic = ProviderConfig {
        endpoints: Endpoints {
            token: Some(server.url("/token")),
            userinfo: Some(server.url("/me")),
            ..Endpoints::default()
        },
        fields: FieldMap {
            subject: Some("data.uid".to_owned()),
            email: Some("data.contact.mail".to_owned()),
            email_verified: Some("data.contact.confirmed".to_owned()),
            first_name: Some("data.names.0".to_owned()),
            last_name: Some("data.names.1".to_owned()),
        },
        ..config("corp", ProviderKind::OAuth2)
    };
    let without_flag = ProviderConfig {
        name: "corp2".to_owned(),
        fields: FieldMap { email_verified: None, ..generic.fields.clone() },
        ..generic.clone()
    };
    let social = providers(vec![generic, without_flag], clock());
    let id = with_token(&social, "corp", "tok").await.unwrap();
    assert_eq!(
        id,
        SocialIdentity {
            subject: "99".to_owned(),
            email: Some("x@corp.example".to_owned()),
            email_verified: true,
            first_name: Some("X".to_owned()),
            last_name: Some("Y".to_owned()),
        }
    );
    // Without a verified field, no e-mail is verified.
    assert!(!with_token(&social, "corp2", "tok").await.unwrap().email_verified);
    // A JWT-shaped token on a provider that is not OpenID goes to user-info like any other.
    let jwt_like = sign(KEY_1, "k1", &json!({"sub": "x"}));
    assert!(matches!(with_token(&social, "corp", &jwt_like).await, Err(SocialError::Rejected(_))));
    assert_eq!(server.count("/me"), 3);
}

// ---- The port's other promises --------------------------------------------------------------------------

#[tokio::test]
async fn providers_are_offered_by_portal_in_configuration_order() {
    let mut only_b = config("bee", ProviderKind::Yandex);
    only_b.portals = Some(vec!["b.example.com".to_owned()]);
    let mut linking = config("all", ProviderKind::MailRu);
    linking.link_by_verified_email = true;
    let social = providers(vec![linking, only_b, config("github", ProviderKind::GitHub)], clock());
    assert_eq!(social.offered(&portal(&["a.example.com"])), ["all", "github"]);
    assert_eq!(
        social.offered(&portal(&["x.example.com", "B.example.com"])),
        ["all", "bee", "github"]
    );
    // A portal that kept the first version's per-portal choice offers only what it chose, among the
    // providers without a `portals` list.
    let mut legacy = portal(&["a.example.com"]);
    legacy.settings.social_providers = vec!["GitHub".to_owned()];
    assert_eq!(social.offered(&legacy), ["github"]);
    assert!(social.links_by_verified_email("all"));
    assert!(!social.links_by_verified_email("bee"));
    assert!(!social.links_by_verified_email("nobody"));

    // Unknown names and providers not offered on the portal are both unknown, with no call made.
    let a = portal(&["a.example.com"]);
    for name in ["nobody", "bee", ""] {
        let r = social.identify(&a, name, Some(&secret("t")), None).await;
        assert!(matches!(r, Err(SocialError::UnknownProvider)), "{name}: {r:?}");
    }
    // A provider with neither proof refuses.
    let r = social.identify(&a, "all", Some(&secret("  ")), None).await;
    assert!(matches!(r, Err(SocialError::Rejected(_))), "{r:?}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let idp = Idp::start().await;
    let mut corp = idp.config("corp");
    corp.client_secret = ClientSecret::Inline(secret("TOP-SECRET-VALUE"));
    let social = providers(vec![corp.clone()], clock());
    assert!(!format!("{social:?}").contains("TOP-SECRET"));
    assert!(!format!("{corp:?}").contains("TOP-SECRET"));
    // A refused code and a refused token: the messages hold neither them nor the secret.
    let e = with_code(&social, "corp", "CODE-VALUE-123").await.unwrap_err().to_string();
    let t = with_token(&social, "corp", "TOKEN-VALUE-456").await.unwrap_err().to_string();
    for message in [e, t] {
        for secret in ["TOP-SECRET", "CODE-VALUE", "TOKEN-VALUE"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}

#[tokio::test]
async fn the_secret_file_is_read_at_setup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corp.secret");
    std::fs::write(&file, "from-the-file\n").unwrap();
    let server = TestServer::start(|r| {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:from-the-file"));
        if r.header("authorization") == format!("Basic {basic}") {
            Reply::json(200, json!({"access_token": "tok"}))
        } else if r.path == "/me" {
            Reply::json(200, json!({"id": "1", "mail": "a@b.c"}))
        } else {
            Reply::json(401, json!({"error": "invalid_client"}))
        }
    })
    .await;
    let mut generic = config("corp", ProviderKind::OAuth2);
    generic.client_secret = ClientSecret::File(file.clone());
    generic.endpoints = Endpoints {
        token: Some(server.url("/token")),
        userinfo: Some(server.url("/me")),
        ..Endpoints::default()
    };
    generic.fields = FieldMap {
        subject: Some("id".to_owned()),
        email: Some("mail".to_owned()),
        ..FieldMap::default()
    };
    let social = providers(vec![generic.clone()], clock());
    assert_eq!(with_code(&social, "corp", "c").await.unwrap().subject, "1");

    std::fs::write(&file, "\n").unwrap();
    let e = SocialProviders::new(
        &SocialConfig { providers: vec![generic.clone()] },
        &Outbound::new(1),
        clock(),
    )
    .unwrap_err();
    assert!(matches!(e, SocialSetupError::EmptySecretFile { .. }), "{e}");
    generic.client_secret = ClientSecret::File(dir.path().join("missing"));
    let e = SocialProviders::new(
        &SocialConfig { providers: vec![generic] },
        &Outbound::new(1),
        clock(),
    )
    .unwrap_err();
    assert!(matches!(e, SocialSetupError::SecretFile { .. }), "{e}");
}

#[test]
fn jwt_shapes() {
    assert!(looks_like_jwt("eyJh.eyJz.sig-_"));
    assert!(looks_like_jwt("eyJh.eyJz."));
    for not in ["opaque", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.c d", "ya29.a0AfH6SM"] {
        assert!(!looks_like_jwt(not), "{not}");
    }
}

//! Social login (OpenID Connect): the harness's real OpenID provider first, so every later test of
//! the server's social login can rely on what it hands out.

use auth_tests::{OidcAccount, OidcClient, OidcProvider, Request, oidc};

const SECRET: &str = "portal-client-secret-for-tests-only";
const REDIRECT: &str = "https://127.0.0.1:9/api/2.0/authentication/social/callback";

/// Discovery over HTTPS trusting only the test CA, tokens from a real code exchange, userinfo with the
/// access token, and revocation that ends it.
#[test]
fn the_test_provider_serves_discovery_tokens_userinfo_and_revocation() {
    let alice = OidcAccount::new("alice-0001", Some("alice@example.com"), "Alice", "Liddell");
    let bob = OidcAccount::new("bob-0002", None, "Bob", "Roberts");
    let clients = vec![
        OidcClient::new("portal", SECRET, REDIRECT),
        OidcClient::new("other", SECRET, REDIRECT).post(),
    ];
    let Some(idp) = OidcProvider::start(clients, vec![alice, bob]) else { return };

    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"].as_str(), Some(idp.issuer().as_str()));
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
    ] {
        let url = discovery[endpoint].as_str().unwrap_or_default();
        assert!(url.starts_with(&idp.issuer()), "{endpoint}: {url:?}");
    }
    let jwks = idp.get(&idp.endpoint("jwks_uri")).json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA", "an RS256 key at jwks_uri: {jwks}");

    // A CA the provider's certificate does not chain to must not be enough.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a CA");
    let stranger_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(stranger_file.path(), stranger.cert.pem()).expect("writing the PEM");
    let untrusting = oidc::client_config(stranger_file.path());
    let refused = oidc::https_send(
        &untrusting,
        idp.addr(),
        &Request::get("/.well-known/openid-configuration"),
    );
    assert!(refused.is_err(), "the handshake succeeded without the test CA");

    let (access, id_token) = idp.tokens("portal", "alice-0001");
    assert_eq!(id_token.split('.').count(), 3, "a JWS in compact form");
    assert!(id_token.split('.').all(|part| !part.is_empty()));
    let header = data_encoding::BASE64URL_NOPAD
        .decode(id_token.split('.').next().unwrap_or_default().as_bytes())
        .expect("a base64url header");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("a JSON header");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"], "signed with the key at jwks_uri");

    let userinfo = idp.endpoint("userinfo_endpoint");
    let ask = |token: &str| {
        idp.send(Request::get(&userinfo).header("Authorization", &format!("Bearer {token}")))
    };
    let answer = ask(&access);
    assert_eq!(answer.status, 200, "userinfo: {}", answer.text());
    let claims = answer.json();
    assert_eq!(claims["sub"], "alice-0001");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(
        (claims["given_name"].as_str(), claims["family_name"].as_str()),
        (Some("Alice"), Some("Liddell"))
    );

    idp.revoke("portal", SECRET, &access);
    assert_eq!(ask(&access).status, 401, "a revoked access token still works");

    // A client_secret_post client, and an account without an e-mail: the claim is absent, not empty.
    let (bobs, _) = idp.tokens("other", "bob-0002");
    let claims = ask(&bobs).json();
    assert_eq!(claims["sub"], "bob-0002");
    assert!(claims.get("email").is_none(), "an e-mail appeared: {claims}");
    idp.revoke("other", SECRET, &bobs);
    assert_eq!(ask(&bobs).status, 401);

    // A bare code, as the server under test will redeem it, with the state checked on the way back.
    let code = idp.code("portal", "alice-0001", REDIRECT, "nonce-1");
    assert!(!code.is_empty());
    let code = idp.code_for(
        "alice-0001",
        &[
            ("client_id", "portal"),
            ("redirect_uri", REDIRECT),
            ("nonce", "nonce-2"),
            ("state", "st-1"),
        ],
    );
    assert!(!code.is_empty());

    idp.stop();
}

// ----- the server against the real provider (issue 13) ---------------------------------------------

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";
const PORTAL_REDIRECT: &str = "https://portal.example/login/oauth/callback";

/// The provider with Ada (verified e-mail) and Bob (no e-mail), and a server whose portal has `tfa`,
/// Ada as a user, and the provider configured as `corp`.
fn world(tfa: &str) -> Option<(OidcProvider, auth_tests::TestServer)> {
    world_with(tfa, None, "")
}

/// [`world`] with the provider's ID-token lifetime and extra provider settings for the server.
fn world_with(
    tfa: &str,
    id_token_ttl: Option<u64>,
    extra: &str,
) -> Option<(OidcProvider, auth_tests::TestServer)> {
    let ada = OidcAccount::new("ada-sub-1", Some(EMAIL), "Ada", "Lovelace");
    let bob = OidcAccount::new("bob-sub-2", None, "Bob", "Roberts");
    let clients = vec![OidcClient::new("portal", SECRET, PORTAL_REDIRECT)];
    let idp = OidcProvider::start_with(clients, vec![ada, bob], id_token_ttl)?;
    let data = auth_tests::DataDir::new();
    data.run_cli(&["portal", "set", "--tfa", tfa, "--set", "account_limit=1000"]).ok();
    data.run_cli(&["user", "add", "--email", EMAIL, "--password", PASSWORD]).ok();
    let config = data.path().join("social.toml");
    let toml = format!(
        "[[social.providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"portal\"\n\
         client_secret = \"{SECRET}\"\nredirect_uri = \"{PORTAL_REDIRECT}\"\nca_file = \"{}\"\n{extra}",
        idp.issuer(),
        idp.ca_file().display()
    );
    std::fs::write(&config, toml).expect("the config file");
    let options = auth_tests::ServerOptions::new().env("AUTH_CONFIG", config.to_str().unwrap());
    let server = auth_tests::TestServer::start_in(data, options);
    Some((idp, server))
}

fn social_login(s: &auth_tests::TestServer, path: &str, proof: &str) -> auth_tests::Response {
    s.send(Request::post(path).body(FORM, format!("provider=corp&{proof}")))
}

fn body_of(r: &auth_tests::Response) -> serde_json::Value {
    r.json()["response"].clone()
}

fn link_ada(s: &auth_tests::TestServer) {
    let out = s.run_cli(&[
        "user",
        "link",
        "--email",
        EMAIL,
        "--provider",
        "corp",
        "--subject",
        "ada-sub-1",
    ]);
    out.ok();
}

#[test]
fn issue_13_social_login_against_a_real_openid_provider() {
    let Some((idp, s)) = world("none") else { return };
    let caps = s.get("/api/2.0/capabilities").json();
    assert_eq!(caps["response"]["oauthEnabled"], true, "{caps}");
    assert_eq!(caps["response"]["providers"], serde_json::json!(["corp"]));

    let (access, id_token) = idp.tokens("portal", "ada-sub-1");
    let wrong_password =
        s.post_form("/api/2.0/authentication", &format!("userName={EMAIL}&password=wrong"));
    let unlinked = social_login(&s, "/api/2.0/authentication", &format!("accessToken={access}"));
    assert_eq!(unlinked.status, 401);
    assert_eq!(unlinked.body, wrong_password.body, "the same bytes as a wrong password");

    link_ada(&s);
    for (what, proof) in [
        ("access token", format!("accessToken={access}")),
        ("ID token", format!("accessToken={id_token}")),
    ] {
        let r = social_login(&s, "/api/2.0/authentication", &proof);
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(body_of(&r)["token"].is_string(), "{what}");
    }
    let code = idp.code("portal", "ada-sub-1", PORTAL_REDIRECT, "n-1");
    let r = social_login(&s, "/api/2.0/authentication", &format!("codeOAuth={code}"));
    assert_eq!(r.status, 200, "codeOAuth: {}", r.text());

    // A tampered ID token (one byte of the signature) and a revoked access token are refused.
    let mut tampered = id_token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = social_login(&s, "/api/2.0/authentication", &format!("accessToken={tampered}"));
    assert_eq!(r.status, 401, "a tampered ID token: {}", r.text());
    idp.revoke("portal", SECRET, &access);
    let r = social_login(&s, "/api/2.0/authentication", &format!("accessToken={access}"));
    assert_eq!(r.status, 401, "a revoked access token: {}", r.text());

    // Linking over the API: a user has one link per provider, so linking a second identity at `corp`
    // to Ada is a 409, and the providers list shows her link.
    let ada_token = body_of(&s.post_form(
        "/api/2.0/authentication",
        &format!("userName={EMAIL}&password={}", PASSWORD.replace(' ', "+")),
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob_access, _) = idp.tokens("portal", "bob-sub-2");
    let link = |token: &str, access: &str| {
        s.send(
            Request::post("/api/2.0/people/thirdparty/linkaccount")
                .header("Authorization", token)
                .body(FORM, format!("provider=corp&accessToken={access}")),
        )
    };
    let r = link(&ada_token, &bob_access);
    assert_eq!(r.status, 409, "Ada has a corp link already: {}", r.text());
    assert_eq!(r.json()["error"]["code"], "already_linked");
    let providers = s.send(
        Request::get("/api/2.0/people/thirdparty/providers").header("Authorization", &ada_token),
    );
    assert_eq!(
        providers.json()["response"],
        serde_json::json!([{"provider": "corp", "linked": true}])
    );

    // Nothing secret reached the database.
    let (data, _) = s.stop();
    let mut bytes = Vec::new();
    for f in ["auth.db", "auth.db-wal"] {
        if let Ok(b) = std::fs::read(data.path().join(f)) {
            bytes.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [access.as_str(), id_token.as_str(), code.as_str(), bob_access.as_str(), SECRET] {
        assert!(!text.contains(secret), "a secret in the database file");
    }
}

#[test]
fn issue_13_second_factor_applies_and_step_two_may_resend_the_code() {
    let Some((idp, s)) = world("app") else { return };
    link_ada(&s);
    let code = idp.code("portal", "ada-sub-1", PORTAL_REDIRECT, "n-2");
    let step1 = social_login(&s, "/api/2.0/authentication", &format!("codeOAuth={code}"));
    let r = body_of(&step1);
    assert_eq!(r["token"], serde_json::Value::Null, "the portal's second factor applies: {r}");
    let key = r["tfaKey"].as_str().expect("enrolment");
    let secret = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let totp = auth_core::totp::code_at_step(&secret, now / 30);
    let step2 =
        social_login(&s, &format!("/api/2.0/authentication/{totp}"), &format!("codeOAuth={code}"));
    assert_eq!(step2.status, 200, "the same code again in step 2: {}", step2.text());
    assert!(body_of(&step2)["token"].is_string());
}

#[test]
fn issue_13_a_stopped_provider_is_503_provider_unavailable() {
    let Some((idp, s)) = world("none") else { return };
    link_ada(&s);
    let (access, _) = idp.tokens("portal", "ada-sub-1");
    idp.stop();
    let r = social_login(&s, "/api/2.0/authentication", &format!("accessToken={access}"));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (503, Some("provider_unavailable")),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn issue_13_an_sms_portal_asks_for_the_phone_and_the_code_with_the_same_proof() {
    let Some((idp, s)) = world("sms") else { return };
    link_ada(&s);
    let (access, _) = idp.tokens("portal", "ada-sub-1");
    let proof = format!("accessToken={access}");
    let step1 = body_of(&social_login(&s, "/api/2.0/authentication", &proof));
    assert_eq!(
        (step1["token"].clone(), step1["sms"].clone()),
        (serde_json::Value::Null, serde_json::json!(true))
    );
    let setphone = social_login(
        &s,
        "/api/2.0/authentication/setphone",
        &format!("{proof}&mobilePhone=%2B7+912+345-67-89"),
    );
    assert_eq!(setphone.status, 200, "{}", setphone.text());
    let code = s.wait_for_sms(1)[0].code();
    let step2 = social_login(&s, &format!("/api/2.0/authentication/{code}"), &proof);
    assert_eq!(step2.status, 200, "{}", step2.text());
    let body = body_of(&step2);
    assert!(body["token"].is_string() && body["sms"] == true, "{body}");
}

#[test]
fn issue_13_an_expired_id_token_is_refused() {
    // Two-second ID tokens, and no clock-skew allowance, so a test can outwait one.
    let Some((idp, s)) = world_with("none", Some(2), "clock_skew_secs = 0\n") else { return };
    link_ada(&s);
    let (_, id_token) = idp.tokens("portal", "ada-sub-1");
    let fresh = social_login(&s, "/api/2.0/authentication", &format!("accessToken={id_token}"));
    assert_eq!(fresh.status, 200, "while valid: {}", fresh.text());
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let expired = social_login(&s, "/api/2.0/authentication", &format!("accessToken={id_token}"));
    assert_eq!(expired.status, 401, "once expired: {}", expired.text());
    assert_eq!(expired.json()["error"]["code"], "invalid_credentials");
}

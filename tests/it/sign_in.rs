//! The sign-in page (spec §10, issue 15) in real headless Chromium: every step a person goes through,
//! each photographed into `target/screenshots/` (copies in `docs/img/`, shown by `docs/sign-in.md`).
//!
//! SMS codes come from the `file` gateway's outbox and TOTP codes are computed from the key the page
//! shows beside the QR code, as a person with a phone would.

use auth_tests::browser::Browser;
use auth_tests::{
    DataDir, OidcAccount, OidcClient, OidcProvider, Request, ServerOptions, TestServer,
};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A server whose portal has these settings and one user, Ada Lovelace.
fn server(settings: &[&str]) -> TestServer {
    let data = DataDir::new();
    data.set_portal(None, settings).ok();
    data.add_ada(EMAIL, PASSWORD).ok();
    TestServer::start_in(data, ServerOptions::new())
}

fn totp_now(key: &str) -> String {
    let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let secret =
        data_encoding::BASE32_NOPAD.decode(key.as_bytes()).expect("a base32 key on the page");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    auth_core::totp::code_at_step(&secret, now / 30)
}

/// Types the e-mail and password and submits the first step.
fn sign_in(b: &mut Browser, password: &str) {
    b.visible("#email");
    b.fill("#email", EMAIL);
    b.fill("#password", password);
    b.click("#step-password button[type=submit]");
}

fn token_cookie(b: &mut Browser) -> String {
    let cookies = b.cookies();
    let c = cookies
        .iter()
        .find(|c| c["name"] == "asc_auth_key")
        .unwrap_or_else(|| panic!("no asc_auth_key cookie: {cookies:?}"));
    assert_eq!(c["httpOnly"], true);
    c["value"].as_str().unwrap().to_owned()
}

#[test]
fn password_only_and_a_wrong_password() {
    let s = server(&[]);
    let Some(mut b) = Browser::start() else { return };

    let page = Request::get("/login").send(s.addr());
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        page.header("content-security-policy"),
        Some("default-src 'self'; frame-ancestors 'none'")
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    // A wrong password: the error beside the form, in words.
    assert_eq!(b.goto(&format!("{}/login", s.base_url())), 200);
    b.screenshot("01-sign-in");
    sign_in(&mut b, "not the password");
    assert_eq!(b.text("#error"), "The e-mail or the password is wrong.");
    b.visible("#step-password");
    b.screenshot("02-wrong-password");

    // The right one, with a `return` on someone else's host: not followed.
    b.goto(&format!("{}/login?return=https://evil.example/", s.base_url()));
    assert_eq!(b.attribute("#app", "data-return"), None, "an open redirect");
    sign_in(&mut b, PASSWORD);
    assert_eq!(b.text("#who"), format!("Ada Lovelace ({EMAIL})"));
    assert!(b.url().starts_with(&s.base_url()), "{}", b.url());
    b.screenshot("03-signed-in");
    let token = token_cookie(&mut b);
    let me = s.send(Request::get("/api/2.0/people/@self").header("Authorization", &token));
    assert_eq!(me.status, 200);

    // Sign out, then in again with a `return` on this portal: the browser goes there.
    b.click("#logout");
    b.visible("#step-password");
    assert_eq!(
        s.send(Request::get("/api/2.0/people/@self").header("Authorization", &token)).status,
        401
    );
    b.goto(&format!("{}/login?return=/api/2.0/capabilities", s.base_url()));
    sign_in(&mut b, PASSWORD);
    b.wait_url("/api/2.0/capabilities");
    // 401s from the API (the probe for an existing session, the wrong password) are answers, not
    // faults; a CSP refusal ("Refused to …") or a script error is.
    let errors: Vec<String> = b
        .console_errors()
        .into_iter()
        .filter(|e| !e.starts_with("Failed to load resource"))
        .collect();
    assert_eq!(errors, Vec::<String>::new(), "the page broke its own CSP or threw");
}

#[test]
fn sms_with_phone_entry_and_send_again() {
    let s = server(&["tfa=sms", "sms_resend_cooldown_s=2"]);
    let Some(mut b) = Browser::start() else { return };
    b.goto(&format!("{}/login", s.base_url()));
    sign_in(&mut b, PASSWORD);
    b.visible("#step-phone");
    b.fill("#phone", "+7 (912) 345-67-89");
    b.screenshot("04-sms-phone");
    b.click("#step-phone button[type=submit]");
    assert_eq!(b.text("#phone-noise"), "+7912***6789");
    b.screenshot("05-sms-code");
    assert_eq!(s.wait_for_sms(1).len(), 1);

    // "Send again" opens after the portal's cool-down; the newest code is the one to type.
    b.enabled("#resend", 10);
    b.click("#resend");
    b.visible("#notice");
    let messages = s.wait_for_sms(2);
    let code = messages.last().unwrap().code();
    b.fill("#sms-code", "000000");
    b.click("#step-sms button[type=submit]");
    assert_eq!(b.text("#error"), "That code is wrong or has expired.");
    b.fill("#sms-code", &code);
    b.click("#step-sms button[type=submit]");
    assert_eq!(b.text("#who"), format!("Ada Lovelace ({EMAIL})"));
    token_cookie(&mut b);
}

#[test]
fn totp_enrolment_then_a_backup_code() {
    let s = server(&["tfa=app", "totp_issuer=R7 Portal"]);
    let Some(mut b) = Browser::start() else { return };
    b.goto(&format!("{}/login", s.base_url()));
    sign_in(&mut b, PASSWORD);
    b.visible("#qr svg");
    let key = b.text("#totp-key");
    let uri = b.attribute("#otpauth", "href").unwrap();
    let plain: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(
        uri,
        format!("otpauth://totp/R7%20Portal:ada%40example.com?secret={plain}&issuer=R7%20Portal")
    );
    b.screenshot("06-totp-enrol");
    b.fill("#totp-code", &totp_now(&key));
    b.click("#step-totp button[type=submit]");
    assert_eq!(b.text("#who"), format!("Ada Lovelace ({EMAIL})"));

    // The first read of the backup codes after activation shows them; one signs in instead of the app.
    let token = token_cookie(&mut b);
    let codes =
        s.send(Request::get("/api/2.0/settings/tfaappcodes").header("Authorization", &token));
    let codes = codes.json();
    let backup = codes["response"][0]["code"].as_str().unwrap().to_owned();
    b.click("#logout");
    sign_in(&mut b, PASSWORD);
    b.visible("#step-totp");
    assert_eq!(
        b.attribute("#totp-enrol-intro", "hidden").as_deref(),
        Some(""),
        "no QR once activated"
    );
    b.fill("#totp-code", &format!("{}-{}", &backup[..4], &backup[4..]));
    b.screenshot("07-backup-code");
    b.click("#step-totp button[type=submit]");
    assert_eq!(b.text("#who"), format!("Ada Lovelace ({EMAIL})"));
}

#[test]
fn a_russian_portal_speaks_russian() {
    let s = server(&["language=ru"]);
    let Some(mut b) = Browser::start() else { return };
    b.goto(&format!("{}/login", s.base_url()));
    assert_eq!(b.text("label[for=email]"), "Эл. почта");
    assert_eq!(b.text("label[for=password]"), "Пароль");
    assert_eq!(b.text("h1"), "Вход");
    assert_eq!(b.attribute("html", "lang").as_deref(), Some("ru"));
    sign_in(&mut b, "не тот пароль");
    assert_eq!(b.text("#error"), "Неверная эл. почта или пароль.");
    b.screenshot("08-russian");
}

/// A social button: the browser goes to the provider with `state` and an S256 challenge, comes back
/// to `/login/oauth/callback`, and the page signs in through the API with the code and the PKCE
/// verifier (which the provider checks at the exchange). A callback whose state is not this
/// browser's is refused.
#[test]
fn a_social_button_signs_in_with_state_and_pkce() {
    const SECRET: &str = "portal-client-secret-for-tests-only";
    const REDIRECT: &str = "https://portal.example/login/oauth/callback";
    let ada = OidcAccount::new("ada-sub-1", Some(EMAIL), "Ada", "Lovelace");
    let Some(idp) =
        OidcProvider::start(vec![OidcClient::new("portal", SECRET, REDIRECT)], vec![ada])
    else {
        return;
    };
    let data = DataDir::new();
    data.add_ada(EMAIL, PASSWORD).ok();
    data.run_cli(&[
        "user",
        "link",
        "--email",
        EMAIL,
        "--provider",
        "corp",
        "--subject",
        "ada-sub-1",
    ])
    .ok();
    let config = data.path().join("social.toml");
    let toml = format!(
        "[[social.providers]]\nname = \"corp\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"portal\"\n\
         client_secret = \"{SECRET}\"\nredirect_uri = \"{REDIRECT}\"\nca_file = \"{}\"\n",
        idp.issuer(),
        idp.ca_file().display()
    );
    std::fs::write(&config, toml).unwrap();
    let s = TestServer::start_in(
        data,
        ServerOptions::new().env("AUTH_CONFIG", config.to_str().unwrap()),
    );
    let Some(mut b) = Browser::start() else { return };

    b.goto(&format!("{}/login?return=/api/2.0/capabilities", s.base_url()));
    assert_eq!(b.text("[data-provider=corp]"), "Continue with corp");
    b.screenshot("09-social");
    let url = b.click_capture("[data-provider=corp]", &idp.issuer());
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("response_type"), Some("code"));
    assert_eq!(get("client_id"), Some("portal"));
    assert_eq!(get("redirect_uri"), Some(REDIRECT));
    assert_eq!(get("code_challenge_method"), Some("S256"));
    assert_eq!(get("code_challenge").map(str::len), Some(43));
    let state = get("state").unwrap().to_owned();
    assert!(state.len() >= 22, "{state}");

    // The provider's page is played by the test: the code for Ada, issued against that challenge.
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let code = idp.code_for("ada-sub-1", &pairs);

    // A callback with another state is not this browser's: refused, and the start is spent.
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    b.goto(&format!("{}/login/oauth/callback?code={}&state=forged", s.base_url(), enc(&code)));
    assert_eq!(b.text("#error"), "Signing in with the provider did not work. Try again.");

    // Again, for real this time: back with the code and the state, and on to `return`.
    b.goto(&format!("{}/login?return=/api/2.0/capabilities", s.base_url()));
    let url = b.click_capture("[data-provider=corp]", &idp.issuer());
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("").to_owned();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let state = pairs.iter().find(|(k, _)| *k == "state").unwrap().1.to_owned();
    let code = idp.code_for("ada-sub-1", &pairs);
    b.goto(&format!(
        "{}/login/oauth/callback?code={}&state={}",
        s.base_url(),
        enc(&code),
        enc(&state)
    ));
    b.wait_url("/api/2.0/capabilities");
    let token = token_cookie(&mut b);
    let me = s.send(Request::get("/api/2.0/people/@self").header("Authorization", &token));
    assert_eq!(me.json()["response"]["email"], EMAIL);
}

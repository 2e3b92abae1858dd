//! Nothing secret reaches the file: after a full flow through `AuthService` (SMS login with phone
//! activation, TOTP activation, backup codes shown and used), the bytes of the database, its WAL and
//! its shared-memory file hold no password, token, SMS code, backup code or TOTP secret in any
//! encoding we can think of.

use std::net::IpAddr;
use std::sync::Arc;

use auth_core::crypto::KeyContext;
use auth_core::crypto::ServerKey;
use auth_core::password::{Argon2Hasher, HashParams};
use auth_core::ports::{Clock, NoSocialProviders, OutboxStore};
use auth_core::service::{Deps, NewUser};
use auth_core::testkit::{FakeClock, SeqRng};
use auth_core::{
    AuthService, LoginMethod, LoginOutcome, Password, Portal, RequestContext, SecretString,
    SignedDuration, TfaMode, Timestamp, totp,
};
use auth_sqlite::SqliteStore;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use data_encoding::{BASE32, BASE32_NOPAD, HEXLOWER, HEXUPPER};

/// Every spelling of `secret` a careless store might have written.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        ("raw", secret.to_vec()),
        ("raw lower", secret.to_ascii_lowercase()),
        ("raw upper", secret.to_ascii_uppercase()),
        ("hex", HEXLOWER.encode(secret).into_bytes()),
        ("HEX", HEXUPPER.encode(secret).into_bytes()),
        ("base32", BASE32.encode(secret).into_bytes()),
        ("base32 nopad", BASE32_NOPAD.encode(secret).into_bytes()),
        ("base32 lower", BASE32_NOPAD.encode(secret).to_ascii_lowercase().into_bytes()),
        ("base64", STANDARD.encode(secret).into_bytes()),
        ("base64 nopad", STANDARD_NO_PAD.encode(secret).into_bytes()),
        ("base64url", URL_SAFE.encode(secret).into_bytes()),
        ("base64url nopad", URL_SAFE_NO_PAD.encode(secret).into_bytes()),
    ];
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of every file of the database (main file, WAL, shared memory), concatenated.
fn files(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        all.extend(std::fs::read(&path).unwrap());
        all.extend([0u8; 64]); // no match may straddle two files
    }
    all
}

fn assert_clean(bytes: &[u8], secrets: &[(String, Vec<u8>)], when: &str) {
    for (what, secret) in secrets {
        for (enc, form) in encodings(secret) {
            assert!(
                !contains(bytes, &form),
                "{what} found as {enc} in the database files ({when})"
            );
        }
    }
}

async fn sms_code(store: &SqliteStore, key: &ServerKey) -> String {
    let msg = store.recent_sms(1).await.unwrap().pop().expect("an SMS was enqueued");
    let text = key.open(KeyContext::SmsOutbox, b"", &msg.sealed_text).unwrap();
    let code: String =
        String::from_utf8(text.to_vec()).unwrap().chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6);
    code
}

async fn portal(service: &AuthService, name: &str, host: &str, tfa: TfaMode) -> Arc<Portal> {
    let p = service.admin().add_portal(name, &[host.to_owned()]).await.unwrap();
    let mut p = (*p).clone();
    p.settings.tfa = tfa;
    service.admin().update_portal(&p).await.unwrap();
    service.portal_for_host(host).await.unwrap()
}

fn ctx(portal: Arc<Portal>) -> RequestContext {
    RequestContext {
        portal,
        client_ip: "192.0.2.10".parse::<IpAddr>().unwrap(),
        client_ip_known: true,
        device: None,
        user_agent: Some("secrets-test".into()),
    }
}

fn creds(email: &str, password: &str) -> LoginMethod {
    LoginMethod::password(email, Password::new(password).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("auth.db")).unwrap());
    let clock = Arc::new(FakeClock::new(Timestamp::constant(1_768_031_184, 420_689_700)));
    let rng = Arc::new(SeqRng::new(20_260_110));
    let key = ServerKey::from_bytes([0x5A; 32]);
    let hasher = Argon2Hasher::new(HashParams::insecure_for_tests(), rng.clone()).unwrap();
    let service = AuthService::new(Deps {
        store: store.clone(),
        hasher: Arc::new(hasher),
        social: Arc::new(NoSocialProviders),
        directory: Arc::new(auth_core::ports::NoDirectories),
        clock: clock.clone(),
        rng: rng.clone(),
        key: key.clone(),
    });
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    let mut secret = |what: &str, bytes: &[u8]| secrets.push((what.to_owned(), bytes.to_vec()));

    // --- SMS: set the phone, activate it with the first code, log in again with a second code.
    let sms = ctx(portal(&service, "Sms", "sms.example.com", TfaMode::Sms).await);
    let (sms_email, sms_password) = ("Alice@Example.com", "alice-Pa55word-xyzzy");
    secret("password", sms_password.as_bytes());
    let new_user = |email: &str, password: &str| NewUser {
        email: email.into(),
        password: SecretString::new(password),
        first_name: "Test".into(),
        last_name: "User".into(),
        is_admin: false,
    };
    service.admin().add_user(sms.portal.id, new_user(sms_email, sms_password)).await.unwrap();
    let alice = creds(sms_email, sms_password);
    assert!(matches!(
        service.sign_in().login(&sms, &alice).await.unwrap(),
        LoginOutcome::SmsPending { expires: None, .. }
    ));
    service.sign_in().set_phone(&sms, &alice, Some("+7 (912) 345-67-89")).await.unwrap();
    let code = sms_code(&store, &key).await;
    secret("sms code", code.as_bytes());
    let issued = service.sign_in().verify_code(&sms, &alice, &code).await.unwrap();
    secret("token", issued.token.expose().as_bytes());
    secret("token bytes", &auth_core::token::decode(issued.token.expose()).unwrap());
    clock.advance(SignedDuration::from_mins(2));
    assert!(matches!(
        service.sign_in().login(&sms, &alice).await.unwrap(),
        LoginOutcome::SmsPending { expires: Some(_), .. }
    ));
    let second = sms_code(&store, &key).await;
    assert_ne!(second, code);
    secret("second sms code (outstanding)", second.as_bytes());
    let issued = service.sign_in().verify_code(&sms, &alice, &second).await.unwrap();
    secret("token", issued.token.expose().as_bytes());
    clock.advance(SignedDuration::from_mins(2));
    service.sign_in().login(&sms, &alice).await.unwrap();
    let third = sms_code(&store, &key).await;
    secret("third sms code (left outstanding)", third.as_bytes());

    // --- TOTP: activate with a code, read the backup codes once, log in with one of them.
    let app = ctx(portal(&service, "App", "app.example.com", TfaMode::App).await);
    let (app_email, app_password) = ("bob@example.com", "bob-S3cret-plugh-42");
    secret("password", app_password.as_bytes());
    service.admin().add_user(app.portal.id, new_user(app_email, app_password)).await.unwrap();
    let bob = creds(app_email, app_password);
    let LoginOutcome::TotpPending { tfa_key: Some(tfa_key) } =
        service.sign_in().login(&app, &bob).await.unwrap()
    else {
        panic!("a TOTP secret is issued on the first login")
    };
    let totp_secret = BASE32_NOPAD.decode(tfa_key.expose().as_bytes()).unwrap();
    secret("totp secret", &totp_secret);
    secret("totp secret text", tfa_key.expose().as_bytes());
    let totp_code = totp::code_at_step(&totp_secret, totp::step_at(clock.now()));
    secret("totp code", totp_code.as_bytes());
    let issued = service.sign_in().verify_code(&app, &bob, &totp_code).await.unwrap();
    secret("token", issued.token.expose().as_bytes());
    let session = service.sessions().authenticate(&app, issued.token.expose()).await.unwrap();
    let backup = service.tfa_settings().backup_codes(&session).await.unwrap();
    assert_eq!(backup.len(), 5);
    for b in &backup {
        assert_ne!(b.code.expose(), "********", "the first listing shows the codes");
        secret("backup code", b.code.expose().as_bytes());
    }
    let first_backup = backup.first().unwrap().code.expose().to_owned();
    let issued = service.sign_in().verify_code(&app, &bob, &first_backup).await.unwrap();
    secret("token", issued.token.expose().as_bytes());
    let session = service.sessions().authenticate(&app, issued.token.expose()).await.unwrap();
    let listed = service.tfa_settings().backup_codes(&session).await.unwrap();
    assert!(listed.first().unwrap().used, "the used backup code is marked");
    for b in service.tfa_settings().new_backup_codes(&app, &session).await.unwrap() {
        secret("new backup code", b.code.expose().as_bytes());
    }

    // --- An upstream realm (issue 14): its machine key and salt are sealed, never stored as they are.
    let machine_key = "upstream machine key 7f3a";
    let realm = auth_core::upstream::UpstreamRealm::new(
        machine_key.into(),
        Some("salt-91c2".into()),
        1,
        256,
    );
    service.import().register_upstream_realm(&realm, false).await.unwrap();
    secret("upstream machine key", machine_key.as_bytes());
    secret("upstream password salt", b"salt-91c2");

    // --- Scan: before and after moving the WAL into the main file.
    let before = files(dir.path());
    assert!(contains(&before, b"alice@example.com"), "the scan sees the database's contents");
    assert_clean(&before, &secrets, "WAL not checkpointed");
    store.checkpoint().await.unwrap();
    let after = files(dir.path());
    assert!(contains(&after, b"alice@example.com"), "the scan sees the database's contents");
    assert_clean(&after, &secrets, "after checkpoint");
}

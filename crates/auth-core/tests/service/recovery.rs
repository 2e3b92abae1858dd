//! Issue 20 in the core: the forgotten-password flow (no enumeration, single-use keys that expire
//! in an hour, the limits), the e-mail channel's delivery and retries, and the security notices,
//! over the in-memory fakes and the fake clock.

use super::*;
use auth_core::mail::Notice;
use auth_core::outbox::{DeliveryReport, RetryPolicy};
use auth_core::ports::{OutboxStore as _, TokenStore as _};
use auth_core::service::{MailSettings, RecoveryError};
use auth_core::testkit::RecordingMailer;

fn mailing() -> CoreLimits {
    CoreLimits {
        mail: Some(MailSettings {
            public_url: Some("https://docs.example.com/".into()),
            ..MailSettings::default()
        }),
        ..CoreLimits::default()
    }
}

async fn fx() -> Fx {
    Fx::with(build_service_with(mailing()), TfaMode::None).await
}

/// One round of the e-mail worker.
async fn deliver(fx: &Fx, mailer: &RecordingMailer) -> DeliveryReport {
    fx.w.service.recovery().deliver_due(mailer, &RetryPolicy::default()).await.unwrap()
}

async fn token(fx: &Fx, password: &str) -> Result<String, SignInError> {
    match fx.w.service.sign_in().login(&fx.ctx(), &fx.creds(password)).await? {
        LoginOutcome::Token(t) => Ok(t.token.expose().to_owned()),
        other => panic!("expected a token, got {other:?}"),
    }
}

async fn request(fx: &Fx, email: &str) -> Result<(), RecoveryError> {
    fx.w.service.recovery().request_reset(&fx.ctx(), email).await
}

async fn reset(fx: &Fx, key: &str, password: &str) -> Result<(), RecoveryError> {
    fx.w.service.recovery().reset_password(&fx.ctx(), &key.into(), &password.into()).await
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_token() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    let old_token = token(&fx, PASSWORD).await.unwrap();
    deliver(&fx, &mailer).await; // the new-device notice of that first login
    request(&fx, " Ada@Example.COM ").await.unwrap();
    let report = deliver(&fx, &mailer).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let mail = mailer.sent().pop().unwrap();
    assert_eq!(mail.to, "ada@example.com");
    let key = mailer.last_reset_key_to("ada@example.com").unwrap();
    assert_eq!(key.len(), 43, "256 bits of key: {key}");
    assert!(
        mail.text.expose().contains(&format!("https://docs.example.com/login/reset?key={key}"))
    );
    assert!(mail.html.expose().contains(&key));
    // The key is stored only as a keyed hash: nothing in the store holds its text.
    let stored = fx.w.store.recent_sms(100).await.unwrap();
    assert!(stored.iter().all(|m| !String::from_utf8_lossy(&m.sealed_text).contains(&key)));

    // A common password is refused without using the key up.
    assert!(matches!(reset(&fx, &key, "password123").await, Err(RecoveryError::WeakPassword(_))));
    reset(&fx, &key, "a brand new passphrase").await.unwrap();
    assert!(matches!(
        reset(&fx, &key, "another new passphrase").await,
        Err(RecoveryError::InvalidKey)
    ));
    assert!(is_invalid(&token(&fx, PASSWORD).await), "the old password fails");
    let r = fx.w.service.sessions().authenticate(&fx.ctx(), &old_token).await;
    assert!(r.is_err(), "every old token ended: {r:?}");
    token(&fx, "a brand new passphrase").await.unwrap();
    assert!(fx.actions().await.contains(&AuditAction::PasswordReset));
    // And the user hears of it, without any key in the notice.
    deliver(&fx, &mailer).await;
    let notice = mailer
        .sent()
        .into_iter()
        .find(|m| m.subject.contains("password") && m.subject.contains("changed"))
        .unwrap();
    assert!(!notice.text.expose().contains("key=") && !notice.text.expose().contains("http"));
}

#[tokio::test]
async fn a_key_dies_after_an_hour_and_with_a_newer_password() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    request(&fx, "ada@example.com").await.unwrap();
    request(&fx, "ada@example.com").await.unwrap();
    deliver(&fx, &mailer).await;
    let keys: Vec<String> = mailer
        .sent()
        .iter()
        .filter_map(|m| {
            let t = m.text.expose();
            t.find("key=").map(|i| t[i + 4..i + 47].to_owned())
        })
        .collect();
    assert_eq!(keys.len(), 2);
    fx.advance(59 * 60);
    reset(&fx, &keys[0], "the first new passphrase").await.unwrap();
    // The second mail's key outlived a change of the password: dead, though within the hour.
    assert!(matches!(
        reset(&fx, &keys[1], "a second new passphrase").await,
        Err(RecoveryError::InvalidKey)
    ));

    request(&fx, "ada@example.com").await.unwrap();
    deliver(&fx, &mailer).await;
    let late = mailer.last_reset_key_to("ada@example.com").unwrap();
    fx.advance(3601);
    assert!(matches!(
        reset(&fx, &late, "too late a passphrase").await,
        Err(RecoveryError::InvalidKey)
    ));
    token(&fx, "the first new passphrase").await.unwrap();
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    assert!(request(&fx, "nobody@example.com").await.is_ok());
    let report = deliver(&fx, &mailer).await;
    assert_eq!(report, DeliveryReport { dropped: 1, ..DeliveryReport::default() });
    assert!(mailer.sent().is_empty());
    assert!(
        !fx.actions().await.contains(&AuditAction::MailUndeliverable),
        "not an operator's alarm"
    );
    assert!(matches!(request(&fx, "no at sign").await, Err(RecoveryError::InvalidEmail)));
    assert!(matches!(
        reset(&fx, "not-a-key", "a fine new passphrase").await,
        Err(RecoveryError::InvalidKey)
    ));
}

#[tokio::test]
async fn the_limits_hold_per_address_and_per_client() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    for _ in 0..5 {
        request(&fx, "ada@example.com").await.unwrap();
    }
    deliver(&fx, &mailer).await;
    assert_eq!(mailer.sent().len(), 3, "three mails per address per hour, answered alike after");
    for i in 0..15 {
        request(&fx, &format!("other{i}@example.com")).await.unwrap();
    }
    let r = request(&fx, "one-more@example.com").await;
    assert!(matches!(r, Err(RecoveryError::Throttled { .. })), "20 per client address: {r:?}");
    let other = fx.ctx_from("198.51.100.1");
    let r = fx.w.service.recovery().request_reset(&other, "x@example.com").await;
    assert!(r.is_ok(), "another client is not held up");
    fx.advance(3601);
    request(&fx, "ada@example.com").await.unwrap();
    deliver(&fx, &mailer).await;
    assert_eq!(mailer.sent().len(), 4, "the hour is over");
}

#[tokio::test]
async fn without_a_mailer_recovery_is_not_available_and_nothing_is_queued() {
    let fx = Fx::new(TfaMode::None).await;
    assert!(matches!(request(&fx, "ada@example.com").await, Err(RecoveryError::NotAvailable)));
    token(&fx, PASSWORD).await.unwrap();
    assert!(fx.w.store.recent_sms(10).await.unwrap().is_empty(), "no notice either");
}

#[tokio::test]
async fn a_mail_server_outage_delays_a_mail_and_it_goes_out_once() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    request(&fx, "ada@example.com").await.unwrap();
    mailer.set_failing(true);
    let report = deliver(&fx, &mailer).await;
    assert_eq!(report.retrying, 1, "{report:?}");
    fx.advance(2);
    mailer.set_failing(false);
    assert_eq!(deliver(&fx, &mailer).await.sent, 1);
    fx.advance(600);
    assert_eq!(deliver(&fx, &mailer).await, DeliveryReport::default(), "sent once");
    assert_eq!(mailer.sent().len(), 1);
}

#[tokio::test]
async fn notices_go_out_for_each_event_unless_switched_off() {
    let mut fx = fx().await;
    let mailer = RecordingMailer::new();
    let subjects =
        |m: &RecordingMailer| m.sent().into_iter().map(|m| m.subject).collect::<Vec<_>>();
    // A new device: the first login from this address, without a device cookie.
    let t = match fx.w.service.sign_in().login(&fx.ctx(), &fx.good()).await.unwrap() {
        LoginOutcome::Token(t) => t,
        other => panic!("{other:?}"),
    };
    deliver(&fx, &mailer).await;
    assert_eq!(subjects(&mailer).len(), 1);
    assert!(subjects(&mailer)[0].starts_with("New sign-in"), "{:?}", subjects(&mailer));
    // The same client again (its cookie): no notice.
    let mut ctx = fx.ctx_from("198.51.100.9");
    ctx.device = Some(t.device.0.expose().to_owned());
    fx.w.service.sign_in().login(&ctx, &fx.good()).await.unwrap();
    deliver(&fx, &mailer).await;
    assert_eq!(subjects(&mailer).len(), 1, "a known device is not new: {:?}", subjects(&mailer));

    // An operator's changes.
    let admin = fx.w.service.admin().clone();
    let user = fx.user().await;
    admin.set_password(user.id, &"an operator's new pass".into()).await.unwrap();
    admin.reset_phone(&user).await.unwrap();
    admin.reset_tfa(&user).await.unwrap();
    deliver(&fx, &mailer).await;
    let got = subjects(&mailer);
    for want in ["password", "phone number", "authenticator app"] {
        assert!(got.iter().any(|s| s.contains(want)), "{want}: {got:?}");
    }
    for m in mailer.sent() {
        let text = m.text.expose();
        assert!(!text.contains("http") && !text.contains(t.token.expose()), "{text}");
    }

    // Switched off on the portal: nothing more.
    let before = mailer.sent().len();
    fx.settings(|s| s.notices.clear()).await;
    admin.set_password(user.id, &"yet another new pass".into()).await.unwrap();
    deliver(&fx, &mailer).await;
    assert_eq!(mailer.sent().len(), before);
}

#[tokio::test]
async fn an_engaged_account_limit_is_mailed_once_an_hour() {
    let mut fx = fx().await;
    fx.settings(|s| s.notices = vec![Notice::AccountLimit]).await;
    let mailer = RecordingMailer::new();
    // Twenty wrong passwords from twenty addresses engage the per-account limit.
    for i in 0..20 {
        let ctx = fx.ctx_from(&format!("198.51.100.{i}"));
        let _ = fx.w.service.sign_in().login(&ctx, &fx.creds("wrong password")).await;
    }
    for i in 20..30 {
        let ctx = fx.ctx_from(&format!("198.51.100.{i}"));
        let r = fx.w.service.sign_in().login(&ctx, &fx.creds("wrong password")).await;
        assert!(matches!(r, Err(SignInError::LoginThrottled { .. })), "{r:?}");
    }
    deliver(&fx, &mailer).await;
    let sent = mailer.sent();
    assert_eq!(sent.len(), 1, "{:?}", sent.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert!(sent[0].subject.contains("failed sign-ins"));
}

#[tokio::test]
async fn tokens_are_all_gone_after_a_reset() {
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    for _ in 0..3 {
        token(&fx, PASSWORD).await.unwrap();
    }
    let user = fx.user().await;
    request(&fx, "ada@example.com").await.unwrap();
    deliver(&fx, &mailer).await;
    let key = mailer.last_reset_key_to("ada@example.com").unwrap();
    reset(&fx, &key, "a brand new passphrase").await.unwrap();
    assert_eq!(fx.w.store.revoke_user_tokens(user.id).await.unwrap(), 0, "none left to revoke");
}

#[tokio::test]
async fn a_directory_user_is_told_to_use_the_directory_and_gets_no_key() {
    use auth_core::model::Credential;
    use auth_core::ports::UserStore as _;
    let fx = fx().await;
    let mailer = RecordingMailer::new();
    let mut user = fx.user().await;
    user.credential = Credential::Directory("corp".into());
    assert!(fx.w.store.update_user(&user).await.unwrap());
    request(&fx, EMAIL_OF_ADA).await.unwrap();
    assert_eq!(deliver(&fx, &mailer).await.sent, 1);
    let mail = mailer.sent().pop().unwrap();
    assert!(mail.subject.starts_with("Your password on"), "{}", mail.subject);
    assert!(mail.text.expose().contains("directory"), "{}", mail.text.expose());
    assert!(!mail.text.expose().contains("key=") && !mail.html.expose().contains("key="));
    assert_eq!(mailer.last_reset_key_to(EMAIL_OF_ADA), None, "no key was made");
}

const EMAIL_OF_ADA: &str = "ada@example.com";

#[tokio::test]
async fn notices_and_reset_mails_are_in_the_portals_language() {
    use auth_core::Language;
    let mut fx = fx().await;
    fx.settings(|s| s.language = Language::Ru).await;
    let mailer = RecordingMailer::new();
    let user = fx.user().await;
    fx.w.service.admin().set_password(user.id, &"a new operator password".into()).await.unwrap();
    request(&fx, EMAIL_OF_ADA).await.unwrap();
    deliver(&fx, &mailer).await;
    let subjects: Vec<String> = mailer.sent().into_iter().map(|m| m.subject).collect();
    assert!(subjects.iter().any(|s| s.starts_with("Пароль на")), "{subjects:?}");
    assert!(subjects.iter().any(|s| s.starts_with("Восстановление пароля")), "{subjects:?}");
}

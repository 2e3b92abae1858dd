//! Issue 17, metrics in the core: what the sign-in paths tell the observer port — each login step by
//! factor and result, and each throttle refusal by rule — over the in-memory fakes.

use auth_core::observe::{Factor, LoginResult, ThrottleRule};

use super::*;

/// Asserts the login steps and throttle refusals reported since the last check, then forgets them.
fn check(fx: &Fx, logins: &[(Factor, LoginResult)], throttles: &[ThrottleRule]) {
    assert_eq!(fx.w.observer.logins(), logins, "login steps");
    assert_eq!(fx.w.observer.throttles(), throttles, "throttle refusals");
    fx.w.observer.clear();
}

#[tokio::test]
async fn issue_17_password_logins_report_their_result_and_throttle() {
    let mut fx = Fx::new(TfaMode::None).await;
    fx.settings(|s| s.login_throttle = Rule::per(2, SignedDuration::from_secs(60))).await;
    let s = &fx.w.service;
    s.sign_in().login(&fx.ctx(), &fx.good()).await.unwrap();
    check(&fx, &[(Factor::Password, LoginResult::Ok)], &[]);

    assert!(is_invalid(&s.sign_in().login(&fx.ctx(), &fx.creds("wrong")).await));
    assert!(is_invalid(&s.sign_in().login(&fx.ctx(), &fx.creds("wrong")).await));
    check(&fx, &[(Factor::Password, LoginResult::Invalid); 2], &[]);

    let r = s.sign_in().login(&fx.ctx(), &fx.creds("wrong")).await;
    assert!(matches!(r, Err(SignInError::LoginThrottled { .. })), "{r:?}");
    check(&fx, &[(Factor::Password, LoginResult::Throttled)], &[ThrottleRule::Login]);

    // An unknown user is a password login refused like any other: the observer cannot tell either.
    let r = s.sign_in().login(&fx.ctx_from("198.51.100.1"), &pw("nobody@example.com", "x")).await;
    assert!(is_invalid(&r));
    check(&fx, &[(Factor::Password, LoginResult::Invalid)], &[]);
}

#[tokio::test]
async fn issue_17_social_logins_report_the_social_factor() {
    let fx = Fx::new(TfaMode::None).await;
    let c = LoginMethod::Social {
        provider: "google".into(),
        proof: SocialProof { access_token: Some("tok".into()), ..SocialProof::default() },
    };
    assert!(is_invalid(&fx.w.service.sign_in().login(&fx.ctx(), &c).await));
    check(&fx, &[(Factor::Social, LoginResult::Invalid)], &[]);
}

#[tokio::test]
async fn issue_17_app_logins_report_tfa_required_then_totp_or_backup() {
    let fx = Fx::new(TfaMode::App).await;
    let s = &fx.w.service;
    let key = fx.activate_app().await;
    check(
        &fx,
        &[(Factor::Password, LoginResult::TfaRequired), (Factor::Totp, LoginResult::Ok)],
        &[],
    );

    fx.advance(30);
    // Six digits are a TOTP code (the fixed clock makes "000000" the wrong one).
    assert_ne!(fx.totp_now(&key, 0), "000000");
    assert!(is_invalid(&s.sign_in().verify_code(&fx.ctx(), &fx.good(), "000000").await));
    check(&fx, &[(Factor::Totp, LoginResult::Invalid)], &[]);

    // A code in a backup code's form that matches nothing counts as a failed backup code.
    assert!(is_invalid(&s.sign_in().verify_code(&fx.ctx(), &fx.good(), "ABCD-EFGH").await));
    check(&fx, &[(Factor::Backup, LoginResult::Invalid)], &[]);

    let t = s.sign_in().verify_code(&fx.ctx(), &fx.good(), &fx.totp_now(&key, 0)).await.unwrap();
    let session = s.sessions().authenticate(&fx.ctx(), t.token.expose()).await.unwrap();
    let shown = s.tfa_settings().backup_codes(&session).await.unwrap();
    fx.w.observer.clear();
    s.sign_in().verify_code(&fx.ctx(), &fx.good(), shown[0].code.expose()).await.unwrap();
    check(&fx, &[(Factor::Backup, LoginResult::Ok)], &[]);

    // Wrong codes run into the per-minute rule: the refusal names it.
    for _ in 0..5 {
        let _ = s.sign_in().verify_code(&fx.ctx(), &fx.good(), "ZZZZ-ZZZZ").await;
    }
    fx.w.observer.clear();
    let r = s.sign_in().verify_code(&fx.ctx(), &fx.good(), "ZZZZ-ZZZZ").await;
    assert!(matches!(r, Err(SignInError::CodeAttemptsExceeded { .. })), "{r:?}");
    check(&fx, &[(Factor::Backup, LoginResult::Throttled)], &[ThrottleRule::TfaWrong]);
}

#[tokio::test]
async fn issue_17_sms_logins_and_send_limits_are_reported() {
    let fx = Fx::new(TfaMode::Sms).await;
    let s = &fx.w.service;
    fx.activate_phone().await;
    // setphone is not a login; its code's step 2 is.
    check(&fx, &[(Factor::Sms, LoginResult::Ok)], &[]);

    assert!(matches!(
        s.sign_in().login(&fx.ctx(), &fx.good()).await.unwrap(),
        LoginOutcome::SmsPending { .. }
    ));
    check(&fx, &[(Factor::Password, LoginResult::TfaRequired)], &[]);

    // The step-1 code started the resend cool-down, so an immediate resend is refused by it.
    let r = s.sign_in().send_sms(&fx.ctx(), &fx.good()).await;
    assert!(matches!(r, Err(SignInError::SmsSendLimited { .. })), "{r:?}");
    check(&fx, &[], &[ThrottleRule::SmsResendCooldown]);

    assert!(is_invalid(&s.sign_in().verify_code(&fx.ctx(), &fx.good(), "000000").await));
    check(&fx, &[(Factor::Sms, LoginResult::Invalid)], &[]);
}

//! Issues 14 and 19 in the core: imported upstream hashes and their upgrade at login, the import's
//! merge rules, and directory logins, provisioning and sync, over the in-memory fakes.

use super::*;
use auth_core::model::Credential;
use auth_core::ports::{DirectoryEntry, UserStore as _};
use auth_core::service::{
    ImportOutcome, ImportedBackupCode, ImportedLink, ImportedTotp, ImportedUser,
};
use auth_core::testkit::{FakeDirectory, build_service_ports};
use auth_core::upstream::{UpstreamHash, UpstreamRealm};
use auth_core::{AdminError, SignInError};

/// The reference installation (upstream-behaviour.md §11): the public machine key, derived salt.
const MACHINE_KEY: &str = "Vskoproizvolny Salt par Chivreski";
const IVAN: &str = "11111111-2222-3333-4444-555555555555";
const IVAN_HASH: &str =
    "7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ==";

fn ivan(portal: auth_core::PortalId, realm: &str) -> User {
    let id: auth_core::UserId = IVAN.parse().unwrap();
    User {
        id,
        portal,
        email: "Ivan@Acme.test".into(),
        first_name: "Ivan".into(),
        last_name: "Petrov".into(),
        is_admin: true,
        disabled: false,
        credential: Credential::Upstream(UpstreamHash::from_pwdhash(realm, id, IVAN_HASH).unwrap()),
        phone: Some("79123456789".into()),
        phone_activated: true,
        created_at: auth_core::Timestamp::UNIX_EPOCH,
        revision: 0,
    }
}

fn imported(user: User) -> ImportedUser {
    ImportedUser { user, totp: None, backup_codes: Vec::new(), links: Vec::new() }
}

fn ivan_login(password: &str) -> LoginMethod {
    pw("ivan@acme.test", password)
}

async fn imported_fx() -> (Fx, String) {
    let fx = Fx::new(TfaMode::None).await;
    let import = fx.w.service.import();
    let realm = UpstreamRealm::new(MACHINE_KEY.into(), None, 0, 0);
    let id = import.register_upstream_realm(&realm, false).await.unwrap();
    assert_eq!(import.register_upstream_realm(&realm, false).await.unwrap(), id, "stable id");
    let outcome = import.upsert_user(imported(ivan(fx.portal.id, &id)), false).await.unwrap();
    assert_eq!(outcome, ImportOutcome::Created);
    (fx, id)
}

#[tokio::test]
async fn an_imported_upstream_hash_signs_in_once_then_is_argon2id() {
    let (fx, _) = imported_fx().await;
    let si = fx.w.service.sign_in();
    let wrong = si.login(&fx.ctx(), &ivan_login("password124")).await;
    assert!(matches!(wrong, Err(SignInError::InvalidCredentials)), "{wrong:?}");
    assert!(matches!(
        fx.w.store.user_by_email(fx.portal.id, "ivan@acme.test").await.unwrap().unwrap().credential,
        Credential::Upstream(_)
    ));
    // By e-mail in any case, and by the upstream user id, as upstream allowed.
    let ok = si.login(&fx.ctx(), &ivan_login("password123")).await.unwrap();
    assert!(matches!(ok, LoginOutcome::Token(_)));
    let after = fx.w.store.user_by_email(fx.portal.id, "ivan@acme.test").await.unwrap().unwrap();
    let Credential::Password(hash) = &after.credential else {
        panic!("the upstream hash must be replaced: {:?}", after.credential)
    };
    assert!(hash.as_str().starts_with("$argon2id$"));
    assert_eq!(after.revision, 0, "an upgrade is not a password change");
    assert!(fx.actions().await.contains(&AuditAction::PasswordRehashed));
    let by_id = si.login(&fx.ctx(), &pw(IVAN, "password123")).await.unwrap();
    assert!(
        matches!(by_id, LoginOutcome::Token(_)),
        "the argon2id hash verifies the same password"
    );
    assert!(si.login(&fx.ctx(), &ivan_login("password124")).await.is_err());
}

#[tokio::test]
async fn an_upstream_hash_without_its_realm_refuses_like_a_wrong_password() {
    let fx = Fx::new(TfaMode::None).await;
    // The realm was never registered (say, the import ran against another database).
    fx.w.service
        .import()
        .upsert_user(imported(ivan(fx.portal.id, "feedface")), false)
        .await
        .unwrap();
    let r = fx.w.service.sign_in().login(&fx.ctx(), &ivan_login("password123")).await;
    assert!(matches!(r, Err(SignInError::InvalidCredentials)), "{r:?}");
}

#[tokio::test]
async fn outdated_argon2_parameters_are_rehashed_at_login() {
    let fx = Fx::new(TfaMode::None).await;
    let old = auth_core::password::Argon2Hasher::new(
        auth_core::password::HashParams { m_cost_kib: 16, t_cost: 1, p_cost: 1 },
        fx.w.rng.clone(),
    )
    .unwrap();
    let h = auth_core::password::PasswordHasher::hash(&old, &PASSWORD.into()).await.unwrap();
    assert!(fx.w.store.set_password_hash(fx.user.id, &h).await.unwrap());
    let before = fx.user().await;
    assert!(matches!(
        fx.w.service.sign_in().login(&fx.ctx(), &fx.good()).await.unwrap(),
        LoginOutcome::Token(_)
    ));
    let after = fx.user().await;
    assert_ne!(after.credential, before.credential);
    let Credential::Password(new) = after.credential else { panic!() };
    assert!(new.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "the configured parameters");
}

#[tokio::test]
async fn a_second_import_changes_nothing_and_never_undoes_what_happened_here() {
    let (fx, realm) = imported_fx().await;
    let import = fx.w.service.import();
    let secret = b"UzM0eVhGbE".to_vec();
    let full = |user: User| ImportedUser {
        user,
        totp: Some(ImportedTotp { secret: secret.clone(), activated: true }),
        backup_codes: vec![
            ImportedBackupCode { code: "aB3-_z".into(), used: false },
            ImportedBackupCode { code: "Qx7_k0".into(), used: true },
        ],
        links: vec![ImportedLink {
            provider: "google".into(),
            subject: "123456789012345678901".into(),
            linked_at: auth_core::Timestamp::UNIX_EPOCH,
        }],
    };
    let base = ivan(fx.portal.id, &realm);
    assert_eq!(
        import.upsert_user(full(base.clone()), false).await.unwrap(),
        ImportOutcome::Updated
    );
    assert_eq!(
        import.upsert_user(full(base.clone()), true).await.unwrap(),
        ImportOutcome::Unchanged
    );
    assert_eq!(
        import.upsert_user(full(base.clone()), false).await.unwrap(),
        ImportOutcome::Unchanged
    );
    // The upstream secret is the user's secret: a code of it passes step 2 (TOTP portal).
    let mut p = (*fx.portal).clone();
    p.settings.tfa = TfaMode::App;
    fx.w.service.admin().update_portal(&p).await.unwrap();
    let portal = fx.w.service.portal_for_host("x").await.unwrap();
    let ctx = RequestContext { portal, ..fx.ctx() };
    let si = fx.w.service.sign_in();
    let step1 = si.login(&ctx, &ivan_login("password123")).await.unwrap();
    assert!(matches!(step1, LoginOutcome::TotpPending { tfa_key: None }), "activated: {step1:?}");
    let code = totp::code_at_step(&secret, totp::step_at(fx.w.service.now()));
    si.verify_code(&ctx, &ivan_login("password123"), &code).await.unwrap();
    // The used upstream code stays used; the unused one works once, typed in any case.
    assert!(si.verify_code(&ctx, &ivan_login("password123"), "qx7_k0").await.is_err());
    fx.advance(120);
    si.verify_code(&ctx, &ivan_login("password123"), "AB3-_Z").await.unwrap();
    fx.advance(120);
    assert!(si.verify_code(&ctx, &ivan_login("password123"), "aB3-_z").await.is_err());
    // Re-importing now keeps the argon2id hash made at login and the code used here.
    assert_eq!(
        import.upsert_user(full(base.clone()), false).await.unwrap(),
        ImportOutcome::Unchanged
    );
    let u = fx.w.store.user_by_id(base.id).await.unwrap().unwrap();
    assert!(u.credential.is_local_password());
    fx.advance(120);
    assert!(si.verify_code(&ctx, &ivan_login("password123"), "aB3-_z").await.is_err());
    // A change upstream is carried over; disabling follows the source.
    let mut changed = base.clone();
    changed.last_name = "Ivanov".into();
    changed.disabled = true;
    assert_eq!(import.upsert_user(full(changed), false).await.unwrap(), ImportOutcome::Updated);
    let u = fx.w.store.user_by_id(base.id).await.unwrap().unwrap();
    assert_eq!((u.last_name.as_str(), u.disabled), ("Ivanov", true));
}

#[tokio::test]
async fn an_import_refuses_an_e_mail_taken_by_another_user() {
    let fx = Fx::new(TfaMode::None).await;
    let mut u = ivan(fx.portal.id, "r1");
    u.email = "ADA@example.com".into();
    let r = fx.w.service.import().upsert_user(imported(u), false).await;
    assert!(matches!(r, Err(auth_core::service::ImportError::Conflict(_))), "{r:?}");
}

// ----- directories ---------------------------------------------------------------------------------

fn entry(email: &str, mobile: Option<&str>) -> DirectoryEntry {
    DirectoryEntry {
        directory: "corp".into(),
        dn: format!("uid={},ou=people,dc=corp", email.split('@').next().unwrap()),
        email: email.into(),
        first_name: "Dana".into(),
        last_name: "Dir".into(),
        mobile: mobile.map(str::to_owned),
        disabled: false,
    }
}

async fn directory_fx(tfa: TfaMode) -> (Fx, Arc<FakeDirectory>) {
    let dir = Arc::new(FakeDirectory::new("corp"));
    dir.add("dana", "dir-secret-1", true, entry("dana@corp.test", Some("+7 912 000-11-22")));
    dir.add("outsider", "dir-secret-2", false, entry("out@corp.test", None));
    let w = build_service_ports(
        CoreLimits::default(),
        Arc::new(auth_core::ports::NoSocialProviders),
        dir.clone(),
    );
    (Fx::with(w, tfa).await, dir)
}

#[tokio::test]
async fn a_directory_login_creates_the_user_and_keeps_no_password() {
    let (fx, dir) = directory_fx(TfaMode::None).await;
    let si = fx.w.service.sign_in();
    let r = si.login(&fx.ctx(), &pw("dana", "dir-secret-1")).await.unwrap();
    assert!(matches!(r, LoginOutcome::Token(_)));
    let u = fx.w.store.user_by_email(fx.portal.id, "dana@corp.test").await.unwrap().unwrap();
    assert_eq!(u.credential, Credential::Directory("corp".into()));
    assert_eq!((u.phone.as_deref(), u.phone_activated), (Some("79120001122"), false));
    assert!(fx.actions().await.contains(&AuditAction::DirectoryUserCreated));
    // By e-mail too; the second login changes nothing.
    si.login(&fx.ctx(), &pw("Dana@Corp.test", "dir-secret-1")).await.unwrap();
    assert_eq!(fx.w.store.user_by_id(u.id).await.unwrap().unwrap(), u);
    // The operator cannot give a directory user a local password.
    let r = fx.w.service.admin().set_password(u.id, &"local-pass-1".into()).await;
    assert!(matches!(r, Err(AdminError::DirectoryUser)), "{r:?}");
    // A local account keeps its local password on a directory portal.
    si.login(&fx.ctx(), &fx.good()).await.unwrap();
    assert_eq!(dir.binds(), 2, "local accounts are not bound against the directory");
}

#[tokio::test]
async fn directory_refusals_are_invalid_credentials_and_count() {
    let (fx, dir) = directory_fx(TfaMode::None).await;
    let si = fx.w.service.sign_in();
    for (login, password) in
        [("dana", "wrong"), ("outsider", "dir-secret-2"), ("nobody", "x"), ("*)(uid=*", "x")]
    {
        let r = si.login(&fx.ctx(), &pw(login, password)).await;
        assert!(matches!(r, Err(SignInError::InvalidCredentials)), "{login}: {r:?}");
    }
    assert!(fx.w.store.user_by_email(fx.portal.id, "out@corp.test").await.unwrap().is_none());
    // Five failures from one address block the next attempt for "dana", even with her password.
    for _ in 0..4 {
        let _ = si.login(&fx.ctx(), &pw("dana", "wrong")).await;
    }
    let r = si.login(&fx.ctx(), &pw("dana", "dir-secret-1")).await;
    assert!(matches!(r, Err(SignInError::LoginThrottled { .. })), "{r:?}");
    // An unreachable directory says nothing about the client: 503, not counted.
    dir.set_down(true);
    let r = si.login(&fx.ctx_from("198.51.100.9"), &pw("dana", "dir-secret-1")).await;
    assert!(matches!(r, Err(SignInError::ProviderUnavailable(_))), "{r:?}");
}

#[tokio::test]
async fn a_changed_directory_mobile_is_stored_unactivated() {
    let (fx, dir) = directory_fx(TfaMode::Sms).await;
    let si = fx.w.service.sign_in();
    let r = si.login(&fx.ctx(), &pw("dana", "dir-secret-1")).await.unwrap();
    assert!(matches!(r, LoginOutcome::SmsPending { phone_noise: None, .. }), "{r:?}");
    si.set_phone(&fx.ctx(), &pw("dana", "dir-secret-1"), Some("+7 912 000-11-22")).await.unwrap();
    let code = fx.w.last_code_to("79120001122").await.unwrap();
    si.verify_code(&fx.ctx(), &pw("dana", "dir-secret-1"), &code).await.unwrap();
    let u = fx.w.store.user_by_email(fx.portal.id, "dana@corp.test").await.unwrap().unwrap();
    assert!(u.phone_activated);
    dir.remove("dana");
    dir.add("dana", "dir-secret-1", true, entry("dana@corp.test", Some("+7 912 999-88-77")));
    let r = si.login(&fx.ctx(), &pw("dana", "dir-secret-1")).await.unwrap();
    assert!(matches!(r, LoginOutcome::SmsPending { phone_noise: None, .. }), "{r:?}");
    let u = fx.w.store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((u.phone.as_deref(), u.phone_activated), (Some("79129998877"), false));
}

#[tokio::test]
async fn sync_creates_updates_and_disables_directory_users() {
    let (fx, dir) = directory_fx(TfaMode::None).await;
    dir.add("eve", "p", true, entry("eve@corp.test", None));
    let admin = fx.w.service.admin();
    let report = admin.sync_directory(&fx.portal).await.unwrap();
    assert_eq!((report.entries, report.created, report.disabled), (2, 2, 0), "{report:?}");
    let again = admin.sync_directory(&fx.portal).await.unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2), "{again:?}");
    dir.remove("eve");
    let report = admin.sync_directory(&fx.portal).await.unwrap();
    assert_eq!(report.disabled, 1, "{report:?}");
    let eve = fx.w.store.user_by_email(fx.portal.id, "eve@corp.test").await.unwrap().unwrap();
    assert!(eve.disabled);
    let ada = fx.user().await;
    assert!(!ada.disabled, "a local account is not the directory's to disable");
    dir.set_down(true);
    assert!(matches!(
        admin.sync_directory(&fx.portal).await,
        Err(AdminError::DirectoryUnavailable(_))
    ));
}

// ----- changing one's password (issue 20) ---------------------------------------------------------

async fn session(fx: &Fx) -> auth_core::Session {
    let LoginOutcome::Token(t) = fx.w.service.sign_in().login(&fx.ctx(), &fx.good()).await.unwrap()
    else {
        panic!("expected a token")
    };
    fx.w.service.sessions().authenticate(&fx.ctx(), t.token.expose()).await.unwrap()
}

#[tokio::test]
async fn a_password_change_needs_a_fresh_token_and_counts_wrong_current_passwords() {
    use auth_core::service::AccountError;
    let fx = Fx::new(TfaMode::None).await;
    let account = fx.w.service.account();
    let current = auth_core::Password::new(PASSWORD).unwrap();
    let new: SecretString = "a new and long one".into();
    let s = session(&fx).await;
    fx.advance(16 * 60);
    let r = account.change_password(&fx.ctx(), &s, &current, &new).await;
    assert!(matches!(r, Err(AccountError::ReauthenticationRequired)), "{r:?}");
    let s = session(&fx).await;
    let wrong = auth_core::Password::new("not it at all").unwrap();
    for _ in 0..5 {
        let r = account.change_password(&fx.ctx(), &s, &wrong, &new).await;
        assert!(matches!(r, Err(AccountError::InvalidCredentials)), "{r:?}");
    }
    // The login throttle of step 1 is the same counter: the right password is refused now too.
    let r = account.change_password(&fx.ctx(), &s, &current, &new).await;
    assert!(matches!(r, Err(AccountError::Throttled { .. })), "{r:?}");
    assert!(matches!(
        fx.w.service.sign_in().login(&fx.ctx(), &fx.good()).await,
        Err(SignInError::LoginThrottled { .. })
    ));
    fx.advance(120);
    let s = session(&fx).await;
    account.change_password(&fx.ctx(), &s, &current, &new).await.unwrap();
    assert!(fx.actions().await.contains(&AuditAction::PasswordChanged));
    assert!(fx.w.service.sign_in().login(&fx.ctx(), &fx.good()).await.is_err());
}

#[tokio::test]
async fn a_directory_user_changes_their_password_in_the_directory() {
    use auth_core::service::AccountError;
    let (fx, _dir) = directory_fx(TfaMode::None).await;
    let LoginOutcome::Token(t) =
        fx.w.service.sign_in().login(&fx.ctx(), &pw("dana", "dir-secret-1")).await.unwrap()
    else {
        panic!()
    };
    let s = fx.w.service.sessions().authenticate(&fx.ctx(), t.token.expose()).await.unwrap();
    let r =
        fx.w.service
            .account()
            .change_password(
                &fx.ctx(),
                &s,
                &auth_core::Password::new("dir-secret-1").unwrap(),
                &"a brand new one!".into(),
            )
            .await;
    assert!(matches!(r, Err(AccountError::DirectoryUser)), "{r:?}");
}

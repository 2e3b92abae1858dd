//! The store conformance suite: the contract of every store port, as executable checks.
//!
//! Any adapter calls [`run`] on a fresh, empty store (file-backed where that is the real use). The checks
//! cover each port's documented behaviour and, above all, its atomicity promises: concurrent calls on the
//! same SMS code, TOTP step, backup code, throttle key or outbox message must let exactly the promised
//! number through. The checks use fresh random-looking ids, so they do not depend on each other.
//! Failures panic with a message naming the broken promise, like any test assertion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditAction, AuditEvent, AuditFilter};
use crate::later;
use crate::model::{Credential, Portal, PortalId, PortalSettings, TfaMode, User, UserId};
use crate::password::PasswordHash;
use crate::ports::{
    AccountLink, AuditCursor, BackupCodeRecord, Channel, KnownClient, NewOutboxMessage,
    RememberedCode, ResetKey, Revisions, SealedColumn, SealedOwner, SealedSwap, SealedValue,
    SignInWrite, SmsCodeRecord, Store, StoreError, TokenRecord, TotpRecord,
};
use crate::testkit::token_record;
use crate::throttle::{Acquire, AcquireThen, Rule};

fn t0() -> Timestamp {
    Timestamp::constant(1_768_031_184, 0)
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

struct Ids(std::cell::Cell<u8>);

impl Ids {
    fn new(tag: u8) -> Self {
        Self(std::cell::Cell::new(tag.wrapping_mul(37)))
    }
    fn bytes(&self) -> [u8; 16] {
        let n = self.0.get().wrapping_add(1);
        self.0.set(n);
        let mut b = [n; 16];
        b[0] = 0xC0;
        b[15] = n.wrapping_mul(7);
        b
    }
    fn user(&self) -> UserId {
        UserId::from_random_bytes(self.bytes())
    }
    fn portal(&self) -> PortalId {
        PortalId::from_random_bytes(self.bytes())
    }
}

fn portal(id: PortalId, hosts: &[&str]) -> Portal {
    Portal {
        id,
        name: format!("portal {id}"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        settings: PortalSettings::default(),
        created_at: t0(),
        revision: 0,
    }
}

fn user(id: UserId, portal: PortalId, email: &str) -> User {
    User {
        id,
        portal,
        email: email.to_owned(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        is_admin: false,
        disabled: false,
        credential: Credential::Password(PasswordHash::from_phc(
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        )),
        phone: None,
        phone_activated: false,
        created_at: t0(),
        revision: 0,
    }
}

/// Runs every check against `store`, which must start empty.
pub async fn run(store: &dyn Store) {
    portals(store).await;
    users(store).await;
    sms_codes(store).await;
    totp(store).await;
    backup_codes(store).await;
    tokens(store).await;
    tokens_audited(store).await;
    sessions(store).await;
    counters(store).await;
    audit(store).await;
    outbox(store).await;
    outbox_stats(store).await;
    meta(store).await;
    social(store).await;
    credentials(store).await;
    imported_totp(store).await;
    sealed(store).await;
    audit_retention(store).await;
    mail_channel(store).await;
    reset_keys(store).await;
    audit_export(store).await;
    outbox_retention(store).await;
}

/// Sessions (spec §13): every detail of a token round-trips, public ids are unique, a user lists
/// exactly their tokens, ends one by id only when it is theirs, and "last used" only moves forward.
pub async fn sessions(store: &dyn Store) {
    let ids = Ids::new(24);
    let (u1, u2, p) = (ids.user(), ids.user(), ids.portal());
    store.insert_portal(&portal(p, &["sessions.example.com"])).await.unwrap();
    store.insert_user(&user(u1, p, "sessions-one@example.com")).await.unwrap();
    store.insert_user(&user(u2, p, "sessions-two@example.com")).await.unwrap();
    let fresh = Revisions { user: 0, portal: 0 };
    let full = TokenRecord {
        client_ip: Some("2001:db8::7".parse().unwrap()),
        user_agent: Some("Mozilla/5.0 (X11; Linux) Ж \"quoted\"".into()),
        id: 9_007_199_254_740_991,
        ..token_record([0xA1; 32], u1, p, later(t0(), secs(5)), later(t0(), secs(900)))
    };
    let older = TokenRecord {
        client_ip: Some("192.0.2.44".parse().unwrap()),
        ..token_record([0xA2; 32], u1, p, t0(), later(t0(), secs(900)))
    };
    let theirs = token_record([0xA3; 32], u2, p, t0(), later(t0(), secs(900)));
    for t in [&full, &older, &theirs] {
        assert!(store.insert_token(t, fresh).await.unwrap());
    }
    assert_eq!(store.token_by_hash(&full.hash).await.unwrap().as_ref(), Some(&full), "every field");
    let (got, _) = store.session_by_token_hash(&full.hash).await.unwrap().unwrap();
    assert_eq!(got, full, "the hot-path lookup MUST return every field too");
    assert_eq!(
        store.tokens_of_user(u1).await.unwrap(),
        vec![older.clone(), full.clone()],
        "a user's tokens, oldest first, and nobody else's"
    );
    assert!(store.tokens_of_user(ids.user()).await.unwrap().is_empty());

    // A public id is unique: another token on it is refused, and nothing is stored.
    let clash = TokenRecord { id: full.id, ..token_record([0xA4; 32], u2, p, t0(), t0()) };
    assert!(
        matches!(store.insert_token(&clash, fresh).await, Err(StoreError::Conflict(_))),
        "a taken public id MUST be refused as Conflict"
    );
    assert_eq!(store.token_by_hash(&clash.hash).await.unwrap(), None);

    // "Last used" moves forward only; unknown hashes are skipped.
    let at = later(t0(), secs(60));
    let n =
        store.touch_tokens(&[(full.hash, at), (older.hash, t0()), ([0xEE; 32], at)]).await.unwrap();
    assert_eq!(n, 1, "only the token whose stored value is earlier changes");
    assert_eq!(store.token_by_hash(&full.hash).await.unwrap().unwrap().last_used_at, at);
    store.touch_tokens(&[(full.hash, later(t0(), secs(30)))]).await.unwrap();
    assert_eq!(
        store.token_by_hash(&full.hash).await.unwrap().unwrap().last_used_at,
        at,
        "last used MUST never move back"
    );
    assert_eq!(store.touch_tokens(&[]).await.unwrap(), 0);

    // Ending one by its id: only the owner's call does anything.
    assert!(!store.revoke_user_token(u2, full.id).await.unwrap(), "another user's id is unknown");
    assert!(store.token_by_hash(&full.hash).await.unwrap().is_some(), "and it survives");
    assert!(!store.revoke_user_token(u1, 12_345).await.unwrap());
    assert!(store.revoke_user_token(u1, full.id).await.unwrap());
    assert!(!store.revoke_user_token(u1, full.id).await.unwrap(), "ended once");
    assert_eq!(store.token_by_hash(&full.hash).await.unwrap(), None);
    assert_eq!(store.tokens_of_user(u1).await.unwrap(), vec![older.clone()]);
    assert_eq!(store.tokens_of_user(u2).await.unwrap(), vec![theirs]);
}

/// Export: a range read in pages, oldest first by time (then append order), never twice, never
/// outside `[since, until)`, with the filter applied. Events are appended out of time order, as
/// several nodes with slightly different clocks append them.
pub async fn audit_export(store: &dyn Store) {
    let ids = Ids::new(25);
    let p = ids.portal();
    let base = later(t0(), secs(2000 * 86_400));
    let ev = |offset: i64, tag: &str| AuditEvent {
        at: later(base, secs(offset)),
        portal: p,
        user: None,
        login: None,
        action: if tag.starts_with('f') {
            AuditAction::LoginFailViaApi
        } else {
            AuditAction::LoginSuccessViaApi
        },
        ip: "192.0.2.10".parse().unwrap(),
        user_agent: Some("export".into()),
        reason: Some(tag.to_owned()),
    };
    for (offset, tag) in
        [(5, "s5"), (1, "s1"), (3, "f3"), (3, "s3"), (9, "s9"), (0, "s0"), (7, "f7")]
    {
        store.append_audit(&ev(offset, tag)).await.unwrap();
    }
    let mine = AuditFilter { portal: Some(p), ..Default::default() };
    let (since, until) = (later(base, secs(1)), later(base, secs(9)));
    let mut seen = Vec::new();
    let mut after: Option<AuditCursor> = None;
    loop {
        let page = store.audit_page(&mine, since, until, after, 2).await.unwrap();
        assert!(page.len() <= 2, "a page MUST hold at most `limit`");
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        seen.extend(page.into_iter().map(|(_, e)| e.reason.unwrap()));
    }
    assert_eq!(
        seen,
        ["s1", "f3", "s3", "s5", "f7"],
        "oldest first, ties in append order, `since` included and `until` excluded"
    );
    let fails = AuditFilter { action: Some(AuditAction::LoginFailViaApi), ..mine };
    let page = store.audit_page(&fails, since, until, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|(_, e)| e.reason.clone().unwrap()).collect::<Vec<_>>(),
        ["f3", "f7"]
    );
    assert_eq!(page[0].1, ev(3, "f3"), "every field kept");
    assert!(store.audit_page(&mine, until, since, None, 10).await.unwrap().is_empty());
}

/// Outbox retention: of the old messages only the delivered and the given-up ones go, in batches;
/// an unsent message that may still be tried stays however old, and so do young ones. (It runs
/// last: it purges every old finished message of the store.)
pub async fn outbox_retention(store: &dyn Store) {
    let ids = Ids::new(26);
    let p = ids.portal();
    let far = later(t0(), secs(3000 * 86_400));
    let msg = |created: Timestamp, to: &str| NewOutboxMessage {
        portal: p,
        to: to.into(),
        sealed_text: vec![4, 5, 6],
        created_at: created,
    };
    let old = |i: i64| later(far, secs(i));
    let sent_old = store.enqueue_sms(&msg(old(0), "70000000001")).await.unwrap();
    let dropped_old = store.enqueue_sms(&msg(old(1), "70000000002")).await.unwrap();
    let live_old = store.enqueue_sms(&msg(old(2), "70000000003")).await.unwrap();
    let sent_old2 = store.enqueue_sms(&msg(old(3), "70000000004")).await.unwrap();
    let cutoff = later(far, secs(100));
    let sent_young = store.enqueue_sms(&msg(later(cutoff, secs(1)), "70000000005")).await.unwrap();
    let claimed = store.claim_due_sms(later(far, secs(500)), secs(60), 100, 31).await.unwrap();
    for want in [sent_old, dropped_old, live_old, sent_old2, sent_young] {
        assert!(claimed.iter().any(|m| m.id == want), "message {want} claimed");
    }
    let at = later(far, secs(500));
    for id in [sent_old, sent_old2, sent_young] {
        assert!(store.mark_sms_sent(id, 31, at).await.unwrap());
    }
    assert!(store.mark_sms_failed(dropped_old, 31, Timestamp::MAX, "given up").await.unwrap());
    assert!(store.mark_sms_failed(live_old, 31, later(at, secs(5)), "try later").await.unwrap());
    // Other checks' messages may be done with too; let them go first so the counts below are ours.
    let mut total = 0;
    loop {
        let n = store.purge_outbox(cutoff, 1).await.unwrap();
        assert!(n <= 1, "a batch MUST delete at most `limit`");
        total += n;
        if n == 0 {
            break;
        }
    }
    assert!(total >= 3, "the two delivered and the given-up old messages go");
    let left: Vec<i64> = store
        .recent_sms(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.portal == p)
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![sent_young, live_old], "a live message MUST stay, however old");
    assert_eq!(store.purge_outbox(cutoff, 100).await.unwrap(), 0);
}

/// Retention: events older than the cut-off go, in batches of at most `limit`, oldest first; newer
/// ones stay. (It runs last: it purges every older event of the store.)
pub async fn audit_retention(store: &dyn Store) {
    let ids = Ids::new(23);
    let p = ids.portal();
    let far = later(t0(), secs(1000 * 86_400));
    for i in 0..5 {
        let event = AuditEvent {
            at: later(far, secs(i)),
            portal: p,
            user: None,
            login: None,
            action: AuditAction::Logout,
            ip: "192.0.2.9".parse().unwrap(),
            user_agent: None,
            reason: Some(format!("retention {i}")),
        };
        store.append_audit(&event).await.unwrap();
    }
    let cutoff = later(far, secs(3));
    let first = store.purge_audit(cutoff, 2).await.unwrap();
    assert_eq!(first, 2, "a batch MUST delete at most `limit`, and the oldest are all older");
    let mut total = first;
    loop {
        let n = store.purge_audit(cutoff, 2).await.unwrap();
        assert!(n <= 2);
        total += n;
        if n < 2 {
            break;
        }
    }
    assert!(total >= 3);
    let left = store
        .recent_audit(&AuditFilter { portal: Some(p), ..Default::default() }, 10)
        .await
        .unwrap();
    let reasons: Vec<_> = left.iter().filter_map(|e| e.reason.clone()).collect();
    assert_eq!(reasons, vec!["retention 4".to_owned(), "retention 3".to_owned()]);
    assert_eq!(store.purge_audit(cutoff, 100).await.unwrap(), 0, "nothing older is left");
}

/// Portals: insert, host uniqueness, update, settings round trip.
pub async fn portals(store: &dyn Store) {
    let ids = Ids::new(1);
    // The store is still empty: of concurrent first-portal calls exactly one inserts, and every
    // call answers that portal.
    let candidates: Vec<Portal> = (0..8).map(|_| portal(ids.portal(), &[])).collect();
    let answers = join_all(candidates.iter().map(|p| store.insert_first_portal(p))).await;
    let answers: Vec<Portal> = answers.into_iter().map(Result::unwrap).collect();
    let listed = store.list_portals().await.unwrap();
    assert_eq!(listed.len(), 1, "concurrent first-portal calls MUST make exactly one portal");
    assert!(
        answers.iter().all(|a| a.id == listed[0].id),
        "every first-portal call MUST answer the portal that was made"
    );
    assert!(
        candidates.iter().any(|c| c.id == listed[0].id),
        "the portal made is one of those asked"
    );
    let first = listed[0].id;
    let again = store.insert_first_portal(&portal(ids.portal(), &["late.example.com"])).await;
    assert_eq!(again.unwrap().id, first, "with a portal there, the call MUST answer the oldest");
    assert_eq!(store.list_portals().await.unwrap().len(), 1, "and MUST insert nothing");
    let a = portal(ids.portal(), &["a.example.com", "a2.example.com"]);
    store.insert_portal(&a).await.unwrap();
    let clash = portal(ids.portal(), &["a2.example.com"]);
    assert!(
        matches!(store.insert_portal(&clash).await, Err(crate::ports::StoreError::Conflict(_))),
        "a host of another portal MUST be a conflict"
    );
    let mut b = portal(ids.portal(), &["b.example.com"]);
    store.insert_portal(&b).await.unwrap();
    b.settings.tfa = TfaMode::App;
    b.settings.time_zone = "Europe/Moscow".into();
    b.settings.trusted_ips = vec!["10.0.0.0/8".parse().unwrap()];
    b.settings.sms.portal_daily_budget = Some(77);
    b.hosts = vec!["b.example.com".into(), "b3.example.com".into()];
    b.name = "Renamed".into();
    assert!(store.update_portal(&b, false).await.unwrap());
    let list = store.list_portals().await.unwrap();
    let got = list.iter().find(|p| p.id == b.id).expect("updated portal listed");
    assert_eq!(got.settings, b.settings, "settings MUST round-trip");
    assert_eq!(got.revision, 1, "an update MUST bump the revision");
    assert_eq!(got.name, "Renamed");
    let mut hosts = got.hosts.clone();
    hosts.sort();
    assert_eq!(hosts, vec!["b.example.com".to_owned(), "b3.example.com".to_owned()]);
    let mut steal = b.clone();
    steal.hosts = vec!["a.example.com".into()];
    assert!(
        store.update_portal(&steal, false).await.is_err(),
        "taking another portal's host MUST fail"
    );
    assert!(
        !store.update_portal(&portal(ids.portal(), &[]), false).await.unwrap(),
        "unknown portal updates nothing"
    );
    let pos_a = list.iter().position(|p| p.id == a.id).unwrap();
    let pos_b = list.iter().position(|p| p.id == b.id).unwrap();
    assert!(pos_a < pos_b, "portals are listed oldest first");
}

/// Users: uniqueness per portal, lookups, updates, phone rules.
pub async fn users(store: &dyn Store) {
    let ids = Ids::new(2);
    let p = ids.portal();
    store.insert_portal(&portal(p, &["users.example.com"])).await.unwrap();
    let before = store.count_users().await.unwrap();
    let u = user(ids.user(), p, "Ada@Example.com");
    store.insert_user(&u).await.unwrap();
    let dup = user(ids.user(), p, "ada@EXAMPLE.com");
    assert!(
        store.insert_user(&dup).await.is_err(),
        "same e-mail (any case) in one portal MUST conflict"
    );
    let p2 = ids.portal();
    store.insert_portal(&portal(p2, &["users2.example.com"])).await.unwrap();
    store.insert_user(&user(ids.user(), p2, "ada@example.com")).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), before + 2);

    assert_eq!(store.user_by_email(p, "ada@example.com").await.unwrap().as_ref(), Some(&u));
    assert_eq!(store.user_by_id(u.id).await.unwrap().as_ref(), Some(&u));
    assert_eq!(store.user_by_email(p, "nobody@example.com").await.unwrap(), None);
    assert_eq!(store.list_users(Some(p)).await.unwrap(), vec![u.clone()]);

    let h = PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$bmV3c2FsdA$bmV3aGFzaA");
    assert!(store.set_password_hash(u.id, &h).await.unwrap());
    assert_eq!(store.user_by_id(u.id).await.unwrap().unwrap().revision, 1, "MUST bump");
    assert!(store.set_disabled(u.id, true).await.unwrap());
    let got = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(got.credential, Credential::Password(h));
    assert!(got.disabled);
    assert_eq!(got.revision, 2, "disabling MUST bump the revision");
    assert!(store.set_disabled(u.id, false).await.unwrap());
    assert!(!store.user_by_id(u.id).await.unwrap().unwrap().disabled);
    assert!(!store.set_disabled(ids.user(), true).await.unwrap(), "missing user: false");

    assert!(store.set_phone_if_unactivated(u.id, "79123456789").await.unwrap());
    assert!(
        !store.activate_phone(u.id, "70000000000").await.unwrap(),
        "activation MUST match the stored phone"
    );
    assert!(store.activate_phone(u.id, "79123456789").await.unwrap());
    let got = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((got.phone.as_deref(), got.phone_activated), (Some("79123456789"), true));
    assert!(
        !store.set_phone_if_unactivated(u.id, "71111111111").await.unwrap(),
        "an activated phone MUST stay"
    );
    assert!(store.set_phone(u.id, None, false).await.unwrap());
    let got = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((got.phone, got.phone_activated), (None, false));
}

fn code(user: UserId, phone: &str, tag: u8, issued: Timestamp) -> SmsCodeRecord {
    SmsCodeRecord {
        user,
        phone: phone.into(),
        code_hash: [tag; 32],
        issued_at: issued,
        expires_at: later(issued, secs(600)),
    }
}

/// SMS codes: newest, consume burns all, expiry, the outstanding cap, and single use under races.
pub async fn sms_codes(store: &dyn Store) {
    let ids = Ids::new(3);
    let u = ids.user();
    let phone = "79123456789";
    for i in 0..8u8 {
        store
            .insert_sms_code(&code(u, phone, i + 1, later(t0(), secs(i64::from(i)))), 6, t0())
            .await
            .unwrap();
    }
    let now = later(t0(), secs(10));
    let newest = store.newest_sms_code(u, phone, now).await.unwrap().unwrap();
    assert_eq!(newest.code_hash, [8; 32]);
    assert!(
        !store.consume_sms_code(u, phone, &[1; 32], now).await.unwrap(),
        "codes beyond 6 MUST be evicted, oldest first"
    );
    assert!(
        !store.consume_sms_code(u, "70000000000", &[5; 32], now).await.unwrap(),
        "another phone's code MUST fail"
    );
    assert!(
        store.consume_sms_code(u, phone, &[5; 32], now).await.unwrap(),
        "any outstanding code is accepted"
    );
    assert!(
        !store.consume_sms_code(u, phone, &[6; 32], now).await.unwrap(),
        "a success MUST burn all codes"
    );
    assert_eq!(store.newest_sms_code(u, phone, now).await.unwrap(), None);

    store.insert_sms_code(&code(u, phone, 9, t0()), 6, t0()).await.unwrap();
    let expired = later(t0(), secs(600));
    assert_eq!(
        store.newest_sms_code(u, phone, expired).await.unwrap(),
        None,
        "expired codes are not outstanding"
    );
    assert!(
        !store.consume_sms_code(u, phone, &[9; 32], expired).await.unwrap(),
        "an expired code MUST fail"
    );

    store.insert_sms_code(&code(u, phone, 10, t0()), 6, t0()).await.unwrap();
    store.burn_sms_codes(u).await.unwrap();
    assert!(
        !store.consume_sms_code(u, phone, &[10; 32], t0()).await.unwrap(),
        "burnt codes MUST fail"
    );

    let v = ids.user();
    store.insert_sms_code(&code(v, phone, 11, t0()), 6, t0()).await.unwrap();
    let wins = join_all((0..20).map(|_| store.consume_sms_code(v, phone, &[11; 32], t0()))).await;
    assert_eq!(
        wins.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "exactly one concurrent consume MUST win"
    );
}

/// TOTP: one secret per user, steps strictly increasing and used once, activation once.
pub async fn totp(store: &dyn Store) {
    let ids = Ids::new(4);
    let u = ids.user();
    assert_eq!(store.totp(u).await.unwrap(), None);
    assert!(store.create_totp(u, b"sealed-1").await.unwrap());
    assert!(
        !store.create_totp(u, b"sealed-2").await.unwrap(),
        "a second secret MUST NOT replace the first"
    );
    let r = store.totp(u).await.unwrap().unwrap();
    assert_eq!(
        (r.sealed_secret.as_slice(), r.activated, r.last_step),
        (b"sealed-1".as_slice(), false, None)
    );
    assert!(store.use_totp_step(u, 100).await.unwrap());
    assert!(!store.use_totp_step(u, 100).await.unwrap(), "a step MUST validate once");
    assert!(!store.use_totp_step(u, 99).await.unwrap(), "an earlier step MUST fail");
    assert!(store.use_totp_step(u, 101).await.unwrap());
    let wins = join_all((0..20).map(|_| store.use_totp_step(u, 200))).await;
    assert_eq!(
        wins.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "exactly one concurrent step use MUST win"
    );
    assert!(!store.use_totp_step(ids.user(), 1).await.unwrap(), "no record: false");

    assert!(store.activate_totp(u, &[[1; 32], [2; 32]], b"reveal").await.unwrap());
    assert!(
        !store.activate_totp(u, &[[3; 32]], b"other").await.unwrap(),
        "activation happens once"
    );
    let r = store.totp(u).await.unwrap().unwrap();
    assert!(r.activated);
    assert_eq!(r.last_step, Some(200));
    assert_eq!(store.backup_codes(u).await.unwrap().len(), 2);
    assert_eq!(store.take_backup_reveal(u).await.unwrap().as_deref(), Some(b"reveal".as_slice()));
    assert_eq!(store.take_backup_reveal(u).await.unwrap(), None, "the reveal MUST be taken once");

    store.delete_totp(u).await.unwrap();
    assert_eq!(store.totp(u).await.unwrap(), None);
    assert!(store.backup_codes(u).await.unwrap().is_empty(), "reset MUST drop backup codes");
    assert!(store.create_totp(u, b"sealed-3").await.unwrap());
    assert!(store.use_totp_step(u, 50).await.unwrap(), "reset MUST clear the last used step");
}

/// Backup codes: order, single use under races, replacement.
pub async fn backup_codes(store: &dyn Store) {
    let ids = Ids::new(5);
    let u = ids.user();
    store.create_totp(u, b"s").await.unwrap();
    store.activate_totp(u, &[[1; 32], [2; 32], [3; 32]], b"r").await.unwrap();
    assert!(store.use_backup_code(u, &[2; 32]).await.unwrap());
    assert!(!store.use_backup_code(u, &[2; 32]).await.unwrap(), "a backup code MUST be single use");
    assert!(!store.use_backup_code(u, &[9; 32]).await.unwrap());
    let list = store.backup_codes(u).await.unwrap();
    assert_eq!(
        list.iter().map(|c| (c.code_hash[0], c.used)).collect::<Vec<_>>(),
        vec![(1, false), (2, true), (3, false)]
    );
    let wins = join_all((0..20).map(|_| store.use_backup_code(u, &[3; 32]))).await;
    assert_eq!(
        wins.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "exactly one concurrent use MUST win"
    );
    store.replace_backup_codes(u, &[[7; 32], [8; 32]], None).await.unwrap();
    assert_eq!(
        store.take_backup_reveal(u).await.unwrap(),
        None,
        "replacing without a reveal clears it"
    );
    let list = store.backup_codes(u).await.unwrap();
    assert_eq!(
        list.iter().map(|c| (c.code_hash[0], c.used)).collect::<Vec<_>>(),
        vec![(7, false), (8, false)]
    );
    assert!(!store.use_backup_code(u, &[1; 32]).await.unwrap(), "old codes MUST be gone");
    store.replace_backup_codes(u, &[[9; 32]], Some(b"again")).await.unwrap();
    assert_eq!(store.take_backup_reveal(u).await.unwrap().as_deref(), Some(b"again".as_slice()));
}

/// Tokens: lookup by hash, revocation one by one, per user, per portal; purge.
pub async fn tokens(store: &dyn Store) {
    let ids = Ids::new(6);
    let (u1, u2, p1, p2) = (ids.user(), ids.user(), ids.portal(), ids.portal());
    store.insert_portal(&portal(p1, &["tokens1.example.com"])).await.unwrap();
    store.insert_portal(&portal(p2, &["tokens2.example.com"])).await.unwrap();
    let owner = user(u1, p1, "tokens-owner@example.com");
    store.insert_user(&owner).await.unwrap();
    store.insert_user(&user(u2, p1, "tokens-other@example.com")).await.unwrap();
    let tok = |tag: u8, user, portal, ttl: i64| {
        token_record([tag; 32], user, portal, t0(), later(t0(), secs(ttl)))
    };
    let fresh = Revisions { user: 0, portal: 0 };
    for t in [
        tok(1, u1, p1, 100),
        tok(2, u1, p1, 100),
        tok(3, u2, p1, 100),
        tok(4, u2, p2, 100),
        tok(5, u2, p2, 10),
    ] {
        assert!(store.insert_token(&t, fresh).await.unwrap());
    }
    assert_eq!(store.token_by_hash(&[1; 32]).await.unwrap(), Some(tok(1, u1, p1, 100)));
    assert_eq!(
        store.session_by_token_hash(&[1; 32]).await.unwrap(),
        Some((tok(1, u1, p1, 100), owner.clone()))
    );
    assert_eq!(store.session_by_token_hash(&[99; 32]).await.unwrap(), None);
    assert!(store.revoke_token(&[1; 32]).await.unwrap());
    assert!(!store.revoke_token(&[1; 32]).await.unwrap());
    assert_eq!(store.token_by_hash(&[1; 32]).await.unwrap(), None, "a revoked token MUST be gone");
    assert_eq!(store.revoke_user_tokens(u1).await.unwrap(), 1);
    assert_eq!(store.token_by_hash(&[2; 32]).await.unwrap(), None);
    assert_eq!(store.user_by_id(u1).await.unwrap().unwrap().revision, 1, "MUST bump");
    assert!(
        !store.insert_token(&tok(6, u1, p1, 100), fresh).await.unwrap(),
        "a token read under the old user revision MUST not be stored"
    );
    assert_eq!(store.token_by_hash(&[6; 32]).await.unwrap(), None);
    let now = Revisions { user: 1, portal: 0 };
    assert!(store.insert_token(&tok(6, u1, p1, 100), now).await.unwrap());
    assert!(
        !store.insert_token(&tok(7, ids.user(), p1, 100), fresh).await.unwrap(),
        "no token for a missing user"
    );
    assert_eq!(store.purge_expired_tokens(later(t0(), secs(50))).await.unwrap(), 1);
    assert_eq!(store.token_by_hash(&[5; 32]).await.unwrap(), None);
    assert_eq!(store.revoke_portal_tokens(p1).await.unwrap(), 2);
    assert_eq!(store.token_by_hash(&[3; 32]).await.unwrap(), None);
    assert!(store.token_by_hash(&[4; 32]).await.unwrap().is_some(), "other portals' tokens stay");

    // Ending the user's other tokens keeps the caller's, and bumps the revision.
    let rev = store.user_by_id(u2).await.unwrap().unwrap().revision;
    let r = Revisions { user: rev, portal: 0 };
    assert!(store.insert_token(&tok(8, u2, p2, 100), r).await.unwrap());
    assert!(store.insert_token(&tok(9, u2, p2, 100), r).await.unwrap());
    assert_eq!(store.revoke_user_tokens_except(u2, &[9; 32]).await.unwrap(), 2);
    assert!(store.token_by_hash(&[9; 32]).await.unwrap().is_some(), "the kept token stays");
    assert_eq!(store.token_by_hash(&[8; 32]).await.unwrap(), None);
    assert_eq!(store.user_by_id(u2).await.unwrap().unwrap().revision, rev + 1);

    // A portal update bumps its revision, and with `end_tokens` ends its tokens in the same step.
    let mut p = store.list_portals().await.unwrap().into_iter().find(|p| p.id == p2).unwrap();
    p.settings.tfa = TfaMode::Sms;
    assert!(store.update_portal(&p, true).await.unwrap());
    assert_eq!(store.token_by_hash(&[9; 32]).await.unwrap(), None, "end_tokens MUST end them");
    let r = Revisions { user: rev + 1, portal: 0 };
    assert!(
        !store.insert_token(&tok(10, u2, p2, 100), r).await.unwrap(),
        "a token read under the old portal revision MUST not be stored"
    );
    assert!(store.insert_token(&tok(10, u2, p2, 100), Revisions { portal: 1, ..r }).await.unwrap());

    // Changing the password or disabling ends every token of the user in the same step.
    let h = PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA");
    assert!(store.set_password_hash(u2, &h).await.unwrap());
    assert_eq!(
        store.token_by_hash(&[10; 32]).await.unwrap(),
        None,
        "set_password_hash ends tokens"
    );
    let r = Revisions { user: rev + 2, portal: 1 };
    assert!(store.insert_token(&tok(11, u2, p2, 100), r).await.unwrap());
    assert!(store.set_disabled(u2, true).await.unwrap());
    assert_eq!(store.token_by_hash(&[11; 32]).await.unwrap(), None, "disabling ends tokens");
}

/// `finish_sign_in`: the token, its event and the known client are stored together, or none is —
/// under a moved revision, and when the public id is taken; the attempt's slots go back whenever
/// the call succeeds, and stay when it fails.
pub async fn tokens_audited(store: &dyn Store) {
    let ids = Ids::new(43);
    let (u, p) = (ids.user(), ids.portal());
    store.insert_portal(&portal(p, &["tokens-audited.example.com"])).await.unwrap();
    store.insert_user(&user(u, p, "tokens-audited@example.com")).await.unwrap();
    let ev = |i: i64| AuditEvent {
        at: later(t0(), secs(i)),
        portal: p,
        user: Some(u),
        login: None,
        action: AuditAction::LoginSuccessViaApi,
        ip: "192.0.2.7".parse().unwrap(),
        user_agent: Some("conformance".into()),
        reason: Some(format!("issue {i}")),
    };
    let events = || async {
        store
            .recent_audit(&AuditFilter { portal: Some(p), ..Default::default() }, 10)
            .await
            .unwrap()
    };
    // The attempt's throttle: one slot of a limit of one, so a held slot refuses the next acquire.
    let throttle = "tokens-audited:attempt".to_owned();
    let one = Rule::per(1, secs(600));
    let take = || async {
        match store.acquire(&throttle, &one, t0()).await.unwrap() {
            Acquire::Granted(slot) => slot,
            Acquire::Refused { .. } => panic!("the slot MUST have been given back"),
        }
    };
    // Whether the slot is held; a free one is taken and given straight back to find out.
    let held = || async {
        match store.acquire(&throttle, &one, t0()).await.unwrap() {
            Acquire::Granted(slot) => {
                store.release(slot).await.unwrap();
                false
            }
            Acquire::Refused { .. } => true,
        }
    };
    let known_key = "known:tokens-audited:client".to_owned();
    let known = |since| KnownClient { key: &known_key, since, rule: Rule::per(1, secs(86_400)) };
    let write = |token, expect, event, release, known| SignInWrite {
        token,
        expect,
        event,
        release,
        known: Some(known),
    };

    let fresh = Revisions { user: 0, portal: 0 };
    let first = token_record([0xB1; 32], u, p, t0(), later(t0(), secs(900)));
    let slot = take().await;
    let (e1, slots) = (ev(1), [slot]);
    assert!(store.finish_sign_in(&write(&first, fresh, &e1, &slots, known(t0()))).await.unwrap());
    assert_eq!(store.token_by_hash(&first.hash).await.unwrap(), Some(first.clone()));
    assert_eq!(events().await, vec![ev(1)], "the event MUST be stored with the token");
    assert_eq!(store.count_since(&known_key, t0()).await.unwrap(), 1, "the client MUST be known");
    assert!(!held().await, "the attempt's slot MUST be given back with the token");

    // Known since `since` already: no second event for the client.
    let again = token_record([0xB3; 32], u, p, later(t0(), secs(5)), later(t0(), secs(900)));
    let (e4, slots) = (ev(4), [take().await]);
    assert!(store.finish_sign_in(&write(&again, fresh, &e4, &slots, known(t0()))).await.unwrap());
    assert_eq!(store.count_since(&known_key, t0()).await.unwrap(), 1, "one record is enough");
    assert!(!held().await);

    // A moved revision: no token, no event, no known client; the slot still goes back.
    let moved = Revisions { user: 1, portal: 0 };
    let second = token_record([0xB2; 32], u, p, t0(), later(t0(), secs(900)));
    let later_since = later(t0(), secs(1));
    let (e2, slots) = (ev(2), [take().await]);
    let w = write(&second, moved, &e2, &slots, known(later_since));
    assert!(!store.finish_sign_in(&w).await.unwrap());
    assert_eq!(store.token_by_hash(&second.hash).await.unwrap(), None);
    assert_eq!(events().await, vec![ev(4), ev(1)], "no event for a token not stored");
    assert_eq!(store.count_since(&known_key, t0()).await.unwrap(), 1, "not known by a refusal");
    assert!(!held().await, "a refused token MUST still give the slot back");

    // A taken public id: Conflict, and nothing changes, the slot included.
    let clash = TokenRecord { id: first.id, ..second.clone() };
    let fresh_since = later(t0(), secs(10));
    let (e3, slots) = (ev(3), [take().await]);
    assert!(
        matches!(
            store.finish_sign_in(&write(&clash, fresh, &e3, &slots, known(fresh_since))).await,
            Err(StoreError::Conflict(_))
        ),
        "a taken public id MUST be refused as Conflict"
    );
    assert_eq!(store.token_by_hash(&clash.hash).await.unwrap(), None);
    assert_eq!(events().await, vec![ev(4), ev(1)], "no event for a refused token");
    assert_eq!(store.count_since(&known_key, t0()).await.unwrap(), 1);
    assert!(held().await, "a failed call MUST leave the slot held");
}

/// Social: account links are unique per identity and per (user, provider); remembered codes expire.
pub async fn social(store: &dyn Store) {
    let ids = Ids::new(9);
    let (p, ada, bob) = (ids.portal(), ids.user(), ids.user());
    let link = |user, provider: &str, subject: &str| AccountLink {
        portal: p,
        provider: provider.into(),
        subject: subject.into(),
        user,
        created_at: t0(),
    };
    assert!(store.insert_link(&link(ada, "google", "g-1")).await.unwrap());
    assert!(
        !store.insert_link(&link(bob, "google", "g-1")).await.unwrap(),
        "an identity MUST link to one user"
    );
    assert!(
        !store.insert_link(&link(ada, "google", "g-2")).await.unwrap(),
        "a user MUST have one link per provider"
    );
    assert!(store.insert_link(&link(ada, "github", "1")).await.unwrap());
    assert!(store.insert_link(&link(bob, "google", "g-3")).await.unwrap());
    assert_eq!(
        store.link_by_subject(p, "google", "g-1").await.unwrap(),
        Some(link(ada, "google", "g-1"))
    );
    assert_eq!(store.link_by_subject(p, "google", "G-1").await.unwrap(), None, "exact subjects");
    assert_eq!(store.link_by_subject(ids.portal(), "google", "g-1").await.unwrap(), None);
    let mut mine: Vec<_> =
        store.links_of(ada).await.unwrap().into_iter().map(|l| l.provider).collect();
    mine.sort();
    assert_eq!(mine, vec!["github".to_owned(), "google".to_owned()]);
    assert!(store.delete_link(ada, "google").await.unwrap());
    assert!(!store.delete_link(ada, "google").await.unwrap());
    assert_eq!(store.link_by_subject(p, "google", "g-1").await.unwrap(), None);
    let racing = join_all((0..8u8).map(|i| {
        let l = AccountLink { user: UserId::from_random_bytes([i; 16]), ..link(ada, "vk", "v-1") };
        async move { store.insert_link(&l).await.unwrap() }
    }))
    .await;
    assert_eq!(racing.iter().filter(|ok| **ok).count(), 1, "racing links MUST store one");

    let code = RememberedCode {
        provider: "google".into(),
        subject: "g-9".into(),
        email: Some("ada@example.com".into()),
        email_verified: true,
        expires_at: later(t0(), secs(600)),
    };
    store.remember_code(&[7; 32], &code).await.unwrap();
    let other = RememberedCode { subject: "g-10".into(), ..code.clone() };
    store.remember_code(&[7; 32], &other).await.unwrap();
    assert_eq!(store.recall_code(&[7; 32], t0()).await.unwrap(), Some(code.clone()), "first stays");
    assert_eq!(store.recall_code(&[8; 32], t0()).await.unwrap(), None);
    assert_eq!(store.recall_code(&[7; 32], later(t0(), secs(600))).await.unwrap(), None, "expired");
    let no_mail = RememberedCode { email: None, email_verified: false, ..code.clone() };
    store.remember_code(&[9; 32], &no_mail).await.unwrap();
    assert_eq!(store.recall_code(&[9; 32], t0()).await.unwrap(), Some(no_mail));
    assert_eq!(store.purge_codes(later(t0(), secs(601))).await.unwrap(), 2);
}

/// Meta: the first value stored under a name stays.
pub async fn meta(store: &dyn Store) {
    assert_eq!(store.init_meta("conformance-a", b"one").await.unwrap(), b"one".to_vec());
    assert_eq!(store.init_meta("conformance-a", b"two").await.unwrap(), b"one".to_vec());
    let racing = join_all(
        (0..8u8).map(|i| async move { store.init_meta("conformance-b", &[i]).await.unwrap() }),
    )
    .await;
    assert!(racing.windows(2).all(|w| w[0] == w[1]), "racing first calls MUST agree: {racing:?}");
    assert_eq!(store.meta("conformance-a").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(store.meta("conformance-missing").await.unwrap(), None);
}

/// Every value of `column`, read in pages of two: no page is longer, and owners MUST come in strictly
/// increasing order across pages (so each value is seen once).
async fn sealed_column(store: &dyn Store, column: SealedColumn) -> Vec<SealedValue> {
    let mut all: Vec<SealedValue> = Vec::new();
    loop {
        let after = all.last().map(|v| v.owner.clone());
        let page = store.sealed_values(column, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2, "{column:?}: a page MUST hold at most `limit` values");
        let full = page.len() == 2;
        all.extend(page);
        if !full {
            break;
        }
    }
    assert!(
        all.windows(2).all(|w| w[0].owner < w[1].owner),
        "{column:?}: owners MUST come in strictly increasing order: {:?}",
        all.iter().map(|v| &v.owner).collect::<Vec<_>>()
    );
    all
}

fn sealed_of<'a>(values: &'a [SealedValue], owner: &SealedOwner) -> Option<&'a [u8]> {
    values.iter().find(|v| v.owner == *owner).map(|v| v.sealed.as_slice())
}

fn swap(owner: SealedOwner, old: &[u8], new: &[u8]) -> SealedSwap {
    SealedSwap { owner, old: old.to_vec(), new: new.to_vec() }
}

/// Sealed values (issue 17, key rotation): each column is listed page by page in owner order, every
/// value once; a swap is a compare-and-set per row that changes nothing else of the row, and of
/// concurrent swaps from the same old bytes exactly one wins; `replace_meta` likewise.
pub async fn sealed(store: &dyn Store) {
    use SealedColumn::{BackupReveal, Meta, OutboxText, TotpSecret};
    use SealedOwner::{Message, Name, User};
    let ids = Ids::new(24);
    let users: Vec<UserId> = (0..5).map(|_| ids.user()).collect();
    for (i, u) in users.iter().enumerate() {
        assert!(store.create_totp(*u, &[0xA0, i as u8]).await.unwrap());
    }
    assert!(store.use_totp_step(users[0], 42).await.unwrap());
    assert!(store.activate_totp(users[0], &[[5; 32]], b"reveal-0").await.unwrap());
    store.replace_backup_codes(users[1], &[[6; 32]], Some(b"reveal-1")).await.unwrap();
    let p = ids.portal();
    let mut msgs = Vec::new();
    for i in 0..3u8 {
        let msg = NewOutboxMessage {
            portal: p,
            to: format!("7444444444{i}"),
            sealed_text: vec![0xB0, i],
            created_at: t0(),
        };
        msgs.push(store.enqueue_sms(&msg).await.unwrap());
    }
    store.init_meta("conformance-sealed:a", b"meta-a").await.unwrap();
    store.init_meta("conformance-sealed:b", b"meta-b").await.unwrap();

    let totp = sealed_column(store, TotpSecret).await;
    for (i, u) in users.iter().enumerate() {
        assert_eq!(
            sealed_of(&totp, &User(*u)),
            Some([0xA0, i as u8].as_slice()),
            "TOTP of user {i}"
        );
    }
    let reveals = sealed_column(store, BackupReveal).await;
    assert_eq!(sealed_of(&reveals, &User(users[0])), Some(b"reveal-0".as_slice()));
    assert_eq!(sealed_of(&reveals, &User(users[1])), Some(b"reveal-1".as_slice()));
    assert_eq!(sealed_of(&reveals, &User(users[2])), None, "no reveal, no value");
    let outbox = sealed_column(store, OutboxText).await;
    for (i, id) in msgs.iter().enumerate() {
        assert_eq!(sealed_of(&outbox, &Message(*id)), Some([0xB0, i as u8].as_slice()));
    }
    let meta = sealed_column(store, Meta).await;
    assert_eq!(sealed_of(&meta, &Name("conformance-sealed:a".into())), Some(b"meta-a".as_slice()));
    assert_eq!(sealed_of(&meta, &Name("conformance-sealed:b".into())), Some(b"meta-b".as_slice()));

    // A swap replaces the value only while it is the old one, and nothing else of the row.
    let swaps = [
        swap(User(users[0]), &[0xA0, 0], b"new-0"),
        swap(User(users[1]), b"not the value", b"new-1"),
        swap(User(ids.user()), &[0xA0, 0], b"no such row"),
        swap(Message(msgs[0]), &[0xB0, 0], b"another column's owner"),
    ];
    assert_eq!(
        store.swap_sealed(TotpSecret, &swaps).await.unwrap(),
        vec![true, false, false, false],
        "a swap MUST be a compare-and-set of the owner's value in that column"
    );
    assert_eq!(
        store.totp(users[0]).await.unwrap(),
        Some(TotpRecord { sealed_secret: b"new-0".to_vec(), activated: true, last_step: Some(42) }),
        "a swap MUST change nothing but the value"
    );
    assert_eq!(store.totp(users[1]).await.unwrap().unwrap().sealed_secret, vec![0xA0, 1]);
    assert_eq!(store.backup_codes(users[0]).await.unwrap().len(), 1);

    let r = store.swap_sealed(BackupReveal, &[swap(User(users[0]), b"reveal-0", b"r0")]).await;
    assert_eq!(r.unwrap(), vec![true]);
    assert_eq!(
        store.take_backup_reveal(users[0]).await.unwrap().as_deref(),
        Some(b"r0".as_slice())
    );
    let r = store.swap_sealed(BackupReveal, &[swap(User(users[0]), b"r0", b"r1")]).await;
    assert_eq!(r.unwrap(), vec![false], "a taken reveal is gone");

    let r = store.swap_sealed(OutboxText, &[swap(Message(msgs[1]), &[0xB0, 1], b"text-1")]).await;
    assert_eq!(r.unwrap(), vec![true]);
    let recent = store.recent_sms(1000).await.unwrap();
    let m = recent.iter().find(|m| m.id == msgs[1]).expect("the message");
    assert_eq!(
        (m.sealed_text.as_slice(), m.to.as_str(), m.attempts, m.created_at, m.sent_at),
        (b"text-1".as_slice(), "74444444441", 0, t0(), None)
    );

    let a = "conformance-sealed:a";
    let r = store.swap_sealed(Meta, &[swap(Name(a.into()), b"meta-a", b"meta-a2")]).await;
    assert_eq!(r.unwrap(), vec![true]);
    assert_eq!(store.meta(a).await.unwrap(), Some(b"meta-a2".to_vec()));

    // Concurrent swaps of one value from the same old bytes: exactly one wins, and its value stays.
    let contested = users[2];
    let racing = join_all((0..8u8).map(|i| async move {
        let w = [swap(User(contested), &[0xA0, 2], &[0xC0, i])];
        (i, store.swap_sealed(TotpSecret, &w).await.unwrap())
    }))
    .await;
    let winners: Vec<u8> = racing.iter().filter(|(_, r)| r == &[true]).map(|(i, _)| *i).collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent swap MUST win: {racing:?}");
    assert_eq!(store.totp(users[2]).await.unwrap().unwrap().sealed_secret, vec![0xC0, winners[0]]);

    // replace_meta: a compare-and-set too.
    let b = "conformance-sealed:b";
    assert!(!store.replace_meta(b, b"not the value", b"x").await.unwrap());
    assert!(!store.replace_meta("conformance-sealed:missing", b"", b"x").await.unwrap());
    assert_eq!(store.meta("conformance-sealed:missing").await.unwrap(), None, "no insert");
    assert!(store.replace_meta(b, b"meta-b", b"meta-b2").await.unwrap());
    assert_eq!(store.meta(b).await.unwrap(), Some(b"meta-b2".to_vec()));
    let racing = join_all(
        (0..8u8).map(|i| async move { store.replace_meta(b, b"meta-b2", &[i]).await.unwrap() }),
    )
    .await;
    assert_eq!(racing.iter().filter(|w| **w).count(), 1, "exactly one replace MUST win");
}

/// Credentials of every kind round-trip; the upgrade at login is a compare-and-set that leaves the
/// revision and the tokens alone; profile updates from a directory or an import; bulk inserts.
pub async fn credentials(store: &dyn Store) {
    let ids = Ids::new(21);
    let p = ids.portal();
    store.insert_portal(&portal(p, &["credentials.example.com"])).await.unwrap();
    let upstream = crate::upstream::UpstreamHash::from_pwdhash(
        "0a1b2c3d",
        ids.user(),
        "7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ==",
    )
    .unwrap();
    let kinds = [
        Credential::Upstream(upstream),
        Credential::Directory("corp".into()),
        Credential::None,
        Credential::Password(PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")),
    ];
    let mut users = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let mut u = user(ids.user(), p, &format!("kind{i}@example.com"));
        u.credential = kind.clone();
        store.insert_user(&u).await.unwrap();
        assert_eq!(store.user_by_id(u.id).await.unwrap().unwrap().credential, *kind);
        users.push(u);
    }
    let legacy = &users[0];
    let token = token_record([77; 32], legacy.id, p, t0(), later(t0(), secs(600)));
    assert!(store.insert_token(&token, Revisions { user: 0, portal: 0 }).await.unwrap());
    let new = PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$bmV3$bmV3");
    assert!(
        !store.upgrade_credential(legacy.id, &kinds[2], &new).await.unwrap(),
        "the upgrade MUST only replace the credential it verified"
    );
    assert!(store.upgrade_credential(legacy.id, &legacy.credential, &new).await.unwrap());
    assert!(
        !store.upgrade_credential(legacy.id, &legacy.credential, &new).await.unwrap(),
        "a second upgrade of the same old credential MUST fail"
    );
    let got = store.user_by_id(legacy.id).await.unwrap().unwrap();
    assert_eq!(got.credential, Credential::Password(new));
    assert_eq!(got.revision, 0, "an upgrade MUST NOT bump the revision");
    assert!(store.token_by_hash(&token.hash).await.unwrap().is_some(), "nor end tokens");

    let mut dir = users[1].clone();
    dir.email = "Renamed@Example.com".into();
    dir.first_name = "Re".into();
    dir.last_name = "Named".into();
    dir.is_admin = true;
    dir.phone = Some("79123456789".into());
    dir.phone_activated = false;
    dir.credential = Credential::Directory("other".into());
    assert!(store.update_user(&dir).await.unwrap());
    assert_eq!(store.user_by_email(p, "renamed@example.com").await.unwrap(), Some(dir.clone()));
    let mut clash = dir.clone();
    clash.email = "KIND2@example.com".into();
    assert!(
        matches!(store.update_user(&clash).await, Err(StoreError::Conflict(_))),
        "an e-mail of another user of the portal MUST conflict"
    );
    assert!(!store.update_user(&user(ids.user(), p, "ghost@example.com")).await.unwrap());

    let batch = vec![
        user(ids.user(), p, "bulk1@example.com"),
        user(ids.user(), p, "KIND2@example.com"),
        user(users[3].id, p, "bulk-dup-id@example.com"),
        user(ids.user(), p, "bulk2@example.com"),
        user(ids.user(), p, "BULK1@example.com"),
    ];
    assert_eq!(
        store.insert_users(&batch).await.unwrap(),
        vec![true, false, false, true, false],
        "existing ids and e-mails, also within the batch, MUST be left out"
    );
    assert_eq!(store.user_by_email(p, "bulk2@example.com").await.unwrap(), Some(batch[3].clone()));
    assert_eq!(store.insert_users(&[]).await.unwrap(), Vec::<bool>::new());
}

/// An imported enrolment: stored with its codes and used flags in one step, never over one made
/// here; used flags only ever go from unused to used.
pub async fn imported_totp(store: &dyn Store) {
    let ids = Ids::new(22);
    let u = ids.user();
    let codes = [
        BackupCodeRecord { code_hash: [1; 32], used: false },
        BackupCodeRecord { code_hash: [2; 32], used: true },
        BackupCodeRecord { code_hash: [3; 32], used: false },
    ];
    assert!(store.import_totp(u, b"sealed", true, &codes).await.unwrap());
    assert!(
        !store.import_totp(u, b"other", false, &[]).await.unwrap(),
        "an enrolment MUST NOT be replaced"
    );
    let r = store.totp(u).await.unwrap().unwrap();
    assert_eq!((r.sealed_secret.as_slice(), r.activated), (b"sealed".as_slice(), true));
    assert_eq!(store.backup_codes(u).await.unwrap(), codes.to_vec());
    assert!(!store.use_backup_code(u, &[2; 32]).await.unwrap(), "an imported used code stays used");
    assert!(store.use_backup_code(u, &[1; 32]).await.unwrap());
    assert_eq!(store.mark_backup_codes_used(u, &[[1; 32], [3; 32], [9; 32]]).await.unwrap(), 1);
    assert!(store.backup_codes(u).await.unwrap().iter().all(|c| c.used));

    let pending = ids.user();
    assert!(store.import_totp(pending, b"s2", false, &[]).await.unwrap());
    assert!(!store.totp(pending).await.unwrap().unwrap().activated);
    assert!(!store.create_totp(pending, b"s3").await.unwrap(), "an imported secret is the secret");
}

fn granted(a: &Acquire) -> bool {
    matches!(a, Acquire::Granted(_))
}

/// Counters: the limit, release, record, reset, expiry, the block, and exactness under races.
pub async fn counters(store: &dyn Store) {
    // count_since: the events of one key from an instant on, whatever their rule.
    let seen = Rule::per(1, secs(3600));
    let k = "conformance:count";
    assert_eq!(store.count_since(k, t0()).await.unwrap(), 0);
    store.record(k, &seen, later(t0(), secs(10))).await.unwrap();
    store.record(k, &seen, later(t0(), secs(20))).await.unwrap();
    store.record("conformance:other", &seen, later(t0(), secs(20))).await.unwrap();
    assert_eq!(store.count_since(k, t0()).await.unwrap(), 2);
    assert_eq!(store.count_since(k, later(t0(), secs(20))).await.unwrap(), 1, "at or after");
    assert_eq!(store.count_since(k, later(t0(), secs(21))).await.unwrap(), 0);

    let rule = Rule::new(3, secs(60), secs(120));
    let k = "conformance:basic";
    let mut slots = Vec::new();
    for i in 0..3 {
        match store.acquire(k, &rule, later(t0(), secs(i))).await.unwrap() {
            Acquire::Granted(s) => slots.push(s),
            other => panic!("attempt {i} MUST be granted, got {other:?}"),
        }
    }
    let now = later(t0(), secs(5));
    let want_until = later(t0(), secs(2 + 120));
    assert_eq!(
        store.acquire(k, &rule, now).await.unwrap(),
        Acquire::Refused { until: want_until },
        "the limit MUST hold"
    );
    // The block stands even if a slot is released: refusals are decided by the stored block first.
    store.release(slots[0]).await.unwrap();
    assert_eq!(
        store.acquire(k, &rule, later(now, secs(30))).await.unwrap(),
        Acquire::Refused { until: want_until }
    );
    assert!(
        granted(&store.acquire(k, &rule, want_until).await.unwrap()),
        "the block MUST end on time"
    );

    let k2 = "conformance:release";
    let a = store.acquire(k2, &rule, t0()).await.unwrap();
    let Acquire::Granted(slot) = a else { panic!("granted") };
    store.release(slot).await.unwrap();
    for _ in 0..3 {
        assert!(
            granted(&store.acquire(k2, &rule, t0()).await.unwrap()),
            "a released slot MUST not count"
        );
    }
    assert!(!granted(&store.acquire(k2, &rule, t0()).await.unwrap()));
    store.reset(k2).await.unwrap();
    assert!(
        granted(&store.acquire(k2, &rule, t0()).await.unwrap()),
        "reset MUST clear events and block"
    );

    let k3 = "conformance:record";
    let once = Rule::per(1, secs(30));
    store.record(k3, &once, t0()).await.unwrap();
    assert_eq!(
        store.acquire(k3, &once, later(t0(), secs(10))).await.unwrap(),
        Acquire::Refused { until: later(t0(), secs(30)) }
    );
    assert!(
        granted(&store.acquire(k3, &once, later(t0(), secs(30))).await.unwrap()),
        "events MUST leave the window"
    );

    let k5 = "conformance:purge";
    let p_rule = Rule::new(2, secs(10), secs(10));
    store.acquire(k5, &p_rule, t0()).await.unwrap();
    store.acquire(k5, &p_rule, later(t0(), secs(1))).await.unwrap();
    assert!(!granted(&store.acquire(k5, &p_rule, later(t0(), secs(2))).await.unwrap()));
    let known = format!("{}conformance", crate::throttle::keys::KNOWN_PREFIX);
    store.record(&known, &Rule::per(1, secs(100_000)), later(t0(), secs(1))).await.unwrap();
    let purged = store.purge_counters(later(t0(), secs(1_000)), t0()).await.unwrap();
    assert!(purged >= 2, "old events of every key MUST go, got {purged}");
    assert_eq!(
        store.count_since(&known, t0()).await.unwrap(),
        1,
        "known-client keys MUST go only by their own cutoff"
    );
    store.purge_counters(t0(), later(t0(), secs(2))).await.unwrap();
    assert_eq!(store.count_since(&known, t0()).await.unwrap(), 0, "and then they MUST go");
    assert!(
        granted(&store.acquire(k5, &p_rule, later(t0(), secs(1_000))).await.unwrap()),
        "an ended block MUST go"
    );
    // A purge before the events leaves the limit alone.
    store.acquire(k5, &p_rule, later(t0(), secs(1_001))).await.unwrap();
    store.purge_counters(later(t0(), secs(500)), later(t0(), secs(500))).await.unwrap();
    assert!(
        !granted(&store.acquire(k5, &p_rule, later(t0(), secs(1_002))).await.unwrap()),
        "recent events MUST stay"
    );

    let k4 = "conformance:race";
    let five = Rule::per(5, secs(60));
    let results = join_all((0..25).map(|_| store.acquire(k4, &five, t0()))).await;
    let n = results.into_iter().filter(|r| granted(r.as_ref().unwrap())).count();
    assert_eq!(n, 5, "exactly the limit MUST be granted under concurrency");

    paired_counters(store).await;
}

/// `acquire_then` and `release_all`: the pair a login takes and gives back in one call each.
async fn paired_counters(store: &dyn Store) {
    let (first, second) = ("conformance:pair:first", "conformance:pair:second");
    let two = Rule::new(2, secs(60), secs(120));
    let three = Rule::new(3, secs(60), secs(120));
    // The first refuses after two: the second is then not asked, so it counts only two events.
    let mut taken = Vec::new();
    for i in 0..2 {
        let pair = store.acquire_then((first, &two), (second, &three), t0()).await.unwrap();
        let AcquireThen::Granted(a, Acquire::Granted(b)) = pair else {
            panic!("pair {i} MUST be granted on both keys, got {pair:?}")
        };
        taken.extend([a, b]);
    }
    let pair = store.acquire_then((first, &two), (second, &three), t0()).await.unwrap();
    assert!(matches!(pair, AcquireThen::Refused { .. }), "the first key's limit MUST hold");
    assert_eq!(store.count_since(second, t0()).await.unwrap(), 2, "the second was not counted");
    assert_eq!(store.count_since(first, t0()).await.unwrap(), 2, "a refusal records nothing");
    // Now refused by the block that refusal stored: still nothing recorded on either key.
    let pair = store.acquire_then((first, &two), (second, &three), t0()).await.unwrap();
    assert!(matches!(pair, AcquireThen::Refused { .. }), "the first key's block MUST hold");
    assert_eq!(store.count_since(first, t0()).await.unwrap(), 2, "a blocked key records nothing");
    assert_eq!(store.count_since(second, t0()).await.unwrap(), 2, "the second was not counted");

    // A refused second leaves the first granted.
    let (third, fourth) = ("conformance:pair:third", "conformance:pair:fourth");
    let one = Rule::per(1, secs(60));
    store.record(fourth, &one, t0()).await.unwrap();
    let pair = store.acquire_then((third, &two), (fourth, &one), t0()).await.unwrap();
    let AcquireThen::Granted(_, b) = pair else {
        panic!("the first MUST be granted whatever the second answers, got {pair:?}")
    };
    assert!(matches!(b, Acquire::Refused { .. }), "the second's limit MUST hold, got {b:?}");
    assert_eq!(store.count_since(third, t0()).await.unwrap(), 1);
    assert_eq!(
        store.count_since(fourth, t0()).await.unwrap(),
        1,
        "a refused second records nothing"
    );

    // release_all gives back every slot it names, and nothing else.
    let k = "conformance:release_all";
    let mut slots = Vec::new();
    for _ in 0..3 {
        let Acquire::Granted(s) = store.acquire(k, &three, t0()).await.unwrap() else {
            panic!("granted")
        };
        slots.push(s);
    }
    store.release_all(&slots[..2]).await.unwrap();
    assert_eq!(store.count_since(k, t0()).await.unwrap(), 1, "two of three released");
    store.release_all(&[]).await.unwrap();
    store.release_all(&taken).await.unwrap();
    assert_eq!(store.count_since(first, t0()).await.unwrap(), 0);
    assert_eq!(store.count_since(second, t0()).await.unwrap(), 0);

    // Concurrent pairs on one account key: exactly its limit is granted across them.
    let account = "conformance:pair:account";
    let four = Rule::per(4, secs(60));
    let keys: Vec<String> = (0..12).map(|i| format!("conformance:pair:login{i}")).collect();
    let results =
        join_all(keys.iter().map(|k| store.acquire_then((k, &four), (account, &four), t0()))).await;
    let n = results
        .into_iter()
        .filter(|r| matches!(r.as_ref().unwrap(), AcquireThen::Granted(_, Acquire::Granted(_))))
        .count();
    assert_eq!(n, 4, "exactly the second key's limit MUST be granted under concurrency");
}

/// Audit: newest first, filters, limit.
pub async fn audit(store: &dyn Store) {
    let ids = Ids::new(7);
    let (p, u) = (ids.portal(), ids.user());
    let ev = |i: i64, action, user| AuditEvent {
        at: later(t0(), secs(i)),
        portal: p,
        user,
        login: Some("ada@example.com".into()),
        action,
        ip: "192.0.2.1".parse().unwrap(),
        user_agent: Some("conformance".into()),
        reason: Some(format!("event {i}")),
    };
    for (i, (a, who)) in [
        (AuditAction::LoginFailViaApi, None),
        (AuditAction::LoginSuccessViaApi, Some(u)),
        (AuditAction::Logout, Some(u)),
        (AuditAction::LoginFailViaApi, Some(u)),
    ]
    .into_iter()
    .enumerate()
    {
        store.append_audit(&ev(i as i64, a, who)).await.unwrap();
    }
    let all = store
        .recent_audit(&AuditFilter { portal: Some(p), ..Default::default() }, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all[0],
        ev(3, AuditAction::LoginFailViaApi, Some(u)),
        "newest first, every field kept"
    );
    assert_eq!(all[3].user, None);
    let fails = store
        .recent_audit(
            &AuditFilter {
                portal: Some(p),
                action: Some(AuditAction::LoginFailViaApi),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(fails.len(), 2);
    let mine =
        store.recent_audit(&AuditFilter { user: Some(u), ..Default::default() }, 2).await.unwrap();
    assert_eq!(
        mine.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![AuditAction::LoginFailViaApi, AuditAction::Logout]
    );
}

/// Outbox: due order, leases, failure and retry, sent messages leave, concurrent claims never overlap.
pub async fn outbox(store: &dyn Store) {
    let ids = Ids::new(8);
    let p = ids.portal();
    let msg = |to: &str| NewOutboxMessage {
        portal: p,
        to: to.into(),
        sealed_text: vec![1, 2, 3],
        created_at: t0(),
    };
    let a = store.enqueue_sms(&msg("71111111111")).await.unwrap();
    let b = store.enqueue_sms(&msg("72222222222")).await.unwrap();
    let lease = secs(60);
    let claimed = store.claim_due_sms(t0(), lease, 10, 7).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a, b], "oldest first");
    assert_eq!(claimed[0].sealed_text, vec![1, 2, 3]);
    assert!(
        store.claim_due_sms(later(t0(), secs(1)), lease, 10, 8).await.unwrap().is_empty(),
        "a lease MUST keep others away"
    );
    assert!(!store.mark_sms_sent(a, 8, later(t0(), secs(2))).await.unwrap(), "not our claim");
    assert!(store.renew_sms_claim(a, 7, later(t0(), secs(90))).await.unwrap());
    assert!(store.mark_sms_sent(a, 7, later(t0(), secs(2))).await.unwrap());
    assert!(!store.mark_sms_sent(a, 7, later(t0(), secs(3))).await.unwrap(), "sent once");
    assert!(!store.renew_sms_claim(a, 7, later(t0(), secs(90))).await.unwrap(), "sent: no renew");
    assert!(store.mark_sms_failed(b, 7, later(t0(), secs(5)), "gateway down").await.unwrap());
    let again = store.claim_due_sms(later(t0(), secs(5)), lease, 10, 9).await.unwrap();
    assert_eq!(again.len(), 1, "sent messages MUST not be claimed again");
    assert_eq!(
        (again[0].id, again[0].attempts, again[0].last_error.as_deref()),
        (b, 1, Some("gateway down"))
    );
    // The first claimant's lease ran out and another took the message: its result is refused.
    assert!(!store.renew_sms_claim(b, 7, later(t0(), secs(70))).await.unwrap());
    assert!(!store.mark_sms_failed(b, 7, later(t0(), secs(9)), "late").await.unwrap());
    assert!(!store.mark_sms_sent(b, 7, later(t0(), secs(9))).await.unwrap(), "a lost lease");
    let recent = store.recent_sms(10).await.unwrap();
    assert_eq!(recent.first().map(|m| m.id), Some(b), "newest first");
    assert!(recent.iter().any(|m| m.id == a && m.sent_at == Some(later(t0(), secs(2)))));
    assert!(recent.iter().any(|m| m.id == b && m.sent_at.is_none() && m.attempts == 1));

    for i in 0..10 {
        store.enqueue_sms(&msg(&format!("7333333333{i}"))).await.unwrap();
    }
    let t = later(t0(), secs(1000));
    let rounds = join_all((0..5i64).map(|c| store.claim_due_sms(t, lease, 4, 100 + c))).await;
    let mut seen: Vec<i64> = rounds.into_iter().flat_map(|r| r.unwrap()).map(|m| m.id).collect();
    let total = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "concurrent claims MUST never hand one message to two workers");
    assert_eq!(total, 11, "every due message is claimed once");
}

/// The e-mail channel: its messages are claimed only by the e-mail worker and the SMS channel's
/// only by the SMS worker, while renewals and results work by id on either.
pub async fn mail_channel(store: &dyn Store) {
    let ids = Ids::new(41);
    let p = ids.portal();
    let msg = |to: &str| NewOutboxMessage {
        portal: p,
        to: to.into(),
        sealed_text: vec![4, 5, 6],
        created_at: later(t0(), secs(5000)),
    };
    let t = later(t0(), secs(5000));
    let lease = secs(60);
    // Whatever earlier checks left due is claimed away first, so this check sees only its own.
    store.claim_due(Channel::Sms, t, secs(1_000_000), 1000, 1).await.unwrap();
    store.claim_due(Channel::Email, t, secs(1_000_000), 1000, 1).await.unwrap();
    let t = later(t, secs(1));
    let mail = store.enqueue_mail(&msg("someone@example.com")).await.unwrap();
    let sms = store.enqueue_sms(&msg("74444444444")).await.unwrap();
    let claimed = store.claim_due(Channel::Email, t, lease, 10, 31).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![mail], "e-mail only");
    assert_eq!(claimed[0].channel, Channel::Email);
    assert_eq!(claimed[0].to, "someone@example.com");
    let claimed = store.claim_due_sms(t, lease, 10, 32).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![sms], "SMS only");
    assert_eq!(claimed[0].channel, Channel::Sms);
    assert!(store.mark_sms_sent(mail, 31, t).await.unwrap(), "results work on e-mail by id");
    let recent = store.recent_sms(10).await.unwrap();
    assert!(
        recent.iter().any(|m| m.id == mail && m.channel == Channel::Email && m.sent_at == Some(t))
    );
}

/// Reset keys: stored under their hash, taken once (of concurrent takes exactly one wins), expired
/// ones purged and fresh ones kept.
pub async fn reset_keys(store: &dyn Store) {
    let ids = Ids::new(42);
    let (user, portal) = (ids.user(), ids.portal());
    let key = |expires_at| ResetKey { user, portal, revision: 3, created_at: t0(), expires_at };
    let fresh = key(later(t0(), secs(3600)));
    store.insert_reset_key(&[1; 32], &fresh).await.unwrap();
    store.insert_reset_key(&[2; 32], &key(later(t0(), secs(10)))).await.unwrap();
    store.insert_reset_key(&[3; 32], &fresh).await.unwrap();
    assert_eq!(store.take_reset_key(&[9; 32]).await.unwrap(), None, "an unknown hash");
    let wins = join_all((0..10).map(|_| store.take_reset_key(&[1; 32]))).await;
    let got: Vec<ResetKey> = wins.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![fresh.clone()], "a key MUST be taken exactly once");
    assert_eq!(store.purge_reset_keys(later(t0(), secs(60))).await.unwrap(), 1, "the expired one");
    assert_eq!(store.take_reset_key(&[2; 32]).await.unwrap(), None, "purged");
    assert_eq!(store.take_reset_key(&[3; 32]).await.unwrap(), Some(fresh), "kept");
}

/// Outbox stats: waiting messages are counted with the oldest's enqueue time; sent and given-up ones
/// leave the count. Measured as a change, so messages earlier checks left behind do not matter.
pub async fn outbox_stats(store: &dyn Store) {
    let ids = Ids::new(24);
    let p = ids.portal();
    // A day before every other check's messages, so these are the oldest and the only ones due.
    let start = later(t0(), -secs(86_400));
    let before = store.outbox_stats().await.unwrap();
    let msg = |to: &str, at: Timestamp| NewOutboxMessage {
        portal: p,
        to: to.into(),
        sealed_text: vec![9],
        created_at: at,
    };
    let a = store.enqueue_sms(&msg("74444444440", start)).await.unwrap();
    let b = store.enqueue_sms(&msg("74444444441", later(start, secs(1)))).await.unwrap();
    let c = store.enqueue_sms(&msg("74444444442", later(start, secs(2)))).await.unwrap();
    let now = store.outbox_stats().await.unwrap();
    assert_eq!(now.pending, before.pending + 3, "every waiting message MUST be counted");
    assert_eq!(now.oldest, Some(start), "the oldest waiting message's enqueue time");

    let claimed = store.claim_due_sms(later(start, secs(5)), secs(60), 10, 31).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a, b, c]);
    // A claimed message still waits: a lease is not a delivery.
    assert_eq!(store.outbox_stats().await.unwrap().pending, before.pending + 3);
    assert!(store.mark_sms_sent(a, 31, later(start, secs(6))).await.unwrap());
    assert!(store.mark_sms_failed(b, 31, Timestamp::MAX, "given up").await.unwrap());
    assert!(store.mark_sms_failed(c, 31, later(start, secs(9)), "retry").await.unwrap());
    let after = store.outbox_stats().await.unwrap();
    assert_eq!(
        after.pending,
        before.pending + 1,
        "sent and given-up messages MUST leave the count"
    );
    assert_eq!(after.oldest, Some(later(start, secs(2))), "a retried message still waits");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn mem_store_conforms() {
        let store = super::super::MemStore::new();
        super::run(&store).await;
    }
}

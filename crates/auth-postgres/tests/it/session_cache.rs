//! The per-node session cache (issue 18): two stores on one database, as two nodes hold them. Node B
//! caches a session; node A changes what it depends on through every port method that can; B's very
//! next lookup must agree with the database. A missed invalidation fails here, and a control case shows
//! that a change made behind the store's back is indeed served stale, so the cache really answered.

use std::time::Duration;

use auth_core::model::Credential;
use auth_core::password::PasswordHash;
use auth_core::ports::{PortalStore, Revisions, TokenRecord, TokenStore, UserStore};
use auth_core::{Portal, PortalId, PortalSettings, SignedDuration, Timestamp, User, UserId};
use auth_postgres::{PgOptions, PgStore};

use crate::common::{TestDb, client};

fn t0() -> Timestamp {
    Timestamp::constant(1_768_031_184, 123_456_789)
}

fn phc(salt: &str) -> PasswordHash {
    PasswordHash::from_phc(format!("$argon2id$v=19$m=8,t=1,p=1${salt}$aGFzaA"))
}

/// A user, a portal and two tokens of the user, stored through `a`; the tag keeps cases apart.
struct Fixture {
    user: User,
    portal: Portal,
    token: TokenRecord,
    other: TokenRecord,
}

async fn fixture(a: &PgStore, tag: u8) -> Fixture {
    let portal = Portal {
        id: PortalId::from_random_bytes([tag; 16]),
        name: format!("portal {tag}"),
        hosts: vec![format!("p{tag}.example")],
        settings: PortalSettings::default(),
        created_at: t0(),
        revision: 0,
    };
    let user = User {
        id: UserId::from_random_bytes([tag; 16]),
        portal: portal.id,
        email: format!("u{tag}@example.com"),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        is_admin: false,
        disabled: false,
        credential: Credential::Password(phc("c2FsdA")),
        phone: None,
        phone_activated: false,
        created_at: t0(),
        revision: 0,
    };
    a.insert_portal(&portal).await.unwrap();
    a.insert_user(&user).await.unwrap();
    let token = |n: u8| -> TokenRecord {
        let mut hash = [7; 32];
        hash[0] = tag;
        hash[1] = n;
        let expires = t0().checked_add(SignedDuration::from_secs(3600)).unwrap();
        auth_core::testkit::token_record(hash, user.id, portal.id, t0(), expires)
    };
    let (token, other) = (token(1), token(2));
    for t in [&token, &other] {
        assert!(a.insert_token(t, Revisions { user: 0, portal: 0 }).await.unwrap());
    }
    Fixture { user, portal, token, other }
}

/// Looks `hash` up on `b` until its cache answers (its listener may still be connecting).
async fn until_cached(b: &PgStore, hash: &[u8; 32]) {
    for _ in 0..500 {
        let before = b.session_cache_stats().unwrap().hits;
        assert!(b.session_by_token_hash(hash).await.unwrap().is_some());
        if b.session_cache_stats().unwrap().hits > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("node B's cache never answered");
}

/// What the database says, without any cache: the token, then its user.
async fn truth(store: &PgStore, hash: &[u8; 32]) -> Option<(TokenRecord, User)> {
    let token = store.token_by_hash(hash).await.unwrap()?;
    let user = store.user_by_id(token.user).await.unwrap()?;
    Some((token, user))
}

/// Every port method that changes what a cached session depends on.
#[derive(Clone, Copy, Debug)]
enum Action {
    RevokeToken,
    RevokeUserTokens,
    RevokeUserTokensExceptThis,
    RevokeUserTokensExceptOther,
    RevokePortalTokens,
    UpdatePortalEndingTokens,
    UpdatePortalKeepingTokens,
    Disable,
    SetPassword,
    SetPasswordKeepingThis,
    UpdateUser,
    SetPhone,
    SetPhoneIfUnactivated,
    ActivatePhone,
    UpgradeCredential,
    RevokeUserTokenById,
    TouchToken,
}

async fn perform(a: &PgStore, f: &Fixture, action: Action) {
    let id = f.user.id;
    match action {
        Action::RevokeToken => assert!(a.revoke_token(&f.token.hash).await.unwrap()),
        Action::RevokeUserTokens => assert_eq!(a.revoke_user_tokens(id).await.unwrap(), 2),
        Action::RevokeUserTokensExceptThis => {
            assert_eq!(a.revoke_user_tokens_except(id, &f.token.hash).await.unwrap(), 1);
        }
        Action::RevokeUserTokensExceptOther => {
            assert_eq!(a.revoke_user_tokens_except(id, &f.other.hash).await.unwrap(), 1);
        }
        Action::RevokePortalTokens => {
            assert_eq!(a.revoke_portal_tokens(f.portal.id).await.unwrap(), 2);
        }
        Action::UpdatePortalEndingTokens | Action::UpdatePortalKeepingTokens => {
            let p = Portal { name: "renamed".into(), ..f.portal.clone() };
            let end = matches!(action, Action::UpdatePortalEndingTokens);
            assert!(a.update_portal(&p, end).await.unwrap());
        }
        Action::Disable => assert!(a.set_disabled(id, true).await.unwrap()),
        Action::SetPassword => assert!(a.set_password_hash(id, &phc("bmV3")).await.unwrap()),
        Action::SetPasswordKeepingThis => {
            assert!(a.set_password_hash_keeping(id, &phc("bmV3"), &f.token.hash).await.unwrap());
        }
        Action::UpdateUser => {
            let u = User { first_name: "Augusta".into(), is_admin: true, ..f.user.clone() };
            assert!(a.update_user(&u).await.unwrap());
        }
        Action::SetPhone => assert!(a.set_phone(id, Some("79123456789"), true).await.unwrap()),
        Action::SetPhoneIfUnactivated => {
            assert!(a.set_phone_if_unactivated(id, "79123456789").await.unwrap());
        }
        Action::ActivatePhone => assert!(a.activate_phone(id, "79000000000").await.unwrap()),
        Action::UpgradeCredential => {
            assert!(a.upgrade_credential(id, &f.user.credential, &phc("dXA")).await.unwrap());
        }
        Action::RevokeUserTokenById => assert!(a.revoke_user_token(id, f.token.id).await.unwrap()),
        Action::TouchToken => {
            let at = t0().checked_add(SignedDuration::from_secs(600)).unwrap();
            assert_eq!(a.touch_tokens(&[(f.token.hash, at)]).await.unwrap(), 1);
        }
    }
}

/// B caches the session, A acts, and B's next lookup must be what the database says; `gone` says
/// whether the token is meant to be revoked (so the check cannot pass by both being stale).
async fn check(a: &PgStore, b: &PgStore, tag: u8, action: Action, gone: bool) {
    let f = fixture(a, tag).await;
    if matches!(action, Action::ActivatePhone) {
        assert!(a.set_phone(f.user.id, Some("79000000000"), false).await.unwrap());
    }
    until_cached(b, &f.token.hash).await;
    let cached = b.session_by_token_hash(&f.token.hash).await.unwrap();
    perform(a, &f, action).await;
    let mut seen = b.session_by_token_hash(&f.token.hash).await.unwrap();
    if matches!(action, Action::TouchToken) {
        // "Last used" is not part of the exactness promise (it is coalesced by minutes anyway):
        // the writer does not wait for the other nodes, so B agrees as soon as the
        // notification arrives, which must be soon.
        let want = truth(b, &f.token.hash).await;
        for _ in 0..200 {
            if seen == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            seen = b.session_by_token_hash(&f.token.hash).await.unwrap();
        }
    }
    let want = truth(b, &f.token.hash).await;
    assert_eq!(seen, want, "{action:?}: node B MUST answer what the database says");
    assert_eq!(want.is_none(), gone, "{action:?}: the case itself");
    if !gone {
        assert_ne!(seen, cached, "{action:?}: the change MUST be visible");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_the_other_nodes_cache_by_its_next_lookup() {
    let Some(db) = TestDb::create("session_cache_changes").await else { return };
    let a = PgStore::connect(&db.url, 4).await.unwrap();
    let b = PgStore::connect(&db.url, 4).await.unwrap();
    let cases = [
        (Action::RevokeToken, true),
        (Action::RevokeUserTokens, true),
        (Action::RevokeUserTokensExceptThis, false),
        (Action::RevokeUserTokensExceptOther, true),
        (Action::RevokePortalTokens, true),
        (Action::UpdatePortalEndingTokens, true),
        (Action::Disable, true),
        (Action::SetPassword, true),
        (Action::SetPasswordKeepingThis, false),
        (Action::UpdateUser, false),
        (Action::SetPhone, false),
        (Action::SetPhoneIfUnactivated, false),
        (Action::ActivatePhone, false),
        (Action::UpgradeCredential, false),
        (Action::RevokeUserTokenById, true),
        (Action::TouchToken, false),
    ];
    for (i, (action, gone)) in cases.into_iter().enumerate() {
        check(&a, &b, u8::try_from(i + 1).unwrap(), action, gone).await;
    }

    // A portal update that keeps tokens changes nothing a session holds: B may keep serving it.
    let f = fixture(&a, 100).await;
    until_cached(&b, &f.token.hash).await;
    perform(&a, &f, Action::UpdatePortalKeepingTokens).await;
    assert_eq!(
        b.session_by_token_hash(&f.token.hash).await.unwrap(),
        truth(&b, &f.token.hash).await
    );

    // Enabling a disabled user: a token stored after the disable (at the new revision) is cached
    // with the flag set, and must come back with it cleared.
    let f = fixture(&a, 101).await;
    assert!(a.set_disabled(f.user.id, true).await.unwrap());
    let t = TokenRecord { hash: [101; 32], ..f.token.clone() };
    assert!(a.insert_token(&t, Revisions { user: 1, portal: 0 }).await.unwrap());
    until_cached(&b, &t.hash).await;
    assert!(a.set_disabled(f.user.id, false).await.unwrap());
    let seen = b.session_by_token_hash(&t.hash).await.unwrap().unwrap();
    assert!(!seen.1.disabled, "enabling MUST reach node B's cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_behind_the_stores_back_is_stale_until_a_flush_notification() {
    let Some(db) = TestDb::create("session_cache_behind_back").await else { return };
    let a = PgStore::connect(&db.url, 4).await.unwrap();
    let b = PgStore::connect(&db.url, 4).await.unwrap();
    let f = fixture(&a, 1).await;
    until_cached(&b, &f.token.hash).await;
    let sql = client(&db.url).await;
    // Without the notification the store's own writes send, B's cache cannot know: this is what the
    // test above would see for a path that forgot to notify.
    sql.execute("DELETE FROM tokens WHERE hash = $1", &[&f.token.hash.as_slice()]).await.unwrap();
    assert!(b.session_by_token_hash(&f.token.hash).await.unwrap().is_some(), "served stale");
    // An operator's flush reaches every node (the writer waits out the lease, as the store does).
    sql.batch_execute("NOTIFY auth_sessions, '*'").await.unwrap();
    tokio::time::sleep(Duration::from_millis(110)).await;
    assert_eq!(b.session_by_token_hash(&f.token.hash).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_flushed_when_its_listener_drops_and_serves_again_after() {
    let Some(db) = TestDb::create("session_cache_listener_drops").await else { return };
    let a = PgStore::connect(&db.url, 4).await.unwrap();
    let b = PgStore::connect(&db.url, 4).await.unwrap();
    let f = fixture(&a, 1).await;
    until_cached(&b, &f.token.hash).await;
    let sql = client(&db.url).await;
    // End every listening session on this database: their last query is the probe.
    let n = sql
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'SELECT 1' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(n >= 1, "the listeners were found");
    for _ in 0..500 {
        if b.session_cache_stats().unwrap().entries == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.session_cache_stats().unwrap().entries, 0, "a dropped listener MUST flush");
    // A change nobody is told about, made while B's cache is empty: B must not serve an old entry.
    sql.execute("UPDATE users SET first_name = 'Behind' WHERE id = $1", &[&f.user.id.0])
        .await
        .unwrap();
    let seen = b.session_by_token_hash(&f.token.hash).await.unwrap().unwrap();
    assert_eq!(seen.1.first_name, "Behind", "nothing old MUST be served after the flush");
    // The listener comes back (after about a second) and the cache serves again.
    until_cached(&b, &f.token.hash).await;
    let stats = b.session_cache_stats().unwrap();
    assert!(stats.serving && stats.entries >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_racing_a_revocation_never_see_the_token_after_it_returns() {
    let Some(db) = TestDb::create("session_cache_race").await else { return };
    let a = PgStore::connect(&db.url, 4).await.unwrap();
    let b = PgStore::connect(&db.url, 4).await.unwrap();
    for round in 0..10u8 {
        let f = fixture(&a, round + 1).await;
        until_cached(&b, &f.token.hash).await;
        // B looks the token up without pause while A revokes it (evictions and refills included).
        let reader = b.clone();
        let hash = f.token.hash;
        let spin = tokio::spawn(async move {
            let mut n = 0u32;
            while reader.session_by_token_hash(&hash).await.unwrap().is_some() {
                n += 1;
                // A cache hit never waits, so the loop would never give its thread back.
                tokio::task::yield_now().await;
            }
            n
        });
        assert!(a.revoke_token(&f.token.hash).await.unwrap());
        assert_eq!(b.session_by_token_hash(&f.token.hash).await.unwrap(), None, "round {round}");
        spin.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cache_every_lookup_reads_the_database() {
    let Some(db) = TestDb::create("session_cache_off").await else { return };
    let options = PgOptions { session_cache: false, ..PgOptions::new(4) };
    let a = PgStore::connect_with(&db.url, &options).await.unwrap();
    assert_eq!(a.session_cache_stats(), None);
    let f = fixture(&a, 1).await;
    client(&db.url)
        .await
        .execute("UPDATE users SET last_name = 'Byron' WHERE id = $1", &[&f.user.id.0])
        .await
        .unwrap();
    let seen = a.session_by_token_hash(&f.token.hash).await.unwrap().unwrap();
    assert_eq!(seen.1.last_name, "Byron");
}

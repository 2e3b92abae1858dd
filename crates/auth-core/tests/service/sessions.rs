//! Issue 17 in the core: the sessions capability (spec §13: list, end one, end the others, end all),
//! the coalesced "last used", and the outbox retention of housekeeping, over the in-memory fakes.

use super::*;
use auth_core::ports::{Clock as _, NewOutboxMessage, OutboxStore as _, TokenStore as _};
use auth_core::service::ActiveSession;

/// A login from `ip` with `agent`: the token text and its session.
async fn login_as(fx: &Fx, ip: &str, agent: &str) -> (SecretString, auth_core::Session) {
    let ctx = RequestContext { user_agent: Some(agent.into()), ..fx.ctx_from(ip) };
    let LoginOutcome::Token(t) = fx.w.service.sign_in().login(&ctx, &fx.good()).await.unwrap()
    else {
        panic!("expected a token")
    };
    let s = fx.w.service.sessions().authenticate(&ctx, t.token.expose()).await.unwrap();
    (t.token, s)
}

async fn list(fx: &Fx, s: &auth_core::Session) -> Vec<ActiveSession> {
    let all = fx.w.service.sessions().active_sessions(s).await.unwrap();
    assert_eq!(all.current, s.token_id);
    all.items
}

fn still_valid(fx: &Fx, token: &SecretString) -> impl std::future::Future<Output = bool> {
    let sessions = fx.w.service.sessions().clone();
    let ctx = fx.ctx();
    let token = token.expose().to_owned();
    async move { sessions.authenticate(&ctx, &token).await.is_ok() }
}

#[tokio::test]
async fn issue_17_the_list_shows_every_live_token_with_its_client_and_marks_this_one() {
    let fx = Fx::new(TfaMode::None).await;
    let (_, first) = login_as(&fx, "198.51.100.1", "Firefox on Linux").await;
    fx.advance(60);
    let (_, second) = login_as(&fx, "2001:db8::1", "Safari on iOS").await;
    fx.advance(60);
    let long_agent = "x".repeat(300);
    let (_, third) = login_as(&fx, "203.0.113.3", &long_agent).await;
    assert!(first.token_id != second.token_id && second.token_id != third.token_id);

    let items = list(&fx, &second).await;
    assert_eq!(items.len(), 3);
    assert!(items[0].current && items[0].id == second.token_id, "this one first: {items:?}");
    assert_eq!(items.iter().filter(|i| i.current).count(), 1);
    assert_eq!(
        items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![second.token_id, third.token_id, first.token_id],
        "then the newest logins"
    );
    let firefox = items.iter().find(|i| i.id == first.token_id).unwrap();
    assert_eq!(firefox.client_ip, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(firefox.user_agent.as_deref(), Some("Firefox on Linux"));
    assert_eq!(firefox.issued_at, first.issued_at);
    assert_eq!(firefox.expires_at, first.expires);
    let long = items.iter().find(|i| i.id == third.token_id).unwrap();
    assert_eq!(long.user_agent.as_deref().map(str::len), Some(256), "truncated as audit does");
    assert_eq!(items[0].last_used_at, fx.w.clock.now(), "this one is in use right now");

    // An expired token is not a session any more.
    fx.advance(31 * 24 * 3600);
    let (_, fresh) = login_as(&fx, "198.51.100.9", "Edge").await;
    assert_eq!(list(&fx, &fresh).await.len(), 1);

    // Public ids are not derived from the token: nothing of its text or hash shows.
    let hash_head = i64::from_le_bytes(fresh.token_hash[..8].try_into().unwrap());
    assert_ne!(fresh.token_id, hash_head);
}

#[tokio::test]
async fn issue_17_last_used_is_written_once_per_granularity_and_never_by_the_request() {
    let fx = Fx::new(TfaMode::None).await;
    let (token, s) = login_as(&fx, "198.51.100.1", "one").await;
    let (_, other) = login_as(&fx, "198.51.100.2", "two").await;
    let sessions = fx.w.service.sessions();
    let stored = |fx: &Fx| {
        let store = fx.w.store.clone();
        let hash = s.token_hash;
        async move { store.token_by_hash(&hash).await.unwrap().unwrap().last_used_at }
    };
    let issued = s.issued_at;

    // Uses within the granularity (5 minutes) queue nothing.
    fx.advance(4 * 60);
    sessions.authenticate(&fx.ctx(), token.expose()).await.unwrap();
    assert_eq!(sessions.flush_last_used().await.unwrap(), 0);
    assert_eq!(stored(&fx).await, issued);

    // A use after it is queued, not written: the request leaves the store alone.
    fx.advance(2 * 60);
    let used_at = fx.w.clock.now();
    sessions.authenticate(&fx.ctx(), token.expose()).await.unwrap();
    fx.advance(10);
    sessions.authenticate(&fx.ctx(), token.expose()).await.unwrap();
    assert_eq!(stored(&fx).await, issued, "no write on the request path");
    // The list of this process already knows it.
    let seen = list(&fx, &other).await;
    let mine = seen.iter().find(|i| i.id == s.token_id).unwrap();
    assert_eq!(mine.last_used_at, used_at + SignedDuration::from_secs(10));

    // A failed flush keeps the batch for the next one.
    fx.w.store.set_down(true);
    assert!(sessions.flush_last_used().await.is_err());
    fx.w.store.set_down(false);
    assert_eq!(sessions.flush_last_used().await.unwrap(), 1, "one batch, one token");
    assert_eq!(stored(&fx).await, used_at + SignedDuration::from_secs(10));
    assert_eq!(sessions.flush_last_used().await.unwrap(), 0, "nothing twice");

    // Right after the write, uses are within the granularity again.
    fx.advance(60);
    sessions.authenticate(&fx.ctx(), token.expose()).await.unwrap();
    assert_eq!(sessions.flush_last_used().await.unwrap(), 0);
}

#[tokio::test]
async fn issue_17_ending_one_session_by_id_ends_only_that_one_and_only_for_its_owner() {
    let fx = Fx::new(TfaMode::None).await;
    let (t1, s1) = login_as(&fx, "198.51.100.1", "one").await;
    let (t2, s2) = login_as(&fx, "198.51.100.2", "two").await;
    let (t3, _) = login_as(&fx, "198.51.100.3", "three").await;

    // Another user of the portal cannot end (or tell apart) Ada's sessions.
    fx.w.service
        .admin()
        .add_user(
            fx.portal.id,
            NewUser {
                email: "eve@example.com".into(),
                password: PASSWORD.into(),
                first_name: "Eve".into(),
                last_name: String::new(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let LoginOutcome::Token(te) =
        fx.w.service.sign_in().login(&fx.ctx(), &pw("eve@example.com", PASSWORD)).await.unwrap()
    else {
        panic!("expected a token")
    };
    let eve = fx.w.service.sessions().authenticate(&fx.ctx(), te.token.expose()).await.unwrap();
    let before = fx.actions().await.len();
    let sessions = fx.w.service.sessions();
    assert!(!sessions.end_session(&fx.ctx(), &eve, s2.token_id).await.unwrap());
    assert!(!sessions.end_session(&fx.ctx(), &eve, 424_242).await.unwrap(), "same answer");
    assert!(still_valid(&fx, &t2).await, "Ada's token survives");
    assert_eq!(fx.actions().await.len(), before, "nothing changed, nothing audited");

    assert!(sessions.end_session(&fx.ctx(), &s1, s2.token_id).await.unwrap());
    assert!(!still_valid(&fx, &t2).await);
    assert!(still_valid(&fx, &t1).await && still_valid(&fx, &t3).await, "only that one");
    assert!(!sessions.end_session(&fx.ctx(), &s1, s2.token_id).await.unwrap(), "ended once");
    assert_eq!(fx.actions().await.last(), Some(&AuditAction::UserLogoutActiveConnection));
    assert_eq!(AuditAction::UserLogoutActiveConnection.code(), 4035);
    assert_eq!(list(&fx, &s1).await.len(), 2);
}

#[tokio::test]
async fn issue_17_all_but_this_leaves_exactly_the_callers_token_and_all_ends_it_too() {
    let fx = Fx::new(TfaMode::None).await;
    let (t1, _) = login_as(&fx, "198.51.100.1", "one").await;
    let (t2, s2) = login_as(&fx, "198.51.100.2", "two").await;
    let (t3, _) = login_as(&fx, "198.51.100.3", "three").await;
    let sessions = fx.w.service.sessions();

    assert_eq!(sessions.end_other_sessions(&fx.ctx(), &s2).await.unwrap(), 2);
    assert!(still_valid(&fx, &t2).await, "the caller's token stays");
    assert!(!still_valid(&fx, &t1).await && !still_valid(&fx, &t3).await);
    let left = list(&fx, &s2).await;
    assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![s2.token_id]);
    assert_eq!(fx.actions().await.last(), Some(&AuditAction::UserLogoutActiveConnections));

    let (t4, s4) = login_as(&fx, "198.51.100.4", "four").await;
    assert_eq!(sessions.end_all_sessions(&fx.ctx(), &s4).await.unwrap(), 2);
    assert!(!still_valid(&fx, &t2).await && !still_valid(&fx, &t4).await, "the caller's too");
    assert_eq!(fx.actions().await.last(), Some(&AuditAction::UserLogoutActiveConnections));
    assert_eq!(AuditAction::UserLogoutActiveConnections.code(), 4034);
}

#[tokio::test]
async fn issue_17_housekeeping_deletes_old_finished_outbox_messages_and_keeps_live_ones() {
    let fx = Fx::with(
        build_service_with(CoreLimits {
            outbox_retention: Some(SignedDuration::from_hours(24 * 7)),
            ..CoreLimits::default()
        }),
        TfaMode::None,
    )
    .await;
    let store = fx.w.store.clone();
    let now = fx.w.clock.now();
    let msg = |to: &str| NewOutboxMessage {
        portal: fx.portal.id,
        to: to.into(),
        sealed_text: vec![1],
        created_at: now,
    };
    let sent = store.enqueue_sms(&msg("70000000001")).await.unwrap();
    let dropped = store.enqueue_sms(&msg("70000000002")).await.unwrap();
    let live = store.enqueue_sms(&msg("70000000003")).await.unwrap();
    store.claim_due_sms(now, SignedDuration::from_secs(60), 10, 5).await.unwrap();
    store.mark_sms_sent(sent, 5, now).await.unwrap();
    store.mark_sms_failed(dropped, 5, auth_core::Timestamp::MAX, "refused").await.unwrap();
    store.mark_sms_failed(live, 5, now, "later").await.unwrap();

    fx.advance(6 * 24 * 3600);
    fx.w.service.admin().housekeeping().await.unwrap();
    assert_eq!(store.recent_sms(10).await.unwrap().len(), 3, "younger than the retention");
    fx.advance(2 * 24 * 3600);
    fx.w.service.admin().housekeeping().await.unwrap();
    let left: Vec<i64> = store.recent_sms(10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(left, vec![live], "an unsent live message is never deleted");

    let keep = Fx::with(
        build_service_with(CoreLimits { outbox_retention: None, ..CoreLimits::default() }),
        TfaMode::None,
    )
    .await;
    assert_eq!(keep.w.service.admin().purge_outbox().await.unwrap(), 0);
}

//! Two nodes on one database: two `PgStore`s with pools of their own, as two server processes
//! would hold, hammering one throttle key, one SMS code, one TOTP step, one backup code and one
//! outbox from many tasks at once. The totals must be exact, not merely plausible.

use std::collections::HashSet;

use auth_core::ports::{
    CounterStore, NewOutboxMessage, OutboxStore, SmsCodeRecord, SmsCodeStore, Store, StoreError,
    TokenRecord, TokenStore, TotpStore,
};
use auth_core::throttle::{Acquire, Rule, Slot};
use auth_core::{PortalId, SignedDuration, Timestamp, UserId};
use auth_postgres::PgStore;
use futures_util::future::join_all;
use tokio::task::JoinHandle;

use crate::common::{TestDb, client};

fn t0() -> Timestamp {
    Timestamp::constant(1_768_031_184, 123_456_789)
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

fn user(tag: u8) -> UserId {
    UserId::from_random_bytes([tag; 16])
}

/// Two nodes on a fresh database.
async fn two_nodes(test: &str) -> Option<(TestDb, PgStore, PgStore)> {
    let db = TestDb::create(test).await?;
    let a = PgStore::connect(&db.url, 6).await.unwrap();
    let b = PgStore::connect(&db.url, 6).await.unwrap();
    Some((db, a, b))
}

/// Runs `n` tasks, alternating between the nodes, each calling `f` with its node and index, and
/// returns their results in order.
async fn on_both<T, F, Fut>(a: &PgStore, b: &PgStore, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(PgStore, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<JoinHandle<T>> = (0..n)
        .map(|i| tokio::spawn(f(if i % 2 == 0 { a.clone() } else { b.clone() }, i)))
        .collect();
    join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}

fn wins(results: &[Result<bool, StoreError>]) -> usize {
    results.iter().filter(|r| *r.as_ref().unwrap()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_limit_is_exact_across_nodes() {
    let Some((_db, a, b)) = two_nodes("the_throttle_limit_is_exact_across_nodes").await else {
        return;
    };
    let rule = Rule::new(5, secs(60), secs(300));
    for round in 0..3 {
        let key = format!("login:two-nodes:{round}");
        let results = on_both(&a, &b, 40, |s, i| {
            let key = key.clone();
            let at = t0().checked_add(SignedDuration::from_millis(i as i64)).unwrap();
            async move { s.acquire(&key, &rule, at).await }
        })
        .await;
        let granted = results.iter().filter(|r| matches!(r, Ok(Acquire::Granted(_)))).count();
        assert_eq!(granted, 5, "round {round}: exactly the limit MUST be granted across nodes");
        assert!(results.iter().all(Result::is_ok), "no call may fail under contention");
        // Every refusal carries a block, and the node that did not set it sees the same one.
        let until = match b.acquire(&key, &rule, t0().checked_add(secs(1)).unwrap()).await.unwrap()
        {
            Acquire::Refused { until } => until,
            Acquire::Granted(_) => panic!("the key MUST stay blocked"),
        };
        assert_eq!(
            a.acquire(&key, &rule, t0().checked_add(secs(2)).unwrap()).await.unwrap(),
            Acquire::Refused { until }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_slots_and_records_count_across_nodes() {
    let Some((_db, a, b)) = two_nodes("released_slots_and_records_count_across_nodes").await else {
        return;
    };
    let rule = Rule::per(10, secs(60));
    let key = "smsphone:two-nodes";
    // Node a records 4 sends; of 30 concurrent acquires on both nodes only 6 more fit.
    for _ in 0..4 {
        a.record(key, &rule, t0()).await.unwrap();
    }
    let results =
        on_both(&a, &b, 30, |s, _| async move { s.acquire(key, &rule, t0()).await }).await;
    assert_eq!(granted(&results).len(), 6, "recorded events MUST count on every node");
    // The refusals blocked the key; a reset through the other node clears it for both.
    b.reset(key).await.unwrap();
    let results =
        on_both(&a, &b, 30, |s, _| async move { s.acquire(key, &rule, t0()).await }).await;
    assert_eq!(granted(&results).len(), 10, "reset on one node MUST clear the key for both");

    // Slots granted on one node and released on the other are given back, exactly.
    let key = "setphone:two-nodes";
    let five = Rule::per(5, secs(60));
    let results = on_both(&a, &b, 5, |s, _| async move { s.acquire(key, &five, t0()).await }).await;
    let slots = granted(&results);
    assert_eq!(slots.len(), 5);
    for (i, slot) in slots.iter().take(2).enumerate() {
        let node = if i % 2 == 0 { &b } else { &a };
        node.release(*slot).await.unwrap();
    }
    let results =
        on_both(&a, &b, 20, |s, _| async move { s.acquire(key, &five, t0()).await }).await;
    assert_eq!(granted(&results).len(), 2, "exactly the released slots MUST come back");
}

fn granted(results: &[Result<Acquire, StoreError>]) -> Vec<Slot> {
    results
        .iter()
        .filter_map(|r| match r.as_ref().unwrap() {
            Acquire::Granted(s) => Some(*s),
            Acquire::Refused { .. } => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_one_step_one_backup_code_across_nodes() {
    let Some((db, a, b)) = two_nodes("one_code_one_step_one_backup_code_across_nodes").await else {
        return;
    };
    let phone = "79123456789";

    // An SMS code issued through one node is accepted once, on whichever node gets there first.
    // Races are decided by timing, so each is run for several users.
    for round in 0..5u8 {
        let u = user(10 + round);
        let code = SmsCodeRecord {
            user: u,
            phone: phone.into(),
            code_hash: [7; 32],
            issued_at: t0(),
            expires_at: t0().checked_add(secs(300)).unwrap(),
        };
        a.insert_sms_code(&code, 3, t0()).await.unwrap();
        let results = on_both(&a, &b, 30, |s, _| async move {
            s.consume_sms_code(u, phone, &[7; 32], t0()).await
        })
        .await;
        assert_eq!(wins(&results), 1, "round {round}: exactly one consume MUST win across nodes");
        assert_eq!(b.newest_sms_code(u, phone, t0()).await.unwrap(), None);
    }

    // Concurrent inserts on both nodes never leave more than the cap outstanding.
    for round in 0..5u8 {
        let v = user(20 + round);
        on_both(&a, &b, 20, |s, i| async move {
            let c = SmsCodeRecord {
                user: v,
                phone: phone.into(),
                code_hash: [i as u8; 32],
                issued_at: t0().checked_add(SignedDuration::from_millis(i as i64)).unwrap(),
                expires_at: t0().checked_add(secs(300)).unwrap(),
            };
            s.insert_sms_code(&c, 3, t0()).await.unwrap();
        })
        .await;
        let kept = count_sms_codes(&db.url, v).await;
        assert_eq!(kept, 3, "round {round}: concurrent inserts MUST keep the outstanding cap");
        let newest = b.newest_sms_code(v, phone, t0()).await.unwrap().unwrap();
        assert_eq!(newest.code_hash, [19; 32], "the newest codes MUST be the ones kept");
    }

    // One TOTP step, used from both nodes at once, validates once.
    let w = user(3);
    assert!(a.create_totp(w, b"sealed").await.unwrap());
    let created = on_both(&a, &b, 10, |s, _| async move { s.create_totp(w, b"other").await }).await;
    assert_eq!(wins(&created), 0, "the first secret MUST stay");
    let results =
        on_both(&a, &b, 30, |s, _| async move { s.use_totp_step(w, 59_000_000).await }).await;
    assert_eq!(wins(&results), 1, "exactly one use of a step MUST win across nodes");

    // Activation happens once; then one backup code is single use across nodes.
    let activated = on_both(&a, &b, 10, |s, _| async move {
        s.activate_totp(w, &[[1; 32], [2; 32]], b"reveal").await
    })
    .await;
    assert_eq!(wins(&activated), 1, "exactly one activation MUST win");
    let results =
        on_both(&a, &b, 30, |s, _| async move { s.use_backup_code(w, &[2; 32]).await }).await;
    assert_eq!(wins(&results), 1, "exactly one use of a backup code MUST win across nodes");
    let reveals = on_both(&a, &b, 10, |s, _| async move { s.take_backup_reveal(w).await }).await;
    assert_eq!(reveals.iter().filter(|r| r.as_ref().unwrap().is_some()).count(), 1);
}

/// How many SMS codes of `user` are stored, read from the database itself: the port has no count,
/// and probing with `consume_sms_code` would burn them.
async fn count_sms_codes(url: &str, user: UserId) -> i64 {
    let row = client(url)
        .await
        .query_one("SELECT count(*) FROM sms_codes WHERE user_id = $1", &[&user.0])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_gone_on_the_other() {
    let Some((_db, a, b)) = two_nodes("a_token_revoked_on_one_node_is_gone_on_the_other").await
    else {
        return;
    };
    let token = TokenRecord {
        hash: [9; 32],
        user: user(4),
        portal: PortalId::from_random_bytes([5; 16]),
        issued_at: t0(),
        expires_at: t0().checked_add(secs(3600)).unwrap(),
    };
    a.insert_token(&token).await.unwrap();
    assert_eq!(b.token_by_hash(&[9; 32]).await.unwrap(), Some(token.clone()), "nanoseconds kept");
    assert!(b.revoke_token(&[9; 32]).await.unwrap());
    assert_eq!(a.token_by_hash(&[9; 32]).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_drained_once_by_both_nodes() {
    let Some((_db, a, b)) = two_nodes("the_outbox_is_drained_once_by_both_nodes").await else {
        return;
    };
    let portal = PortalId::from_random_bytes([6; 16]);
    let total = 60;
    let mut enqueued = HashSet::new();
    for i in 0..total {
        let node = if i % 2 == 0 { &a } else { &b };
        let id = node
            .enqueue_sms(&NewOutboxMessage {
                portal,
                to: format!("7900000{i:04}"),
                sealed_text: vec![i as u8],
                created_at: t0(),
            })
            .await
            .unwrap();
        assert!(enqueued.insert(id));
    }
    // Eight workers, four per node, claim small batches until nothing is due.
    let now = t0().checked_add(secs(1)).unwrap();
    let batches = on_both(&a, &b, 8, |s, _| async move {
        let mut mine = Vec::new();
        loop {
            let claimed = s.claim_due_sms(now, secs(600), 3).await.unwrap();
            if claimed.is_empty() {
                return mine;
            }
            for m in claimed {
                s.mark_sms_sent(m.id, now).await.unwrap();
                mine.push(m.id);
            }
        }
    })
    .await;
    let claimed: Vec<i64> = batches.into_iter().flatten().collect();
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), total, "every message MUST be claimed exactly once");
    assert_eq!(distinct, enqueued);
    let later = t0().checked_add(secs(10_000)).unwrap();
    assert!(a.claim_due_sms(later, secs(60), 100).await.unwrap().is_empty(), "sent ones stay sent");
    let recent = b.recent_sms(100).await.unwrap();
    assert!(recent.iter().all(|m| m.sent_at == Some(now) && m.attempts == 1));
}

/// Keeps the `Store` bound honest: a `PgStore` is usable as `dyn Store` like every adapter.
#[test]
fn pg_store_is_a_store() {
    fn is_store<T: Store>() {}
    is_store::<PgStore>();
}

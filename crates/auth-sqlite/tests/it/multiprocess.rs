//! Two OS processes on one database file race for the same limited things: a throttle key (limit 5),
//! one SMS code, one TOTP step, one backup code, the outbox and one social identity (linked to one
//! user at most). The totals across both processes must be exactly what the limits allow.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use auth_core::ports::{
    AccountLink, CounterStore, NewOutboxMessage, OutboxStore, SmsCodeRecord, SmsCodeStore,
    SocialStore, TotpStore,
};
use auth_core::throttle::{Acquire, Rule};
use auth_core::{PortalId, SignedDuration, Timestamp, UserId};
use auth_sqlite::{SqliteOptions, SqliteStore};
use futures_util::future::join_all;

use crate::common::{CHILD_DB, report, runtime, spawn_child, t0};

const GO_FILE: &str = "AUTH_SQLITE_TEST_GO";
const KEY: &str = "login:multiprocess";
const PHONE: &str = "79123456789";
const ATTEMPTS: usize = 30;
const MESSAGES: usize = 12;

fn rule() -> Rule {
    Rule::new(5, SignedDuration::from_hours(1), SignedDuration::from_hours(1))
}
fn user() -> UserId {
    UserId::from_random_bytes([0x11; 16])
}
fn code_hash() -> [u8; 32] {
    [0xC0; 32]
}
fn backup_hash() -> [u8; 32] {
    [0xB0; 32]
}
/// A link of the one contested identity to the `i`th of many users.
fn link(i: usize, now: Timestamp) -> AccountLink {
    AccountLink {
        portal: PortalId::from_random_bytes([0x22; 16]),
        provider: "vk".into(),
        subject: "v-1".into(),
        user: UserId::from_random_bytes([i as u8 + 1; 16]),
        created_at: now,
    }
}

/// The child's side: wait for the start signal, then hammer everything at once.
pub(crate) fn child() {
    let db = PathBuf::from(std::env::var(CHILD_DB).unwrap());
    let go = PathBuf::from(std::env::var(GO_FILE).unwrap());
    let store =
        SqliteStore::open_with(&db, SqliteOptions { max_connections: 4, ..Default::default() })
            .unwrap();
    report("ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let now = t0();
    let (rule, code, backup) = (rule(), code_hash(), backup_hash());
    runtime().block_on(async {
        let acquires = join_all((0..ATTEMPTS).map(|_| store.acquire(KEY, &rule, now)));
        let consumes =
            join_all((0..ATTEMPTS).map(|_| store.consume_sms_code(user(), PHONE, &code, now)));
        let steps = join_all((0..ATTEMPTS).map(|_| store.use_totp_step(user(), 1000)));
        let backups = join_all((0..ATTEMPTS).map(|_| store.use_backup_code(user(), &backup)));
        let claims = join_all(
            (0..MESSAGES)
                .map(|i| store.claim_due_sms(now, SignedDuration::from_secs(60), 1, i as i64)),
        );
        let store = &store;
        let links = join_all((0..ATTEMPTS).map(|i| {
            let l = link(i, now);
            async move { store.insert_link(&l).await }
        }));
        let (acquires, consumes, steps, backups, claims, links) =
            tokio::join!(acquires, consumes, steps, backups, claims, links);
        let granted = acquires.into_iter().filter(|r| matches!(r, Ok(Acquire::Granted(_)))).count();
        report(&format!("granted {granted}"));
        let wins =
            |v: Vec<Result<bool, _>>| v.into_iter().filter(|r| matches!(r, Ok(true))).count();
        report(&format!("consumed {}", wins(consumes)));
        report(&format!("steps {}", wins(steps)));
        report(&format!("backups {}", wins(backups)));
        report(&format!("linked {}", wins(links)));
        for c in claims {
            for m in c.unwrap() {
                report(&format!("claimed {}", m.id));
            }
        }
    });
    report("done");
}

#[test]
fn two_processes_agree_on_every_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let go = dir.path().join("go");
    let store = SqliteStore::open(&db).unwrap();
    let now = t0();
    runtime().block_on(async {
        let code = SmsCodeRecord {
            user: user(),
            phone: PHONE.into(),
            code_hash: code_hash(),
            issued_at: now,
            expires_at: Timestamp::constant(now.as_second() + 600, 0),
        };
        store.insert_sms_code(&code, 6, now).await.unwrap();
        assert!(store.create_totp(user(), b"sealed").await.unwrap());
        assert!(
            store.activate_totp(user(), &[[1; 32], backup_hash(), [2; 32]], b"r").await.unwrap()
        );
        for i in 0..MESSAGES {
            store
                .enqueue_sms(&NewOutboxMessage {
                    portal: PortalId::from_random_bytes([0x22; 16]),
                    to: format!("7900000000{i}"),
                    sealed_text: vec![9; 16],
                    created_at: now,
                })
                .await
                .unwrap();
        }
    });

    let env = [(GO_FILE, go.display().to_string())];
    let children = [spawn_child("hammer", &db, &env), spawn_child("hammer", &db, &env)];
    for c in &children {
        assert_eq!(c.next_line(Duration::from_secs(30)).as_deref(), Some("ready"));
    }
    std::fs::write(&go, b"go").unwrap();

    let (mut granted, mut consumed, mut steps, mut backups, mut linked, mut claimed) =
        (0, 0, 0, 0, 0, Vec::new());
    for c in children {
        let (lines, ok) = c.finish(Duration::from_secs(60));
        assert!(ok, "child failed: {lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("done"), "{lines:?}");
        for line in lines {
            let (what, n) = line.split_once(' ').unwrap_or((line.as_str(), "0"));
            let n: i64 = n.parse().unwrap_or(0);
            match what {
                "granted" => granted += n,
                "consumed" => consumed += n,
                "steps" => steps += n,
                "backups" => backups += n,
                "linked" => linked += n,
                "claimed" => claimed.push(n),
                _ => {}
            }
        }
    }
    assert_eq!(granted, 5, "exactly the throttle limit across both processes");
    assert_eq!(consumed, 1, "one SMS code, one success");
    assert_eq!(steps, 1, "one TOTP step, one success");
    assert_eq!(backups, 1, "one backup code, one success");
    assert_eq!(linked, 1, "one identity, linked to one user");
    let total = claimed.len();
    claimed.sort_unstable();
    claimed.dedup();
    assert_eq!((claimed.len(), total), (MESSAGES, MESSAGES), "every message claimed exactly once");

    // The parent sees the same state: the key is blocked, the code is gone, the identity is linked.
    runtime().block_on(async {
        assert!(matches!(store.acquire(KEY, &rule(), now).await.unwrap(), Acquire::Refused { .. }));
        assert!(!store.consume_sms_code(user(), PHONE, &code_hash(), now).await.unwrap());
        let l = link(0, now);
        assert!(store.link_by_subject(l.portal, &l.provider, &l.subject).await.unwrap().is_some());
    });
}

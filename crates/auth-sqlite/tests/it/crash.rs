//! SIGKILL at random moments: a child process writes users, tokens, throttle events, TOTP
//! activations (one transaction over three tables) and outbox messages, reporting each commit on
//! stdout, and is killed mid-stream. After every round the file must pass `integrity_check` and hold
//! every reported write; no activation may be half there.
//!
//! SIGKILL tests the process-crash half of durability (the OS still writes what SQLite handed it);
//! the power-loss half rests on `synchronous=FULL`, which a test cannot cut the power to check.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::ports::RngExt;
use auth_core::ports::{
    CounterStore, NewOutboxMessage, OutboxStore, PortalStore, Revisions, TokenStore, TotpStore,
    UserStore,
};
use auth_core::testkit::SeqRng;
use auth_core::throttle::{Acquire, Rule};
use auth_core::{PortalId, SignedDuration, UserId};
use auth_sqlite::SqliteStore;

use crate::common::{CHILD_DB, report, runtime, spawn_child, t0, user};

/// Users and portals start at revision 0, and the child changes neither.
const FRESH: Revisions = Revisions { user: 0, portal: 0 };

const ROUND: &str = "AUTH_SQLITE_TEST_ROUND";
const ROUNDS: u8 = 5;
const BACKUP_CODES: usize = 5;

fn portal() -> PortalId {
    PortalId::from_random_bytes([0x33; 16])
}

fn user_id(round: u8, i: u32) -> UserId {
    let mut b = [round; 16];
    b[..4].copy_from_slice(&i.to_le_bytes());
    UserId::from_random_bytes(b)
}

fn token_hash(round: u8, i: u32) -> [u8; 32] {
    let mut h = [0xEE; 32];
    h[0] = round;
    h[1..5].copy_from_slice(&i.to_le_bytes());
    h
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

/// The child's side: write until killed (bounded, in case nobody kills it).
pub(crate) fn child() {
    let db = PathBuf::from(std::env::var(CHILD_DB).unwrap());
    let round: u8 = std::env::var(ROUND).unwrap().parse().unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let rule = Rule::per(u32::MAX, SignedDuration::from_hours(1));
    runtime().block_on(async {
        report("open");
        for i in 0..100_000u32 {
            let u = user_id(round, i);
            store
                .insert_user(&user(u, portal(), &format!("r{round}-{i}@example.com")))
                .await
                .unwrap();
            report(&format!("user {u}"));
            let h = token_hash(round, i);
            let token = auth_core::testkit::token_record(h, u, portal(), t0(), t0());
            assert!(store.insert_token(&token, FRESH).await.unwrap(), "user and portal exist");
            report(&format!("token {}", hex(&h)));
            let Acquire::Granted(slot) =
                store.acquire(&format!("crash:{round}"), &rule, t0()).await.unwrap()
            else {
                panic!("the crash rule never refuses")
            };
            report(&format!("slot {}", slot.0));
            store.create_totp(u, b"sealed").await.unwrap();
            let hashes: Vec<[u8; 32]> = (0..BACKUP_CODES as u8).map(|k| [k; 32]).collect();
            assert!(store.activate_totp(u, &hashes, b"reveal").await.unwrap());
            report(&format!("totp {u}"));
            let msg = NewOutboxMessage {
                portal: portal(),
                to: "79000000000".into(),
                sealed_text: vec![1; 8],
                created_at: t0(),
            };
            let id = store.enqueue_sms(&msg).await.unwrap();
            report(&format!("sms {id}"));
        }
    });
}

#[test]
fn sigkill_loses_nothing_reported_and_leaves_a_sound_file() {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let rng = SeqRng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    // The portal every child's tokens belong to, stored once before the rounds.
    let store = SqliteStore::open(&db).unwrap();
    runtime()
        .block_on(store.insert_portal(&crate::common::portal(portal(), "crash.example")))
        .unwrap();
    drop(store);

    let mut committed: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let child = spawn_child("writer", &db, &[(ROUND, round.to_string())]);
        assert_eq!(child.next_line(Duration::from_secs(30)).as_deref(), Some("open"));
        // Kill somewhere in the first few hundred milliseconds of writing.
        let after = Duration::from_millis(u64::from(20 + rng.below(280)));
        let mut lines = Vec::new();
        let until = std::time::Instant::now() + after;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match child.next_line(left) {
                Some(l) => lines.push(l),
                None => break,
            }
        }
        let mut child = child;
        child.process.kill().unwrap(); // SIGKILL on Unix
        child.process.wait().unwrap();
        let (rest, _) = child.finish(Duration::from_secs(5));
        lines.extend(rest);
        assert!(lines.len() > 1, "round {round} (seed {seed}) wrote nothing before the kill");
        committed.extend(lines);
    }

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "seed {seed}");
    // No activation is half there: activated means all its backup codes, not activated means none.
    let torn: i64 = conn
        .query_row(
            "SELECT count(*) FROM totp t WHERE (SELECT count(*) FROM backup_codes b \
             WHERE b.user = t.user) <> CASE WHEN t.activated THEN ?1 ELSE 0 END",
            [BACKUP_CODES as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(torn, 0, "seed {seed}");
    drop(conn);

    let store = SqliteStore::open(&db).unwrap();
    let outbox = runtime().block_on(store.recent_sms(u32::MAX)).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    runtime().block_on(async {
        for line in &committed {
            let (what, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match what {
                "user" => {
                    let id: UserId = arg.parse().unwrap();
                    assert!(store.user_by_id(id).await.unwrap().is_some(), "{line} (seed {seed})");
                }
                "token" => {
                    let h: [u8; 32] =
                        data_encoding::HEXLOWER.decode(arg.as_bytes()).unwrap().try_into().unwrap();
                    assert!(
                        store.token_by_hash(&h).await.unwrap().is_some(),
                        "{line} (seed {seed})"
                    );
                }
                "slot" => {
                    let n: i64 = conn
                        .query_row(
                            "SELECT count(*) FROM counter_events WHERE id = ?1",
                            [arg.parse::<i64>().unwrap()],
                            |r| r.get(0),
                        )
                        .unwrap();
                    assert_eq!(n, 1, "{line} (seed {seed})");
                }
                "totp" => {
                    let id: UserId = arg.parse().unwrap();
                    let t = store.totp(id).await.unwrap();
                    assert!(t.is_some_and(|t| t.activated), "{line} (seed {seed})");
                    assert_eq!(store.backup_codes(id).await.unwrap().len(), BACKUP_CODES);
                }
                "sms" => {
                    let id: i64 = arg.parse().unwrap();
                    assert!(outbox.iter().any(|m| m.id == id), "{line} (seed {seed})");
                }
                _ => {}
            }
        }
    });
}

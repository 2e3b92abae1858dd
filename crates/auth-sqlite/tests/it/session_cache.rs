//! The per-process session cache (`src/session_cache.rs`): two stores opened on one file stand for
//! two processes (they share nothing but the file and its counters), so a change made through one
//! must end what the other has cached at once; a change made behind both (hand-written SQL) within
//! the cache's maximum age; a counter left half-counted must stop the caching, never serve stale.

use std::time::Duration;

use auth_core::ports::{PortalStore, Revisions, TokenStore, UserStore};
use auth_core::testkit::token_record;
use auth_core::{PortalId, UserId};
use auth_sqlite::{SqliteOptions, SqliteStore};

use crate::common::{portal, runtime, t0, user};

const HASH: [u8; 32] = [0x5e; 32];

fn later(secs: i64) -> auth_core::Timestamp {
    t0().checked_add(auth_core::SignedDuration::from_secs(secs)).unwrap()
}

fn portal_id() -> PortalId {
    PortalId::from_random_bytes([0x61; 16])
}

/// A portal, a user and one token of theirs, written through `store`.
async fn seed(store: &SqliteStore) -> UserId {
    let u = UserId::from_random_bytes([0x62; 16]);
    store.insert_portal(&portal(portal_id(), "cache.example.com")).await.unwrap();
    store.insert_user(&user(u, portal_id(), "cache@example.com")).await.unwrap();
    let t = token_record(HASH, u, portal_id(), t0(), later(3600));
    assert!(store.insert_token(&t, Revisions { user: 0, portal: 0 }).await.unwrap());
    u
}

/// A fresh directory (kept while the returned guard lives) and the database path in it.
fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.db");
    (dir, db)
}

fn hits(store: &SqliteStore) -> u64 {
    store.session_cache_stats().expect("a file store has a cache").0
}

#[test]
fn a_change_through_another_store_ends_the_cached_session_at_once() {
    runtime().block_on(async {
        let (_dir, db) = temp_db();
        let a = SqliteStore::open(&db).unwrap();
        let b = SqliteStore::open(&db).unwrap();
        let u = seed(&b).await;

        // A reads it twice: the second answer comes from A's cache.
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        assert_eq!(hits(&a), 1, "the second lookup MUST be a hit");

        // B changes the user's row (a phone set): A's next lookup sees it.
        assert!(b.set_phone(u, Some("79001234567"), false).await.unwrap());
        let (_, found) = a.session_by_token_hash(&HASH).await.unwrap().unwrap();
        assert_eq!(found.phone.as_deref(), Some("79001234567"), "MUST be seen at once");
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());

        // B revokes the token: A's next lookup finds nothing.
        let before = hits(&a);
        assert!(b.revoke_token(&HASH).await.unwrap());
        assert_eq!(a.session_by_token_hash(&HASH).await.unwrap(), None);
        assert_eq!(hits(&a), before, "a revoked token MUST NOT be answered from the cache");
        // A miss is not cached: the token, stored again, is found at once.
        let t = token_record(HASH, u, portal_id(), t0(), later(3600));
        let rev = b.user_by_id(u).await.unwrap().unwrap().revision;
        assert!(b.insert_token(&t, Revisions { user: rev, portal: 0 }).await.unwrap());
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());

        // Every token of the user ended by B (a password change, a log-out everywhere).
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        assert_eq!(b.revoke_user_tokens(u).await.unwrap(), 1);
        assert_eq!(a.session_by_token_hash(&HASH).await.unwrap(), None);

        // And a disable, which ends the tokens too.
        let rev = b.user_by_id(u).await.unwrap().unwrap().revision;
        assert!(b.insert_token(&t, Revisions { user: rev, portal: 0 }).await.unwrap());
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        assert!(b.set_disabled(u, true).await.unwrap());
        assert_eq!(a.session_by_token_hash(&HASH).await.unwrap(), None, "disabled in B");
    });
}

#[test]
fn writes_that_cannot_change_a_session_leave_the_cache_alone() {
    runtime().block_on(async {
        let (_dir, db) = temp_db();
        let a = SqliteStore::open(&db).unwrap();
        let u = seed(&a).await;
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        // Another token issued and this one's "last used" written: logins and bookkeeping.
        let other = token_record([0x77; 32], u, portal_id(), t0(), later(60));
        assert!(a.insert_token(&other, Revisions { user: 0, portal: 0 }).await.unwrap());
        assert_eq!(a.touch_tokens(&[(HASH, later(5))]).await.unwrap(), 1);
        let (record, _) = a.session_by_token_hash(&HASH).await.unwrap().unwrap();
        assert_eq!(hits(&a), 1, "neither write may end the cached entry");
        assert_eq!(record.last_used_at, later(5), "the cached entry MUST carry the written use");
    });
}

#[test]
fn a_change_behind_the_stores_back_is_seen_within_the_maximum_age() {
    runtime().block_on(async {
        let (_dir, db) = temp_db();
        let options = SqliteOptions {
            session_cache_max_age: Duration::from_millis(300),
            ..Default::default()
        };
        let a = SqliteStore::open_with(&db, options).unwrap();
        seed(&a).await;
        assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute("UPDATE users SET disabled = 1", []).unwrap();
        drop(raw);
        std::thread::sleep(Duration::from_millis(350));
        let (_, found) = a.session_by_token_hash(&HASH).await.unwrap().unwrap();
        assert!(found.disabled, "an entry MUST NOT outlive the maximum age");
    });
}

#[test]
fn a_change_counted_only_half_stops_the_caching_until_a_store_opens_alone() {
    runtime().block_on(async {
        let (_dir, db) = temp_db();
        let a = SqliteStore::open(&db).unwrap();
        seed(&a).await;
        // A process killed between its two counts: `-begun` one ahead of `-ended`.
        let mut begun = db.as_os_str().to_owned();
        begun.push("-sessions-begun");
        let mut f = std::fs::OpenOptions::new().append(true).open(&begun).unwrap();
        std::io::Write::write_all(&mut f, &[0]).unwrap();
        for _ in 0..3 {
            assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        }
        assert_eq!(hits(&a), 0, "nothing may be cached while a change may be in flight");
        drop(a);
        // Opened alone, the counters start again and the cache works.
        let a = SqliteStore::open(&db).unwrap();
        for _ in 0..3 {
            assert!(a.session_by_token_hash(&HASH).await.unwrap().is_some());
        }
        assert_eq!(hits(&a), 2);
    });
}

/// A store that opens holds the lock file exclusively for a moment (to reset the counters when it is
/// alone); another store opening then must wait that out, not take it for a restore, which holds the
/// lock for as long as it copies.
#[test]
fn a_short_exclusive_lock_is_waited_out_and_a_long_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.db");
    drop(SqliteStore::open(&db).unwrap());
    let hold = |ms: u64| {
        let lock =
            std::fs::File::options().write(true).open(dir.path().join("auth.db.lock")).unwrap();
        lock.lock().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            drop(lock);
        })
    };
    let brief = hold(100);
    SqliteStore::open(&db).expect("a store MUST wait out another's moment of exclusive lock");
    brief.join().unwrap();
    let long = hold(1500);
    let refused = SqliteStore::open(&db).expect_err("a long exclusive lock is a restore");
    assert!(refused.to_string().contains("restore"), "{refused}");
    long.join().unwrap();
}

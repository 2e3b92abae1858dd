//! The store's own checks beyond the conformance suite: a differential run against auth-core's
//! in-memory reference store (same random operations, same answers), persistence across reopen, the
//! upgrade of a file written at an older schema version, schema-version and foreign-file refusal,
//! the indexes behind the social lookups, error mapping under a held lock, and corrupt rows.

use std::time::Duration;

use auth_core::password::PasswordHash;
use auth_core::ports::{
    AccountLink, CounterStore, MetaStore, NewOutboxMessage, OutboxMessage, OutboxStore,
    PortalStore, RememberedCode, Revisions, RngExt, SmsCodeRecord, SocialStore, StoreError,
    TokenRecord, TokenStore, UserStore,
};
use auth_core::testkit::{MemStore, SeqRng};
use auth_core::throttle::{Acquire, AcquireThen, Rule, Slot};
use auth_core::{
    AuditAction, AuditEvent, AuditFilter, Portal, PortalId, PortalSettings, SignedDuration, Store,
    TfaMode, Timestamp, User, UserId,
};
use auth_sqlite::{SCHEMA_VERSION, SqliteError, SqliteOptions, SqliteStore};

use crate::common::{portal, t0, user};

/// What one store remembers between operations: the slots and outbox ids it handed out, so the
/// same logical slot or message can be named in both stores although their numbers differ.
#[derive(Default)]
struct Seen {
    slots: Vec<Slot>,
    outbox: Vec<i64>,
}

fn kind<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(StoreError::Conflict(_)) => "Conflict".into(),
        Err(StoreError::Unavailable(m)) => format!("Unavailable {m}"),
        Err(StoreError::Corrupt(m)) => format!("Corrupt {m}"),
    }
}

fn at(base: Timestamp, secs: u32) -> Timestamp {
    // Up to 200 s before the base, so time also goes backwards now and then.
    Timestamp::from_nanosecond(base.as_nanosecond() + (i128::from(secs) - 200) * 1_000_000_000 + 7)
        .unwrap()
}

fn outbox_view(seen: &Seen, msgs: Vec<OutboxMessage>) -> String {
    let view: Vec<_> = msgs
        .into_iter()
        .map(|mut m| {
            m.id = seen.outbox.iter().position(|id| *id == m.id).map_or(-1, |i| i as i64);
            m
        })
        .collect();
    format!("{view:?}")
}

/// Applies operation `n` (drawn from `r`) to `store` and describes its answer.
async fn apply(store: &dyn Store, seen: &mut Seen, r: &[u32; 8]) -> String {
    let [op, a, b, c, d, e, f, g] = *r;
    let uid = |x: u32| UserId::from_random_bytes([(x % 4) as u8 + 1; 16]);
    let pid = |x: u32| PortalId::from_random_bytes([(x % 2) as u8 + 0x40; 16]);
    // The portals the portal operations create; tokens name them, since a token is only stored for
    // a portal that exists.
    let tpid = |x: u32| PortalId::from_random_bytes([(x % 3) as u8 + 0x50; 16]);
    let hash = |x: u32| [(x % 6) as u8; 32];
    let now = at(t0(), g % 2000);
    let phone = |x: u32| ["79000000001", "79000000002"][(x % 2) as usize];
    let email = |x: u32| ["ann@example.com", "ANN@example.com", "bo@example.com"][(x % 3) as usize];
    let rule = |x: u32| {
        [
            Rule::new(2, SignedDuration::from_secs(60), SignedDuration::from_secs(90)),
            Rule::per(3, SignedDuration::from_secs(300)),
        ][(x % 2) as usize]
    };
    let key = |x: u32| ["k:one", "k:two"][(x % 2) as usize];
    // Few claimants, so results are written both under the claim that holds and under one that
    // does not.
    let claim = |x: u32| i64::from(x % 3);
    match op % 46 {
        0 | 1 => {
            let mut u = user(uid(a), pid(b), email(c));
            u.created_at = now;
            kind(store.insert_user(&u).await)
        }
        2 => kind(store.user_by_id(uid(a)).await),
        3 => kind(store.user_by_email(pid(b), &email(c).to_lowercase()).await),
        4 => kind(store.list_users(if d % 2 == 0 { None } else { Some(pid(b)) }).await),
        5 => kind(store.count_users().await),
        6 => {
            kind(store.set_password_hash(uid(a), &PasswordHash::from_phc(format!("$x${c}"))).await)
        }
        7 => kind(store.set_disabled(uid(a), c % 2 == 0).await),
        8 => kind(store.set_phone(uid(a), (c % 3 != 0).then(|| phone(d)), e % 2 == 0).await),
        9 => kind(store.set_phone_if_unactivated(uid(a), phone(d)).await),
        10 => kind(store.activate_phone(uid(a), phone(d)).await),
        11 | 12 => {
            let issued = at(now, e % 400);
            let code = SmsCodeRecord {
                user: uid(a),
                phone: phone(d).into(),
                code_hash: [(c % 4) as u8; 32],
                issued_at: issued,
                expires_at: Timestamp::from_nanosecond(issued.as_nanosecond() + 600_000_000_000)
                    .unwrap(),
            };
            kind(store.insert_sms_code(&code, f % 4, now).await)
        }
        13 => kind(store.newest_sms_code(uid(a), phone(d), now).await),
        14 => kind(store.consume_sms_code(uid(a), phone(d), &[(c % 4) as u8; 32], now).await),
        15 => kind(store.burn_sms_codes(uid(a)).await),
        16 => kind(store.create_totp(uid(a), &[c as u8 % 3; 3]).await),
        17 => kind(store.totp(uid(a)).await),
        18 => kind(store.use_totp_step(uid(a), u64::from(c % 10)).await),
        19 => {
            let hashes: Vec<[u8; 32]> = (0..d % 4).map(|i| [(i + c) as u8 % 5; 32]).collect();
            kind(store.activate_totp(uid(a), &hashes, &[e as u8; 2]).await)
        }
        20 => kind(store.delete_totp(uid(a)).await),
        21 => kind(store.backup_codes(uid(a)).await),
        22 => {
            let hashes: Vec<[u8; 32]> = (0..d % 4).map(|i| [(i + c) as u8 % 5; 32]).collect();
            let reveal = [e as u8; 3];
            kind(
                store
                    .replace_backup_codes(uid(a), &hashes, (f % 2 == 0).then_some(&reveal[..]))
                    .await,
            )
        }
        23 => kind(store.use_backup_code(uid(a), &[c as u8 % 5; 32]).await),
        24 => kind(store.take_backup_reveal(uid(a)).await),
        25 => {
            // Few public ids, so a new token now and then meets one another token holds.
            let t = TokenRecord {
                hash: hash(c),
                user: uid(a),
                portal: tpid(b),
                issued_at: now,
                expires_at: at(now, e % 400),
                id: i64::from(d % 7) + 1,
                last_used_at: at(now, g % 400),
                client_ip: (g % 3 != 0)
                    .then(|| ["192.0.2.7", "2001:db8::7"][(g % 2) as usize].parse().unwrap()),
                user_agent: (g % 4 != 0).then(|| format!("agent {}", g % 3)),
            };
            // Mostly the revisions as a login would have read them, sometimes one that moved on.
            let user_rev = store.user_by_id(uid(a)).await.ok().flatten().map_or(0, |u| u.revision);
            let portal_rev = store
                .list_portals()
                .await
                .ok()
                .and_then(|l| l.into_iter().find(|p| p.id == tpid(b)))
                .map_or(0, |p| p.revision);
            let expect = Revisions {
                user: user_rev + u64::from(f % 5 == 0),
                portal: portal_rev + u64::from(f % 5 == 1),
            };
            format!(
                "rev {user_rev}/{portal_rev} stored {}",
                kind(store.insert_token(&t, expect).await)
            )
        }
        26 => kind(store.token_by_hash(&hash(c)).await),
        27 => match d % 4 {
            0 => kind(store.revoke_token(&hash(c)).await),
            1 => kind(store.revoke_user_tokens(uid(a)).await),
            2 => kind(store.revoke_portal_tokens(tpid(b)).await),
            _ => kind(store.purge_expired_tokens(now).await),
        },
        28..=30 => match store.acquire(key(a), &rule(b), now).await {
            Ok(Acquire::Granted(s)) => {
                seen.slots.push(s);
                format!("Granted #{}", seen.slots.len() - 1)
            }
            other => kind(other),
        },
        31 => match seen.slots.get(c as usize % seen.slots.len().max(1)) {
            Some(s) => kind(store.release(*s).await),
            None => "no slot".into(),
        },
        32 => match d % 3 {
            0 => kind(store.record(key(a), &rule(b), now).await),
            _ => kind(store.reset(key(a)).await),
        },
        33 => {
            let actions = [
                AuditAction::LoginFailViaApi,
                AuditAction::Logout,
                AuditAction::LoginSuccessViaApiTfa,
            ];
            let ev = AuditEvent {
                at: now,
                portal: pid(b),
                user: (c % 2 == 0).then(|| uid(a)),
                login: (d % 2 == 0).then(|| email(c).to_lowercase()),
                action: actions[(e % 3) as usize],
                ip: if f % 2 == 0 {
                    "192.0.2.1".parse().unwrap()
                } else {
                    "2001:db8::1".parse().unwrap()
                },
                user_agent: (f % 3 == 0).then(|| "ua".to_owned()),
                reason: (e % 2 == 0).then(|| format!("r{e}")),
            };
            if op % 2 == 0 {
                kind(store.append_audit(&ev).await)
            } else {
                let filter = AuditFilter {
                    portal: (c % 2 == 0).then(|| pid(b)),
                    user: (d % 3 == 0).then(|| uid(a)),
                    action: (f % 3 == 0).then(|| actions[(e % 3) as usize]),
                };
                kind(store.recent_audit(&filter, e % 6).await)
            }
        }
        34 => {
            let m = NewOutboxMessage {
                portal: pid(b),
                to: phone(d).into(),
                sealed_text: vec![c as u8; 4],
                created_at: now,
            };
            match store.enqueue_sms(&m).await {
                Ok(id) => {
                    seen.outbox.push(id);
                    format!("enqueued #{}", seen.outbox.len() - 1)
                }
                Err(e) => kind(Err::<(), _>(e)),
            }
        }
        35 => match store
            .claim_due_sms(now, SignedDuration::from_secs(i64::from(e % 100)), f % 4, claim(c))
            .await
        {
            Ok(msgs) => outbox_view(seen, msgs),
            Err(e) => kind(Err::<(), _>(e)),
        },
        36 => match seen.outbox.get(c as usize % seen.outbox.len().max(1)).copied() {
            Some(id) if d % 2 == 0 => kind(store.mark_sms_sent(id, claim(b), now).await),
            Some(id) => {
                kind(store.mark_sms_failed(id, claim(b), at(now, e % 400), &format!("e{e}")).await)
            }
            None => match store.recent_sms(f % 5).await {
                Ok(msgs) => outbox_view(seen, msgs),
                Err(e) => kind(Err::<(), _>(e)),
            },
        },
        37 => {
            let hosts = ["h1.example", "h2.example", "h3.example"];
            let mut p = Portal {
                id: tpid(a),
                name: format!("p{b}"),
                hosts: hosts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (c >> i) & 1 == 1)
                    .map(|(_, h)| (*h).to_owned())
                    .collect(),
                settings: PortalSettings::default(),
                created_at: now,
                // Inserts store it; updates ignore it (the store owns the revision).
                revision: u64::from(f % 2),
            };
            p.settings.tfa = if d % 2 == 0 { TfaMode::Sms } else { TfaMode::None };
            match e % 3 {
                0 => kind(store.insert_portal(&p).await),
                1 => kind(store.update_portal(&p, f % 3 == 0).await),
                _ => kind(store.list_portals().await),
            }
        }
        38 => kind(store.revoke_user_tokens_except(uid(a), &hash(c)).await),
        39 => kind(store.count_since(key(a), at(now, e % 400)).await),
        40 => match seen.outbox.get(c as usize % seen.outbox.len().max(1)).copied() {
            Some(id) => kind(store.renew_sms_claim(id, claim(b), at(now, e % 400)).await),
            None => "no message".into(),
        },
        41 => kind(store.tokens_of_user(uid(a)).await),
        42 => kind(store.revoke_user_token(uid(a), i64::from(d % 7) + 1).await),
        43 => kind(store.touch_tokens(&[(hash(c), now), (hash(d), at(now, e % 400))]).await),
        44 => {
            if e % 2 == 0 {
                kind(store.purge_outbox(now, f % 4).await)
            } else {
                let filter = AuditFilter {
                    portal: (c % 2 == 0).then(|| pid(b)),
                    user: (d % 3 == 0).then(|| uid(a)),
                    action: None,
                };
                // The cursors are each store's own numbers; the events and their order must agree.
                let page =
                    store.audit_page(&filter, at(now, e % 400), at(now, f % 400), None, f % 5);
                kind(page.await.map(|p| p.into_iter().map(|(_, e)| e).collect::<Vec<_>>()))
            }
        }
        _ => {
            let name = ["meta:one", "meta:two"][(a % 2) as usize];
            kind(store.init_meta(name, &[c as u8; 2]).await)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_like_the_reference_store() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqliteStore::open(dir.path().join("diff.db")).unwrap();
    let mem = MemStore::new();
    let rng = SeqRng::new(0x5EED);
    let (mut seen_sql, mut seen_mem) = (Seen::default(), Seen::default());
    let mut answers = String::new();
    for step in 0..3000 {
        let r: [u32; 8] = std::array::from_fn(|_| rng.below(1 << 20));
        let want = apply(&mem, &mut seen_mem, &r).await;
        let got = apply(&sql, &mut seen_sql, &r).await;
        assert_eq!(got, want, "step {step}, operation {r:?}");
        answers.push_str(&got);
    }
    // The run is only worth something if the interesting outcomes happened.
    for outcome in [
        "Conflict",
        "Granted",
        "Refused",
        "true",
        "false",
        "Some(",
        "enqueued",
        "attempts: 1",
        "stored true",
        "stored false",
        "revision: 1",
    ] {
        assert!(answers.contains(outcome), "no {outcome:?} in the differential run");
    }
}

#[tokio::test]
async fn data_survives_reopen_and_version_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let u = user(UserId::from_random_bytes([1; 16]), PortalId::from_random_bytes([2; 16]), "x@y.z");
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        store.insert_user(&u).await.unwrap();
        store.ping().await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.user_by_id(u.id).await.unwrap(), Some(u));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

/// A file at schema version 1, as the previous release wrote it, is upgraded when opened: its rows
/// read back at revision 0, its tokens keep working under those revisions, a message it had leased
/// can be claimed under a claim, and the new `meta` table answers.
#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let (uid, pid) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let nanos = |t: Timestamp| i64::try_from(t.as_nanosecond()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql")).unwrap();
        conn.pragma_update(None, "application_id", 0x4155_5448).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let (u, p) = (uid.0.as_bytes().as_slice(), pid.0.as_bytes().as_slice());
        conn.execute(
            "INSERT INTO users (id, portal, email, email_lower, first_name, last_name, is_admin, \
             disabled, password_hash, phone, phone_activated, created_at) \
             VALUES (?1, ?2, 'old@example.com', 'old@example.com', 'Grace', 'Hopper', 0, 0, \
             '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA', NULL, 0, ?3)",
            rusqlite::params![u, p, nanos(t0())],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO portals (id, name, settings, created_at) VALUES (?1, 'portal old.example', \
             ?2, ?3)",
            rusqlite::params![p, PortalSettings::default().encode(), nanos(t0())],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO portal_hosts (host, portal, position) VALUES ('old.example', ?1, 0)",
            [p],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tokens (hash, user, portal, issued_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            rusqlite::params![[1u8; 32].as_slice(), u, p, nanos(t0())],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO outbox (portal, to_phone, sealed_text, created_at, attempts, \
             next_attempt_at) VALUES (?1, '79000000000', x'010203', ?2, 0, ?2)",
            rusqlite::params![p, nanos(t0())],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);

    let old = user(uid, pid, "old@example.com");
    assert_eq!(store.user_by_id(uid).await.unwrap(), Some(old.clone()), "revision 0 by default");
    assert_eq!(store.list_portals().await.unwrap(), vec![portal(pid, "old.example")]);
    let (token, u) = store.session_by_token_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!((token.user, u), (uid, old));
    let fresh = TokenRecord { hash: [2; 32], id: 2, ..token };
    assert!(store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert_eq!(store.revoke_user_tokens_except(uid, &[2; 32]).await.unwrap(), 1);
    assert!(!store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert_eq!(store.user_by_id(uid).await.unwrap().unwrap().revision, 1);

    let claimed = store.claim_due_sms(t0(), SignedDuration::from_secs(60), 10, 42).await.unwrap();
    assert_eq!(claimed.len(), 1, "the old message is due");
    assert!(!store.mark_sms_sent(claimed[0].id, 41, t0()).await.unwrap(), "not its claim");
    assert!(store.mark_sms_sent(claimed[0].id, 42, t0()).await.unwrap());
    assert_eq!(store.init_meta("upgraded", b"yes").await.unwrap(), b"yes".to_vec());
}

/// A file at schema version 2, as the release before social login wrote it, is upgraded when
/// opened: its rows read back as they were (revisions, meta values), and the new link and code
/// tables answer, with their uniqueness rules.
#[tokio::test]
async fn a_version_2_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let (uid, pid) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let nanos = |t: Timestamp| i64::try_from(t.as_nanosecond()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_revisions_claims_meta.sql"))
            .unwrap();
        conn.pragma_update(None, "application_id", 0x4155_5448).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO users (id, portal, email, email_lower, first_name, last_name, is_admin, \
             disabled, password_hash, phone, phone_activated, created_at, revision) \
             VALUES (?1, ?2, 'old@example.com', 'old@example.com', 'Grace', 'Hopper', 0, 0, \
             '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA', NULL, 0, ?3, 4)",
            rusqlite::params![
                uid.0.as_bytes().as_slice(),
                pid.0.as_bytes().as_slice(),
                nanos(t0())
            ],
        )
        .unwrap();
        conn.execute("INSERT INTO meta (name, value) VALUES ('kept', x'0102')", []).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);

    let old = User { revision: 4, ..user(uid, pid, "old@example.com") };
    assert_eq!(store.user_by_id(uid).await.unwrap(), Some(old));
    assert_eq!(store.init_meta("kept", b"new").await.unwrap(), vec![1, 2], "meta kept");

    let link = AccountLink {
        portal: pid,
        provider: "google".into(),
        subject: "g-1".into(),
        user: uid,
        created_at: t0(),
    };
    assert!(store.insert_link(&link).await.unwrap());
    assert!(
        !store.insert_link(&AccountLink { subject: "g-2".into(), ..link.clone() }).await.unwrap()
    );
    assert_eq!(store.link_by_subject(pid, "google", "g-1").await.unwrap(), Some(link.clone()));
    assert_eq!(store.links_of(uid).await.unwrap(), vec![link]);
    let code = RememberedCode {
        provider: "google".into(),
        subject: "g-1".into(),
        email: None,
        email_verified: false,
        expires_at: at(t0(), 260),
    };
    store.remember_code(&[3; 32], &code).await.unwrap();
    assert_eq!(store.recall_code(&[3; 32], t0()).await.unwrap(), Some(code));
    // Only the code's hash is kept: the table has no column a code could be in.
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('remembered_codes') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        columns,
        ["code_hash", "provider", "subject", "email", "email_verified", "expires_at"]
    );
}

/// Every lookup and delete of `SocialStore` is answered from an index, not a scan of the table.
#[test]
fn social_lookups_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "SELECT * FROM account_links WHERE portal = ?1 AND provider = ?2 AND subject = ?3",
        "SELECT * FROM account_links WHERE user = ?1 ORDER BY seq",
        "DELETE FROM account_links WHERE user = ?1 AND provider = ?2",
        "SELECT * FROM remembered_codes WHERE code_hash = ?1 AND expires_at > ?2",
        "DELETE FROM remembered_codes WHERE expires_at <= ?1",
    ] {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // The plan does not depend on the values, but every parameter must be bound.
        let nulls = vec![rusqlite::types::Null; st.parameter_count()];
        let plan: Vec<String> = st
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("; ");
        // SEARCH is a lookup through an index (or the primary key of a WITHOUT ROWID table);
        // SCAN would read every row.
        assert!(plan.contains("SEARCH") && !plan.contains("SCAN"), "{sql}: {plan}");
    }
}

/// Issue 17: a file at schema version 3, as the release before the sessions API wrote it, is
/// upgraded when opened: its tokens are numbered 1, 2, … in issue order, were last used when issued,
/// have no client details, and keep working; new tokens take random ids, and a taken id is refused.
#[tokio::test]
async fn a_version_3_database_gets_token_ids_when_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let (uid, pid) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let nanos = |t: Timestamp| i64::try_from(t.as_nanosecond()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_revisions_claims_meta.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../migrations/0003_social.sql")).unwrap();
        conn.pragma_update(None, "application_id", 0x4155_5448).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        let (u, p) = (uid.0.as_bytes().as_slice(), pid.0.as_bytes().as_slice());
        conn.execute(
            "INSERT INTO users (id, portal, email, email_lower, first_name, last_name, is_admin, \
             disabled, password_hash, phone, phone_activated, created_at) \
             VALUES (?1, ?2, 'old@example.com', 'old@example.com', 'Grace', 'Hopper', 0, 0, \
             '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA', NULL, 0, ?3)",
            rusqlite::params![u, p, nanos(t0())],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO portals (id, name, settings, created_at) VALUES (?1, 'portal old.example', \
             ?2, ?3)",
            rusqlite::params![p, PortalSettings::default().encode(), nanos(t0())],
        )
        .unwrap();
        // Issued out of hash order, so the numbering shows it follows the issue time.
        for (hash, issued) in [(3u8, 20), (1, 30), (2, 10)] {
            conn.execute(
                "INSERT INTO tokens (hash, user, portal, issued_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    [hash; 32].as_slice(),
                    u,
                    p,
                    nanos(at(t0(), issued)),
                    nanos(at(t0(), 999))
                ],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);

    let listed = store.tokens_of_user(uid).await.unwrap();
    let seen: Vec<_> = listed.iter().map(|t| (t.hash[0], t.id)).collect();
    assert_eq!(seen, vec![(2, 1), (3, 2), (1, 3)], "numbered in issue order");
    for t in &listed {
        assert_eq!(t.last_used_at, t.issued_at);
        assert_eq!((t.client_ip, t.user_agent.as_deref()), (None, None));
    }
    let (token, _) = store.session_by_token_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(token, listed[2]);
    let taken = TokenRecord { hash: [4; 32], ..token.clone() };
    let r = store.insert_token(&taken, Revisions { user: 0, portal: 0 }).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "id 3 is taken: {r:?}");
    let fresh = TokenRecord { hash: [4; 32], id: 7_777_777_777, ..token };
    assert!(store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert!(store.revoke_user_token(uid, 7_777_777_777).await.unwrap());
}

/// Issue 17: the sessions list, ending a session by id, the outbox retention and each page of the
/// audit export are answered from an index, not a scan of the table.
#[test]
fn session_retention_and_export_statements_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "SELECT * FROM tokens WHERE user = ?1 ORDER BY issued_at, id",
        "DELETE FROM tokens WHERE id = ?1 AND user = ?2",
        "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1 AND last_used_at < ?2",
        "SELECT id FROM outbox WHERE created_at < ?1 AND (sent_at IS NOT NULL OR \
         next_attempt_at = ?2) ORDER BY created_at LIMIT ?3",
        "SELECT * FROM audit WHERE at >= ?1 AND at < ?2 AND (at, id) > (?3, ?4) \
         ORDER BY at, id LIMIT ?5",
    ] {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; st.parameter_count()];
        let plan: Vec<String> = st
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("; ");
        assert!(plan.contains("SEARCH") && !plan.contains("SCAN"), "{sql}: {plan}");
    }
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    match SqliteStore::open(&path) {
        Err(e @ SqliteError::TooNew { found, supported }) => {
            assert_eq!((found, supported), (i64::from(SCHEMA_VERSION) + 1, SCHEMA_VERSION));
            assert!(e.to_string().contains("newer"), "{e}");
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT)").unwrap();
    drop(conn);
    assert!(matches!(SqliteStore::open(&path), Err(SqliteError::Foreign { .. })));
    let unopenable = dir.path().join("missing-dir").join("auth.db");
    assert!(matches!(SqliteStore::open(&unopenable), Err(SqliteError::Open { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_is_unavailable_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            max_connections: 2,
            busy_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let rule = Rule::per(5, SignedDuration::from_secs(60));
    let r = store.acquire("k", &rule, t0()).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    // Reads still work while another process writes (WAL).
    assert_eq!(store.count_users().await.unwrap(), 0);
    other.execute_batch("ROLLBACK").unwrap();
    assert!(matches!(store.acquire("k", &rule, t0()).await, Ok(Acquire::Granted(_))));
}

/// The inline token lookup sees what another process commits at once (every statement reads the
/// newest commit), and answers the same whether it runs inline or in the blocking pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_session_lookups_see_other_processes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let writer = SqliteStore::open(&path).unwrap();
    let reader = SqliteStore::open(&path).unwrap();
    let blocking_only =
        SqliteStore::open_with(&path, SqliteOptions { inline_readers: 0, ..Default::default() })
            .unwrap();
    let (uid, pid) = (UserId::from_random_bytes([3; 16]), PortalId::from_random_bytes([4; 16]));
    let u = user(uid, pid, "inline@example.com");
    writer.insert_user(&u).await.unwrap();
    writer.insert_portal(&portal(pid, "inline.example")).await.unwrap();
    let token = TokenRecord {
        client_ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: Some("inline".into()),
        ..auth_core::testkit::token_record([9; 32], uid, pid, t0(), at(t0(), 60))
    };
    assert!(writer.insert_token(&token, Revisions { user: 0, portal: 0 }).await.unwrap());
    let want = Some((token.clone(), u.clone()));
    assert_eq!(reader.session_by_token_hash(&[9; 32]).await.unwrap(), want);
    assert_eq!(blocking_only.session_by_token_hash(&[9; 32]).await.unwrap(), want);
    // A writer holding its lock does not stop the inline read (WAL readers never wait).
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(reader.session_by_token_hash(&[9; 32]).await.unwrap(), want);
    other.execute_batch("ROLLBACK").unwrap();
    assert!(writer.revoke_token(&[9; 32]).await.unwrap());
    assert_eq!(
        reader.session_by_token_hash(&[9; 32]).await.unwrap(),
        None,
        "revoked elsewhere: gone at once"
    );
    assert_eq!(blocking_only.session_by_token_hash(&[9; 32]).await.unwrap(), None);
}

#[tokio::test]
async fn damaged_rows_are_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO tokens (hash, user, portal, issued_at, expires_at) \
         VALUES (?1, x'0102', ?2, 0, 0)",
        rusqlite::params![[7u8; 32].as_slice(), [1u8; 16].as_slice()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO portals (id, name, settings, created_at) VALUES (?1, 'p', 'bogus=1', 0)",
        [[3u8; 16].as_slice()],
    )
    .unwrap();
    assert!(matches!(store.token_by_hash(&[7; 32]).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(store.list_portals().await, Err(StoreError::Corrupt(_))));
}

#[test]
fn works_outside_a_tokio_runtime() {
    let store = SqliteStore::open_in_memory().unwrap();
    let u = user(UserId::from_random_bytes([9; 16]), PortalId::from_random_bytes([8; 16]), "a@b.c");
    futures_util::FutureExt::now_or_never(store.insert_user(&u))
        .expect("runs inline without a runtime")
        .unwrap();
    let got = futures_util::FutureExt::now_or_never(store.user_by_id(u.id)).unwrap().unwrap();
    assert_eq!(got, Some(u));
}

/// Group commit: writes that queue up while one commits share the next transaction (one fsync),
/// and a failed write among them (a duplicate user) is refused alone while the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("group.db")).unwrap();
    let p = PortalId::from_random_bytes([7; 16]);
    store.insert_portal(&portal(p, "group.example.com")).await.unwrap();
    let (ran_before, batches_before) = store.write_stats();
    let rule = Rule::per(5, SignedDuration::from_secs(60));
    let writes = (0..40u8).map(|i| {
        let (store, rule) = (store.clone(), rule);
        tokio::spawn(async move {
            let key = format!("group-{i}");
            store.record(&key, &rule, t0()).await.map(|()| key)
        })
    });
    let dup = UserId::from_random_bytes([9; 16]);
    store.insert_user(&user(dup, p, "dup@example.com")).await.unwrap();
    let dups = (0..4u8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let other = UserId::from_random_bytes([10 + i; 16]);
            store.insert_user(&user(other, p, "dup@example.com")).await
        })
    });
    let (writes, dups) =
        (futures_util::future::join_all(writes).await, futures_util::future::join_all(dups).await);
    for w in writes {
        let key = w.unwrap().unwrap();
        assert_eq!(store.count_since(&key, t0()).await.unwrap(), 1, "{key} was acknowledged");
    }
    for d in dups {
        assert!(
            matches!(d.unwrap(), Err(StoreError::Conflict(_))),
            "a duplicate e-mail is refused"
        );
    }
    let (ran, batches) = store.write_stats();
    let (ran, batches) = (ran - ran_before, batches - batches_before);
    assert_eq!(ran, 45, "every write ran once");
    assert!(batches < ran / 2, "{ran} writes in {batches} transactions: they were not grouped");
}

/// A login's two throttle slots commit without a sync of the WAL (the port allows it for
/// `acquire_then` alone); every other write, the release that ends the attempt included, is synced,
/// and what the unsynced commit wrote is there for the next reader and after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_throttle_slots_of_an_attempt_commit_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("defer.db");
    let store = SqliteStore::open(&path).unwrap();
    let rule = Rule::per(5, SignedDuration::from_secs(60));
    let before = (store.write_stats().1, store.unsynced_commits());
    let taken = store.acquire_then(("login-a", &rule), ("account-a", &rule), t0()).await.unwrap();
    let AcquireThen::Granted(first, Acquire::Granted(_)) = taken else {
        panic!("both slots are free: {taken:?}")
    };
    assert_eq!(store.unsynced_commits() - before.1, 1, "the acquire was not synced");
    store.record("other", &rule, t0()).await.unwrap();
    store.release_all(&[first]).await.unwrap();
    let (batches, unsynced) =
        (store.write_stats().1 - before.0, store.unsynced_commits() - before.1);
    assert_eq!((batches, unsynced), (3, 1), "the record and the release were synced");
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_since("login-a", t0()).await.unwrap(), 0, "released");
    assert_eq!(store.count_since("account-a", t0()).await.unwrap(), 1, "still held");
}

//! Connecting and migrating: nodes starting at once on a fresh database, databases left at older
//! schema versions by previous releases, a database migrated by a newer build, unusable
//! configurations, and how failures surface as `StoreError` kinds.

use auth_core::ports::{
    AccountLink, MetaStore, OutboxStore, PortalStore, RememberedCode, Revisions, SocialStore,
    StoreError, TokenStore, UserStore,
};
use auth_core::{PortalId, SignedDuration, Timestamp, UserId};
use auth_postgres::{PgError, PgStore, SCHEMA_VERSION};
use futures_util::future::join_all;

use crate::common::{TestDb, client};

const MIGRATION_1: &str = include_str!("../../migrations/0001_init.sql");
const MIGRATION_2: &str = include_str!("../../migrations/0002_revisions_claims_meta.sql");
const MIGRATION_3: &str = include_str!("../../migrations/0003_social.sql");

/// A database as an earlier release of `migrate.rs` left it: its table of versions, the given
/// migrations, and the rows that record them (versions 1, 2, … in order).
async fn database_at(url: &str, migrations: &[&str]) -> tokio_postgres::Client {
    let old = client(url).await;
    old.batch_execute(
        "CREATE TABLE schema_version (version INT4 NOT NULL PRIMARY KEY, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    for (i, sql) in migrations.iter().enumerate() {
        old.batch_execute(sql).await.unwrap();
        let version = i32::try_from(i + 1).unwrap();
        old.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&version]).await.unwrap();
    }
    old
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(db) = TestDb::create("nodes_starting_at_once_migrate_once").await else { return };
    let stores = join_all((0..6).map(|_| PgStore::connect(&db.url, 2))).await;
    for s in &stores {
        assert_eq!(s.as_ref().unwrap().schema_version().await.unwrap(), i64::from(SCHEMA_VERSION));
    }
    let rows: i64 = client(&db.url)
        .await
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, i64::from(SCHEMA_VERSION), "each migration MUST be applied once");
    // Connecting again to a migrated database changes nothing.
    let again = PgStore::connect(&db.url, 1).await.unwrap();
    again.ping().await.unwrap();
}

/// A database at schema version 1, as the previous release left it, is upgraded on connect: its
/// rows read back at revision 0, its tokens keep working under those revisions, a message it had
/// leased can be claimed under a claim, and the new `meta` table answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_upgraded_in_place() {
    let Some(db) = TestDb::create("a_version_1_database_is_upgraded_in_place").await else {
        return;
    };
    let (u, p) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let t0 = Timestamp::constant(1_768_031_184, 123_456_789);
    let at = i64::try_from(t0.as_nanosecond()).unwrap();
    let old = database_at(&db.url, &[MIGRATION_1]).await;
    old.execute(
        "INSERT INTO users (id, portal_id, email, email_lower, first_name, last_name, is_admin, \
         disabled, password_hash, phone, phone_activated, created_at) VALUES \
         ($1, $2, 'old@example.com', 'old@example.com', 'A', 'B', false, false, 'x', NULL, false, $3)",
        &[&u.0, &p.0, &at],
    )
    .await
    .unwrap();
    old.execute(
        "INSERT INTO portals (id, name, settings, created_at) VALUES ($1, 'old', '', $2)",
        &[&p.0, &at],
    )
    .await
    .unwrap();
    old.execute(
        "INSERT INTO portal_hosts (host, portal_id, position) VALUES ('old.example', $1, 0)",
        &[&p.0],
    )
    .await
    .unwrap();
    old.execute(
        "INSERT INTO tokens (hash, user_id, portal_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $4)",
        &[&[1u8; 32].as_slice(), &u.0, &p.0, &at],
    )
    .await
    .unwrap();
    old.execute(
        "INSERT INTO outbox (portal_id, to_phone, sealed_text, created_at, attempts, \
         next_attempt_at) VALUES ($1, '79000000000', '\\x010203', $2, 0, $2)",
        &[&p.0, &at],
    )
    .await
    .unwrap();

    let store = PgStore::connect(&db.url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), i64::from(SCHEMA_VERSION));
    let user = store.user_by_id(u).await.unwrap().unwrap();
    assert_eq!((user.email.as_str(), user.created_at, user.revision), ("old@example.com", t0, 0));
    let portals = store.list_portals().await.unwrap();
    assert_eq!(
        portals.iter().map(|p| (p.id, p.hosts.clone(), p.revision)).collect::<Vec<_>>(),
        vec![(p, vec!["old.example".to_owned()], 0)]
    );
    let (token, joined) = store.session_by_token_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!((token.user, joined), (u, user));
    let fresh = auth_core::ports::TokenRecord { hash: [2; 32], id: 2, ..token };
    assert!(store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert_eq!(store.revoke_user_tokens_except(u, &[2; 32]).await.unwrap(), 1);
    assert!(!store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert_eq!(store.user_by_id(u).await.unwrap().unwrap().revision, 1);

    let claimed = store.claim_due_sms(t0, SignedDuration::from_secs(60), 10, 42).await.unwrap();
    assert_eq!(claimed.len(), 1, "the old message is due");
    assert!(!store.mark_sms_sent(claimed[0].id, 41, t0).await.unwrap(), "not its claim");
    assert!(store.mark_sms_sent(claimed[0].id, 42, t0).await.unwrap());
    assert_eq!(store.init_meta("upgraded", b"yes").await.unwrap(), b"yes".to_vec());
}

/// A database at schema version 2, as the release before social login left it, is upgraded on
/// connect: its rows read back as they were (revisions, meta values), and the new link and code
/// tables answer, with their uniqueness rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_database_is_upgraded_in_place() {
    let Some(db) = TestDb::create("a_version_2_database_is_upgraded_in_place").await else {
        return;
    };
    let (u, p) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let t0 = Timestamp::constant(1_768_031_184, 123_456_789);
    let at = i64::try_from(t0.as_nanosecond()).unwrap();
    let old = database_at(&db.url, &[MIGRATION_1, MIGRATION_2]).await;
    old.execute(
        "INSERT INTO users (id, portal_id, email, email_lower, first_name, last_name, is_admin, \
         disabled, password_hash, phone, phone_activated, created_at, revision) VALUES \
         ($1, $2, 'old@example.com', 'old@example.com', 'A', 'B', false, false, 'x', NULL, false, \
         $3, 4)",
        &[&u.0, &p.0, &at],
    )
    .await
    .unwrap();
    old.batch_execute("INSERT INTO meta (name, value) VALUES ('kept', '\\x0102')").await.unwrap();

    let store = PgStore::connect(&db.url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), i64::from(SCHEMA_VERSION));
    let versions: Vec<i32> = old
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<i32> = (1..=i32::try_from(SCHEMA_VERSION).unwrap()).collect();
    assert_eq!(versions, want, "versions 1 and 2 kept, the rest applied once each");
    let user = store.user_by_id(u).await.unwrap().unwrap();
    assert_eq!((user.email.as_str(), user.created_at, user.revision), ("old@example.com", t0, 4));
    assert_eq!(store.init_meta("kept", b"new").await.unwrap(), vec![1, 2], "meta kept");

    let link = AccountLink {
        portal: p,
        provider: "google".into(),
        subject: "g-1".into(),
        user: u,
        created_at: t0,
    };
    assert!(store.insert_link(&link).await.unwrap());
    assert!(
        !store.insert_link(&AccountLink { subject: "g-2".into(), ..link.clone() }).await.unwrap()
    );
    assert_eq!(store.link_by_subject(p, "google", "g-1").await.unwrap(), Some(link.clone()));
    assert_eq!(store.links_of(u).await.unwrap(), vec![link]);
    let code = RememberedCode {
        provider: "google".into(),
        subject: "g-1".into(),
        email: None,
        email_verified: false,
        expires_at: t0.checked_add(SignedDuration::from_secs(60)).unwrap(),
    };
    store.remember_code(&[3; 32], &code).await.unwrap();
    assert_eq!(store.recall_code(&[3; 32], t0).await.unwrap(), Some(code));
    // Only the code's hash is kept: the table has no column a code could be in.
    let columns: Vec<String> = old
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'remembered_codes' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        columns,
        ["code_hash", "provider", "subject", "email", "email_verified", "expires_at"]
    );
}

/// Issue 17: a database at schema version 3, as the release before the sessions API left it, is
/// upgraded on connect: its tokens are numbered 1, 2, … in issue order, were last used when issued,
/// have no client details, and keep working; new tokens take random ids, and a taken id is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_database_gets_token_ids_when_upgraded() {
    let Some(db) = TestDb::create("a_version_3_database_gets_token_ids_when_upgraded").await else {
        return;
    };
    let (u, p) = (UserId::from_random_bytes([5; 16]), PortalId::from_random_bytes([6; 16]));
    let t0 = Timestamp::constant(1_768_031_184, 123_456_789);
    let at = |secs: i64| i64::try_from(t0.as_nanosecond()).unwrap() + secs * 1_000_000_000;
    let old = database_at(&db.url, &[MIGRATION_1, MIGRATION_2, MIGRATION_3]).await;
    old.execute(
        "INSERT INTO users (id, portal_id, email, email_lower, first_name, last_name, is_admin, \
         disabled, password_hash, phone, phone_activated, created_at) VALUES \
         ($1, $2, 'old@example.com', 'old@example.com', 'A', 'B', false, false, 'x', NULL, false, $3)",
        &[&u.0, &p.0, &at(0)],
    )
    .await
    .unwrap();
    old.execute(
        "INSERT INTO portals (id, name, settings, created_at) VALUES ($1, 'old', '', $2)",
        &[&p.0, &at(0)],
    )
    .await
    .unwrap();
    // Issued out of hash order, so the numbering shows it follows the issue time.
    for (hash, issued) in [(3u8, 20), (1, 30), (2, 10)] {
        old.execute(
            "INSERT INTO tokens (hash, user_id, portal_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&[hash; 32].as_slice(), &u.0, &p.0, &at(issued), &at(999)],
        )
        .await
        .unwrap();
    }

    let store = PgStore::connect(&db.url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), i64::from(SCHEMA_VERSION));
    let listed = store.tokens_of_user(u).await.unwrap();
    let seen: Vec<_> = listed.iter().map(|t| (t.hash[0], t.id)).collect();
    assert_eq!(seen, vec![(2, 1), (3, 2), (1, 3)], "numbered in issue order");
    for t in &listed {
        assert_eq!(t.last_used_at, t.issued_at);
        assert_eq!((t.client_ip, t.user_agent.as_deref()), (None, None));
    }
    let (token, _) = store.session_by_token_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(token, listed[2]);
    let taken = auth_core::ports::TokenRecord { hash: [4; 32], ..token.clone() };
    let r = store.insert_token(&taken, Revisions { user: 0, portal: 0 }).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "id 3 is taken: {r:?}");
    let fresh = auth_core::ports::TokenRecord { hash: [4; 32], id: 7_777_777_777, ..token };
    assert!(store.insert_token(&fresh, Revisions { user: 0, portal: 0 }).await.unwrap());
    assert!(store.revoke_user_token(u, 7_777_777_777).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(db) = TestDb::create("a_newer_schema_is_refused").await else { return };
    PgStore::connect(&db.url, 1).await.unwrap();
    let newer = i32::try_from(SCHEMA_VERSION).unwrap() + 1;
    client(&db.url)
        .await
        .execute("INSERT INTO schema_version (version) VALUES ($1)", &[&newer])
        .await
        .unwrap();
    match PgStore::connect(&db.url, 1).await {
        Err(PgError::TooNew { found, supported }) => {
            assert_eq!((found, supported), (i64::from(newer), SCHEMA_VERSION));
        }
        other => panic!("a newer schema MUST be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn unusable_configurations_are_config_or_connect_errors() {
    // These need no server: nothing listens on port 1, and the rest fails before connecting.
    assert!(matches!(
        PgStore::connect("postgres://nobody@127.0.0.1:1/none?connect_timeout=2", 2).await,
        Err(PgError::Connect(_))
    ));
    assert!(matches!(
        PgStore::connect("postgres://nobody@127.0.0.1:1/none", 0).await,
        Err(PgError::Config(_))
    ));
    assert!(matches!(PgStore::connect("postgres://[bad", 2).await, Err(PgError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_surface_as_store_error_kinds() {
    let Some(db) = TestDb::create("failures_surface_as_store_error_kinds").await else { return };
    let store = PgStore::connect(&db.url, 2).await.unwrap();
    // A schema that lost a table is data this build cannot read, not an outage.
    client(&db.url).await.batch_execute("DROP TABLE tokens").await.unwrap();
    assert!(matches!(store.token_by_hash(&[1; 32]).await, Err(StoreError::Corrupt(_))));
    // A stored value of the wrong shape is corrupt too.
    client(&db.url)
        .await
        .batch_execute(
            "INSERT INTO users (id, portal_id, email, email_lower, first_name, last_name, is_admin, \
             disabled, password_hash, phone, phone_activated, created_at) VALUES \
             ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', \
             'a@b', 'a@b', 'A', 'B', false, false, 'x', NULL, false, 0); \
             ALTER TABLE users ALTER COLUMN created_at TYPE TEXT",
        )
        .await
        .unwrap();
    assert!(matches!(store.list_users(None).await, Err(StoreError::Corrupt(_))));
    // A closed pool (or a lost server) is an outage: retryable.
    store.close();
    assert!(matches!(store.count_users().await, Err(StoreError::Unavailable(_))));
}

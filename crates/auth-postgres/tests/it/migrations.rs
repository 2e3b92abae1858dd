//! Connecting and migrating: nodes starting at once on a fresh database, a database migrated by a
//! newer build, unusable configurations, and how failures surface as `StoreError` kinds.

use auth_core::ports::{StoreError, TokenStore, UserStore};
use auth_postgres::{PgError, PgStore, SCHEMA_VERSION};
use futures_util::future::join_all;

use crate::common::{TestDb, client};

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

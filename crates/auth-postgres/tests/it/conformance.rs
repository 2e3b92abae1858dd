//! The auth-core store conformance suite against a fresh PostgreSQL database, with a normal pool, a
//! pool of one connection (every concurrent call queues: nothing may need two connections at once),
//! and on a current-thread runtime.

use auth_postgres::PgStore;

use crate::common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_conforms() {
    let Some(db) = TestDb::create("store_conforms").await else { return };
    let store = PgStore::connect(&db.url, 8).await.unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_conforms_with_one_connection() {
    let Some(db) = TestDb::create("store_conforms_with_one_connection").await else { return };
    let store = PgStore::connect(&db.url, 1).await.unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

#[tokio::test(flavor = "current_thread")]
async fn store_conforms_on_a_current_thread_runtime() {
    let Some(db) = TestDb::create("store_conforms_on_a_current_thread_runtime").await else {
        return;
    };
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

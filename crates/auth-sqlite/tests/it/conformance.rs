//! The auth-core store conformance suite against a file database (the real use) and an in-memory one.

use auth_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let store = SqliteStore::open_in_memory().unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

#[tokio::test(flavor = "current_thread")]
async fn file_store_conforms_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
    auth_core::testkit::conformance::run(&store).await;
}

//! TLS to PostgreSQL (issue 15): `sslmode=verify-full` with the test cluster's CA connects and is
//! encrypted (the server says so in `pg_stat_ssl`); without a CA that trusts it, it is refused.
//!
//! The cluster `.ci/postgres.sh` starts has TLS on with a throwaway CA, named by
//! `AUTH_TEST_POSTGRES_CA`.

use std::io::Write as _;

use auth_postgres::PgStore;

use crate::common::{TestDb, client};

const CA_VAR: &str = "AUTH_TEST_POSTGRES_CA";

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[tokio::test]
async fn verify_full_with_the_clusters_ca_is_encrypted_and_a_stranger_is_refused() {
    let Some(db) = TestDb::create("verify_full_tls").await else { return };
    let Ok(ca) = std::env::var(CA_VAR) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true, and the TLS test cannot run: {CA_VAR} is not set (.ci/postgres.sh sets it)"
        );
        let _ = std::io::stderr().write_all(
            format!(
                "SKIPPED auth-postgres TLS test: {CA_VAR} is not set; source .ci/postgres.sh\n"
            )
            .as_bytes(),
        );
        return;
    };
    let url = with_params(
        &db.url,
        &format!("sslmode=verify-full&sslrootcert={ca}&application_name=auth-tls-test"),
    );
    let store = PgStore::connect(&url, 2).await.unwrap();
    store.ping().await.unwrap();
    let plain = client(&db.url).await;
    let row = plain
        .query_one(
            "SELECT bool_and(s.ssl) AND count(*) > 0 FROM pg_stat_ssl s \
             JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = 'auth-tls-test'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, Option<bool>>(0).unwrap_or(false),
        "the store's sessions are not over TLS"
    );

    // The system's roots do not know the test CA: verify-full without sslrootcert must refuse.
    let stranger = with_params(&db.url, "sslmode=verify-full&connect_timeout=5");
    assert!(PgStore::connect(&stranger, 1).await.is_err(), "an unknown CA was trusted");
    // Encrypt-only `require` connects whoever answers, as libpq does.
    let require = with_params(&db.url, "sslmode=require");
    PgStore::connect(&require, 1).await.unwrap().ping().await.unwrap();
}

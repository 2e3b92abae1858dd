//! `RecoveryStore`: password-reset keys (spec §14), under keyed hashes.
//!
//! Taking a key is one `DELETE … RETURNING`: SQLite runs it under its write lock, so of concurrent
//! takes, in any number of processes, one gets the row and the others find nothing.

use async_trait::async_trait;
use auth_core::Timestamp;
use auth_core::ports::{RecoveryStore, ResetKey, StoreResult};
use auth_sql::codec::ts;
use auth_sql::records;
use rusqlite::params;

use crate::codec::first;
use crate::store::SqliteStore;

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn insert_reset_key(&self, hash: &[u8; 32], key: &ResetKey) -> StoreResult<()> {
        let (hash, k) = (*hash, key.clone());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO reset_keys (hash, user_id, portal, revision, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                hash.as_slice(),
                k.user.0.as_bytes().as_slice(),
                k.portal.0.as_bytes().as_slice(),
                i64::try_from(k.revision).unwrap_or(i64::MAX),
                ts(k.created_at),
                ts(k.expires_at)
            ])?;
            Ok(())
        })
        .await
    }

    async fn take_reset_key(&self, hash: &[u8; 32]) -> StoreResult<Option<ResetKey>> {
        let hash = *hash;
        self.run(move |c| {
            let mut st = c.prepare_cached(
                "DELETE FROM reset_keys WHERE hash = ?1 \
                 RETURNING user_id, portal, revision, created_at, expires_at",
            )?;
            first(st.query(params![hash.as_slice()])?, |r| records::reset_key(r))
        })
        .await
    }

    async fn purge_reset_keys(&self, now: Timestamp) -> StoreResult<u64> {
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM reset_keys WHERE expires_at < ?1")?
                .execute(params![ts(now)])?;
            Ok(n as u64)
        })
        .await
    }
}

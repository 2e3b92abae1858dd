//! `RecoveryStore`: password-reset keys (spec §14), under keyed hashes.
//!
//! Taking a key is one `DELETE … RETURNING`. Of concurrent takes on any number of nodes, the first
//! deletes the row; the others wait for its row lock and, under READ COMMITTED, re-check the row,
//! find it deleted and return nothing, so a key is used once.

use async_trait::async_trait;
use auth_core::Timestamp;
use auth_core::ports::{RecoveryStore, ResetKey, StoreResult};
use auth_sql::codec::ts;
use auth_sql::records;

use crate::store::{PgStore, done};

#[async_trait]
impl RecoveryStore for PgStore {
    async fn insert_reset_key(&self, hash: &[u8; 32], key: &ResetKey) -> StoreResult<()> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO reset_keys (hash, user_id, portal_id, revision, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await?;
            let revision = i64::try_from(key.revision).unwrap_or(i64::MAX);
            c.execute(
                &st,
                &[
                    &hash.as_slice(),
                    &key.user.0,
                    &key.portal.0,
                    &revision,
                    &ts(key.created_at),
                    &ts(key.expires_at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn take_reset_key(&self, hash: &[u8; 32]) -> StoreResult<Option<ResetKey>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM reset_keys WHERE hash = $1 \
                     RETURNING user_id, portal_id, revision, created_at, expires_at",
                )
                .await?;
            match c.query_opt(&st, &[&hash.as_slice()]).await? {
                Some(row) => Ok(Some(records::reset_key(&row)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn purge_reset_keys(&self, now: Timestamp) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM reset_keys WHERE expires_at < $1").await?;
            Ok(c.execute(&st, &[&ts(now)]).await?)
        })
        .await
    }
}

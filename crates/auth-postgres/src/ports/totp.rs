//! `TotpStore`: the sealed TOTP secret, the last used step, backup codes (keyed hashes) and the
//! pending one-time reveal of the backup codes (sealed).
//!
//! "A step once", "a backup code once" and "create only when absent" are single statements whose
//! `WHERE` or conflict clause is the check: at READ COMMITTED an `UPDATE` that waited for a concurrent
//! one re-checks its `WHERE` on the row that one committed, so the loser changes nothing and sees zero
//! rows. The reveal is taken with `DELETE … RETURNING`, which only one caller can do. Activation,
//! replacement and deletion rewrite three tables, so they are transactions under the user's
//! `totp:<user>` row lock: concurrent ones apply one after another, never interleaved.

use async_trait::async_trait;
use auth_core::UserId;
use auth_core::ports::{BackupCodeRecord, StoreResult, TotpRecord, TotpStore};
use auth_sql::codec::{int4, step};
use auth_sql::{Columns, records};
use deadpool_postgres::Transaction;

use crate::error::DbResult;
use crate::store::{PgStore, begin, done, lock};

fn lock_name(user: UserId) -> String {
    format!("totp:{user}")
}

/// Replaces the user's backup codes (in issue order) and the pending reveal; the caller holds the
/// user's lock.
async fn put_backup(
    tx: &Transaction<'_>,
    user: UserId,
    hashes: &[[u8; 32]],
    reveal: Option<&[u8]>,
) -> DbResult<()> {
    let delete = tx.prepare_cached("DELETE FROM backup_codes WHERE user_id = $1").await?;
    tx.execute(&delete, &[&user.0]).await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO backup_codes (user_id, position, code_hash, used) \
             VALUES ($1, $2, $3, false)",
        )
        .await?;
    for (i, h) in hashes.iter().enumerate() {
        tx.execute(&insert, &[&user.0, &int4(i), &h.as_slice()]).await?;
    }
    match reveal {
        Some(r) => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO backup_reveals (user_id, sealed) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed",
                )
                .await?;
            tx.execute(&st, &[&user.0, &r]).await?
        }
        None => {
            let st = tx.prepare_cached("DELETE FROM backup_reveals WHERE user_id = $1").await?;
            tx.execute(&st, &[&user.0]).await?
        }
    };
    Ok(())
}

#[async_trait]
impl TotpStore for PgStore {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT sealed_secret, activated, last_step FROM totp WHERE user_id = $1",
                )
                .await?;
            c.query_opt(&st, &[&user.0]).await?.as_ref().map(records::totp).transpose()
        })
        .await
    }

    async fn create_totp(&self, user: UserId, sealed_secret: &[u8]) -> StoreResult<bool> {
        // DO NOTHING on the primary key only: concurrent first logins agree on the first secret
        // (the second insert waits for the first and then skips), while any other failure surfaces.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO totp (user_id, sealed_secret, activated, last_step) \
                     VALUES ($1, $2, false, NULL) ON CONFLICT (user_id) DO NOTHING",
                )
                .await?;
            Ok(c.execute(&st, &[&user.0, &sealed_secret]).await? == 1)
        })
        .await
    }

    async fn use_totp_step(&self, user: UserId, step_no: u64) -> StoreResult<bool> {
        done(async {
            let s = step(step_no)?;
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE totp SET last_step = $2 \
                     WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
                )
                .await?;
            Ok(c.execute(&st, &[&user.0, &s]).await? == 1)
        })
        .await
    }

    async fn activate_totp(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: &[u8],
    ) -> StoreResult<bool> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(user)).await?;
            let st = tx
                .prepare_cached(
                    "UPDATE totp SET activated = true WHERE user_id = $1 AND NOT activated",
                )
                .await?;
            if tx.execute(&st, &[&user.0]).await? != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            put_backup(&tx, user, backup_hashes, Some(reveal)).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn delete_totp(&self, user: UserId) -> StoreResult<()> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(user)).await?;
            for sql in [
                "DELETE FROM totp WHERE user_id = $1",
                "DELETE FROM backup_codes WHERE user_id = $1",
                "DELETE FROM backup_reveals WHERE user_id = $1",
            ] {
                let st = tx.prepare_cached(sql).await?;
                tx.execute(&st, &[&user.0]).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn backup_codes(&self, user: UserId) -> StoreResult<Vec<BackupCodeRecord>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT code_hash, used FROM backup_codes WHERE user_id = $1 \
                     ORDER BY position, id",
                )
                .await?;
            c.query(&st, &[&user.0]).await?.iter().map(records::backup_code).collect()
        })
        .await
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: Option<&[u8]>,
    ) -> StoreResult<()> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(user)).await?;
            put_backup(&tx, user, backup_hashes, reveal).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn use_backup_code(&self, user: UserId, code_hash: &[u8; 32]) -> StoreResult<bool> {
        // One statement: the subquery picks the first unused code with this hash, and the UPDATE's
        // own `NOT used` is re-checked on the row a concurrent use committed, so the second use of
        // one code changes nothing.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE backup_codes SET used = true WHERE NOT used AND id = (SELECT id FROM \
                     backup_codes WHERE user_id = $1 AND code_hash = $2 AND NOT used \
                     ORDER BY position, id LIMIT 1)",
                )
                .await?;
            Ok(c.execute(&st, &[&user.0, &code_hash.as_slice()]).await? == 1)
        })
        .await
    }

    async fn take_backup_reveal(&self, user: UserId) -> StoreResult<Option<Vec<u8>>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("DELETE FROM backup_reveals WHERE user_id = $1 RETURNING sealed")
                .await?;
            c.query_opt(&st, &[&user.0]).await?.map(|r| r.bytes(0)).transpose()
        })
        .await
    }

    async fn import_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        activated: bool,
        codes: &[BackupCodeRecord],
    ) -> StoreResult<bool> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(user)).await?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO totp (user_id, sealed_secret, activated, last_step) \
                     VALUES ($1, $2, $3, NULL) ON CONFLICT (user_id) DO NOTHING",
                )
                .await?;
            if tx.execute(&st, &[&user.0, &sealed_secret, &activated]).await? != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let delete = tx.prepare_cached("DELETE FROM backup_codes WHERE user_id = $1").await?;
            tx.execute(&delete, &[&user.0]).await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO backup_codes (user_id, position, code_hash, used) \
                     VALUES ($1, $2, $3, $4)",
                )
                .await?;
            for (i, code) in codes.iter().enumerate() {
                tx.execute(&insert, &[&user.0, &int4(i), &code.code_hash.as_slice(), &code.used])
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn mark_backup_codes_used(&self, user: UserId, hashes: &[[u8; 32]]) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE backup_codes SET used = true \
                     WHERE user_id = $1 AND code_hash = ANY($2) AND NOT used",
                )
                .await?;
            let list: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
            Ok(c.execute(&st, &[&user.0, &list]).await?)
        })
        .await
    }
}

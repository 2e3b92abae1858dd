//! `TotpStore`: the sealed TOTP secret, the last used step, backup codes (keyed hashes) and the
//! pending one-time reveal of the backup codes (sealed).
//!
//! "A step once", "a backup code once" and "create only when absent" are single statements whose
//! `WHERE` or conflict clause is the check; activation, replacement and deletion are `IMMEDIATE`
//! transactions over the three tables; the reveal is taken with `DELETE … RETURNING`.

use async_trait::async_trait;
use auth_core::UserId;
use auth_core::ports::{BackupCodeRecord, StoreResult, TotpRecord, TotpStore};
use auth_sql::codec::{int8, step};
use auth_sql::{Columns, records};
use rusqlite::{Connection, params};

use crate::codec::{collect, first};
use crate::error::DbResult;
use crate::store::SqliteStore;

/// Replaces the user's backup codes (in issue order) and the pending reveal.
fn put_backup(
    tx: &Connection,
    user: UserId,
    hashes: &[[u8; 32]],
    reveal: Option<&[u8]>,
) -> DbResult<()> {
    let user = user.0.as_bytes().as_slice();
    tx.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?.execute([user])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO backup_codes (user, position, code_hash, used) VALUES (?1, ?2, ?3, 0)",
    )?;
    for (i, h) in hashes.iter().enumerate() {
        insert.execute(params![user, int8(i), h.as_slice()])?;
    }
    match reveal {
        Some(r) => tx
            .prepare_cached(
                "INSERT INTO backup_reveals (user, sealed) VALUES (?1, ?2) \
                 ON CONFLICT (user) DO UPDATE SET sealed = excluded.sealed",
            )?
            .execute(params![user, r])?,
        None => tx.prepare_cached("DELETE FROM backup_reveals WHERE user = ?1")?.execute([user])?,
    };
    Ok(())
}

#[async_trait]
impl TotpStore for SqliteStore {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>> {
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT sealed_secret, activated, last_step FROM totp WHERE user = ?1",
            )?;
            first(st.query([user.0.as_bytes().as_slice()])?, |r| records::totp(r))
        })
        .await
    }

    async fn create_totp(&self, user: UserId, sealed_secret: &[u8]) -> StoreResult<bool> {
        let sealed = sealed_secret.to_vec();
        // DO NOTHING on the primary key only: concurrent first logins agree on the first secret,
        // while any other failure still surfaces.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO totp (user, sealed_secret, activated, last_step) \
                     VALUES (?1, ?2, 0, NULL) ON CONFLICT (user) DO NOTHING",
                )?
                .execute(params![user.0.as_bytes().as_slice(), sealed])?;
            Ok(n == 1)
        })
        .await
    }

    async fn use_totp_step(&self, user: UserId, step_no: u64) -> StoreResult<bool> {
        self.run(move |c| {
            let s = step(step_no)?;
            let n = c
                .prepare_cached(
                    "UPDATE totp SET last_step = ?2 \
                     WHERE user = ?1 AND (last_step IS NULL OR last_step < ?2)",
                )?
                .execute(params![user.0.as_bytes().as_slice(), s])?;
            Ok(n == 1)
        })
        .await
    }

    async fn activate_totp(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: &[u8],
    ) -> StoreResult<bool> {
        let hashes = backup_hashes.to_vec();
        let reveal = reveal.to_vec();
        self.write(move |tx| {
            let n = tx
                .prepare_cached("UPDATE totp SET activated = 1 WHERE user = ?1 AND activated = 0")?
                .execute([user.0.as_bytes().as_slice()])?;
            if n != 1 {
                return Ok(false);
            }
            put_backup(tx, user, &hashes, Some(&reveal))?;
            Ok(true)
        })
        .await
    }

    async fn delete_totp(&self, user: UserId) -> StoreResult<()> {
        self.write(move |tx| {
            let u = user.0.as_bytes().as_slice();
            tx.prepare_cached("DELETE FROM totp WHERE user = ?1")?.execute([u])?;
            tx.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?.execute([u])?;
            tx.prepare_cached("DELETE FROM backup_reveals WHERE user = ?1")?.execute([u])?;
            Ok(())
        })
        .await
    }

    async fn backup_codes(&self, user: UserId) -> StoreResult<Vec<BackupCodeRecord>> {
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT code_hash, used FROM backup_codes WHERE user = ?1 ORDER BY position, id",
            )?;
            collect(st.query([user.0.as_bytes().as_slice()])?, |r| records::backup_code(r))
        })
        .await
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        backup_hashes: &[[u8; 32]],
        reveal: Option<&[u8]>,
    ) -> StoreResult<()> {
        let hashes = backup_hashes.to_vec();
        let reveal = reveal.map(<[u8]>::to_vec);
        self.write(move |tx| put_backup(tx, user, &hashes, reveal.as_deref())).await
    }

    async fn use_backup_code(&self, user: UserId, code_hash: &[u8; 32]) -> StoreResult<bool> {
        let code_hash = *code_hash;
        // One statement: the subquery picks the first unused code with this hash and the UPDATE's
        // own `used = 0` re-check makes a concurrent second use change nothing.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE backup_codes SET used = 1 WHERE used = 0 AND id = (SELECT id FROM \
                     backup_codes WHERE user = ?1 AND code_hash = ?2 AND used = 0 \
                     ORDER BY position, id LIMIT 1)",
                )?
                .execute(params![user.0.as_bytes().as_slice(), code_hash.as_slice()])?;
            Ok(n == 1)
        })
        .await
    }

    async fn take_backup_reveal(&self, user: UserId) -> StoreResult<Option<Vec<u8>>> {
        self.run(move |c| {
            let mut st =
                c.prepare_cached("DELETE FROM backup_reveals WHERE user = ?1 RETURNING sealed")?;
            first(st.query([user.0.as_bytes().as_slice()])?, |r| r.bytes(0))
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
        let (sealed, codes) = (sealed_secret.to_vec(), codes.to_vec());
        self.write(move |tx| {
            let u = user.0.as_bytes().as_slice();
            let n = tx
                .prepare_cached(
                    "INSERT INTO totp (user, sealed_secret, activated, last_step) \
                     VALUES (?1, ?2, ?3, NULL) ON CONFLICT (user) DO NOTHING",
                )?
                .execute(params![u, sealed, activated])?;
            if n != 1 {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?.execute([u])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO backup_codes (user, position, code_hash, used) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, c) in codes.iter().enumerate() {
                insert.execute(params![u, int8(i), c.code_hash.as_slice(), c.used])?;
            }
            Ok(true)
        })
        .await
    }

    async fn mark_backup_codes_used(&self, user: UserId, hashes: &[[u8; 32]]) -> StoreResult<u64> {
        let hashes = hashes.to_vec();
        self.write(move |tx| {
            let mut st = tx.prepare_cached(
                "UPDATE backup_codes SET used = 1 WHERE user = ?1 AND code_hash = ?2 AND used = 0",
            )?;
            let mut n = 0u64;
            for h in &hashes {
                n += st.execute(params![user.0.as_bytes().as_slice(), h.as_slice()])? as u64;
            }
            Ok(n)
        })
        .await
    }
}

//! `SmsCodeStore`: outstanding SMS codes (keyed hashes only).
//!
//! Inserting (with expiry and eviction) and consuming (check, then delete every code of the user)
//! are `IMMEDIATE` transactions, so of many concurrent attempts with one code, in any number of
//! processes, exactly one finds it.

use async_trait::async_trait;
use auth_core::ports::{SmsCodeRecord, SmsCodeStore, StoreResult};
use auth_core::{Timestamp, UserId};
use auth_sql::codec::ts;
use auth_sql::records;
use rusqlite::params;

use crate::codec::first;
use crate::store::SqliteStore;

#[async_trait]
impl SmsCodeStore for SqliteStore {
    async fn insert_sms_code(
        &self,
        code: &SmsCodeRecord,
        max_outstanding: u32,
        now: Timestamp,
    ) -> StoreResult<()> {
        let code = code.clone();
        self.write(move |tx| {
            let user = code.user.0.as_bytes().as_slice();
            tx.prepare_cached("DELETE FROM sms_codes WHERE user = ?1 AND expires_at <= ?2")?
                .execute(params![user, ts(now)])?;
            tx.prepare_cached(
                "INSERT INTO sms_codes (user, phone, code_hash, issued_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                user,
                code.phone,
                code.code_hash.as_slice(),
                ts(code.issued_at),
                ts(code.expires_at)
            ])?;
            // Keep the newest `max_outstanding` by (issue time, insertion order); drop the rest.
            tx.prepare_cached(
                "DELETE FROM sms_codes WHERE id IN (SELECT id FROM sms_codes WHERE user = ?1 \
                 ORDER BY issued_at DESC, id DESC LIMIT -1 OFFSET ?2)",
            )?
            .execute(params![user, i64::from(max_outstanding)])?;
            Ok(())
        })
        .await
    }

    async fn newest_sms_code(
        &self,
        user: UserId,
        phone: &str,
        now: Timestamp,
    ) -> StoreResult<Option<SmsCodeRecord>> {
        let phone = phone.to_owned();
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT user, phone, code_hash, issued_at, expires_at FROM sms_codes \
                 WHERE user = ?1 AND phone = ?2 AND expires_at > ?3 \
                 ORDER BY issued_at DESC, id DESC LIMIT 1",
            )?;
            first(st.query(params![user.0.as_bytes().as_slice(), phone, ts(now)])?, |r| {
                records::sms_code(r)
            })
        })
        .await
    }

    async fn consume_sms_code(
        &self,
        user: UserId,
        phone: &str,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let phone = phone.to_owned();
        let code_hash = *code_hash;
        self.write(move |tx| {
            let user = user.0.as_bytes().as_slice();
            let hit = tx
                .prepare_cached(
                    "SELECT 1 FROM sms_codes WHERE user = ?1 AND phone = ?2 AND code_hash = ?3 \
                     AND expires_at > ?4",
                )?
                .exists(params![user, phone, code_hash.as_slice(), ts(now)])?;
            if hit {
                tx.prepare_cached("DELETE FROM sms_codes WHERE user = ?1")?.execute([user])?;
            }
            Ok(hit)
        })
        .await
    }

    async fn burn_sms_codes(&self, user: UserId) -> StoreResult<()> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM sms_codes WHERE user = ?1")?
                .execute([user.0.as_bytes().as_slice()])?;
            Ok(())
        })
        .await
    }
}

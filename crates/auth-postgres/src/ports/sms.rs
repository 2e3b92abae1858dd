//! `SmsCodeStore`: outstanding SMS codes (keyed hashes only).
//!
//! Inserting (with expiry and eviction), consuming (check, then delete every code of the user) and
//! burning are transactions that first take the user's `sms:<user>` row lock, so they are decided one
//! after another per user, across every node: of many concurrent attempts with one code exactly one
//! finds it, and concurrent inserts never leave more than `max_outstanding` codes.

use async_trait::async_trait;
use auth_core::ports::{SmsCodeRecord, SmsCodeStore, StoreResult};
use auth_core::{Timestamp, UserId};
use auth_sql::codec::ts;
use auth_sql::{Columns, records};

use crate::store::{PgStore, begin, done, lock};

fn lock_name(user: UserId) -> String {
    format!("sms:{user}")
}

#[async_trait]
impl SmsCodeStore for PgStore {
    async fn insert_sms_code(
        &self,
        code: &SmsCodeRecord,
        max_outstanding: u32,
        now: Timestamp,
    ) -> StoreResult<()> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(code.user)).await?;
            let user = code.user.0;
            let expired = tx
                .prepare_cached("DELETE FROM sms_codes WHERE user_id = $1 AND expires_at <= $2")
                .await?;
            tx.execute(&expired, &[&user, &ts(now)]).await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO sms_codes (user_id, phone, code_hash, issued_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .await?;
            tx.execute(
                &insert,
                &[
                    &user,
                    &code.phone,
                    &code.code_hash.as_slice(),
                    &ts(code.issued_at),
                    &ts(code.expires_at),
                ],
            )
            .await?;
            // Keep the newest `max_outstanding` by (issue time, insertion order); drop the rest.
            let evict = tx
                .prepare_cached(
                    "DELETE FROM sms_codes WHERE id IN (SELECT id FROM sms_codes \
                     WHERE user_id = $1 ORDER BY issued_at DESC, id DESC OFFSET $2)",
                )
                .await?;
            tx.execute(&evict, &[&user, &i64::from(max_outstanding)]).await?;
            tx.commit().await?;
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
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT user_id, phone, code_hash, issued_at, expires_at FROM sms_codes \
                     WHERE user_id = $1 AND phone = $2 AND expires_at > $3 \
                     ORDER BY issued_at DESC, id DESC LIMIT 1",
                )
                .await?;
            c.query_opt(&st, &[&user.0, &phone, &ts(now)])
                .await?
                .as_ref()
                .map(records::sms_code)
                .transpose()
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
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            // Under the user's lock the check below sees every earlier consume's commit, so a code
            // that one caller burnt is gone for the next.
            lock(&tx, &lock_name(user)).await?;
            let check = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM sms_codes WHERE user_id = $1 AND phone = $2 \
                     AND code_hash = $3 AND expires_at > $4)",
                )
                .await?;
            let row =
                tx.query_one(&check, &[&user.0, &phone, &code_hash.as_slice(), &ts(now)]).await?;
            let hit = row.bool(0)?;
            if hit {
                let burn = tx.prepare_cached("DELETE FROM sms_codes WHERE user_id = $1").await?;
                tx.execute(&burn, &[&user.0]).await?;
            }
            tx.commit().await?;
            Ok(hit)
        })
        .await
    }

    async fn burn_sms_codes(&self, user: UserId) -> StoreResult<()> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            lock(&tx, &lock_name(user)).await?;
            let burn = tx.prepare_cached("DELETE FROM sms_codes WHERE user_id = $1").await?;
            tx.execute(&burn, &[&user.0]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

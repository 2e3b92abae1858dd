//! `TokenStore`: issued tokens by their SHA-256. Revoking deletes the row, so every process stops
//! accepting the token with the commit. Inserts are durable on return (`synchronous=FULL`).

use async_trait::async_trait;
use auth_core::ports::{StoreResult, TokenRecord, TokenStore};
use auth_core::{PortalId, Timestamp, User, UserId};
use auth_sql::codec::ts;
use auth_sql::records;
use rusqlite::params;

use crate::codec::first;
use crate::store::SqliteStore;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        // A second insert of one hash replaces the first, as in the reference store (a real
        // collision of 256-bit random tokens does not happen).
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO tokens (hash, user, portal, issued_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (hash) DO UPDATE SET \
                 user = excluded.user, portal = excluded.portal, \
                 issued_at = excluded.issued_at, expires_at = excluded.expires_at",
            )?
            .execute(params![
                t.hash.as_slice(),
                t.user.0.as_bytes().as_slice(),
                t.portal.0.as_bytes().as_slice(),
                ts(t.issued_at),
                ts(t.expires_at)
            ])?;
            Ok(())
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        let h = *token_hash;
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT hash, user, portal, issued_at, expires_at FROM tokens WHERE hash = ?1",
            )?;
            first(st.query([h.as_slice()])?, |r| records::token(r))
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        let h = *token_hash;
        // One statement for the hot path of every authenticated request: the user's columns first,
        // in the order `auth_sql::records::session` reads them. It runs inline when it cannot wait.
        self.run_read_inline(move |c| {
            let mut st = c.prepare_cached(
                "SELECT u.id, u.portal, u.email, u.first_name, u.last_name, u.is_admin, u.disabled, \
                 u.password_hash, u.phone, u.phone_activated, u.created_at, \
                 t.hash, t.user, t.portal, t.issued_at, t.expires_at \
                 FROM tokens t JOIN users u ON u.id = t.user WHERE t.hash = ?1",
            )?;
            first(st.query([h.as_slice()])?, |r| records::session(r))
        })
        .await
    }

    async fn revoke_token(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
        let h = *token_hash;
        self.run(move |c| {
            let n =
                c.prepare_cached("DELETE FROM tokens WHERE hash = ?1")?.execute([h.as_slice()])?;
            Ok(n > 0)
        })
        .await
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<u64> {
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM tokens WHERE user = ?1")?
                .execute([user.0.as_bytes().as_slice()])?;
            Ok(count(n))
        })
        .await
    }

    async fn revoke_portal_tokens(&self, portal: PortalId) -> StoreResult<u64> {
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM tokens WHERE portal = ?1")?
                .execute([portal.0.as_bytes().as_slice()])?;
            Ok(count(n))
        })
        .await
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> StoreResult<u64> {
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM tokens WHERE expires_at <= ?1")?
                .execute([ts(now)])?;
            Ok(count(n))
        })
        .await
    }
}

//! `TokenStore`: issued tokens by their SHA-256. Revoking deletes the row, so every node stops
//! accepting the token with the commit: the next lookup on any node no longer finds it.
//! Inserts are durable on return as long as the server keeps `synchronous_commit` on (its default).

use async_trait::async_trait;
use auth_core::ports::{StoreResult, TokenRecord, TokenStore};
use auth_core::{PortalId, Timestamp, User, UserId};
use auth_sql::codec::ts;
use auth_sql::records;

use crate::store::{PgStore, done};

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        // A second insert of one hash replaces the first, as in the reference store (a real
        // collision of 256-bit random tokens does not happen).
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO tokens (hash, user_id, portal_id, issued_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO UPDATE SET \
                     user_id = excluded.user_id, portal_id = excluded.portal_id, \
                     issued_at = excluded.issued_at, expires_at = excluded.expires_at",
                )
                .await?;
            c.execute(
                &st,
                &[&t.hash.as_slice(), &t.user.0, &t.portal.0, &ts(t.issued_at), &ts(t.expires_at)],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT hash, user_id, portal_id, issued_at, expires_at FROM tokens \
                     WHERE hash = $1",
                )
                .await?;
            c.query_opt(&st, &[&token_hash.as_slice()])
                .await?
                .as_ref()
                .map(records::token)
                .transpose()
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        // One statement for the hot path of every authenticated request: the user's columns first,
        // in the order `auth_sql::records::session` reads them.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT u.id, u.portal_id, u.email, u.first_name, u.last_name, u.is_admin, \
                     u.disabled, u.password_hash, u.phone, u.phone_activated, u.created_at, \
                     t.hash, t.user_id, t.portal_id, t.issued_at, t.expires_at \
                     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
                )
                .await?;
            c.query_opt(&st, &[&token_hash.as_slice()])
                .await?
                .as_ref()
                .map(records::session)
                .transpose()
        })
        .await
    }

    async fn revoke_token(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM tokens WHERE hash = $1").await?;
            Ok(c.execute(&st, &[&token_hash.as_slice()]).await? > 0)
        })
        .await
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM tokens WHERE user_id = $1").await?;
            Ok(c.execute(&st, &[&user.0]).await?)
        })
        .await
    }

    async fn revoke_portal_tokens(&self, portal: PortalId) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM tokens WHERE portal_id = $1").await?;
            Ok(c.execute(&st, &[&portal.0]).await?)
        })
        .await
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM tokens WHERE expires_at <= $1").await?;
            Ok(c.execute(&st, &[&ts(now)]).await?)
        })
        .await
    }
}

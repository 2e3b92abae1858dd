//! `SocialStore`: account links of social login (`account_links`), and what exchanged OAuth codes
//! proved, under a keyed hash of the code (`remembered_codes`).
//!
//! `insert_link` is one `INSERT … ON CONFLICT DO NOTHING` without a conflict target, so both UNIQUE
//! constraints of the table are arbiters: `(portal_id, provider, subject)` (the identity is linked
//! already, to anyone) and `(user_id, provider, portal_id)` (the user has a link at that provider).
//! PostgreSQL's speculative insertion makes this exact under concurrency: an insert that meets a row
//! a concurrent transaction is inserting under either key waits for that transaction to end, and
//! then skips its row if the other committed (or inserts it if the other rolled back), instead of
//! failing with a unique violation. So of concurrent inserts, on any number of nodes, exactly one
//! stores its row, and the answer is whether this statement inserted one. `remember_code` is the
//! same kind of statement on the code's hash, so the first value stays.
//!
//! Subjects and provider names are compared under the database's deterministic default collation,
//! under which equal means byte-for-byte equal: exactly.

use async_trait::async_trait;
use auth_core::ports::{AccountLink, RememberedCode, SocialStore, StoreResult};
use auth_core::{PortalId, Timestamp, UserId};
use auth_sql::codec::ts;
use auth_sql::records;

use crate::store::{PgStore, done};

/// `SELECT` of a link's columns in the order `auth_sql::records::account_link` reads them, followed
/// by `$tail`.
macro_rules! select_link {
    ($tail:literal) => {
        concat!(
            "SELECT portal_id, provider, subject, user_id, created_at FROM account_links ",
            $tail
        )
    };
}

#[async_trait]
impl SocialStore for PgStore {
    async fn insert_link(&self, link: &AccountLink) -> StoreResult<bool> {
        // No conflict target: DO NOTHING then applies to both UNIQUE constraints, while any other
        // failure (a connection lost, a timeout) still surfaces as an error.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO account_links (portal_id, provider, subject, user_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .await?;
            let n = c
                .execute(
                    &st,
                    &[
                        &link.portal.0,
                        &link.provider,
                        &link.subject,
                        &link.user.0,
                        &ts(link.created_at),
                    ],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn link_by_subject(
        &self,
        portal: PortalId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<AccountLink>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(select_link!(
                    "WHERE portal_id = $1 AND provider = $2 AND subject = $3"
                ))
                .await?;
            c.query_opt(&st, &[&portal.0, &provider, &subject])
                .await?
                .as_ref()
                .map(records::account_link)
                .transpose()
        })
        .await
    }

    async fn links_of(&self, user: UserId) -> StoreResult<Vec<AccountLink>> {
        // Oldest first is insertion order, as in the reference store and for users and portals;
        // `created_at` is the caller's instant, which a clock step could make go backwards.
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached(select_link!("WHERE user_id = $1 ORDER BY seq")).await?;
            c.query(&st, &[&user.0]).await?.iter().map(records::account_link).collect()
        })
        .await
    }

    async fn delete_link(&self, user: UserId, provider: &str) -> StoreResult<bool> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("DELETE FROM account_links WHERE user_id = $1 AND provider = $2")
                .await?;
            Ok(c.execute(&st, &[&user.0, &provider]).await? > 0)
        })
        .await
    }

    async fn remember_code(&self, code_hash: &[u8; 32], code: &RememberedCode) -> StoreResult<()> {
        // DO NOTHING on the hash only: a second exchange result for one code keeps the first (the
        // second insert waits for the first and then skips), expired or not, as in the reference
        // store, while any other failure surfaces.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO remembered_codes (code_hash, provider, subject, email, \
                     email_verified, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (code_hash) DO NOTHING",
                )
                .await?;
            c.execute(
                &st,
                &[
                    &code_hash.as_slice(),
                    &code.provider,
                    &code.subject,
                    &code.email,
                    &code.email_verified,
                    &ts(code.expires_at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn recall_code(
        &self,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<RememberedCode>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT provider, subject, email, email_verified, expires_at \
                     FROM remembered_codes WHERE code_hash = $1 AND expires_at > $2",
                )
                .await?;
            c.query_opt(&st, &[&code_hash.as_slice(), &ts(now)])
                .await?
                .as_ref()
                .map(records::remembered_code)
                .transpose()
        })
        .await
    }

    async fn purge_codes(&self, now: Timestamp) -> StoreResult<u64> {
        // Expired means `expires_at <= now`, the complement of what `recall_code` still answers.
        done(async {
            let c = self.client().await?;
            let st =
                c.prepare_cached("DELETE FROM remembered_codes WHERE expires_at <= $1").await?;
            Ok(c.execute(&st, &[&ts(now)]).await?)
        })
        .await
    }
}

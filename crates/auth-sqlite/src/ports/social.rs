//! `SocialStore`: account links of social login (`account_links`), and what exchanged OAuth codes
//! proved, under a keyed hash of the code (`remembered_codes`).
//!
//! `insert_link` is one `INSERT … ON CONFLICT DO NOTHING` without a conflict target, so the row is
//! skipped when either of the table's UNIQUE constraints is taken: `(portal, provider, subject)` (the
//! identity is linked already, to anyone) or `(user, provider, portal)` (the user has a link at that
//! provider). A writing statement holds SQLite's write lock from its first read to its commit, so of
//! concurrent inserts, in this process or any other on the file, exactly one stores its row, and the
//! others see the constraint taken and change nothing; the answer is whether a row was inserted.
//! `remember_code` is the same kind of statement on the code's hash, so the first value stays.
//!
//! Subjects and provider names are compared with SQLite's default BINARY collation: exactly.

use async_trait::async_trait;
use auth_core::ports::{AccountLink, RememberedCode, SocialStore, StoreResult};
use auth_core::{PortalId, Timestamp, UserId};
use auth_sql::codec::ts;
use auth_sql::records;
use rusqlite::params;

use super::tokens::count;
use crate::codec::{collect, first};
use crate::store::SqliteStore;

/// `SELECT` of a link's columns in the order `auth_sql::records::account_link` reads them, followed
/// by `$tail`.
macro_rules! select_link {
    ($tail:literal) => {
        concat!("SELECT portal, provider, subject, user, created_at FROM account_links ", $tail)
    };
}

#[async_trait]
impl SocialStore for SqliteStore {
    async fn insert_link(&self, link: &AccountLink) -> StoreResult<bool> {
        let l = link.clone();
        // No conflict target: DO NOTHING then applies to both UNIQUE constraints, while any other
        // failure (a CHECK, a full disk) still surfaces as an error.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO account_links (portal, provider, subject, user, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    l.portal.0.as_bytes().as_slice(),
                    l.provider,
                    l.subject,
                    l.user.0.as_bytes().as_slice(),
                    ts(l.created_at)
                ])?;
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
        let (provider, subject) = (provider.to_owned(), subject.to_owned());
        self.run_read(move |c| {
            let mut st = c.prepare_cached(select_link!(
                "WHERE portal = ?1 AND provider = ?2 AND subject = ?3"
            ))?;
            first(st.query(params![portal.0.as_bytes().as_slice(), provider, subject])?, |r| {
                records::account_link(r)
            })
        })
        .await
    }

    async fn links_of(&self, user: UserId) -> StoreResult<Vec<AccountLink>> {
        // Oldest first is insertion order, as in the reference store and for users and portals;
        // `created_at` is the caller's instant, which a clock step could make go backwards.
        self.run_read(move |c| {
            let mut st = c.prepare_cached(select_link!("WHERE user = ?1 ORDER BY seq"))?;
            collect(st.query([user.0.as_bytes().as_slice()])?, |r| records::account_link(r))
        })
        .await
    }

    async fn delete_link(&self, user: UserId, provider: &str) -> StoreResult<bool> {
        let provider = provider.to_owned();
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM account_links WHERE user = ?1 AND provider = ?2")?
                .execute(params![user.0.as_bytes().as_slice(), provider])?;
            Ok(n > 0)
        })
        .await
    }

    async fn remember_code(&self, code_hash: &[u8; 32], code: &RememberedCode) -> StoreResult<()> {
        let (code_hash, code) = (*code_hash, code.clone());
        // DO NOTHING on the hash only: a second exchange result for one code keeps the first,
        // expired or not (as in the reference store), while any other failure surfaces.
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO remembered_codes (code_hash, provider, subject, email, \
                 email_verified, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (code_hash) DO NOTHING",
            )?
            .execute(params![
                code_hash.as_slice(),
                code.provider,
                code.subject,
                code.email,
                code.email_verified,
                ts(code.expires_at)
            ])?;
            Ok(())
        })
        .await
    }

    async fn recall_code(
        &self,
        code_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<RememberedCode>> {
        let code_hash = *code_hash;
        self.run_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT provider, subject, email, email_verified, expires_at FROM remembered_codes \
                 WHERE code_hash = ?1 AND expires_at > ?2",
            )?;
            first(st.query(params![code_hash.as_slice(), ts(now)])?, |r| {
                records::remembered_code(r)
            })
        })
        .await
    }

    async fn purge_codes(&self, now: Timestamp) -> StoreResult<u64> {
        // Expired means `expires_at <= now`, the complement of what `recall_code` still answers.
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM remembered_codes WHERE expires_at <= ?1")?
                .execute([ts(now)])?;
            Ok(count(n))
        })
        .await
    }
}

//! `TokenStore`: issued tokens by their SHA-256. Revoking deletes the row, so every process stops
//! accepting the token with the commit. Inserts are durable on return (`synchronous=FULL`).
//!
//! A token is stored only while its user's and its portal's revisions are the ones the login read:
//! the insert is one `INSERT … SELECT … WHERE EXISTS (user at that revision) AND EXISTS (portal at
//! that revision)`. A writing statement takes SQLite's write lock before it reads anything, and every
//! change that ends tokens (a password change, a disable, a log-out everywhere, a portal update with
//! `end_tokens`) bumps the revision and deletes the tokens in one `IMMEDIATE` transaction under the
//! same lock. So the insert runs wholly before such a change, and its token is deleted by it, or
//! wholly after, and then finds the new revision and stores nothing.

use async_trait::async_trait;
use auth_core::ports::{Revisions, SignInWrite, StoreResult, TokenRecord, TokenStore};
use auth_core::{PortalId, Timestamp, User, UserId};
use auth_sql::codec::{revision, ts};
use auth_sql::records;
use rusqlite::{Connection, params};

use crate::codec::{collect, first};
use crate::error::DbResult;
use crate::store::SqliteStore;

/// The token columns `auth_sql::records::token` reads, in its order.
const TOKEN_COLUMNS: &str =
    "hash, user, portal, issued_at, expires_at, id, last_used_at, client_ip, user_agent";

/// A row count as the ports answer it. It saturates rather than panics, although no target we build
/// for has a `usize` wider than `u64`.
pub(super) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Bumps the user's revision, so logins that read the old one get no token, and then deletes every
/// token of the user but `keep`; returns how many were deleted. Called inside the `IMMEDIATE`
/// transaction of the change that ends them.
fn end_user_tokens(tx: &Connection, user: UserId, keep: Option<&[u8; 32]>) -> DbResult<u64> {
    tx.prepare_cached("UPDATE users SET revision = revision + 1 WHERE id = ?1")?
        .execute([user.0.as_bytes().as_slice()])?;
    delete_user_tokens(tx, user, keep)
}

/// Deletes every token of the user but `keep`; returns how many. The caller has bumped the user's
/// revision in the same transaction.
pub(super) fn delete_user_tokens(
    tx: &Connection,
    user: UserId,
    keep: Option<&[u8; 32]>,
) -> DbResult<u64> {
    let user = user.0.as_bytes().as_slice();
    let n = match keep {
        Some(keep) => tx
            .prepare_cached("DELETE FROM tokens WHERE user = ?1 AND hash <> ?2")?
            .execute(params![user, keep.as_slice()])?,
        None => tx.prepare_cached("DELETE FROM tokens WHERE user = ?1")?.execute([user])?,
    };
    Ok(count(n))
}

/// Stores a token while the revisions are still `expect` (`TokenStore::insert_token`), in the
/// caller's transaction.
fn insert_token(c: &Connection, t: &TokenRecord, expect: Revisions) -> DbResult<bool> {
    // Stored revisions are never above i64::MAX, so an expected one beyond it matches nothing.
    let (Ok(user_rev), Ok(portal_rev)) = (revision(expect.user), revision(expect.portal)) else {
        return Ok(false);
    };
    // One statement: the revision checks and the insert happen under the write lock together
    // (see the module comment). A second insert of one hash replaces the first, as in the
    // reference store (a real collision of 256-bit random tokens does not happen). A public id
    // another token holds breaks the unique index `tokens_id`, which is answered as Conflict.
    // The WHERE clause also settles SQLite's parsing of `SELECT … ON CONFLICT`, which without
    // one could read `ON` as a join condition.
    let n = c
        .prepare_cached(
            "INSERT INTO tokens (hash, user, portal, issued_at, expires_at, id, \
             last_used_at, client_ip, user_agent) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?8, ?9, ?10, ?11 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2 AND revision = ?6) \
             AND EXISTS (SELECT 1 FROM portals WHERE id = ?3 AND revision = ?7) \
             ON CONFLICT (hash) DO UPDATE SET \
             user = excluded.user, portal = excluded.portal, \
             issued_at = excluded.issued_at, expires_at = excluded.expires_at, \
             id = excluded.id, last_used_at = excluded.last_used_at, \
             client_ip = excluded.client_ip, user_agent = excluded.user_agent",
        )?
        .execute(params![
            t.hash.as_slice(),
            t.user.0.as_bytes().as_slice(),
            t.portal.0.as_bytes().as_slice(),
            ts(t.issued_at),
            ts(t.expires_at),
            user_rev,
            portal_rev,
            t.id,
            ts(t.last_used_at),
            t.client_ip.map(|ip| ip.to_string()),
            t.user_agent,
        ])?;
    Ok(n == 1)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &TokenRecord, expect: Revisions) -> StoreResult<bool> {
        let t = token.clone();
        self.run(move |c| insert_token(c, &t, expect)).await
    }

    async fn finish_sign_in(&self, w: &SignInWrite<'_>) -> StoreResult<bool> {
        let (t, e, expect, slots) =
            (w.token.clone(), w.event.clone(), w.expect, w.release.to_vec());
        let known = w.known.map(|k| (k.key.to_owned(), k.since, k.rule));
        // One job, so one transaction (a savepoint of a group commit): a failure of any part,
        // a taken public id included, takes every other part back with it.
        self.run(move |c| {
            super::counters::release_in(c, &slots)?;
            let stored = insert_token(c, &t, expect)?;
            if stored {
                super::audit::insert_audit(c, &e)?;
                if let Some((key, since, rule)) = &known {
                    super::counters::record_unless_since(c, key, *since, rule, t.issued_at)?;
                }
            }
            Ok(stored)
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        let h = *token_hash;
        self.run_read(move |c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"))?;
            first(st.query([h.as_slice()])?, |r| records::token(r))
        })
        .await
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(TokenRecord, User)>> {
        let h = *token_hash;
        // This process's cache answers when it can (`session_cache.rs` keeps it exact across
        // processes); otherwise the database does, and the answer may be kept.
        let ticket = match self.sessions.as_deref().map(|s| s.get(&h)) {
            Some(Ok(hit)) => return Ok(Some(hit)),
            Some(Err(ticket)) => ticket,
            None => None,
        };
        // One statement for the hot path of every authenticated request: the user's columns first,
        // in the order `auth_sql::records::session` reads them. It runs inline when it cannot wait.
        let found = self.run_read_inline(move |c| {
            let mut st = c.prepare_cached(
                "SELECT u.id, u.portal, u.email, u.first_name, u.last_name, u.is_admin, u.disabled, \
                 u.password_hash, u.phone, u.phone_activated, u.created_at, u.revision, \
                 t.hash, t.user, t.portal, t.issued_at, t.expires_at, t.id, t.last_used_at, \
                 t.client_ip, t.user_agent \
                 FROM tokens t JOIN users u ON u.id = t.user WHERE t.hash = ?1",
            )?;
            first(st.query([h.as_slice()])?, |r| records::session(r))
        })
        .await?;
        if let (Some(sessions), Some(ticket)) = (self.sessions.as_deref(), ticket) {
            sessions.keep(ticket, &h, found.as_ref());
        }
        Ok(found)
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
        self.write(move |tx| end_user_tokens(tx, user, None)).await
    }

    async fn revoke_user_tokens_except(&self, user: UserId, keep: &[u8; 32]) -> StoreResult<u64> {
        let keep = *keep;
        self.write(move |tx| end_user_tokens(tx, user, Some(&keep))).await
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

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        self.run_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user = ?1 ORDER BY issued_at, id"
            ))?;
            collect(st.query([user.0.as_bytes().as_slice()])?, |r| records::token(r))
        })
        .await
    }

    async fn revoke_user_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        // The owner is part of the statement, so another user's id deletes nothing.
        self.run(move |c| {
            let n = c
                .prepare_cached("DELETE FROM tokens WHERE id = ?1 AND user = ?2")?
                .execute(params![id, user.0.as_bytes().as_slice()])?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_tokens(&self, touches: &[([u8; 32], Timestamp)]) -> StoreResult<u64> {
        if touches.is_empty() {
            return Ok(0);
        }
        let touches = touches.to_vec();
        // One transaction for the batch: one fsync however many tokens were used.
        self.write(move |tx| {
            let mut st = tx.prepare_cached(
                "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1 AND last_used_at < ?2",
            )?;
            let mut n = 0;
            for (hash, at) in &touches {
                n += count(st.execute(params![hash.as_slice(), ts(*at)])?);
            }
            Ok((n, touches))
        })
        .await
        .map(|(n, touches)| {
            if let Some(sessions) = self.sessions.as_deref() {
                sessions.touched(&touches);
            }
            n
        })
    }
}

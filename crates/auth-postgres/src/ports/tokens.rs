//! `TokenStore`: issued tokens by their SHA-256. Revoking deletes the row, so every node stops
//! accepting the token with the commit: the next lookup on any node no longer finds it.
//! Inserts are durable on return as long as the server keeps `synchronous_commit` on (its default).
//!
//! # Revisions
//!
//! A token is stored only while its user's and its portal's revisions are the ones the login read,
//! and every change that ends tokens (a password change, a disable, a log-out everywhere, a portal
//! update with `end_tokens`) bumps the revision and deletes the tokens in one transaction. At READ
//! COMMITTED a plain `INSERT … SELECT … WHERE EXISTS (…)` would not be enough: its snapshot could
//! predate a bump that has not committed yet, while the bump's `DELETE` had already run before the
//! insert, and the token would survive the change. So the two sides meet on the row lock instead:
//!
//! - The insert is one statement that reads the user and the portal row `FOR SHARE` and inserts only
//!   when both are at the expected revision. `FOR SHARE` waits for a transaction that has updated
//!   either row, and then re-checks the revision on the row version it committed (READ COMMITTED's
//!   re-check of a locked row), so an insert that meets a bump finds the new revision and stores
//!   nothing. `FOR SHARE` rather than `FOR KEY SHARE`, because only the former conflicts with the
//!   lock of an `UPDATE` that changes no key; concurrent logins of one user share the lock.
//! - The change first `UPDATE`s the row (bumping the revision), which waits for every insert holding
//!   the share lock to commit, and only then deletes the tokens in a second statement, whose fresh
//!   snapshot sees the tokens those inserts committed.
//!
//! Either the insert locks first, and its token is committed before the change's `DELETE` begins and
//! is deleted by it, or the change locks first, and the insert waits and then sees the new revision.
//! One statement with a data-modifying `WITH` would not do for the change: all of its parts share one
//! snapshot, taken before the lock wait. No cycle of waits can form either: a change waits for an
//! insert only in its first write, before it holds any lock, and an insert waits only for changes.

use async_trait::async_trait;
use auth_core::ports::{
    CounterStore, Revisions, SignInWrite, StoreResult, TokenRecord, TokenStore,
};
use auth_core::{PortalId, Timestamp, User, UserId};
use auth_sql::codec::{revision, ts};
use auth_sql::{Columns as _, records};
use deadpool_postgres::Transaction;

use crate::error::DbResult;
use crate::session_cache::{self, Change};
use crate::store::{PgStore, begin, done};

/// A token's insert: one statement that takes the share locks, checks the revisions and inserts
/// (see the module comment), with the parameters of [`TokenParams`]. The user and portal ids
/// match one row each, so the join yields at most one row. A second insert of one hash replaces
/// the first, as in the reference store (a real collision of 256-bit random tokens does not
/// happen). A public id another token holds breaks the unique index `tokens_id` (ON CONFLICT
/// arbitrates only the hash), which is answered as Conflict. The casts type the parameters that
/// only appear in the select list, which PostgreSQL would otherwise take for text.
macro_rules! token_insert {
    () => {
        "INSERT INTO tokens (hash, user_id, portal_id, issued_at, expires_at, id, \
         last_used_at, client_ip, user_agent) \
         SELECT $1::bytea, u.id, p.id, $4::bigint, $5::bigint, $8::bigint, \
         $9::bigint, $10::text, $11::text \
         FROM users u, portals p \
         WHERE u.id = $2 AND u.revision = $6 AND p.id = $3 AND p.revision = $7 \
         FOR SHARE OF u, p \
         ON CONFLICT (hash) DO UPDATE SET \
         user_id = excluded.user_id, portal_id = excluded.portal_id, \
         issued_at = excluded.issued_at, expires_at = excluded.expires_at, \
         id = excluded.id, last_used_at = excluded.last_used_at, \
         client_ip = excluded.client_ip, user_agent = excluded.user_agent"
    };
}

/// The parameters `$1`–`$11` of [`token_insert!`].
struct TokenParams<'a> {
    t: &'a TokenRecord,
    hash: &'a [u8],
    issued: i64,
    expires: i64,
    user_rev: i64,
    portal_rev: i64,
    last_used: i64,
    client_ip: Option<String>,
}

impl<'a> TokenParams<'a> {
    /// `None` when an expected revision is beyond i64::MAX: stored ones never are, so it matches
    /// nothing.
    fn new(t: &'a TokenRecord, expect: Revisions) -> Option<Self> {
        Some(TokenParams {
            t,
            hash: t.hash.as_slice(),
            issued: ts(t.issued_at),
            expires: ts(t.expires_at),
            user_rev: revision(expect.user).ok()?,
            portal_rev: revision(expect.portal).ok()?,
            last_used: ts(t.last_used_at),
            client_ip: t.client_ip.map(|ip| ip.to_string()),
        })
    }

    fn refs(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 11] {
        [
            &self.hash,
            &self.t.user.0,
            &self.t.portal.0,
            &self.issued,
            &self.expires,
            &self.user_rev,
            &self.portal_rev,
            &self.t.id,
            &self.last_used,
            &self.client_ip,
            &self.t.user_agent,
        ]
    }
}

/// The token columns `auth_sql::records::token` reads, in its order.
macro_rules! token_columns {
    () => {
        "hash, user_id, portal_id, issued_at, expires_at, id, last_used_at, client_ip, user_agent"
    };
}

/// Bumps the user's revision (taking its row lock until the commit), then deletes every token of the
/// user but `keep`; returns how many were deleted. The order is the one the module comment needs.
async fn end_user_tokens(
    tx: &Transaction<'_>,
    user: UserId,
    keep: Option<&[u8; 32]>,
) -> DbResult<u64> {
    let st = tx.prepare_cached("UPDATE users SET revision = revision + 1 WHERE id = $1").await?;
    tx.execute(&st, &[&user.0]).await?;
    delete_user_tokens(tx, user, keep).await
}

/// Deletes every token of the user but `keep`; returns how many. The caller has already bumped the
/// user's revision in the same transaction, in an earlier statement (see the module comment). The
/// transaction also notifies the session caches of every node about the user.
pub(super) async fn delete_user_tokens(
    tx: &Transaction<'_>,
    user: UserId,
    keep: Option<&[u8; 32]>,
) -> DbResult<u64> {
    session_cache::notify(tx, Change::User(user)).await?;
    Ok(match keep {
        Some(keep) => {
            let st =
                tx.prepare_cached("DELETE FROM tokens WHERE user_id = $1 AND hash <> $2").await?;
            tx.execute(&st, &[&user.0, &keep.as_slice()]).await?
        }
        None => {
            let st = tx.prepare_cached("DELETE FROM tokens WHERE user_id = $1").await?;
            tx.execute(&st, &[&user.0]).await?
        }
    })
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, t: &TokenRecord, expect: Revisions) -> StoreResult<bool> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached(token_insert!()).await?;
            let Some(p) = TokenParams::new(t, expect) else { return Ok(false) };
            Ok(c.execute(&st, &p.refs()).await? == 1)
        })
        .await
    }

    async fn finish_sign_in(&self, w: &SignInWrite<'_>) -> StoreResult<bool> {
        // One statement, so one round trip and one commit, of data-modifying `WITH`s that all run:
        // the slots' events deleted; the token's insert (with its share locks and revision checks,
        // as in `insert_token`); then, once for each row that insert wrote (one, or none when a
        // revision moved), the audit event, the prune of the known-client key's old events and
        // its new event unless it has one since `since`. The sub-statements share one snapshot,
        // and the parts touch different rows, so none needs to see another's change. Known-client
        // keys are never acquired, so recording one needs no key lock (two sign-ins at once may
        // both record; either is enough). A failure of any part, a taken public id included,
        // leaves none.
        let Some(p) = TokenParams::new(w.token, w.expect) else {
            // No token can be stored; the slots still go back.
            self.release_all(w.release).await?;
            return Ok(false);
        };
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(concat!(
                    "WITH r AS (DELETE FROM counter_events WHERE id = ANY($20::bigint[])), \
                     t AS (",
                    token_insert!(),
                    " RETURNING 1), \
                     a AS (INSERT INTO audit (at, portal_id, user_id, login, action, ip, \
                     user_agent, reason) SELECT $12::bigint, $13::uuid, $14::uuid, $15::text, \
                     $16::int4, $17::text, $18::text, $19::text FROM t), \
                     p AS (DELETE FROM counter_events WHERE key = $21::text \
                     AND at <= $23::bigint AND EXISTS (SELECT 1 FROM t)), \
                     k AS (INSERT INTO counter_events (key, at) SELECT $21::text, $4::bigint \
                     FROM t WHERE $21::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \
                     counter_events WHERE key = $21::text AND at >= $22::bigint)) \
                     SELECT count(*) FROM t",
                ))
                .await?;
            let (t, e) = (w.token, w.event);
            let slots: Vec<i64> = w.release.iter().map(|s| s.0).collect();
            let (at, user, action, ip) = (
                ts(e.at),
                e.user.map(|u| u.0),
                super::audit::action_code(e.action),
                e.ip.to_string(),
            );
            let known_key = w.known.map(|k| k.key);
            let since = w.known.map_or(0, |k| ts(k.since));
            let horizon = w.known.map_or(0, |k| super::counters::horizon(&k.rule, t.issued_at));
            let mut params = p.refs().to_vec();
            params.extend_from_slice(&[
                &at,
                &e.portal.0,
                &user,
                &e.login,
                &action,
                &ip,
                &e.user_agent,
                &e.reason,
                &slots,
                &known_key,
                &since,
                &horizon,
            ]);
            Ok(c.query_one(&st, &params).await?.big_int(0)? == 1)
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<TokenRecord>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM tokens WHERE hash = $1"
                ))
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
        // This node's cache answers when it can (`session_cache.rs` keeps it exact); otherwise the
        // database does, and what it answers is kept unless something changed meanwhile.
        let ticket = match session_cache::cached(self, token_hash) {
            Ok(found) => return Ok(Some(found)),
            Err(ticket) => ticket,
        };
        // One statement for the hot path of every authenticated request: the user's columns first,
        // in the order `auth_sql::records::session` reads them.
        let found = done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT u.id, u.portal_id, u.email, u.first_name, u.last_name, u.is_admin, \
                     u.disabled, u.password_hash, u.phone, u.phone_activated, u.created_at, \
                     u.revision, t.hash, t.user_id, t.portal_id, t.issued_at, t.expires_at, \
                     t.id, t.last_used_at, t.client_ip, t.user_agent \
                     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
                )
                .await?;
            c.query_opt(&st, &[&token_hash.as_slice()])
                .await?
                .as_ref()
                .map(records::session)
                .transpose()
        })
        .await?;

        session_cache::keep(self, ticket, found.as_ref());
        Ok(found)
    }

    async fn revoke_token(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
        // The delete and the session caches' notification in one statement, so one commits with
        // the other; a token that was not there notifies nobody.
        let change = Change::Token(*token_hash);
        let gone = done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM tokens WHERE hash = $1 RETURNING hash) \
                     SELECT pg_notify($2, $3) FROM gone",
                )
                .await?;
            let notify = session_cache::notification(&change);
            Ok(c.execute(&st, &[&token_hash.as_slice(), &notify.0, &notify.1]).await? > 0)
        })
        .await?;
        if gone {
            self.changed(change, true).await;
        }
        Ok(gone)
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<u64> {
        let n = done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let n = end_user_tokens(&tx, user, None).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await?;
        self.changed(Change::User(user), n > 0).await;
        Ok(n)
    }

    async fn revoke_user_tokens_except(&self, user: UserId, keep: &[u8; 32]) -> StoreResult<u64> {
        let n = done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let n = end_user_tokens(&tx, user, Some(keep)).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await?;
        // The kept token's entry holds the user at the old revision, so it goes too (and is read
        // again), and the wait covers it even when no other token was deleted.
        self.changed(Change::User(user), true).await;
        Ok(n)
    }

    async fn revoke_portal_tokens(&self, portal: PortalId) -> StoreResult<u64> {
        // The delete and the notification in one statement, as in `revoke_token`.
        let change = Change::Portal(portal);
        let n = done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM tokens WHERE portal_id = $1 RETURNING 1), \
                     n AS (SELECT count(*) AS n FROM gone) \
                     SELECT n.n, pg_notify($2, $3)::TEXT FROM n WHERE n.n > 0",
                )
                .await?;
            let notify = session_cache::notification(&change);
            let row = c.query_opt(&st, &[&portal.0, &notify.0, &notify.1]).await?;
            Ok(match row {
                Some(row) => u64::try_from(row.big_int(0)?).unwrap_or(0),
                None => 0,
            })
        })
        .await?;
        if n > 0 {
            self.changed(change, true).await;
        }
        Ok(n)
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM tokens WHERE expires_at <= $1").await?;
            Ok(c.execute(&st, &[&ts(now)]).await?)
        })
        .await
    }

    async fn tokens_of_user(&self, user: UserId) -> StoreResult<Vec<TokenRecord>> {
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM tokens WHERE user_id = $1 ORDER BY issued_at, id"
                ))
                .await?;
            c.query(&st, &[&user.0]).await?.iter().map(records::token).collect()
        })
        .await
    }

    async fn revoke_user_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        // The owner is part of the statement, so another user's id deletes nothing. The session
        // caches of every node hear of it in the same statement, as for `revoke_token`; the
        // notification names the user (the hash is not known here), so each node drops that user's
        // cached tokens, a few more than needed and never one too few.
        let change = Change::User(user);
        let gone = done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM tokens WHERE id = $1 AND user_id = $2 RETURNING hash) \
                     SELECT pg_notify($3, $4) FROM gone",
                )
                .await?;
            let notify = session_cache::notification(&change);
            Ok(c.execute(&st, &[&id, &user.0, &notify.0, &notify.1]).await? > 0)
        })
        .await?;
        if gone {
            self.changed(change, true).await;
        }
        Ok(gone)
    }

    async fn touch_tokens(&self, touches: &[([u8; 32], Timestamp)]) -> StoreResult<u64> {
        if touches.is_empty() {
            return Ok(0);
        }
        // One statement for the batch: the hashes and instants go as two arrays and are zipped
        // by `unnest`, so a thousand used tokens cost one round trip and one commit. The rows are
        // locked first, in hash order (`ORDER BY … FOR UPDATE` locks them as it returns them), so
        // two nodes flushing overlapping batches queue on one row instead of deadlocking.
        let hashes: Vec<&[u8]> = touches.iter().map(|(h, _)| h.as_slice()).collect();
        let times: Vec<i64> = touches.iter().map(|(_, at)| ts(*at)).collect();
        let n = done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "WITH used AS (SELECT hash, max(at) AS at \
                     FROM unnest($1::bytea[], $2::bigint[]) AS x(hash, at) GROUP BY hash), \
                     locked AS (SELECT t.hash, used.at FROM tokens t JOIN used ON used.hash = t.hash \
                     WHERE t.last_used_at < used.at ORDER BY t.hash FOR UPDATE OF t), \
                     touched AS (UPDATE tokens t SET last_used_at = locked.at FROM locked \
                     WHERE t.hash = locked.hash AND t.last_used_at < locked.at RETURNING t.hash) \
                     SELECT pg_notify($3, 't:' || encode(hash, 'hex')) FROM touched",
                )
                .await?;
            // The other nodes' session caches hold the old "last used": each touched token is
            // dropped from them (in the same statement), so their next lookup reads the new value
            // and does not queue the same use again at every flush.
            let (channel, _) = session_cache::notification(&Change::All);
            Ok(c.execute(&st, &[&hashes, &times, &channel]).await?)
        })
        .await?;
        for (hash, _) in touches {
            self.changed(Change::Token(*hash), false).await;
        }
        Ok(n)
    }
}

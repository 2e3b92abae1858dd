//! `UserStore`: users with their e-mail unique per portal (compared lower-cased), password hash and phone.
//!
//! `insert_user` relies on UNIQUE(id) and UNIQUE(portal_id, email_lower): a duplicate is a unique
//! violation, answered as `Conflict`, so there is no check-then-insert race between nodes. The
//! conditional phone updates are single `UPDATE … WHERE` statements: the check and the write happen
//! together, and a concurrent writer's change is re-checked before this one applies.
//!
//! A password change and a disable are transactions of two statements, in this order: an `UPDATE`
//! that writes the user and bumps its `revision` (and so holds the user's row lock until the commit),
//! then a `DELETE` of the user's tokens. `tokens.rs` explains why the order keeps a login in flight
//! from getting a token that survives the change.

use async_trait::async_trait;
use auth_core::model::Credential;
use auth_core::password::PasswordHash;
use auth_core::ports::{StoreResult, UserStore};
use auth_core::{PortalId, User, UserId};
use auth_sql::codec::{revision, ts};
use auth_sql::{Columns, records};

use super::tokens::delete_user_tokens;
use crate::session_cache::{self, Change};
use crate::store::{PgStore, begin, done};

/// An `UPDATE` of one user by id (`$1`) turned into a statement that also notifies every node's
/// session cache (parameters `$a` and `$b`: the channel and the payload) and answers, when the row
/// was updated, whether the user has tokens: only then can a cache hold the old row, and is the
/// writer's wait worth it (`PgStore::changed`). One statement, so the notification commits with the
/// update.
macro_rules! user_change {
    ($update:literal, $a:literal, $b:literal) => {
        concat!(
            "WITH changed AS (",
            $update,
            " RETURNING id) SELECT EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = changed.id), \
             pg_notify(",
            $a,
            ", ",
            $b,
            ")::TEXT FROM changed"
        )
    };
}

/// `SELECT` of a user's columns in the order `auth_sql::records::user` reads them, followed by
/// `$tail`.
macro_rules! select_user {
    ($tail:literal) => {
        concat!(
            "SELECT id, portal_id, email, first_name, last_name, is_admin, disabled, password_hash, \
             phone, phone_activated, created_at, revision FROM users ",
            $tail
        )
    };
}

/// `INSERT` of every column of a user, in the order [`InsertValues::params`] binds them, followed by
/// `$tail`.
macro_rules! insert_user {
    ($tail:literal) => {
        concat!(
            "INSERT INTO users (id, portal_id, email, email_lower, first_name, last_name, \
             is_admin, disabled, password_hash, phone, phone_activated, created_at, \
             revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            $tail
        )
    };
}

/// The values of an [`insert_user!`] that the user does not hold as they are stored.
struct InsertValues {
    email_key: String,
    credential: String,
    created_at: i64,
    revision: i64,
}

impl InsertValues {
    fn of(u: &User) -> Result<Self, auth_sql::codec::Corrupt> {
        Ok(Self {
            email_key: u.email_key(),
            credential: u.credential.encode(),
            created_at: ts(u.created_at),
            revision: revision(u.revision)?,
        })
    }

    fn params<'a>(&'a self, u: &'a User) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 13] {
        [
            &u.id.0,
            &u.portal.0,
            &u.email,
            &self.email_key,
            &u.first_name,
            &u.last_name,
            &u.is_admin,
            &u.disabled,
            &self.credential,
            &u.phone,
            &u.phone_activated,
            &self.created_at,
            &self.revision,
        ]
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        done(async {
            let values = InsertValues::of(u)?;
            let c = self.client().await?;
            let st = c.prepare_cached(insert_user!("")).await?;
            c.execute(&st, &values.params(u)).await?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached(select_user!("WHERE id = $1")).await?;
            c.query_opt(&st, &[&id.0]).await?.as_ref().map(records::user).transpose()
        })
        .await
    }

    async fn user_by_email(
        &self,
        portal: PortalId,
        email_lower: &str,
    ) -> StoreResult<Option<User>> {
        done(async {
            let c = self.client().await?;
            let st =
                c.prepare_cached(select_user!("WHERE portal_id = $1 AND email_lower = $2")).await?;
            c.query_opt(&st, &[&portal.0, &email_lower])
                .await?
                .as_ref()
                .map(records::user)
                .transpose()
        })
        .await
    }

    async fn list_users(&self, portal: Option<PortalId>) -> StoreResult<Vec<User>> {
        done(async {
            let c = self.client().await?;
            // A NULL portal switches the condition off.
            let st = c
                .prepare_cached(select_user!(
                    "WHERE ($1::uuid IS NULL OR portal_id = $1) ORDER BY seq"
                ))
                .await?;
            c.query(&st, &[&portal.map(|p| p.0)]).await?.iter().map(records::user).collect()
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("SELECT count(*) FROM users").await?;
            let n = c.query_one(&st, &[]).await?.big_int(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool> {
        self.set_hash_ending_tokens(id, hash, None).await
    }

    async fn set_password_hash_keeping(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: &[u8; 32],
    ) -> StoreResult<bool> {
        self.set_hash_ending_tokens(id, hash, Some(keep)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        if !disabled {
            // Enabling ends nothing, so it is the flag alone: tokens issued meanwhile stay valid.
            let changed = self
                .change_user(
                    id,
                    user_change!("UPDATE users SET disabled = false WHERE id = $1", "$2", "$3"),
                    &[],
                )
                .await?;
            return Ok(changed);
        }
        let ended = done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = tx
                .prepare_cached(
                    "UPDATE users SET disabled = true, revision = revision + 1 WHERE id = $1",
                )
                .await?;
            if tx.execute(&st, &[&id.0]).await? == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let n = delete_user_tokens(&tx, id, None).await?;
            tx.commit().await?;
            Ok(Some(n))
        })
        .await?;
        if let Some(n) = ended {
            self.changed(Change::User(id), n > 0).await;
        }
        Ok(ended.is_some())
    }

    async fn set_phone(
        &self,
        id: UserId,
        phone: Option<&str>,
        activated: bool,
    ) -> StoreResult<bool> {
        // A cleared phone is never activated, whatever the caller passed.
        let activated = activated && phone.is_some();
        self.change_user(
            id,
            user_change!(
                "UPDATE users SET phone = $2, phone_activated = $3 WHERE id = $1",
                "$4",
                "$5"
            ),
            &[&phone, &activated],
        )
        .await
    }

    async fn set_phone_if_unactivated(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        self.change_user(
            id,
            user_change!(
                "UPDATE users SET phone = $2 WHERE id = $1 AND NOT phone_activated",
                "$3",
                "$4"
            ),
            &[&phone],
        )
        .await
    }

    async fn activate_phone(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        self.change_user(
            id,
            user_change!(
                "UPDATE users SET phone_activated = true WHERE id = $1 AND phone = $2",
                "$3",
                "$4"
            ),
            &[&phone],
        )
        .await
    }

    async fn upgrade_credential(
        &self,
        id: UserId,
        old: &Credential,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        // Compare and set in one statement: a password changed meanwhile is never overwritten.
        self.change_user(
            id,
            user_change!(
                "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
                "$4",
                "$5"
            ),
            &[&old.encode(), &new.as_str()],
        )
        .await
    }

    async fn update_user(&self, u: &User) -> StoreResult<bool> {
        // UNIQUE(portal_id, email_lower) answers an e-mail taken by another user as Conflict.
        self.change_user(
            u.id,
            user_change!(
                "UPDATE users SET email = $2, email_lower = $3, first_name = $4, last_name = $5, \
                 is_admin = $6, phone = $7, phone_activated = $8, password_hash = $9 \
                 WHERE id = $1",
                "$10",
                "$11"
            ),
            &[
                &u.email,
                &u.email_key(),
                &u.first_name,
                &u.last_name,
                &u.is_admin,
                &u.phone,
                &(u.phone_activated && u.phone.is_some()),
                &u.credential.encode(),
            ],
        )
        .await
    }

    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>> {
        // One transaction for the batch (one commit per batch, not per user); `ON CONFLICT DO
        // NOTHING` leaves out an existing id or e-mail without failing the rest.
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = tx.prepare_cached(insert_user!(" ON CONFLICT DO NOTHING")).await?;
            let mut out = Vec::with_capacity(users.len());
            for u in users {
                let values = InsertValues::of(u)?;
                let n = tx.execute(&st, &values.params(u)).await?;
                out.push(n == 1);
            }
            tx.commit().await?;
            Ok(out)
        })
        .await
    }
}

impl PgStore {
    /// Writes the hash and bumps the revision, then ends the user's tokens (but `keep`), in one
    /// transaction, in the order `tokens.rs` explains.
    async fn set_hash_ending_tokens(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<bool> {
        let ended = done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = tx
                .prepare_cached(
                    "UPDATE users SET password_hash = $2, revision = revision + 1 WHERE id = $1",
                )
                .await?;
            if tx.execute(&st, &[&id.0, &hash.as_str()]).await? == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let n = delete_user_tokens(&tx, id, keep).await?;
            tx.commit().await?;
            Ok(Some(n))
        })
        .await?;
        // A kept token's entry holds the old row, so the wait covers it even when nothing was deleted.
        if let Some(n) = ended {
            self.changed(Change::User(id), n > 0 || keep.is_some()).await;
        }
        Ok(ended.is_some())
    }

    /// Runs a [`user_change!`] statement with `$1` the user's id, then `params`, then the channel and
    /// the payload; true when the row was updated. Waits for the other nodes' caches only when the
    /// user has tokens (see `session_cache.rs`).
    async fn change_user(
        &self,
        id: UserId,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<bool> {
        let change = Change::User(id);
        let (channel, payload) = session_cache::notification(&change);
        let has_tokens = done(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await?;
            let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                Vec::with_capacity(params.len() + 3);
            all.push(&id.0);
            all.extend_from_slice(params);
            all.push(&channel);
            all.push(&payload);
            match c.query_opt(&st, &all).await? {
                Some(row) => Ok(Some(row.bool(0)?)),
                None => Ok(None),
            }
        })
        .await?;
        if let Some(has_tokens) = has_tokens {
            self.changed(change, has_tokens).await;
        }
        Ok(has_tokens.is_some())
    }
}

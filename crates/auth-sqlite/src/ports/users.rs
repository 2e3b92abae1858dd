//! `UserStore`: users with their e-mail unique per portal (compared lower-cased), password hash and phone.
//!
//! The conditional phone updates are single `UPDATE … WHERE` statements: the check and the write
//! happen together, whatever other processes do. A password change and a disable are `IMMEDIATE`
//! transactions that write the user, bump its `revision` and delete its tokens together: a token
//! insert (one statement, see `tokens.rs`) is decided wholly before or wholly after them, and after
//! them it finds the new revision and stores nothing.

use async_trait::async_trait;
use auth_core::model::Credential;
use auth_core::password::PasswordHash;
use auth_core::ports::{StoreResult, UserStore};
use auth_core::{PortalId, User, UserId};
use auth_sql::codec::{revision, ts};
use auth_sql::records;
use rusqlite::params;

use super::tokens::delete_user_tokens;
use crate::codec::{collect, first};
use crate::error::DbResult;
use crate::store::SqliteStore;

/// `SELECT` of a user's columns in the order `auth_sql::records::user` reads them, followed by
/// `$tail`.
macro_rules! select_user {
    ($tail:literal) => {
        concat!(
            "SELECT id, portal, email, first_name, last_name, is_admin, disabled, password_hash, \
             phone, phone_activated, created_at, revision FROM users ",
            $tail
        )
    };
}

/// `INSERT` of every column of a user, in the order [`insert`] binds them, followed by `$tail`.
macro_rules! insert_user {
    ($tail:literal) => {
        concat!(
            "INSERT INTO users (id, portal, email, email_lower, first_name, last_name, is_admin, \
             disabled, password_hash, phone, phone_activated, created_at, revision) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            $tail
        )
    };
}

/// Runs an [`insert_user!`] statement for `u`; the number of rows inserted.
fn insert(st: &mut rusqlite::CachedStatement<'_>, u: &User) -> DbResult<usize> {
    Ok(st.execute(params![
        u.id.0.as_bytes().as_slice(),
        u.portal.0.as_bytes().as_slice(),
        u.email,
        u.email_key(),
        u.first_name,
        u.last_name,
        u.is_admin,
        u.disabled,
        u.credential.encode(),
        u.phone,
        u.phone_activated,
        ts(u.created_at),
        revision(u.revision)?,
    ])?)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        // UNIQUE(id) and UNIQUE(portal, email_lower) turn a duplicate into a constraint error, which
        // is answered as Conflict: one statement, so no check-then-insert race.
        self.run(move |c| {
            insert(&mut c.prepare_cached(insert_user!(""))?, &u)?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.run_read(move |c| {
            let mut st = c.prepare_cached(select_user!("WHERE id = ?1"))?;
            first(st.query([id.0.as_bytes().as_slice()])?, |r| records::user(r))
        })
        .await
    }

    async fn user_by_email(
        &self,
        portal: PortalId,
        email_lower: &str,
    ) -> StoreResult<Option<User>> {
        let email_lower = email_lower.to_owned();
        // The first store call of every password login: one indexed read, inline like the token
        // lookup (`run_read_inline`), so a login makes one thread hop fewer.
        self.run_read_inline(move |c| {
            let mut st =
                c.prepare_cached(select_user!("WHERE portal = ?1 AND email_lower = ?2"))?;
            first(st.query(params![portal.0.as_bytes().as_slice(), &email_lower])?, |r| {
                records::user(r)
            })
        })
        .await
    }

    async fn list_users(&self, portal: Option<PortalId>) -> StoreResult<Vec<User>> {
        self.run_read(move |c| match portal {
            Some(p) => {
                let mut st = c.prepare_cached(select_user!("WHERE portal = ?1 ORDER BY seq"))?;
                collect(st.query([p.0.as_bytes().as_slice()])?, |r| records::user(r))
            }
            None => {
                let mut st = c.prepare_cached(select_user!("ORDER BY seq"))?;
                collect(st.query([])?, |r| records::user(r))
            }
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.run_read(|c| {
            let n: i64 =
                c.prepare_cached("SELECT count(*) FROM users")?.query_row([], |r| r.get(0))?;
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
        self.set_hash_ending_tokens(id, hash, Some(*keep)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        if !disabled {
            // Enabling ends nothing, so it is the flag alone: tokens issued meanwhile stay valid.
            return self
                .run(move |c| {
                    let n = c
                        .prepare_cached("UPDATE users SET disabled = 0 WHERE id = ?1")?
                        .execute([id.0.as_bytes().as_slice()])?;
                    Ok(n > 0)
                })
                .await;
        }
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE users SET disabled = 1, revision = revision + 1 WHERE id = ?1",
                )?
                .execute([id.0.as_bytes().as_slice()])?;
            if n == 0 {
                return Ok(false);
            }
            delete_user_tokens(tx, id, None)?;
            Ok(true)
        })
        .await
    }

    async fn set_phone(
        &self,
        id: UserId,
        phone: Option<&str>,
        activated: bool,
    ) -> StoreResult<bool> {
        let phone = phone.map(str::to_owned);
        // A cleared phone is never activated, whatever the caller passed.
        let activated = activated && phone.is_some();
        self.run(move |c| {
            let n = c
                .prepare_cached("UPDATE users SET phone = ?2, phone_activated = ?3 WHERE id = ?1")?
                .execute(params![id.0.as_bytes().as_slice(), phone, activated])?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_phone_if_unactivated(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        let phone = phone.to_owned();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE users SET phone = ?2 WHERE id = ?1 AND phone_activated = 0",
                )?
                .execute(params![id.0.as_bytes().as_slice(), phone])?;
            Ok(n == 1)
        })
        .await
    }

    async fn activate_phone(&self, id: UserId, phone: &str) -> StoreResult<bool> {
        let phone = phone.to_owned();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE users SET phone_activated = 1 WHERE id = ?1 AND phone = ?2",
                )?
                .execute(params![id.0.as_bytes().as_slice(), phone])?;
            Ok(n == 1)
        })
        .await
    }

    async fn upgrade_credential(
        &self,
        id: UserId,
        old: &Credential,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        let (old, new) = (old.encode(), new.as_str().to_owned());
        // Compare and set in one statement: a password changed meanwhile is never overwritten.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                )?
                .execute(params![id.0.as_bytes().as_slice(), old, new])?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<bool> {
        let u = user.clone();
        // UNIQUE(portal, email_lower) answers an e-mail taken by another user as Conflict.
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE users SET email = ?2, email_lower = ?3, first_name = ?4, last_name = ?5, \
                     is_admin = ?6, phone = ?7, phone_activated = ?8, password_hash = ?9 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    u.id.0.as_bytes().as_slice(),
                    u.email,
                    u.email_key(),
                    u.first_name,
                    u.last_name,
                    u.is_admin,
                    u.phone,
                    u.phone_activated && u.phone.is_some(),
                    u.credential.encode(),
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>> {
        let users = users.to_vec();
        // One transaction for the batch: a bulk import pays one commit (one fsync) per batch, not
        // per user. `ON CONFLICT DO NOTHING` leaves out an existing id or e-mail without failing
        // the rest.
        self.write(move |tx| {
            let mut st = tx.prepare_cached(insert_user!(" ON CONFLICT DO NOTHING"))?;
            let mut out = Vec::with_capacity(users.len());
            for u in &users {
                let n = insert(&mut st, u)?;
                out.push(n == 1);
            }
            Ok(out)
        })
        .await
    }
}

impl SqliteStore {
    /// Writes the hash, bumps the revision and ends the user's tokens (but `keep`) in one
    /// transaction.
    async fn set_hash_ending_tokens(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<[u8; 32]>,
    ) -> StoreResult<bool> {
        let hash = hash.as_str().to_owned();
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE users SET password_hash = ?2, revision = revision + 1 WHERE id = ?1",
                )?
                .execute(params![id.0.as_bytes().as_slice(), hash])?;
            if n == 0 {
                return Ok(false);
            }
            delete_user_tokens(tx, id, keep.as_ref())?;
            Ok(true)
        })
        .await
    }
}

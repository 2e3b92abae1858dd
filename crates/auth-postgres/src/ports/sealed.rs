//! `SealedStore`: every sealed column, page by page in owner order, and compare-and-set swaps of its
//! values (`auth-server key reseal`, spec §13 "Key rotation").
//!
//! A page is one `SELECT … WHERE owner > $2 ORDER BY owner LIMIT $1` on the column's primary key:
//! UUIDs compare byte by byte, outbox ids as numbers, and meta names under `COLLATE "C"` (byte order,
//! whatever the database's collation), which is the order the port promises. A batch of swaps is one
//! READ COMMITTED transaction of `UPDATE … SET value = new WHERE owner = $1 AND value = old`: an update
//! that meets a concurrent writer waits for its row and re-checks the old value on what that writer
//! committed, so a value a server rewrote meanwhile matches nothing and stays as the server wrote it.
//! The batch holds its rows' locks until it commits, a few milliseconds; it takes no other lock, so
//! the store's own transactions (which lock a user's `totp:<user>` row first) never wait for it in a
//! cycle.

use async_trait::async_trait;
use auth_core::ports::{
    SealedColumn, SealedOwner, SealedStore, SealedSwap, SealedValue, StoreResult,
};
use auth_sql::records;
use tokio_postgres::types::ToSql;

use crate::error::DbResult;
use crate::store::{PgStore, begin, done};

/// The statements of one column: the first page, a later page, and the swap.
struct Sql {
    first: &'static str,
    after: &'static str,
    swap: &'static str,
}

fn sql(column: SealedColumn) -> Sql {
    match column {
        SealedColumn::TotpSecret => Sql {
            first: "SELECT user_id, sealed_secret FROM totp ORDER BY user_id LIMIT $1",
            after: "SELECT user_id, sealed_secret FROM totp WHERE user_id > $2 \
                    ORDER BY user_id LIMIT $1",
            swap: "UPDATE totp SET sealed_secret = $3 WHERE user_id = $1 AND sealed_secret = $2",
        },
        SealedColumn::BackupReveal => Sql {
            first: "SELECT user_id, sealed FROM backup_reveals ORDER BY user_id LIMIT $1",
            after: "SELECT user_id, sealed FROM backup_reveals WHERE user_id > $2 \
                    ORDER BY user_id LIMIT $1",
            swap: "UPDATE backup_reveals SET sealed = $3 WHERE user_id = $1 AND sealed = $2",
        },
        SealedColumn::OutboxText => Sql {
            first: "SELECT id, sealed_text FROM outbox ORDER BY id LIMIT $1",
            after: "SELECT id, sealed_text FROM outbox WHERE id > $2 ORDER BY id LIMIT $1",
            swap: "UPDATE outbox SET sealed_text = $3 WHERE id = $1 AND sealed_text = $2",
        },
        SealedColumn::Meta => Sql {
            first: "SELECT name, value FROM meta ORDER BY name COLLATE \"C\" LIMIT $1",
            after: "SELECT name, value FROM meta WHERE name > $2 COLLATE \"C\" \
                    ORDER BY name COLLATE \"C\" LIMIT $1",
            swap: "UPDATE meta SET value = $3 WHERE name = $1 AND value = $2",
        },
    }
}

/// An owner as the parameter its column compares with.
enum Key {
    Uuid(uuid::Uuid),
    Int(i64),
    Text(String),
}

impl Key {
    fn of(owner: &SealedOwner) -> Self {
        match owner {
            SealedOwner::User(u) => Key::Uuid(u.0),
            SealedOwner::Message(id) => Key::Int(*id),
            SealedOwner::Name(n) => Key::Text(n.clone()),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Key::Uuid(u) => u,
            Key::Int(i) => i,
            Key::Text(t) => t,
        }
    }
}

#[async_trait]
impl SealedStore for PgStore {
    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&SealedOwner>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>> {
        let after = after.filter(|o| records::owns(column, o)).map(Key::of);
        let limit = i64::from(limit);
        done(async {
            let c = self.client().await?;
            let sql = sql(column);
            let rows = match &after {
                None => {
                    let st = c.prepare_cached(sql.first).await?;
                    c.query(&st, &[&limit]).await?
                }
                Some(k) => {
                    let st = c.prepare_cached(sql.after).await?;
                    c.query(&st, &[&limit, k.param()]).await?
                }
            };
            rows.iter().map(|r| records::sealed_value(column, r)).collect::<DbResult<Vec<_>>>()
        })
        .await
    }

    async fn swap_sealed(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> StoreResult<Vec<bool>> {
        done(async {
            let mut c = self.client().await?;
            let tx = begin(&mut c).await?;
            let st = tx.prepare_cached(sql(column).swap).await?;
            let mut swapped = Vec::with_capacity(swaps.len());
            for w in swaps {
                if !records::owns(column, &w.owner) {
                    swapped.push(false);
                    continue;
                }
                let key = Key::of(&w.owner);
                swapped.push(tx.execute(&st, &[key.param(), &w.old, &w.new]).await? == 1);
            }
            tx.commit().await?;
            Ok(swapped)
        })
        .await
    }
}

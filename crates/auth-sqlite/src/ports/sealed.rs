//! `SealedStore`: every sealed column, page by page in owner order, and compare-and-set swaps of its
//! values (`auth-server key reseal`, spec §13 "Key rotation").
//!
//! A page is one `SELECT … WHERE owner > ? ORDER BY owner LIMIT ?` on the column's primary key (users
//! by their 16-byte BLOB, which SQLite compares byte by byte; outbox ids as integers; meta names with
//! the default BINARY collation, byte by byte), read beside writers in WAL mode. A batch of swaps is
//! one `IMMEDIATE` transaction of `UPDATE … SET value = new WHERE owner = ? AND value = old`, so it
//! holds the write lock for the few milliseconds of one batch, and a value a server rewrote meanwhile
//! matches nothing and is left as the server wrote it.

use async_trait::async_trait;
use auth_core::ports::{
    SealedColumn, SealedOwner, SealedStore, SealedSwap, SealedValue, StoreResult,
};
use auth_sql::records;
use rusqlite::ToSql;

use crate::codec::collect;
use crate::store::SqliteStore;

/// The statements of one column: the first page, a later page, and the swap.
struct Sql {
    first: &'static str,
    after: &'static str,
    swap: &'static str,
}

fn sql(column: SealedColumn) -> Sql {
    match column {
        SealedColumn::TotpSecret => Sql {
            first: "SELECT user, sealed_secret FROM totp ORDER BY user LIMIT ?1",
            after: "SELECT user, sealed_secret FROM totp WHERE user > ?2 ORDER BY user LIMIT ?1",
            swap: "UPDATE totp SET sealed_secret = ?3 WHERE user = ?1 AND sealed_secret = ?2",
        },
        SealedColumn::BackupReveal => Sql {
            first: "SELECT user, sealed FROM backup_reveals ORDER BY user LIMIT ?1",
            after: "SELECT user, sealed FROM backup_reveals WHERE user > ?2 ORDER BY user LIMIT ?1",
            swap: "UPDATE backup_reveals SET sealed = ?3 WHERE user = ?1 AND sealed = ?2",
        },
        SealedColumn::OutboxText => Sql {
            first: "SELECT id, sealed_text FROM outbox ORDER BY id LIMIT ?1",
            after: "SELECT id, sealed_text FROM outbox WHERE id > ?2 ORDER BY id LIMIT ?1",
            swap: "UPDATE outbox SET sealed_text = ?3 WHERE id = ?1 AND sealed_text = ?2",
        },
        SealedColumn::Meta => Sql {
            first: "SELECT name, value FROM meta ORDER BY name LIMIT ?1",
            after: "SELECT name, value FROM meta WHERE name > ?2 ORDER BY name LIMIT ?1",
            swap: "UPDATE meta SET value = ?3 WHERE name = ?1 AND value = ?2",
        },
    }
}

/// An owner as the parameter its column compares with.
enum Key {
    Blob(Vec<u8>),
    Int(i64),
    Text(String),
}

impl Key {
    fn of(owner: &SealedOwner) -> Self {
        match owner {
            SealedOwner::User(u) => Key::Blob(u.0.as_bytes().to_vec()),
            SealedOwner::Message(id) => Key::Int(*id),
            SealedOwner::Name(n) => Key::Text(n.clone()),
        }
    }

    fn param(&self) -> &dyn ToSql {
        match self {
            Key::Blob(b) => b,
            Key::Int(i) => i,
            Key::Text(t) => t,
        }
    }
}

#[async_trait]
impl SealedStore for SqliteStore {
    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&SealedOwner>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>> {
        let after = after.filter(|o| records::owns(column, o)).map(Key::of);
        let limit = i64::from(limit);
        self.run_read(move |c| {
            let sql = sql(column);
            let (statement, params): (&str, Vec<&dyn ToSql>) = match &after {
                None => (sql.first, vec![&limit]),
                Some(k) => (sql.after, vec![&limit, k.param()]),
            };
            let mut st = c.prepare_cached(statement)?;
            collect(st.query(params.as_slice())?, |r| records::sealed_value(column, r))
        })
        .await
    }

    async fn swap_sealed(
        &self,
        column: SealedColumn,
        swaps: &[SealedSwap],
    ) -> StoreResult<Vec<bool>> {
        let swaps = swaps.to_vec();
        self.write(move |tx| {
            let mut st = tx.prepare_cached(sql(column).swap)?;
            let mut done = Vec::with_capacity(swaps.len());
            for w in &swaps {
                if !records::owns(column, &w.owner) {
                    done.push(false);
                    continue;
                }
                let key = Key::of(&w.owner);
                done.push(st.execute([key.param(), &w.old, &w.new])? == 1);
            }
            Ok(done)
        })
        .await
    }
}

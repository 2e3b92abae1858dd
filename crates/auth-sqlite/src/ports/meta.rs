//! `MetaStore`: small named values the whole deployment agrees on, in the `meta` table.
//!
//! `init_meta` is one upsert whose conflict branch writes the stored value back unchanged and
//! returns it: the insert-or-read is one statement under SQLite's write lock, so of concurrent first
//! calls, in any number of processes, one inserts and every other one reads what it inserted.
//! `replace_meta` is one `UPDATE … WHERE value = old`, a compare-and-set under the same lock.

use async_trait::async_trait;
use auth_core::ports::{MetaStore, StoreResult};
use auth_sql::Columns;
use rusqlite::params;

use crate::codec::first;
use crate::store::SqliteStore;

#[async_trait]
impl MetaStore for SqliteStore {
    async fn init_meta(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let (name, value) = (name.to_owned(), value.to_vec());
        // `DO UPDATE` rather than `DO NOTHING`, because only a row the statement touched is
        // returned; setting the value to itself keeps the first writer's.
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = meta.value RETURNING value",
            )?
            .query_row(params![name, value], |r| Ok(r.bytes(0)))?
        })
        .await
    }

    async fn meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.run_read(move |c| {
            let mut st = c.prepare_cached("SELECT value FROM meta WHERE name = ?1")?;
            first(st.query([name])?, |r| r.bytes(0))
        })
        .await
    }

    async fn replace_meta(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let (name, old, new) = (name.to_owned(), old.to_vec(), new.to_vec());
        // One statement: the `WHERE` is the compare, under SQLite's write lock.
        self.run(move |c| {
            let n = c
                .prepare_cached("UPDATE meta SET value = ?3 WHERE name = ?1 AND value = ?2")?
                .execute(params![name, old, new])?;
            Ok(n == 1)
        })
        .await
    }
}

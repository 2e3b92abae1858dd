//! `MetaStore`: small named values the whole deployment agrees on, in the `meta` table.
//!
//! `init_meta` is one `INSERT … ON CONFLICT DO UPDATE … RETURNING`. PostgreSQL guarantees that such an
//! upsert either inserts or, when the name exists or is being inserted by a concurrent transaction,
//! waits for that transaction and then takes the conflict branch on the row it committed. The branch
//! writes the stored value back unchanged and returns it, so of concurrent first calls, on any number
//! of nodes, one inserts and every other one gets what it inserted. `replace_meta` is one
//! `UPDATE … WHERE value = old`, a compare-and-set.

use async_trait::async_trait;
use auth_core::ports::{MetaStore, StoreResult};
use auth_sql::Columns;

use crate::store::{PgStore, done};

#[async_trait]
impl MetaStore for PgStore {
    async fn init_meta(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        // `DO UPDATE` rather than `DO NOTHING`, because only a row the statement touched is
        // returned; this is called at start-up, so the row version it writes costs nothing.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO meta AS m (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = m.value RETURNING value",
                )
                .await?;
            c.query_one(&st, &[&name, &value]).await?.bytes(0)
        })
        .await
    }

    async fn meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        done(async {
            let c = self.client().await?;
            let st = c.prepare_cached("SELECT value FROM meta WHERE name = $1").await?;
            match c.query_opt(&st, &[&name]).await? {
                Some(row) => Ok(Some(row.bytes(0)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn replace_meta(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        // One statement: a concurrent replace waits for the row and re-checks `value = $2` on what it
        // committed (READ COMMITTED), so of racing replaces from one value exactly one changes it.
        done(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("UPDATE meta SET value = $3 WHERE name = $1 AND value = $2")
                .await?;
            Ok(c.execute(&st, &[&name, &old, &new]).await? == 1)
        })
        .await
    }
}

//! What the two SQL store adapters (auth-sqlite and auth-postgres) share, so it is written once.
//!
//! - [`codec`]: how domain values become column values and back (instants as i64 nanoseconds, TOTP
//!   steps, list positions, a portal's host rows, UUIDs and hashes from bytes), with [`Corrupt`] for a
//!   stored value that cannot be read back.
//! - [`Columns`]: reading a column of a result row by index. Each adapter implements it for its
//!   driver's row type, because only the adapter knows its dialect's types (SQLite keeps UUIDs as
//!   BLOBs and has one 64-bit INTEGER; PostgreSQL has UUID and INT4).
//! - [`records`]: the row → record mappers of the store ports, written once against [`Columns`].
//! - [`db_error!`]: the shape of an adapter's internal error (its driver's errors, or a
//!   [`StoreError`](auth_core::ports::StoreError)), declared by each adapter with its own mapping.
//!
//! What this crate deliberately does not hold: SQL. Every statement stays in its adapter, because
//! the two dialects keep the ports' atomicity promises differently (an `IMMEDIATE` transaction in
//! SQLite, row locks at READ COMMITTED in PostgreSQL). It depends on no driver, pool or runtime
//! either, so nothing here can tie one adapter to the other's.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod codec;
mod columns;
mod error;
pub mod records;

pub use codec::Corrupt;
pub use columns::Columns;

/// What [`db_error!`] expands to needs, reachable through `$crate` whatever the caller imports.
#[doc(hidden)]
pub mod __private {
    pub use auth_core::ports::StoreError;
}

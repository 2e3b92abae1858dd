//! The SQLite store adapter: every store port of auth-core on one SQLite database file.
//!
//! [`SqliteStore`] implements [`UserStore`](auth_core::ports::UserStore),
//! [`PortalStore`](auth_core::ports::PortalStore), [`SmsCodeStore`](auth_core::ports::SmsCodeStore),
//! [`TotpStore`](auth_core::ports::TotpStore), [`TokenStore`](auth_core::ports::TokenStore),
//! [`CounterStore`](auth_core::ports::CounterStore), [`AuditStore`](auth_core::ports::AuditStore),
//! [`OutboxStore`](auth_core::ports::OutboxStore), [`MetaStore`](auth_core::ports::MetaStore) and
//! [`SocialStore`](auth_core::ports::SocialStore), so it is an [`auth_core::Store`]. Its semantics
//! mirror the in-memory reference store of auth-core's testkit exactly.
//!
//! # Durability: `journal_mode=WAL`, `synchronous=FULL`
//!
//! The promise is "nothing acknowledged is ever lost": a token answered with 200, or an SMS accepted
//! into the outbox, must survive the process being killed and the machine losing power. In WAL mode
//! `synchronous=NORMAL` only syncs the WAL at checkpoints, so the last commits survive a process crash
//! but not a power cut; `synchronous=FULL` syncs the WAL on every commit and survives both. We pick
//! FULL. The price is one sync of the WAL per write transaction (`fdatasync` where the workspace's
//! `LIBSQLITE3_FLAGS` reach the bundled SQLite; measured on the development VM: about 0.3 ms
//! per commit against 0.04 ms with NORMAL), which is small next to the argon2 hash every login already
//! pays, so we did not find a reason to give the guarantee up.
//!
//! One write is the exception the port allows: the throttle slots of an attempt in flight
//! (`CounterStore::acquire_then`) commit with `synchronous=NORMAL`, because every outcome of the
//! attempt that is answered for is a synced commit after them, which syncs their frames of the WAL
//! too (`docs/decisions/0010-unflushed-throttle-slots.md`).
//!
//! # Schema
//!
//! Numbered migrations under `migrations/` are embedded at build time, tracked in
//! `PRAGMA user_version` and applied on open in one transaction; a file with a newer version, or
//! another program's file, is refused ([`SqliteError`]). The README lists the tables.
//!
//! WAL lets readers proceed while one writer writes, which is what an authentication server does most
//! (token checks are reads). `busy_timeout` (5 s by default) makes a connection wait for the write
//! lock instead of failing at once, and every write that reads before it writes starts with
//! `BEGIN IMMEDIATE`: it takes the write lock up front, so writers in several processes queue behind
//! each other instead of failing with `SQLITE_BUSY` when a read transaction tries to upgrade.
//! `foreign_keys=ON` keeps a portal's hosts tied to it, and `secure_delete=ON` zeroes deleted rows
//! (hashes of revoked tokens and burnt codes) instead of leaving them in free pages.
//!
//! # Atomicity
//!
//! Each promise marked MUST in [`auth_core::ports`] is kept by one statement or one `IMMEDIATE`
//! transaction, so several server processes on one database file agree: see the port modules.
//! Throttle decisions call [`auth_core::throttle::Rule::refused_until`] inside the transaction, so
//! this store applies exactly the rule every other store applies.
//!
//! # Blocking
//!
//! rusqlite is synchronous. Every call runs on tokio's blocking pool (`spawn_blocking`) on a
//! connection borrowed from a small pool; the `pool` module explains why a pool of equal
//! connections rather than one writer thread.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod backup;
mod codec;
mod error;
mod group;
mod migrate;
mod pool;
mod ports;
mod session_cache;
mod store;

pub use backup::{BackupReport, backup, meta_value, restore};
pub use error::SqliteError;
pub use migrate::SCHEMA_VERSION;
pub use store::{SqliteOptions, SqliteStore};

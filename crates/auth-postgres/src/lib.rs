//! The PostgreSQL store adapter: every store port of auth-core on one PostgreSQL database, shared by
//! any number of server nodes.
//!
//! [`PgStore`] implements [`UserStore`](auth_core::ports::UserStore),
//! [`PortalStore`](auth_core::ports::PortalStore), [`SmsCodeStore`](auth_core::ports::SmsCodeStore),
//! [`TotpStore`](auth_core::ports::TotpStore), [`TokenStore`](auth_core::ports::TokenStore),
//! [`CounterStore`](auth_core::ports::CounterStore), [`AuditStore`](auth_core::ports::AuditStore),
//! [`OutboxStore`](auth_core::ports::OutboxStore), [`MetaStore`](auth_core::ports::MetaStore) and
//! [`SocialStore`](auth_core::ports::SocialStore), so it is an [`auth_core::Store`]. Its semantics
//! mirror the in-memory reference store of auth-core's testkit exactly, and its schema mirrors the
//! SQLite adapter's.
//!
//! # Atomicity
//!
//! Each promise marked MUST in [`auth_core::ports`] is kept by one statement or one transaction at
//! READ COMMITTED, so several nodes on one database agree. Where a decision reads several rows before
//! it writes (throttle counters, SMS codes, backup-code replacement) the transaction first upserts a
//! per-key row, whose row lock queues the other transactions about the same key until it commits;
//! every later statement of the transaction then sees what they committed. A token insert reads its
//! user and portal rows `FOR SHARE`, and the changes that end tokens update those rows before they
//! delete the tokens, so the two meet on the same row locks (`ports/tokens.rs`). The port modules say
//! which statement keeps which promise, and the crate's README sums it up.
//!
//! Every connection sets `default_transaction_isolation` to READ COMMITTED, so a server configured
//! for SERIALIZABLE by default does not turn lost races into serialization errors: the statements are
//! written for READ COMMITTED's re-check of a locked row and need nothing stronger.
//!
//! # Session cache
//!
//! `session_by_token_hash`, the lookup of every authenticated request, is answered from a per-node
//! cache when it can be: every change it depends on notifies every node (`LISTEN/NOTIFY` in the
//! change's own transaction), a node serves from its cache only while its listening connection is
//! proven caught up, and a revoking call waits out that bound before it returns; so a token revoked
//! through any node fails on every node's next request. `session_cache.rs` has the argument;
//! [`PgOptions::session_cache`] turns it off.
//!
//! # Errors
//!
//! No tokio-postgres or deadpool type crosses a port: unique violations become
//! [`StoreError::Conflict`](auth_core::ports::StoreError::Conflict), connection, pool, timeout,
//! lock and serialization failures [`StoreError::Unavailable`](auth_core::ports::StoreError::Unavailable),
//! and values that cannot be decoded [`StoreError::Corrupt`](auth_core::ports::StoreError::Corrupt).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod codec;
mod error;
mod migrate;
mod ports;
mod session_cache;
mod store;
pub mod tls;

pub use error::PgError;
pub use migrate::SCHEMA_VERSION;
pub use session_cache::SessionCacheStats;
pub use store::{PgOptions, PgStore};

//! The port implementations, one module per trait of `auth_core::ports`.
//!
//! Each async method borrows a pooled connection, runs one statement or one READ COMMITTED transaction
//! on it, and maps its failure with `store::done`. Statements are prepared with `prepare_cached`, so
//! each connection parses each statement once.

mod audit;
mod counters;
mod meta;
mod outbox;
mod portals;
mod recovery;
mod sealed;
mod sms;
mod social;
mod tokens;
mod totp;
mod users;

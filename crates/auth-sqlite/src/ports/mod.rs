//! The port implementations, one module per trait of `auth_core::ports`.
//!
//! Each async method copies its arguments into an owned job and hands it to the store's `run`,
//! `write` (an `IMMEDIATE` transaction) or `read` (one snapshot). Statements are prepared with
//! `prepare_cached`, so each connection parses each statement once.

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

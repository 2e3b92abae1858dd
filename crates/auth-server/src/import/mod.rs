//! `auth-server import onlyoffice` and `auth-server user import --jsonl` (spec §11): bringing the
//! people of an ONLYOFFICE / R7-Office portal over, with their passwords, phones and authenticator apps.
//!
//! [`upstream`] decodes what upstream stored (pure), [`mysql`] reads it from the live database into
//! plain records, [`report`] is what the operator reads at the end, and [`jsonl`] is the line format of
//! `user import`. The rules for what is kept, merged or refused live in the core (`AuthService::import`);
//! this module decides only how each upstream row maps onto the core's records.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod mysql;
pub mod plan;
pub mod report;
pub mod upstream;

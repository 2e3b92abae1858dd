//! Integration tests of the PostgreSQL store, in one test binary: the auth-core conformance suite,
//! two nodes (two pools) racing on one database, the session cache across nodes, migrations, failure
//! mapping and TLS.
//!
//! Every test that needs a server takes it from `AUTH_TEST_POSTGRES_URL` (which `.ci/postgres.sh`
//! exports), creates a database of its own there and drops it afterwards. Without the variable such a
//! test says on stderr that it is skipped and why, and passes.

mod common;
mod conformance;
mod migrations;
mod nodes;
mod session_cache;
mod tls;

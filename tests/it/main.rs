//! The one integration-test binary: black-box tests of the real `auth-server` binary.
//!
//! Each module covers one surface of the running server; put a new test in the module whose surface
//! it exercises, and start a module only for a new surface.

/// The admin subcommands, run against a data directory with no server.
mod cli;
/// Every API flow over real HTTP: logins, second factors, tokens, formats, bodies, portals, refusals.
mod flows;
/// Two server nodes on one PostgreSQL database: limits, single use and revocation across nodes.
mod scaleout;
/// Starting and stopping `serve`: data directory set-up, the first administrator, config errors.
mod startup;

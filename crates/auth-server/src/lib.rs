//! The `auth-server` binary's library: configuration, wiring of the adapters into `auth-core`'s
//! service, the HTTP server's lifecycle and the admin subcommands.
//!
//! This is the composition root of the workspace: the only crate that knows every adapter. The
//! binary (`main.rs`) only parses the command line and dispatches here, so tests and other programs
//! can start the real server in-process with [`App::build`] on port 0, read [`App::local_addr`] and stop
//! it with [`App::run_until_stopped`]'s shutdown future.
//!
//! Adapters that live here because only the server needs them: the wall clock ([`clock`]), the OS
//! random generator ([`rng`]), the server key file ([`keyfile`]) and its commands ([`keys`]), the argon2id thread pool
//! ([`hashing`]), the SMS gateways ([`sms`]), SMTP delivery of e-mail ([`email`]), the outbox worker ([`outbox`]), the writer of tokens'
//! "last used" times ([`last_used`]), the outbound HTTPS client
//! ([`outbound`]), the social login providers ([`social`]), the TLS certificate ([`tls`]) and the
//! metrics registry ([`metrics`]).

pub mod admin;
pub mod app;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod email;
pub mod hashing;
pub mod import;
pub mod keyfile;
pub mod keys;
pub mod last_used;
pub mod ldap;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod outbox;
pub mod rng;
pub mod runtime;
mod secret_file;
pub mod sms;
pub mod social;
pub mod tls;
pub mod wiring;

pub use app::{App, FirstAdmin, serve, serve_with, shutdown_signal};
pub use config::Config;

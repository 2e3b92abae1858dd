//! The one integration-test binary: black-box tests of the real `auth-server` binary.
//!
//! Each module covers one surface of the running server; put a new test in the module whose surface
//! it exercises, and start a module only for a new surface.

/// The admin subcommands, run against a data directory with no server.
mod cli;
/// Account recovery and security notices by e-mail through a real SMTP server: the reset link over
/// HTTP and in Chromium, the limits, each notice, and a mail server that is down.
mod email;
/// Real SMTP delivery: `email test` against a real SMTP server (aiosmtpd) over STARTTLS and implicit
/// TLS with AUTH, what arrives, each failure's outcome, and the `[email]` start-up checks.
mod email_smtp;
/// Faults: a failing SMS webhook, an unwritable or full database, SIGKILL under load.
mod faults;
/// Every API flow over real HTTP: logins, second factors, tokens, formats, bodies, portals, refusals.
mod flows;
/// Forward auth behind a real nginx and `/auth/verify` / `/auth/forward` spoken to directly.
mod forward_auth;
/// Hostile input over real HTTP: the corpus in `tests/data/hostile/`, 4xx envelopes, never a 5xx or a hang.
mod hostile;
/// The migration from ONLYOFFICE / R7-Office: `import onlyoffice` from a real MariaDB, `user import --jsonl`.
mod import;
/// LDAP / Active Directory sign-in against a real OpenLDAP (slapd) over ldaps:// and StartTLS.
mod ldap;
/// The metrics (issue 17): every series after a flow, scraped from `metrics_listen`, parsed and linted.
mod metrics;
/// Operations: backup under load and restore; key rotation (`key rotate`, `reseal`, `retire`, `list`).
mod operations;
/// Concurrency: 50 racers per one-time code, and limits shared by two processes on one SQLite file.
mod races;
/// Slow and idle clients, and login timing that does not tell unknown users from wrong passwords.
mod robustness;
/// Two server nodes on one PostgreSQL database: limits, single use and revocation across nodes.
mod scaleout;
/// The second security round (issue 12): bypasses found by review, each pinned over real HTTP.
mod security;
/// The sessions API (issue 17, spec §13): listing one's tokens, ending one, the others, or all.
mod sessions;
/// The sign-in page in headless Chromium: every step, photographed.
mod sign_in;
/// Real SMS delivery: each provider's HTTP API and the signed webhook against contract-checking fakes
/// on HTTPS, the failure classes, `sms test`, routing, and exactly-once delivery from two nodes.
mod sms_providers;
/// Social login (OpenID Connect) against a real OpenID provider on loopback HTTPS.
mod social;
/// Starting and stopping `serve`: data directory set-up, the first administrator, config errors.
mod startup;
/// The TLS listener: HTTPS, ALPN, `Secure` cookies, certificates reloaded on SIGHUP.
mod tls;

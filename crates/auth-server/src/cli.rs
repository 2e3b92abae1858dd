//! The command line: global options and the subcommands of spec §8, as clap derive types.
//!
//! Parsing only; [`crate::admin`] runs the admin subcommands and [`crate::app::serve`] the server.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

/// Portal authentication server (ONLYOFFICE / R7-Office compatible).
///
/// Without a subcommand it serves. Every configuration key can also be set in the TOML file or
/// through `AUTH_…` environment variables: see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "auth-server", version)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "AUTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: database, server key and SMS file [env AUTH_DATA_DIR; default ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address, IP:PORT (port 0 picks a free one) [env AUTH_LISTEN; default 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Write logs as JSON lines (same as log.format = "json").
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The globals that override the configuration.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            listen: self.listen.clone(),
            log_json: self.log_json,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage portals (tenants).
    #[command(subcommand)]
    Portal(PortalCommand),
    /// Inspect SMS delivery.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Check e-mail delivery.
    #[command(subcommand)]
    Email(EmailCommand),
    /// Show recent audit events, newest first; or export a time range, oldest first.
    Audit(AuditArgs),
    /// Copy the SQLite database to a new file, consistently, while servers keep running.
    Backup(BackupArgs),
    /// Replace the SQLite database by a backup (every server on it must be stopped).
    Restore(RestoreArgs),
    /// Check and synchronise LDAP / Active Directory sign-in.
    #[command(subcommand)]
    Ldap(LdapCommand),
    /// Bring portals and users over from another system.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage the server key ring: rotate, reseal, retire and list its keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `key …` (spec §13 "Key rotation"; docs/deployment.md has the procedure for several nodes).
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the keys of the ring: ids, creation times and which one seals (never a key byte), and
    /// whether the database expects this ring.
    List(KeyList),
    /// Add a new key that seals from now on; the older keys still open what they sealed. Restart
    /// every server with the new key file afterwards.
    Rotate,
    /// Rewrite every sealed value under the newest key, in short batches, while servers keep serving.
    Reseal(KeyReseal),
    /// Drop every key but the newest, once no stored value needs them (run `key reseal` first).
    Retire(KeyRetire),
}

/// `key list`.
#[derive(Debug, Args)]
pub struct KeyList {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `key reseal`.
#[derive(Debug, Args)]
pub struct KeyReseal {
    /// Values per batch (one read and one short write transaction each).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
}

/// `key retire`.
#[derive(Debug, Args)]
pub struct KeyRetire {
    /// Retire even when some stored values open with no key of the ring (they stay unreadable;
    /// values that still need an older key always stop the retirement).
    #[arg(long)]
    pub force: bool,
}

/// `backup --to FILE`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write (it must not exist).
    #[arg(long)]
    pub to: std::path::PathBuf,
}

/// `restore --from FILE`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    #[arg(long)]
    pub from: std::path::PathBuf,
}

/// `ldap …`.
#[derive(Debug, Subcommand)]
pub enum LdapCommand {
    /// Try one directory login step by step and say which step failed (the password is prompted
    /// for, or read from the first line of standard input when it is not a terminal).
    Test(LdapTest),
    /// Create and update the portal's directory users, and disable those gone from the directory or
    /// the group.
    Sync(LdapSync),
}

/// `ldap test`.
#[derive(Debug, Args)]
pub struct LdapTest {
    /// The portal, by one of its host names (default: the first portal).
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
    /// The directory login (uid, sAMAccountName or e-mail, as the user filter allows).
    #[arg(long)]
    pub login: String,
    /// The directory by its configured name, instead of the portal's.
    #[arg(long, value_name = "NAME")]
    pub directory: Option<String>,
}

/// `ldap sync`.
#[derive(Debug, Args)]
pub struct LdapSync {
    /// The portal, by one of its host names (default: the first portal).
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import portals and users from an ONLYOFFICE / R7-Office (CommunityServer) database.
    ///
    /// Reads the MySQL or MariaDB database read-only and brings over portals, users, their password
    /// hashes, phones, authenticator apps, backup codes and social links (see docs/migration.md).
    /// Re-running it changes only what changed upstream. Nothing secret is printed.
    Onlyoffice(OnlyofficeImport),
}

/// `import onlyoffice`.
#[derive(Debug, Args)]
pub struct OnlyofficeImport {
    /// The upstream database: mysql://USER[:PASS]@HOST:PORT/DB. The password may be left out and
    /// given in the MYSQL_PWD environment variable instead, so it stays out of the process list.
    #[arg(long, value_name = "URL")]
    pub mysql: String,
    /// The machine key: `core.machinekey` of upstream's web.appsettings.config.
    #[command(flatten)]
    pub machine_key: MachineKeySource,
    /// The base domain of portal host names (`core.base-domain`); default: the database's BaseDomain.
    #[arg(long, value_name = "DOMAIN")]
    pub base_domain: Option<String>,
    /// `core.password.salt`, when upstream set one (default: derived from the machine key).
    #[arg(long, value_name = "SALT")]
    pub password_salt: Option<String>,
    /// `core.password.iterations`.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub iterations: u32,
    /// `core.password.size`, in bits.
    #[arg(long, value_name = "BITS", default_value_t = 256, hide = true)]
    pub password_size: u32,
    /// Only the portal with this alias (repeatable); also the way to import the placeholder portal.
    #[arg(long = "tenant", value_name = "ALIAS")]
    pub tenants: Vec<String>,
    /// Read and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the machine key comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct MachineKeySource {
    /// The machine key (visible in the process list; prefer --machine-key-file).
    #[arg(long, value_name = "KEY")]
    pub machine_key: Option<String>,
    /// Read the machine key from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub machine_key_file: Option<PathBuf>,
}

/// `user import`.
#[derive(Debug, Args)]
pub struct UserImport {
    /// A JSON Lines file, one user per line: email, first_name, last_name, password or password_hash
    /// (argon2id PHC), phone, phone_activated, admin, disabled. `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub jsonl: PathBuf,
    /// The portal, by one of its host names (default: the first portal).
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
    /// Users per transaction.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch: usize,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add(UserAdd),
    /// List users.
    List(UserList),
    /// Disable a user and end their sessions.
    Disable(UserRef),
    /// Enable a disabled user.
    Enable(UserRef),
    /// Set a new password (ends the user's sessions).
    SetPassword(SetPassword),
    /// Forget the user's phone; the next SMS login asks for a number again.
    ResetPhone(UserRef),
    /// Reset the user's TOTP app, backup codes and second-factor lock.
    ResetTfa(UserRef),
    /// End every session of the user.
    LogoutAll(UserRef),
    /// Link a social identity (the provider's subject) to the user.
    Link(UserLink),
    /// Remove the user's link at a social provider.
    Unlink(UserUnlink),
    /// List the user's social links.
    Links(UserLinks),
    /// Import users from a JSON Lines file, in batches of one transaction each.
    Import(UserImport),
}

/// `user link`.
#[derive(Debug, Args)]
pub struct UserLink {
    /// The user.
    #[command(flatten)]
    pub user: UserRef,
    /// The provider's configured name.
    #[arg(long)]
    pub provider: String,
    /// The provider's subject identifier of the account (`sub`, or the preset's id field).
    #[arg(long)]
    pub subject: String,
}

/// `user unlink`.
#[derive(Debug, Args)]
pub struct UserUnlink {
    /// The user.
    #[command(flatten)]
    pub user: UserRef,
    /// The provider's configured name.
    #[arg(long)]
    pub provider: String,
}

/// `user links`.
#[derive(Debug, Args)]
pub struct UserLinks {
    /// The user.
    #[command(flatten)]
    pub user: UserRef,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where a new password comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// The password (visible in the process list and shell history; prefer --password-stdin).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `user add`.
#[derive(Debug, Args)]
pub struct UserAdd {
    /// E-mail address (the login).
    #[arg(long)]
    pub email: String,
    /// The password.
    #[command(flatten)]
    pub password: PasswordSource,
    /// Given name.
    #[arg(long, default_value = "")]
    pub first_name: String,
    /// Family name.
    #[arg(long, default_value = "")]
    pub last_name: String,
    /// Accept a password from the list of common passwords (the minimum length still holds).
    #[arg(long)]
    pub force: bool,
    /// Make the user a portal administrator.
    #[arg(long)]
    pub admin: bool,
    /// The portal, by one of its host names (default: the first portal).
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
}

/// `user list`.
#[derive(Debug, Args)]
pub struct UserList {
    /// Only this portal, by one of its host names.
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A user named by e-mail.
#[derive(Debug, Args)]
pub struct UserRef {
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
    /// The portal, by one of its host names (needed when the e-mail exists in several portals).
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
}

/// `user set-password`.
#[derive(Debug, Args)]
pub struct SetPassword {
    /// The user.
    #[command(flatten)]
    pub user: UserRef,
    /// The new password.
    #[command(flatten)]
    pub password: PasswordSource,
    /// Accept a password from the list of common passwords (the minimum length still holds).
    #[arg(long)]
    pub force: bool,
}

/// `portal …`.
#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Create a portal answering to the given host names.
    Add(PortalAdd),
    /// List portals and their main settings.
    List(PortalList),
    /// Change a portal's settings (the default portal without --host).
    Set(PortalSet),
}

/// `portal add`.
#[derive(Debug, Args)]
pub struct PortalAdd {
    /// A host name the portal answers to (repeat for several).
    #[arg(long = "host", value_name = "HOST", required = true)]
    pub hosts: Vec<String>,
    /// Display name (default: the first host).
    #[arg(long)]
    pub name: Option<String>,
}

/// `portal list`.
#[derive(Debug, Args)]
pub struct PortalList {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `portal set`.
#[derive(Debug, Args)]
pub struct PortalSet {
    /// The portal, by one of its host names (default: the first portal, created if there is none).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// New display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Second factor: none, sms or app. Changing it ends every session of the portal.
    #[arg(long, value_name = "MODE")]
    pub tfa: Option<String>,
    /// IANA time zone used in dates, e.g. Europe/Moscow.
    #[arg(long, value_name = "TZ")]
    pub time_zone: Option<String>,
    /// en or ru (chooses the SMS text).
    #[arg(long, value_name = "LANG")]
    pub language: Option<String>,
    /// Networks that skip the second factor, comma-separated CIDRs ("" clears).
    #[arg(long, value_name = "CIDR,…")]
    pub trusted_ips: Option<String>,
    /// Lifetime of issued tokens, in minutes.
    #[arg(long, value_name = "N")]
    pub token_lifetime_minutes: Option<u64>,
    /// Whether the portal is served over https (adds Secure to the cookie).
    #[arg(long, value_name = "BOOL")]
    pub https: Option<bool>,
    /// Any other portal setting by its storage name, e.g. login_limit=10 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

/// `sms …`.
#[derive(Debug, Subcommand)]
pub enum SmsCommand {
    /// What the file gateway sent (newest last), or the store's outbox with --store.
    Outbox(SmsOutbox),
    /// Send one test message through the configured routing now (not through the outbox) and print
    /// which gateway took it, the outcome class and the provider's answer; exit status 1 unless sent.
    Test(SmsTest),
}

/// `sms test`.
#[derive(Debug, Args)]
pub struct SmsTest {
    /// The recipient, in international format (`+7 912 345-67-89` or `79123456789`).
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    /// The text to send.
    #[arg(long, default_value = "auth-server: test message / тестовое сообщение")]
    pub text: String,
}

/// `email …`.
#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Send one test message through the configured SMTP server now (not through the outbox) and
    /// print the server, the outcome (sent, rejected or unavailable) and the server's answer; exit
    /// status 1 unless sent. The password is never printed.
    Test(EmailTest),
}

/// `email test`.
#[derive(Debug, Args)]
pub struct EmailTest {
    /// The recipient's address.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// The subject line.
    #[arg(long, default_value = "auth-server: test message / тестовое сообщение")]
    pub subject: String,
}

/// `sms outbox`.
#[derive(Debug, Args)]
pub struct SmsOutbox {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many messages to show.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub last: usize,
    /// List the store's delivery queue (status, attempts, errors; no texts) instead of the file.
    #[arg(long)]
    pub store: bool,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many of the newest events to show [default: 50].
    #[arg(long, value_name = "N", conflicts_with_all = ["since", "until"])]
    pub last: Option<u32>,
    /// Export the events at or after this time, oldest first (RFC 3339, or a date for its UTC
    /// midnight): `2026-01-10T07:46:24Z`, `2026-01-10T10:46:24+03:00`, `2026-01-10`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<jiff::Timestamp>,
    /// Export the events before this time (same forms as --since) [default: now].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<jiff::Timestamp>,
    /// JSON instead of a table; with --since or --until, one event per line (JSON lines).
    #[arg(long)]
    pub json: bool,
    /// Only events of this user.
    #[arg(long)]
    pub email: Option<String>,
    /// Only this action, by name (LoginFailViaApi) or code (1013).
    #[arg(long, value_name = "NAME")]
    pub action: Option<String>,
    /// Only this portal, by one of its host names.
    #[arg(long, value_name = "HOST")]
    pub portal: Option<String>,
}

/// A time on the command line: an RFC 3339 timestamp with its offset (`2026-01-10T07:46:24Z`,
/// `2026-01-10T10:46:24.5+03:00`), or a plain date, meaning its midnight in UTC. A local time
/// without an offset is refused: which instant it names would depend on the machine.
pub fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>()
        && text.len() == 10
        && let Ok(z) = date.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(format!(
        "{text:?} is not a time: give RFC 3339 with an offset (2026-01-10T07:46:24Z, \
         2026-01-10T10:46:24+03:00) or a date (2026-01-10, midnight UTC)"
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    fn check(text: &str, want: Option<&str>) {
        let got = parse_time(text).ok().map(|t| t.to_string());
        assert_eq!(got.as_deref(), want, "{text:?}");
    }

    /// Issue 17: `audit --since/--until` take RFC 3339 (any offset, any fraction, `z` or `Z`) and
    /// plain dates; nothing whose instant would depend on the machine's time zone.
    #[test]
    fn times_are_rfc_3339_or_dates() {
        check("2026-01-10T07:46:24Z", Some("2026-01-10T07:46:24Z"));
        check("2026-01-10t07:46:24z", Some("2026-01-10T07:46:24Z"));
        check("2026-01-10T10:46:24+03:00", Some("2026-01-10T07:46:24Z"));
        check("2026-01-10T07:46:24.4206897Z", Some("2026-01-10T07:46:24.4206897Z"));
        check("2026-01-09T23:00:00-05:00", Some("2026-01-10T04:00:00Z"));
        check(" 2026-01-10T07:46:24Z ", Some("2026-01-10T07:46:24Z"));
        check("2026-01-10", Some("2026-01-10T00:00:00Z"));
        check("2026-01-10T07:46:24", None);
        check("2026-01-10 07:46", None);
        check("20260110", None);
        check("yesterday", None);
        check("2026-02-30", None);
        check("", None);
        assert!(parse_time("soon").unwrap_err().contains("RFC 3339"));
    }
}

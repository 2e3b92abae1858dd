//! The `[[ldap.directories]]` configuration (spec §5.9): its TOML shape and the checks that run at
//! start-up.
//!
//! Loading only reads and checks values, like the rest of `config`: the service account's password
//! file (or variable) and the CA file are read when the directories are built
//! (`LdapDirectories::new`). Every check names the directory and the key, because a misconfigured
//! directory must fail the start, not the first login. There is deliberately no inline password key:
//! the service account's password lives in a file or a variable, never in the configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Every key of one `[[ldap.directories]]` table, in documentation order (a unit test checks that
/// `docs/configuration.md` and the example file name each one).
pub const DIRECTORY_KEYS: &[&str] = &[
    "name",
    "portals",
    "url",
    "start_tls",
    "ca_file",
    "bind_dn",
    "bind_password_file",
    "bind_password_env",
    "user_base",
    "user_filter",
    "group_dn",
    "timeout_secs",
    "pool_size",
];

/// Every key of `[ldap.directories.attributes]`, in documentation order.
pub const ATTRIBUTE_KEYS: &[&str] = &["email", "first_name", "last_name", "mobile", "disabled"];

/// The placeholder in `user_filter` that the escaped login replaces.
pub(super) const LOGIN_PLACEHOLDER: &str = "{login}";

/// The spec's default user filter: people found by uid (OpenLDAP, FreeIPA), sAMAccountName (Active
/// Directory) or e-mail. An attribute a server does not know makes its term undefined, which `|`
/// skips, so one filter serves every kind of directory.
pub const DEFAULT_USER_FILTER: &str =
    "(&(objectClass=person)(|(uid={login})(sAMAccountName={login})(mail={login})))";

/// The default deadline of one step (connect, bind, search).
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// The default number of logins in flight against one directory.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// What the `[ldap]` table holds, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLdap {
    directories: Vec<RawDirectory>,
}

/// One `[[ldap.directories]]` table, exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    name: String,
    #[serde(default)]
    portals: Option<Vec<String>>,
    url: String,
    #[serde(default)]
    start_tls: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    bind_dn: String,
    #[serde(default)]
    bind_password_file: Option<PathBuf>,
    #[serde(default)]
    bind_password_env: Option<String>,
    user_base: String,
    #[serde(default)]
    user_filter: Option<String>,
    #[serde(default)]
    group_dn: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    pool_size: Option<u64>,
    #[serde(default)]
    attributes: RawAttributes,
}

/// `[ldap.directories.attributes]`, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAttributes {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    mobile: Option<String>,
    disabled: Option<String>,
}

/// Every configured directory, in configuration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LdapConfig {
    /// The directories.
    pub directories: Vec<DirectoryConfig>,
}

/// Where a directory server is, and how the connection is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUrl {
    /// `ldaps://` (TLS from the first byte) rather than `ldap://`.
    pub ldaps: bool,
    /// The host as written (a name, an IPv4 literal or a bracketed IPv6 literal).
    pub host: String,
    /// The port (636 for `ldaps://`, 389 for `ldap://` when none is written).
    pub port: u16,
}

impl std::fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.ldaps { "ldaps" } else { "ldap" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl LdapUrl {
    /// Whether the host is a loopback IP literal (names are not resolved: a name could resolve
    /// elsewhere, as for the outbound HTTPS client).
    pub fn is_loopback(&self) -> bool {
        let bare = self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        bare.unwrap_or(&self.host).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Where the service account's password comes from; read when the directories are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindPassword {
    /// A file holding it (surrounding white space is dropped).
    File(PathBuf),
    /// An environment variable holding it.
    Env(String),
}

/// The names of the attributes read from a user's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// The e-mail (the local user's login).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Mobile number; `None` (configured as `""`) reads none.
    pub mobile: Option<String>,
    /// The "disabled" flag: Active Directory's `userAccountControl` (bit 2), or any attribute whose
    /// value `TRUE`, `true`, `1` or `yes` means disabled. `None` reads no flag.
    pub disabled: Option<String>,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            email: "mail".to_owned(),
            first_name: "givenName".to_owned(),
            last_name: "sn".to_owned(),
            mobile: Some("mobile".to_owned()),
            disabled: None,
        }
    }
}

/// One directory, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Its name (lower-case, unique): what `portal set --set ldap=NAME` and directory users refer to.
    pub name: String,
    /// Hosts (lower-case) whose portals sign in against it; `None` is every portal.
    pub portals: Option<Vec<String>>,
    /// The server.
    pub url: LdapUrl,
    /// Whether an `ldap://` connection is upgraded with StartTLS before anything else is sent.
    pub start_tls: bool,
    /// Extra trust roots for the directory's certificate (beside the system's).
    pub ca_file: Option<PathBuf>,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password's source.
    pub bind_password: BindPassword,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// The search filter, with [`LOGIN_PLACEHOLDER`] where the escaped login goes.
    pub user_filter: String,
    /// Only members of this group may sign in.
    pub group_dn: Option<String>,
    /// Deadline of each step.
    pub timeout: Duration,
    /// Logins in flight against the directory at once (each holds one pooled service connection
    /// and, for its bind, one short-lived connection of its own).
    pub pool_size: usize,
    /// The attribute map.
    pub attributes: Attributes,
}

impl DirectoryConfig {
    /// Whether the portal answering to `hosts` signs in against this directory by its `portals` list.
    pub fn serves_hosts(&self, hosts: &[String]) -> bool {
        match &self.portals {
            None => true,
            Some(list) => hosts.iter().any(|h| list.iter().any(|p| p.eq_ignore_ascii_case(h))),
        }
    }
}

/// A configuration error; the message names the directory and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LdapConfigError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, LdapConfigError> {
    Err(LdapConfigError(message.into()))
}

impl RawLdap {
    /// Checks every directory.
    pub(crate) fn resolve(self) -> Result<LdapConfig, LdapConfigError> {
        let mut directories: Vec<DirectoryConfig> = Vec::with_capacity(self.directories.len());
        for (index, raw) in self.directories.into_iter().enumerate() {
            let directory = resolve_directory(index, raw)?;
            if directories.iter().any(|d| d.name == directory.name) {
                return fail(format!(
                    "ldap.directories: the name {:?} is used twice (names must be unique)",
                    directory.name
                ));
            }
            directories.push(directory);
        }
        Ok(LdapConfig { directories })
    }
}

/// Parses `ldap://host[:port][/]` or `ldaps://…`; nothing else (no DN, attributes or filter in the
/// URL, no `ldapi://`), because every other part has its own key.
pub fn parse_url(url: &str) -> Result<LdapUrl, String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let (ldaps, rest) = if lower.starts_with("ldaps://") {
        (true, url.get("ldaps://".len()..).unwrap_or(""))
    } else if lower.starts_with("ldap://") {
        (false, url.get("ldap://".len()..).unwrap_or(""))
    } else {
        return Err(format!("{url:?} must start with ldaps:// or ldap://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '@', ' ']) {
        return Err(format!(
            "{url:?}: only a host and a port may follow the scheme (the base DN is user_base)"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((inner, after)) = v6.split_once(']') else {
            return Err(format!("{url:?}: an IPv6 address needs its closing ']'"));
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| format!("{url:?}: bad port"))?),
        };
        (format!("[{inner}]"), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("{url:?} names no host"));
    }
    let port = match port {
        None => {
            if ldaps {
                636
            } else {
                389
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{url:?}: {p:?} is not a port")),
        },
    };
    Ok(LdapUrl { ldaps, host: host.to_ascii_lowercase(), port })
}

/// Whether a filter template is one parenthesised filter with balanced parentheses that uses the
/// login: a template that does not would admit anyone the service account can see, or nobody.
fn check_filter(filter: &str) -> Result<(), String> {
    if !filter.contains(LOGIN_PLACEHOLDER) {
        return Err(format!("must contain {LOGIN_PLACEHOLDER} where the login goes"));
    }
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err("must be one filter in parentheses, such as (uid={login})".to_owned());
    }
    let sample = filter.replace(LOGIN_PLACEHOLDER, "sample");
    if ldap3::parse_filter(&sample).is_err() {
        return Err("is not a valid LDAP filter (RFC 4515)".to_owned());
    }
    Ok(())
}

fn resolve_directory(index: usize, raw: RawDirectory) -> Result<DirectoryConfig, LdapConfigError> {
    let name = raw.name.trim().to_owned();
    let at = if name.is_empty() {
        format!("ldap.directories[{index}]")
    } else {
        format!("ldap.directories[{index}] ({name:?})")
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return fail(format!(
            "{at}: name: must be non-empty lower-case letters, digits, '_' or '-'"
        ));
    }
    let url = match parse_url(&raw.url) {
        Ok(u) => u,
        Err(e) => return fail(format!("{at}: url: {e}")),
    };
    if url.ldaps && raw.start_tls {
        return fail(format!(
            "{at}: start_tls: an ldaps:// connection is TLS already; start_tls is for ldap:// URLs"
        ));
    }
    if !url.ldaps && !raw.start_tls && !url.is_loopback() {
        return fail(format!(
            "{at}: url: {} would send passwords in clear text; use ldaps://, or set start_tls = true \
             (plain ldap:// is allowed only to a loopback address such as 127.0.0.1)",
            url
        ));
    }
    let bind_dn = raw.bind_dn.trim().to_owned();
    if bind_dn.is_empty() {
        return fail(format!(
            "{at}: bind_dn: must not be empty (the service account that searches)"
        ));
    }
    let file = raw.bind_password_file.filter(|p| !p.as_os_str().is_empty());
    let env = raw.bind_password_env.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let bind_password = match (file, env) {
        (Some(_), Some(_)) => {
            return fail(format!(
                "{at}: bind_password_file and bind_password_env: set one, not both"
            ));
        }
        (Some(path), None) => BindPassword::File(path),
        (None, Some(var)) => {
            if !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return fail(format!(
                    "{at}: bind_password_env: {var:?} is not an environment variable name"
                ));
            }
            BindPassword::Env(var)
        }
        (None, None) => {
            return fail(format!(
                "{at}: bind_password_file or bind_password_env: the service account needs a password \
                 (an anonymous search is never used)"
            ));
        }
    };
    let user_base = raw.user_base.trim().to_owned();
    if user_base.is_empty() {
        return fail(format!("{at}: user_base: must not be empty"));
    }
    let user_filter = raw
        .user_filter
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| DEFAULT_USER_FILTER.to_owned());
    if let Err(e) = check_filter(&user_filter) {
        return fail(format!("{at}: user_filter: {e}"));
    }
    let group_dn = raw.group_dn.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
    let portals = match raw.portals {
        None => None,
        Some(hosts) => {
            let hosts: Vec<String> = hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
            if let Some(bad) = hosts.iter().find(|h| h.is_empty() || h.contains(['/', ' ', '@'])) {
                return fail(format!("{at}: portals: {bad:?} is not a host name"));
            }
            Some(hosts)
        }
    };
    let timeout_secs = raw.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=120).contains(&timeout_secs) {
        return fail(format!("{at}: timeout_secs: must be between 1 and 120"));
    }
    let pool_size = match raw.pool_size {
        None => DEFAULT_POOL_SIZE,
        Some(n @ 1..=256) => usize::try_from(n).unwrap_or(DEFAULT_POOL_SIZE),
        Some(_) => return fail(format!("{at}: pool_size: must be between 1 and 256")),
    };
    let defaults = Attributes::default();
    let attribute = |key: &str, value: Option<String>, default: String| {
        let value = value.map(|v| v.trim().to_owned()).unwrap_or(default);
        if value.is_empty() || !is_attribute_name(&value) {
            return fail(format!(
                "{at}: attributes.{key}: {value:?} is not an attribute name (letters, digits, '-', or an OID)"
            ));
        }
        Ok(value)
    };
    let optional = |key: &str, value: Option<String>, default: Option<String>| match value
        .map(|v| v.trim().to_owned())
    {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if is_attribute_name(&v) => Ok(Some(v)),
        Some(v) => fail(format!("{at}: attributes.{key}: {v:?} is not an attribute name")),
    };
    let a = raw.attributes;
    let attributes = Attributes {
        email: attribute("email", a.email, defaults.email)?,
        first_name: attribute("first_name", a.first_name, defaults.first_name)?,
        last_name: attribute("last_name", a.last_name, defaults.last_name)?,
        mobile: optional("mobile", a.mobile, defaults.mobile)?,
        disabled: optional("disabled", a.disabled, defaults.disabled)?,
    };
    Ok(DirectoryConfig {
        name,
        portals,
        url,
        start_tls: raw.start_tls,
        ca_file: raw.ca_file.filter(|p| !p.as_os_str().is_empty()),
        bind_dn,
        bind_password,
        user_base,
        user_filter,
        group_dn,
        timeout: Duration::from_secs(timeout_secs),
        pool_size,
        attributes,
    })
}

/// An attribute description as RFC 4512 allows it: a name (a letter, then letters, digits and
/// hyphens) or a numeric OID. Anything else would be spliced into requests unchecked.
fn is_attribute_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() => bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        Some(b) if b.is_ascii_digit() => {
            s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

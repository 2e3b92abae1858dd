//! LDAP / Active Directory sign-in (spec §5.9): the real implementation of auth-core's `Directory`
//! port.
//!
//! [`LdapDirectories`] holds the configured `[[ldap.directories]]` in configuration order. A portal
//! signs in against the first directory whose `portals` list names one of its hosts (or that has no
//! list). A login searches with the directory's service account (the login escaped per RFC 4515,
//! module `filter`), binds as the one entry found with the given password on a connection of its
//! own, then checks the group and the "disabled" flag (module `client`). The core turns the entry
//! into a local user; nothing here stores anything.
//!
//! The service account's password is read once, when the directories are built, from its file or
//! variable; it is held as a `SecretString` and never logged, put in an error, or shown by `Debug`.
//! Users' passwords pass through to the directory's bind and nowhere else.

mod client;
mod config;
mod filter;
mod trace;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::Directory;
use auth_core::{Portal, SecretString};

pub use auth_core::ports::{DirectoryEntry, DirectoryError};
pub(crate) use config::RawLdap;
pub use config::{
    ATTRIBUTE_KEYS, Attributes, BindPassword, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_SECS,
    DEFAULT_USER_FILTER, DIRECTORY_KEYS, DirectoryConfig, LdapConfig, LdapConfigError, LdapUrl,
    parse_url,
};
pub use filter::escape_value;
pub use trace::{Step, StepReport, Trace};

use self::client::DirectoryClient;
use crate::outbound::Outbound;

/// Why the directories could not be built at start-up. No variant carries a password.
#[derive(Debug, thiserror::Error)]
pub enum LdapSetupError {
    /// The password file could not be read.
    #[error("ldap directory {directory:?}: cannot read bind_password_file {}: {source}", path.display())]
    PasswordFile {
        /// The directory.
        directory: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The password file or variable is empty.
    #[error(
        "ldap directory {directory:?}: the service account's password ({source_name}) is empty"
    )]
    EmptyPassword {
        /// The directory.
        directory: String,
        /// The file or variable, by name.
        source_name: String,
    },
    /// The variable is not set.
    #[error("ldap directory {directory:?}: bind_password_env names {variable}, which is not set")]
    MissingVariable {
        /// The directory.
        directory: String,
        /// The variable.
        variable: String,
    },
    /// The TLS configuration could not be made (CA file, trust roots).
    #[error("ldap directory {directory:?}: {source}")]
    Tls {
        /// The directory.
        directory: String,
        /// Why.
        source: crate::outbound::SetupError,
    },
}

/// The configured directories.
pub struct LdapDirectories {
    directories: Vec<Arc<DirectoryClient>>,
}

impl std::fmt::Debug for LdapDirectories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.directories.iter().map(|d| d.config.name.as_str())).finish()
    }
}

impl LdapDirectories {
    /// Builds every directory of `config`, reading the service accounts' passwords (from their files,
    /// or from the process environment) and the CA files.
    pub fn new(config: &LdapConfig, outbound: &Outbound) -> Result<Self, LdapSetupError> {
        Self::with_env(config, outbound, |name| std::env::var(name).ok())
    }

    /// [`LdapDirectories::new`] with `env` standing for the process environment.
    pub fn with_env(
        config: &LdapConfig,
        outbound: &Outbound,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LdapSetupError> {
        let mut directories = Vec::with_capacity(config.directories.len());
        for d in &config.directories {
            let password = read_password(d, &env)?;
            let tls = if d.url.ldaps || d.start_tls {
                let tls = outbound
                    .tls_config(d.ca_file.as_deref())
                    .map_err(|source| LdapSetupError::Tls { directory: d.name.clone(), source })?;
                Some(Arc::new(tls))
            } else {
                None
            };
            directories.push(Arc::new(DirectoryClient::new(d.clone(), tls, password)));
        }
        Ok(Self { directories })
    }

    /// Whether no directory is configured.
    pub fn is_empty(&self) -> bool {
        self.directories.is_empty()
    }

    /// The directories' names, in configuration order.
    pub fn names(&self) -> Vec<&str> {
        self.directories.iter().map(|d| d.config.name.as_str()).collect()
    }

    /// The configuration of the directory called `name`.
    pub fn config(&self, name: &str) -> Option<&DirectoryConfig> {
        self.get(name).map(|d| &d.config)
    }

    /// The directory a portal with these hosts signs in against by the `portals` lists: the first
    /// that names one of them, or that has no list.
    pub fn directory_for_hosts(&self, hosts: &[String]) -> Option<String> {
        self.directories
            .iter()
            .find(|d| d.config.serves_hosts(hosts))
            .map(|d| d.config.name.clone())
    }

    /// The directory `portal` signs in against, if any: the one its `ldap` setting names
    /// (`portal set --set ldap=NAME`), else the first whose `portals` list names one of its hosts
    /// (or that has no list; see [`LdapDirectories::directory_for_hosts`]).
    ///
    /// A setting naming no configured directory still names it, so that its logins fail as
    /// unavailable (503, logged) rather than fall back to local passwords unnoticed.
    pub fn directory_for_portal(&self, portal: &Portal) -> Option<String> {
        if let Some(name) = portal.settings.ldap.as_deref().filter(|n| !n.is_empty()) {
            return Some(name.to_owned());
        }
        self.directory_for_hosts(&portal.hosts)
    }

    fn get(&self, name: &str) -> Option<&Arc<DirectoryClient>> {
        self.directories.iter().find(|d| d.config.name == name)
    }

    /// A login: search, the user's bind, group and disabled checks.
    pub async fn authenticate(
        &self,
        directory: &str,
        login: &str,
        password: &SecretString,
    ) -> Result<DirectoryEntry, DirectoryError> {
        self.authenticate_traced(directory, login, password, &mut Trace::off()).await
    }

    /// [`LdapDirectories::authenticate`], recording each step in `trace` (`ldap test`).
    pub async fn authenticate_traced(
        &self,
        directory: &str,
        login: &str,
        password: &SecretString,
        trace: &mut Trace,
    ) -> Result<DirectoryEntry, DirectoryError> {
        let Some(d) = self.get(directory) else {
            return Err(DirectoryError::Unavailable(format!(
                "no directory called {directory:?} is configured"
            )));
        };
        let outcome = d.authenticate(login, password, trace).await.map_err(|f| f.into_error());
        if let Err(DirectoryError::Unavailable(why)) = &outcome {
            tracing::warn!(directory, reason = %why, "the directory could not answer a login");
        }
        outcome
    }

    /// Every entry the user filter admits (only group members when `group_dn` is set), disabled ones
    /// included with `disabled = true`, for `ldap sync`.
    pub async fn entries(&self, directory: &str) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        self.entries_traced(directory, &mut Trace::off()).await
    }

    /// [`LdapDirectories::entries`], recording each step in `trace`.
    pub async fn entries_traced(
        &self,
        directory: &str,
        trace: &mut Trace,
    ) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        let Some(d) = self.get(directory) else {
            return Err(DirectoryError::Unavailable(format!(
                "no directory called {directory:?} is configured"
            )));
        };
        d.entries(trace).await.map_err(|f| f.into_error())
    }
}

/// The core's port: the directories as the sign-in and `ldap sync` see them.
#[async_trait]
impl Directory for LdapDirectories {
    fn directory_for(&self, portal: &Portal) -> Option<String> {
        self.directory_for_portal(portal)
    }

    async fn authenticate(
        &self,
        directory: &str,
        login: &str,
        password: &SecretString,
    ) -> Result<DirectoryEntry, DirectoryError> {
        LdapDirectories::authenticate(self, directory, login, password).await
    }

    async fn entries(&self, directory: &str) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        LdapDirectories::entries(self, directory).await
    }
}

/// The service account's password, from its file or variable.
fn read_password(
    d: &DirectoryConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SecretString, LdapSetupError> {
    let (text, source_name) = match &d.bind_password {
        BindPassword::File(path) => {
            use crate::secret_file::{SecretFileError, Trim, read};
            let source_name = format!("bind_password_file {}", path.display());
            return read(path, Trim::LineEnd, &d.name).map_err(|e| match e {
                SecretFileError::Read(source) => LdapSetupError::PasswordFile {
                    directory: d.name.clone(),
                    path: path.clone(),
                    source,
                },
                SecretFileError::Empty => {
                    LdapSetupError::EmptyPassword { directory: d.name.clone(), source_name }
                }
            });
        }
        BindPassword::Env(variable) => {
            let Some(value) = env(variable) else {
                return Err(LdapSetupError::MissingVariable {
                    directory: d.name.clone(),
                    variable: variable.clone(),
                });
            };
            (SecretString::from(value), format!("bind_password_env {variable}"))
        }
    };
    // A trailing newline is how editors end files; a password never ends in one on purpose.
    let password = SecretString::from(text.expose().trim_end_matches(['\n', '\r']));
    if password.is_empty() {
        return Err(LdapSetupError::EmptyPassword { directory: d.name.clone(), source_name });
    }
    Ok(password)
}

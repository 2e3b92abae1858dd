//! Stand-ins for auth-core's `DirectoryEntry` and `DirectoryError` (shared-notes/core-api.md) until
//! the core's `Directory` port lands on main; then this file goes and `mod.rs` re-exports the core's.

/// What a directory says about a user who signed in (or, for `ldap sync`, about every user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The directory's configured name.
    pub directory: String,
    /// The entry's DN.
    pub dn: String,
    /// The e-mail as the directory has it.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The mobile number, raw.
    pub mobile: Option<String>,
    /// Whether the directory marks the account disabled.
    pub disabled: bool,
}

/// Why a directory gave no entry.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No entry, or more than one, answers to the login.
    #[error("login unknown to the directory")]
    UnknownLogin,
    /// The bind as the entry failed.
    #[error("directory refused the password")]
    WrongPassword,
    /// The entry is not a member of `group_dn`.
    #[error("not a member of the required group")]
    NotInGroup,
    /// The directory marks the entry disabled.
    #[error("disabled in the directory")]
    Disabled,
    /// The directory could not answer.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

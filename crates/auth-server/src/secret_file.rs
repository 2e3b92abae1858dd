//! Reading a secret (a password, an API key, a client secret) from its file at start-up: the one
//! way every configuration section does it, so each wipes the file's text, refuses an empty
//! secret and warns about a file others can read in the same way.

use std::path::Path;

use auth_core::SecretString;

/// What to take off the file's text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trim {
    /// The line break editors end files with; anything else is part of the secret (a password
    /// may end in a space).
    LineEnd,
    /// Whitespace at both ends (tokens and keys never hold any).
    Whitespace,
}

/// Why a secret file gave no secret; the caller adds which setting named it.
#[derive(Debug)]
pub(crate) enum SecretFileError {
    /// The file could not be read.
    Read(std::io::Error),
    /// The file holds nothing but what [`Trim`] takes off.
    Empty,
}

/// Reads the secret in `path`. `owner` names who uses it, for the warning about a file that is
/// readable by group or others.
pub(crate) fn read(path: &Path, trim: Trim, owner: &str) -> Result<SecretString, SecretFileError> {
    // Wrapped at once, so the file's text is wiped when it is dropped.
    let text = SecretString::from(std::fs::read_to_string(path).map_err(SecretFileError::Read)?);
    let secret = SecretString::from(match trim {
        Trim::LineEnd => text.expose().trim_end_matches(['\n', '\r']),
        Trim::Whitespace => text.expose().trim(),
    });
    if secret.is_empty() {
        return Err(SecretFileError::Empty);
    }
    warn_if_readable_by_others(owner, path);
    Ok(secret)
}

fn warn_if_readable_by_others(owner: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            owner,
            path = %path.display(),
            "a secret file is readable by group or others; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_as_asked_and_empty_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, " pass word \n").unwrap();
        assert_eq!(read(&file, Trim::LineEnd, "t").unwrap().expose(), " pass word ");
        assert_eq!(read(&file, Trim::Whitespace, "t").unwrap().expose(), "pass word");
        std::fs::write(&file, "\r\n").unwrap();
        assert!(matches!(read(&file, Trim::LineEnd, "t"), Err(SecretFileError::Empty)));
        let missing = dir.path().join("missing");
        assert!(matches!(read(&missing, Trim::LineEnd, "t"), Err(SecretFileError::Read(_))));
    }
}

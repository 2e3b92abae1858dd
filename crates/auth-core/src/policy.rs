//! The password policy (spec §14): a minimum length per portal, and no password from the list of the
//! 10 000 most common ones, compared case-insensitively, on every path that sets a password.
//!
//! The list is compiled into the binary (`data/common-passwords.txt`, sorted, so a lookup is a binary
//! search and needs no allocation). It is the start of Django's list of breached passwords (BSD-3-Clause),
//! lower-cased: `Password1` is as guessable as `password1`.

use std::sync::OnceLock;

/// The compiled-in list, one password per line after the `#` comment lines, sorted byte-wise.
const COMMON: &str = include_str!("../data/common-passwords.txt");

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Shorter than the portal's minimum (in characters).
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum.
        min: u32,
    },
    /// One of the most common passwords.
    #[error("the password is one of the most common passwords")]
    TooCommon,
}

fn common() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

/// Whether `password` is on the list of common passwords (case-insensitively).
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    common().binary_search(&lower.as_str()).is_ok()
}

/// Checks a new password against the policy: at least `min_length` characters, and — unless
/// `allow_common` (an operator's `--force`) — not a common password.
pub fn check(password: &str, min_length: u32, allow_common: bool) -> Result<(), PolicyViolation> {
    if (password.chars().count() as u64) < u64::from(min_length) {
        return Err(PolicyViolation::TooShort { min: min_length });
    }
    if !allow_common && is_common(password) {
        return Err(PolicyViolation::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_list_is_sorted_complete_and_lower_case() {
        let list = common();
        assert_eq!(list.len(), 10_000);
        assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and without duplicates");
        assert!(list.iter().all(|p| p.to_lowercase() == *p));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for p in ["password", "Password1", "QWERTY123", "iloveyou", "12345678"] {
            assert_eq!(check(p, 8, false), Err(PolicyViolation::TooCommon), "{p}");
            assert_eq!(check(p, 8, true), Ok(()), "an operator may force {p}");
        }
        assert_eq!(check("correct horse battery", 8, false), Ok(()));
        assert_eq!(check("short", 8, false), Err(PolicyViolation::TooShort { min: 8 }));
        assert_eq!(check("short", 8, true), Err(PolicyViolation::TooShort { min: 8 }));
        // Length is counted in characters, not bytes.
        assert_eq!(check("пароль-ok", 9, false), Ok(()));
    }

    proptest! {
        #[test]
        fn every_listed_password_is_found(i in 0usize..10_000) {
            let p = common()[i];
            prop_assert!(is_common(p));
            prop_assert!(is_common(&p.to_uppercase()) || p.to_uppercase().to_lowercase() != p);
        }
    }
}

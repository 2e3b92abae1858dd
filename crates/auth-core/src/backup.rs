//! Backup codes: 8 characters from an unambiguous alphabet, single use, stored as keyed hashes (spec §5.7).
//!
//! The alphabet leaves out 0/O and 1/I so that a code read off paper is typed right; input is compared
//! upper-cased, with spaces and hyphens removed, so `abcd-efgh` equals `ABCDEFGH`.

use crate::crypto::{KeyContext, ServerKey};
use crate::model::UserId;
use crate::primitives::{Rng, RngExt};

/// The 32-character alphabet (5 bits per character, 40 bits per code).
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters per code.
pub const CODE_LEN: usize = 8;

/// One fresh code.
pub fn generate(rng: &dyn Rng) -> String {
    (0..CODE_LEN)
        .map(|_| char::from(ALPHABET.get(rng.below(32) as usize).copied().unwrap_or(b'2')))
        .collect()
}

/// The canonical form of what a user typed, or `None` when it cannot be a backup code.
pub fn normalize(input: &str) -> Option<String> {
    let s: String =
        input.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
    (s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// The canonical form of a backup code imported from an upstream portal (spec §11), or of what a
/// user typed for one: upstream codes are 6 characters of `a–z A–Z 0–9 - _`, so they are compared
/// the same way as ours (upper-cased, spaces and hyphens removed) over their wider alphabet.
pub fn normalize_imported(input: &str) -> Option<String> {
    let s: String =
        input.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
    ((4..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(s)
}

/// The form a typed code is looked up under: ours first, else an imported one's.
pub fn lookup_form(input: &str) -> Option<String> {
    normalize(input).or_else(|| normalize_imported(input))
}

/// The stored form of a (normalised) code.
pub fn code_hash(key: &ServerKey, user: UserId, normalized: &str) -> [u8; 32] {
    key.keyed_hash(KeyContext::BackupCode, &[user.0.as_bytes(), normalized.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SeqRng;

    #[test]
    fn generated_codes_normalise_to_themselves() {
        let rng = SeqRng::new(3);
        for _ in 0..100 {
            let c = generate(&rng);
            assert_eq!(normalize(&c).as_deref(), Some(c.as_str()));
            let typed = format!("{}-{} ", c[..4].to_lowercase(), &c[4..]);
            assert_eq!(normalize(&typed).as_deref(), Some(c.as_str()));
        }
    }

    #[test]
    fn imported_codes_compare_like_ours() {
        assert_eq!(normalize_imported("aB3-_z").as_deref(), Some("AB3_Z"));
        assert_eq!(normalize_imported(" ab3_Z ").as_deref(), Some("AB3_Z"));
        assert_eq!(normalize_imported("Qx7_k0").as_deref(), Some("QX7_K0"));
        assert_eq!(normalize_imported("a;b"), None);
        assert_eq!(normalize_imported("abc"), None);
        // Our own codes keep their canonical form whichever way they are looked up.
        let rng = SeqRng::new(5);
        let c = generate(&rng);
        assert_eq!(lookup_form(&c.to_lowercase()), normalize(&c));
        assert_eq!(normalize_imported(&c), normalize(&c));
    }

    #[test]
    fn ambiguous_or_wrong_input_is_refused() {
        for bad in ["", "ABCDEFG", "ABCDEFGHJ", "ABCDEF0H", "ABCDEFIH", "123456"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}

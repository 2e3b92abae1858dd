//! SMS codes: six digits from the CSPRNG, their keyed hash, and the message text (spec §5.3).

use crate::crypto::{KeyContext, ServerKey};
use crate::model::{Language, UserId};
use crate::primitives::{Rng, RngExt};

/// The lowest code.
pub const CODE_MIN: u32 = 100_000;
/// The highest code.
pub const CODE_MAX: u32 = 999_999;

/// A fresh code, uniform over 100000–999999.
pub fn generate_code(rng: &dyn Rng) -> u32 {
    CODE_MIN + rng.below(CODE_MAX - CODE_MIN + 1)
}

/// Parses what a client typed as an SMS code: exactly six ASCII digits, surrounding spaces ignored.
pub fn parse_code(input: &str) -> Option<u32> {
    let s = input.trim();
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The stored form of a code: bound to the user and the phone, keyed with the server key.
pub fn code_hash(key: &ServerKey, user: UserId, phone: &str, code: u32) -> [u8; 32] {
    key.keyed_hash(
        KeyContext::SmsCode,
        &[user.0.as_bytes(), phone.as_bytes(), code.to_string().as_bytes()],
    )
}

/// The SMS text in the portal's language.
pub fn message_text(language: Language, code: u32) -> String {
    match language {
        Language::En => format!("Code: {code}"),
        Language::Ru => format!("Код: {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SeqRng;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn codes_are_always_six_digits(seed in any::<u64>()) {
            let rng = SeqRng::new(seed);
            for _ in 0..50 {
                let c = generate_code(&rng);
                prop_assert!((CODE_MIN..=CODE_MAX).contains(&c));
                prop_assert_eq!(parse_code(&c.to_string()), Some(c));
            }
        }
    }

    #[test]
    fn parse_is_strict() {
        assert_eq!(parse_code(" 123456 "), Some(123_456));
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(message_text(Language::En, 123_456), "Code: 123456");
        assert_eq!(message_text(Language::Ru, 654_321), "Код: 654321");
    }
}

//! Bearer tokens: 32 random bytes, written base64url without padding, stored only as SHA-256 (spec §5.8).
//!
//! A token is opaque: nothing in it can be forged or read, and revoking it is deleting its hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::sha256;
use crate::primitives::{Rng, RngExt};
use crate::secret::SecretString;

/// Length of the token's text (43 characters of base64url for 32 bytes).
pub const TOKEN_TEXT_LEN: usize = 43;

/// A new token's text.
pub fn generate(rng: &dyn Rng) -> SecretString {
    encode(&rng.bytes::<32>())
}

/// The text of 32 token bytes.
pub fn encode(bytes: &[u8; 32]) -> SecretString {
    SecretString::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// The 32 bytes behind a token's text, if it is well formed.
pub fn decode(text: &str) -> Option<[u8; 32]> {
    if text.len() != TOKEN_TEXT_LEN {
        return None;
    }
    let v = URL_SAFE_NO_PAD.decode(text).ok()?;
    v.try_into().ok()
}

/// The stored form: SHA-256 of the token's text.
pub fn hash(text: &str) -> [u8; 32] {
    sha256(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_round_trips(bytes in any::<[u8; 32]>()) {
            let text = encode(&bytes);
            prop_assert_eq!(text.expose().len(), TOKEN_TEXT_LEN);
            prop_assert!(text.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(decode(text.expose()), Some(bytes));
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,60}") {
            let _ = decode(&s);
        }

        /// Issue 12: strings of exactly the token's length from the base64url alphabet and its
        /// near misses (padding, the standard alphabet's `+` and `/`, other characters): decoding
        /// accepts exactly the canonical encodings of 32 bytes.
        #[test]
        fn decode_accepts_exactly_the_encodings(s in "[A-Za-z0-9_=+/.-]{43}") {
            match decode(&s) {
                Some(bytes) => {
                    let again = encode(&bytes);
                    prop_assert_eq!(again.expose(), s.as_str());
                }
                None => prop_assert!(
                    s.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                        || !encode_round_trips(&s)
                ),
            }
        }
    }

    /// Whether a 43-character base64url string is the encoding of the bytes it decodes to (the last
    /// character carries two unused bits that must be zero).
    fn encode_round_trips(s: &str) -> bool {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .is_some_and(|b| encode(&b).expose() == s)
    }

    #[test]
    fn rejects_padding_and_wrong_lengths() {
        let t = encode(&[0xAB; 32]);
        assert!(decode(&format!("{}=", t.expose())).is_none());
        assert!(decode(&t.expose()[..42]).is_none());
        assert!(decode("").is_none());
    }
}

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

/// The largest public id: ids stay below 2^53, so a JavaScript client reads them as exact numbers
/// (upstream's session ids are JSON numbers, and so are ours).
pub const MAX_PUBLIC_ID: i64 = (1 << 53) - 1;

/// A new token's public id (spec §13 sessions): uniformly random in `1..=MAX_PUBLIC_ID`, drawn apart
/// from the token's bytes, so it names a session without revealing or proving anything about it.
pub fn public_id(rng: &dyn Rng) -> i64 {
    loop {
        let v = i64::from_le_bytes(rng.bytes::<8>()) & MAX_PUBLIC_ID;
        if v != 0 {
            return v;
        }
    }
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

        /// Issue 17: whatever the generator gives, a public id is positive and exact in a double
        /// (a JavaScript number): the first draw that is not zero below 2^53, never a zero.
        #[test]
        fn public_ids_stay_in_range(words in proptest::collection::vec(any::<u64>(), 0..4)) {
            // Hands out `words` in order, then 1 for ever.
            struct Words(std::sync::Mutex<std::collections::VecDeque<u64>>);
            impl crate::primitives::Rng for Words {
                fn fill(&self, buf: &mut [u8]) {
                    let w = self.0.lock().unwrap().pop_front().unwrap_or(1);
                    buf.copy_from_slice(&w.to_le_bytes()[..buf.len()]);
                }
            }
            let id = public_id(&Words(std::sync::Mutex::new(words.iter().copied().collect())));
            prop_assert!((1..=MAX_PUBLIC_ID).contains(&id));
            prop_assert_eq!(id as f64 as i64, id);
            let want = words.iter().map(|w| (*w as i64) & MAX_PUBLIC_ID).find(|v| *v != 0);
            prop_assert_eq!(id, want.unwrap_or(1));
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

    /// A draw that masks to zero (zero itself, or only bits at and above 2^53) is drawn again.
    #[test]
    fn zero_public_ids_are_drawn_again() {
        struct Words(std::sync::Mutex<Vec<u64>>);
        impl crate::primitives::Rng for Words {
            fn fill(&self, buf: &mut [u8]) {
                let w = self.0.lock().unwrap().remove(0);
                buf.copy_from_slice(&w.to_le_bytes()[..buf.len()]);
            }
        }
        let rng = Words(std::sync::Mutex::new(vec![0, 1 << 53, u64::MAX << 53, 5]));
        assert_eq!(public_id(&rng), 5);
        let rng = Words(std::sync::Mutex::new(vec![u64::MAX]));
        assert_eq!(public_id(&rng), MAX_PUBLIC_ID);
    }

    #[test]
    fn rejects_padding_and_wrong_lengths() {
        let t = encode(&[0xAB; 32]);
        assert!(decode(&format!("{}=", t.expose())).is_none());
        assert!(decode(&t.expose()[..42]).is_none());
        assert!(decode("").is_none());
    }
}

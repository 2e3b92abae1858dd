//! TOTP (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, with totp-rs computing the codes (spec §5.6).
//!
//! The core adds what RFC 6238 leaves to the verifier: the accepted window (±1 step by default, at most
//! ±10) and the replay rule — a step, once used, never validates again for that user. This module only
//! finds *which* step a code matches; the store's compare-and-set on the last used step makes the
//! "once" atomic.

use data_encoding::BASE32_NOPAD;
use jiff::Timestamp;
use totp_rs::{Algorithm, TOTP};

use crate::primitives::{Rng, RngExt};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes in a secret.
pub const SECRET_LEN: usize = 20;

/// A fresh 20-byte secret.
pub fn generate_secret(rng: &dyn Rng) -> [u8; SECRET_LEN] {
    rng.bytes()
}

/// The secret as the user types it into an app: base32 without padding.
pub fn secret_base32(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The time step containing `now` (0 before the epoch).
pub fn step_at(now: Timestamp) -> u64 {
    u64::try_from(now.as_second()).unwrap_or(0) / STEP_SECONDS
}

fn totp(secret: &[u8]) -> TOTP {
    // `new_unchecked`: the 128-bit minimum of `new` would refuse RFC test secrets of other sizes; our own
    // secrets are always 160 bits.
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECONDS, secret.to_vec())
}

/// The code of `secret` at time step `step`.
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    totp(secret).generate(step.saturating_mul(STEP_SECONDS))
}

/// The newest step within `now ± window` steps whose code equals `code`, if any.
///
/// All candidate steps are computed and compared in constant time, so the time taken does not tell
/// which step (if any) matched.
pub fn matching_step(secret: &[u8], code: &str, now: Timestamp, window: u8) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = step_at(now);
    let w = u64::from(window);
    let mut found = None;
    for step in t.saturating_sub(w)..=t.saturating_add(w) {
        if crate::crypto::ct_eq(code_at_step(secret, step).as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// The most failed second-factor guesses a day may allow with this window so that the chance of
/// guessing in stays at most 1 in 10 000 per day (spec §5.6).
///
/// One guess hits with probability (2·window + 1)/10⁶ for the TOTP codes the window accepts, plus a
/// vanishing term for the backup codes (five in 32⁸). So at most ⌊100/(2w+1)⌋ guesses may be allowed,
/// one fewer when that quotient is exact, because then the backup-code term would tip the product over
/// the bound. Window 1 allows 33 (the default daily limit of 20 is stricter), window 10 allows 4.
pub fn daily_guess_limit(window: u8) -> u32 {
    let codes = 2 * u32::from(window) + 1;
    let most = 100 / codes;
    if 100 % codes == 0 { most.saturating_sub(1) } else { most }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 Appendix B, SHA-1 rows (the 8-digit codes; our 6-digit codes are their last six digits).
    #[test]
    fn rfc6238_appendix_b_sha1() {
        let secret = b"12345678901234567890";
        let vectors: [(u64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, want8) in vectors {
            let eight =
                TOTP::new_unchecked(Algorithm::SHA1, 8, 0, 30, secret.to_vec()).generate(time);
            assert_eq!(eight, want8, "8 digits at {time}");
            assert_eq!(code_at_step(secret, time / 30), &want8[2..], "6 digits at {time}");
        }
    }

    fn at(step: u64) -> Timestamp {
        Timestamp::from_second((step * STEP_SECONDS + 7) as i64).unwrap()
    }

    proptest! {
        #[test]
        fn code_verifies_within_default_window(secret in any::<[u8; 20]>(), step in 1u64..60_000_000) {
            let code = code_at_step(&secret, step);
            // The code of step t is found when now is at t-1, t or t+1 …
            for now_step in [step - 1, step, step + 1] {
                let found = matching_step(&secret, &code, at(now_step), 1);
                prop_assert!(found.is_some_and(|f| f >= step && f <= now_step + 1));
                prop_assert_eq!(code_at_step(&secret, found.unwrap_or(0)), code.clone());
            }
            // … and not two steps away (unless, by chance, a neighbour has the same code).
            for far in [step.saturating_sub(2), step + 2] {
                if let Some(found) = matching_step(&secret, &code, at(far), 1) {
                    prop_assert_eq!(code_at_step(&secret, found), code.clone());
                    prop_assert_ne!(found, step);
                }
            }
        }
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = [1u8; 20];
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(matching_step(&secret, bad, at(1000), 10), None);
        }
    }

    #[test]
    fn base32_has_no_padding() {
        assert_eq!(secret_base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }
}

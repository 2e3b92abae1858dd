//! Fuzzes phone normalisation (spec §5.2): `Phone::parse` accepts exactly the inputs with 7–15 ASCII
//! digits, keeps exactly those digits in order, and the mask never reveals more than the first four and
//! last four of them.
#![no_main]

use auth_core::phone::{Phone, PhoneError, noise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    match Phone::parse(&input) {
        Ok(phone) => {
            assert!((Phone::MIN_DIGITS..=Phone::MAX_DIGITS).contains(&digits.len()));
            assert_eq!(phone.digits(), digits);
            let masked = phone.noise();
            assert_eq!(masked, noise(phone.digits()));
            if digits.len() < 8 {
                assert_eq!(masked, digits);
            } else {
                // `+`, four digits, one `*` per digit beyond eight, four digits.
                assert_eq!(masked.len(), digits.len() + 1);
                assert!(masked.starts_with('+'));
                assert_eq!(masked[1..5], digits[..4]);
                assert_eq!(masked[masked.len() - 4..], digits[digits.len() - 4..]);
                assert!(masked[5..masked.len() - 4].bytes().all(|b| b == b'*'));
            }
            // Parsing the normalised form again is the identity.
            assert_eq!(Phone::parse(phone.digits()), Ok(phone.clone()));
        }
        Err(PhoneError::Empty) => assert!(digits.is_empty()),
        Err(PhoneError::Length) => {
            assert!(!(Phone::MIN_DIGITS..=Phone::MAX_DIGITS).contains(&digits.len()));
        }
    }
    // The mask is total over any text, digits or not.
    let _ = noise(&input);
});

//! Fuzzes the API date parser; any date it accepts must format to text that parses back to the same value.
#![no_main]

use auth_wire::ApiDate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(date) = ApiDate::parse(text) {
        assert_eq!(ApiDate::parse(&date.to_string()), Ok(date));
    }
});

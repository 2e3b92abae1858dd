//! Fuzzes the JSON request-body decoder: any bytes give parameters or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The limit is lifted so the fuzzer reaches the parser with inputs of every size.
    if let Ok(pairs) = auth_wire::decode_body(Some("application/json"), data, usize::MAX) {
        // Every pair came from a top-level member, so there cannot be more pairs than input bytes.
        assert!(pairs.len() <= data.len());
    }
});

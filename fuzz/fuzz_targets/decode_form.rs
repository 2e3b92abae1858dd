//! Fuzzes the form-urlencoded body and query-string decoders: they are total, so they must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = auth_wire::decode_body(Some("application/x-www-form-urlencoded"), data, usize::MAX);
    // A body without a content type is read as a form too.
    let _ = auth_wire::decode_body(None, data, usize::MAX);
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = auth_wire::Params::builder().query(query).build();
    }
});

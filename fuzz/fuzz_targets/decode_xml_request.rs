//! Fuzzes the XML request-body decoder (both accepted media types): pairs or a typed error, never a panic
//! and never a stack overflow, whatever the nesting.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for content_type in ["text/xml", "application/xml; charset=utf-8"] {
        let _ = auth_wire::decode_body(Some(content_type), data, usize::MAX);
    }
});

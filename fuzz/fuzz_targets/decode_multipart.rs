//! Fuzzes the multipart/form-data reader; the first input line supplies the content-type parameters, so the
//! boundary itself is fuzzed along with the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (params, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"boundary=b"[..], data),
    };
    let content_type = format!("multipart/form-data; {}", String::from_utf8_lossy(params));
    let _ = auth_wire::decode_body(Some(&content_type), body, usize::MAX);
});

//! Fuzzes the client-side XML envelope decoder for every payload kind; whatever it accepts must encode and
//! decode again.
#![no_main]

use auth_wire::{Envelope, Format, PayloadKind};
use libfuzzer_sys::fuzz_target;

const KINDS: [PayloadKind; 7] = [
    PayloadKind::Token,
    PayloadKind::Profile,
    PayloadKind::Capabilities,
    PayloadKind::BackupCodes,
    PayloadKind::Bool,
    PayloadKind::ActiveConnections,
    PayloadKind::String,
];

fuzz_target!(|data: &[u8]| {
    for kind in KINDS {
        if let Ok(envelope) = Envelope::decode(Format::Xml, data, kind) {
            // Not compared for equality: XML input may smuggle a raw NUL, which the writer must replace.
            assert!(Envelope::decode(Format::Xml, &envelope.to_xml(), kind).is_ok());
            assert!(Envelope::decode(Format::Json, &envelope.to_json(), kind).is_ok());
        }
    }
});

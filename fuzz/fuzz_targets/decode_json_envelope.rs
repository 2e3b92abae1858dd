//! Fuzzes the client-side JSON envelope decoder for every payload kind; whatever it accepts must survive an
//! encode/decode round trip unchanged in both formats' JSON form.
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
        if let Ok(envelope) = Envelope::decode(Format::Json, data, kind) {
            assert_eq!(
                Envelope::decode(Format::Json, &envelope.to_json(), kind),
                Ok(envelope.clone())
            );
            assert!(Envelope::decode(Format::Xml, &envelope.to_xml(), kind).is_ok());
        }
    }
});

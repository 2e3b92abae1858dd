//! `GET /api/2.0/settings/tfaappcodes`: the caller's backup codes (API.md §5.7).

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "tfaappcodes",
    method: Method::Get,
    path: "/api/2.0/settings/tfaappcodes",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::BackupCodes),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// The codes, masked after their one reveal.
pub type Response = Vec<crate::BackupCode>;

//! `PUT /api/2.0/settings/tfaappnewcodes`: replaces the caller's backup codes and shows the new ones once.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "tfaappnewcodes",
    method: Method::Put,
    path: "/api/2.0/settings/tfaappnewcodes",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::BackupCodes),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// The new codes, in plain text this once.
pub type Response = Vec<crate::BackupCode>;

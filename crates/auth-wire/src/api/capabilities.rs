//! `GET /api/2.0/capabilities`: pre-login discovery of the portal's sign-in options.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "capabilities",
    method: Method::Get,
    path: "/api/2.0/capabilities",
    suffix: true,
    credentials: false,
    token: false,
    answer: Answer::Envelope(PayloadKind::Capabilities),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// What the portal offers.
pub type Response = crate::Capabilities;

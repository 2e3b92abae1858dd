//! `GET /api/2.0/people/@self`: the caller's profile (API.md §9).

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "people_self",
    method: Method::Get,
    path: "/api/2.0/people/@self",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Profile),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// The profile.
pub type Response = crate::Profile;

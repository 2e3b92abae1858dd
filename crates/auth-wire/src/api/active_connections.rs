//! `GET /api/2.0/security/activeconnections`: the caller's live sessions, their own first (spec §13).

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "activeconnections",
    method: Method::Get,
    path: "/api/2.0/security/activeconnections",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::ActiveConnections),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// The sessions and which one the request came with.
pub type Response = crate::ActiveConnections;

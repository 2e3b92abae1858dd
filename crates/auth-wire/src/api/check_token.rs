//! `GET /api/2.0/authentication`: `true` when the request carries a valid token, else `false` (never 401).

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "authentication_check",
    method: Method::Get,
    path: "/api/2.0/authentication",
    suffix: true,
    credentials: false,
    token: false,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// `true` or `false`.
pub type Response = bool;

//! `POST /api/2.0/authentication/logout`: revokes the presented token and clears the cookie.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;
/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "logout",
    method: Method::Post,
    path: "/api/2.0/authentication/logout",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// Always `true`.
pub type Response = bool;

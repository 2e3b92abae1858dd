//! `PUT /api/2.0/security/activeconnections/logoutall`: ends every session of the caller, this one too.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "activeconnections_logoutall",
    method: Method::Put,
    path: "/api/2.0/security/activeconnections/logoutall",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// Always `true`; the cookie is cleared too.
pub type Response = bool;

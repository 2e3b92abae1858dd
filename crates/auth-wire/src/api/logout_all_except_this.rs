//! `PUT /api/2.0/security/activeconnections/logoutallexceptthis`: ends every session of the caller but this one.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "activeconnections_logoutallexceptthis",
    method: Method::Put,
    path: "/api/2.0/security/activeconnections/logoutallexceptthis",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::String),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// The caller's display name, as upstream answers.
pub type Response = String;

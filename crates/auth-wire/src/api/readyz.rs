//! `GET /readyz`: the store answers (plain text).

use super::{Answer, Metadata, Method};

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "readyz",
    method: Method::Get,
    path: "/readyz",
    suffix: false,
    credentials: false,
    token: false,
    answer: Answer::Text,
};

/// It takes no parameters.
pub type Request = super::NoRequest;

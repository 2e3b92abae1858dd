//! `GET /healthz`: the process is alive (plain text `ok`).

use super::{Answer, Metadata, Method};

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "healthz",
    method: Method::Get,
    path: "/healthz",
    suffix: false,
    credentials: false,
    token: false,
    answer: Answer::Text,
};

/// It takes no parameters.
pub type Request = super::NoRequest;

//! `GET /metrics`: counters in the Prometheus text format.

use super::{Answer, Metadata, Method};

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "metrics",
    method: Method::Get,
    path: "/metrics",
    suffix: false,
    credentials: false,
    token: false,
    answer: Answer::Text,
};

/// It takes no parameters.
pub type Request = super::NoRequest;

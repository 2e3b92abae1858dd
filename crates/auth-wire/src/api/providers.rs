//! `GET /api/2.0/people/thirdparty/providers`: the portal's social providers, and which the caller linked.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "thirdparty_providers",
    method: Method::Get,
    path: "/api/2.0/people/thirdparty/providers",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::ProviderLinks),
};

/// It takes no parameters.
pub type Request = super::NoRequest;

/// `[{"provider":"google","linked":true},…]`.
pub type Response = Vec<crate::ProviderLink>;

//! `POST /api/2.0/authentication/sendsms`: sends a fresh SMS code to the stored number.

use super::{Answer, Metadata, Method};
use crate::envelope::PayloadKind;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "sendsms",
    method: Method::Post,
    path: "/api/2.0/authentication/sendsms",
    suffix: true,
    credentials: true,
    token: false,
    answer: Answer::Envelope(PayloadKind::Token),
};

/// The credentials, as step 1 takes them.
pub use super::authenticate::Request;

/// The SMS challenge.
pub type Response = crate::TokenResponse;

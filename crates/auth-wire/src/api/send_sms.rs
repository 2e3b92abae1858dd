//! `POST /api/2.0/authentication/sendsms`: sends a fresh SMS code to the stored number.

use super::{Answer, Login, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

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

/// The credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who, and the proof.
    pub login: Login,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        Ok(Request { login: Login::try_from(params)? })
    }
}

/// The SMS challenge.
pub type Response = crate::TokenResponse;

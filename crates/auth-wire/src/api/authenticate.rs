//! `POST /api/2.0/authentication`: step 1, check the credentials; a token, or which second factor is needed.

use super::{Answer, Login, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "authentication",
    method: Method::Post,
    path: "/api/2.0/authentication",
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

/// A token, or a second-factor challenge.
pub type Response = crate::TokenResponse;

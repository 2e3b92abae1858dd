//! `POST /api/2.0/authentication/setphone`: stores the user's mobile number (not yet activated) and sends
//! the first code.

use super::{Answer, Login, Metadata, Method, RequestError, non_empty};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "setphone",
    method: Method::Post,
    path: "/api/2.0/authentication/setphone",
    suffix: true,
    credentials: true,
    token: false,
    answer: Answer::Envelope(PayloadKind::Token),
};

/// The credentials and the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who, and the proof.
    pub login: Login,
    /// `mobilePhone` as sent (normalising it is a rule of the service, checked after the credentials).
    pub mobile_phone: Option<String>,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        Ok(Request {
            login: Login::try_from(params)?,
            mobile_phone: non_empty(params, "mobilePhone").map(str::to_owned),
        })
    }
}

/// The SMS challenge.
pub type Response = crate::TokenResponse;

//! `POST /api/2.0/authentication/{code}`: step 2, an SMS code, a TOTP code or a backup code for a token.

use super::{Answer, Login, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "code",
    method: Method::Post,
    path: "/api/2.0/authentication/{code}",
    suffix: true,
    credentials: true,
    token: false,
    answer: Answer::Envelope(PayloadKind::Token),
};

/// The credentials and the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who, and the proof.
    pub login: Login,
    /// The code: the path segment (which the server puts first in the bag), letter case kept.
    pub code: super::Secret,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let login = Login::try_from(params)?;
        let code = params.get("code").ok_or(RequestError::Empty("code"))?;
        Ok(Request { login, code: super::Secret::new(code) })
    }
}

/// The token, with the factor that earned it.
pub type Response = crate::TokenResponse;

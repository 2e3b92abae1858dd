//! `POST /api/2.0/people/thirdparty/linkaccount`: links the identity behind a social proof to the caller.

use super::{Answer, Metadata, Method, RequestError, Secret, non_empty};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "linkaccount",
    method: Method::Post,
    path: "/api/2.0/people/thirdparty/linkaccount",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// The provider and the proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `provider`: the provider's configured name.
    pub provider: String,
    /// `accessToken`.
    pub access_token: Option<Secret>,
    /// `codeOAuth`.
    pub code_oauth: Option<Secret>,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let provider = super::provider(params)?;
        Ok(Request {
            provider: provider.to_owned(),
            access_token: non_empty(params, "accessToken").map(Secret::new),
            code_oauth: non_empty(params, "codeOAuth").map(Secret::new),
        })
    }
}

/// Always `true`.
pub type Response = bool;

//! `DELETE /api/2.0/people/thirdparty/unlinkaccount?provider=NAME`: removes the caller's link there.

use super::{Answer, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "unlinkaccount",
    method: Method::Delete,
    path: "/api/2.0/people/thirdparty/unlinkaccount",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// Which provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `provider`.
    pub provider: String,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let provider = super::provider(params)?;
        Ok(Request { provider: provider.to_owned() })
    }
}

/// Always `true` (also when there was no link: the state asked for holds).
pub type Response = bool;

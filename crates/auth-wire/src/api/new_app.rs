//! `PUT /api/2.0/settings/tfaappnewapp`: resets the TOTP app of the caller, or (for an admin) of the user `id`.

use super::{Answer, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "tfaappnewapp",
    method: Method::Put,
    path: "/api/2.0/settings/tfaappnewapp",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// Whose app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `id`, trimmed: another user's id (admins only); `None` for the caller.
    pub id: Option<String>,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let id = params.get("id").map(str::trim).filter(|s| !s.is_empty());
        Ok(Request { id: id.map(str::to_owned) })
    }
}

/// Always `true`.
pub type Response = bool;

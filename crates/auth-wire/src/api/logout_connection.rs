//! `PUT /api/2.0/security/activeconnections/logout/{id}`: ends one of the caller's sessions by its id.

use super::{Answer, Metadata, Method, RequestError};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "activeconnections_logout",
    method: Method::Put,
    path: "/api/2.0/security/activeconnections/logout/{id}",
    suffix: true,
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// Which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The session's public id, from the path: a positive integer below 2^53.
    pub id: i64,
}

/// The largest id a session can have (ids stay exact in a JavaScript number).
const MAX_ID: i64 = (1 << 53) - 1;

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let text = params.get("id").map(str::trim).ok_or(RequestError::Empty("id"))?;
        if text.is_empty() {
            return Err(RequestError::Empty("id"));
        }
        // Digits only: no sign, no spaces inside, no exponent, so one id has one spelling.
        let id = Some(text)
            .filter(|t| t.len() <= 16 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|id| (1..=MAX_ID).contains(id))
            .ok_or(RequestError::Invalid { name: "id", problem: "is not a session id" })?;
        Ok(Request { id })
    }
}

/// `true` when that session ended; `false` when the caller has no session with this id (which is
/// also the answer for another user's session).
pub type Response = bool;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, want: Result<i64, RequestError>) {
        let params = Params::builder().path("id", id).build();
        assert_eq!(Request::try_from(&params).map(|r| r.id), want, "{id:?}");
    }

    #[test]
    fn ids() {
        let bad = Err(RequestError::Invalid { name: "id", problem: "is not a session id" });
        check("1", Ok(1));
        check("42", Ok(42));
        check(" 42 ", Ok(42));
        check("9007199254740991", Ok(MAX_ID));
        check("9007199254740992", bad.clone());
        check("0", bad.clone());
        check("-5", bad.clone());
        check("+5", bad.clone());
        check("1e3", bad.clone());
        check("4 2", bad.clone());
        check("abc", bad.clone());
        check("99999999999999999999", bad);
        check("", Err(RequestError::Empty("id")));
    }
}

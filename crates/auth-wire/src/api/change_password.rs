//! `PUT /api/2.0/people/@self/password`: the caller changes their own password (API.md §14), with
//! the current one and a fresh token.

use super::{Answer, Metadata, Method, RequestError, Secret, non_empty};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "people_self_password",
    method: Method::Put,
    path: "/api/2.0/people/@self/password",
    suffix: true,
    // Not a credential endpoint: `Authorization: Basic` must not stand in for `password` here (it
    // would set the new password from the old one). A full hashing pool still answers 503.
    credentials: false,
    token: true,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// The current and the new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `currentPassword`.
    pub current_password: Secret,
    /// `password`: the new one.
    pub password: Secret,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let current = non_empty(params, "currentPassword").ok_or(RequestError::Empty("currentPassword"))?;
        let password = non_empty(params, "password").ok_or(RequestError::Empty("password"))?;
        Ok(Request { current_password: Secret::new(current), password: Secret::new(password) })
    }
}

/// Always `true`.
pub type Response = bool;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_passwords_are_required_and_kept_as_sent() {
        let p = Params::builder().query("currentPassword=old%20one&password=%20new%20").build();
        let r = Request::try_from(&p).unwrap();
        assert_eq!((r.current_password.expose(), r.password.expose()), ("old one", " new "));
        let missing = Params::builder().query("password=x").build();
        assert_eq!(Request::try_from(&missing), Err(RequestError::Empty("currentPassword")));
        let empty = Params::builder().query("currentPassword=x&password=").build();
        assert_eq!(Request::try_from(&empty), Err(RequestError::Empty("password")));
    }
}

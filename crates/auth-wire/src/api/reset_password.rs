//! `PUT /api/2.0/people/password`: sets a new password with the key of a reset mail (API.md §14);
//! the sign-in page's `/login/reset` calls it. Every token of the user ends.

use super::{Answer, Metadata, Method, RequestError, Secret, non_empty};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "people_password_reset",
    method: Method::Put,
    path: "/api/2.0/people/password",
    suffix: true,
    // Not a credential endpoint: `Authorization: Basic` must not stand in for `password`.
    credentials: false,
    token: false,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// The mail's key and the new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `key`, from the link.
    pub key: Secret,
    /// `password`: the new one.
    pub password: Secret,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let key = non_empty(params, "key").ok_or(RequestError::Empty("key"))?;
        let password = non_empty(params, "password").ok_or(RequestError::Empty("password"))?;
        Ok(Request { key: Secret::new(key), password: Secret::new(password) })
    }
}

/// Always `true`.
pub type Response = bool;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_password_are_required_and_kept_as_sent() {
        let p = Params::builder().query("key=abc-_1&password=%20new%20").build();
        let r = Request::try_from(&p).unwrap();
        assert_eq!((r.key.expose(), r.password.expose()), ("abc-_1", " new "));
        let missing = Params::builder().query("password=x").build();
        assert_eq!(Request::try_from(&missing), Err(RequestError::Empty("key")));
    }
}

//! `POST /api/2.0/people/password`: asks for a password-reset mail (API.md §14, upstream's path).
//! The answer is the same whether or not the address belongs to anyone (no enumeration).

use super::{Answer, Metadata, Method, RequestError, non_empty};
use crate::envelope::PayloadKind;
use crate::params::Params;

/// The row of the table.
pub const METADATA: Metadata = Metadata {
    name: "people_password_request",
    method: Method::Post,
    path: "/api/2.0/people/password",
    suffix: true,
    credentials: false,
    token: false,
    answer: Answer::Envelope(PayloadKind::Bool),
};

/// The address to mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `email`, as sent.
    pub email: String,
}

impl TryFrom<&Params> for Request {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let email = non_empty(params, "email").ok_or(RequestError::Empty("email"))?;
        Ok(Request { email: email.to_owned() })
    }
}

/// Always `true`, whatever the address.
pub type Response = bool;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_required() {
        let p = Params::builder().query("email=ada%40example.com").build();
        assert_eq!(Request::try_from(&p).unwrap().email, "ada@example.com");
        let empty = Params::builder().query("email=").build();
        assert_eq!(Request::try_from(&empty), Err(RequestError::Empty("email")));
    }
}

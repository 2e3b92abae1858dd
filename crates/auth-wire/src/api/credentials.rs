//! The credentials of the four credential endpoints (API.md §2), decoded once into a typed login.
//!
//! A password login needs a `userName` and a `password`; `Authorization: Basic` stands in for both when
//! no `userName` came from the path, query or body. Any `provider` other than empty or `email` makes it
//! a social login instead, whose proof (`accessToken` or `codeOAuth`) the server checks.

use std::fmt;

use zeroize::Zeroizing;

use super::{RequestError, non_empty};
use crate::params::Params;

/// A secret parameter (a password, an access token, an OAuth code): wiped from memory when dropped,
/// redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The secret itself; callers must not log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Who a credential request says it is, and its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// `userName` (trimmed, not empty) and `password` (not empty, as sent).
    Password {
        /// An e-mail or a user id.
        user_name: String,
        /// The password.
        password: Secret,
    },
    /// A social provider and what proves the identity there (either may be absent; the server refuses
    /// a login with neither like any other failed proof).
    Social {
        /// The provider's configured name, as sent.
        provider: String,
        /// `accessToken`: an access token or an ID token.
        access_token: Option<Secret>,
        /// `codeOAuth`: an authorisation code to exchange.
        code_oauth: Option<Secret>,
        /// `codeVerifier`: the PKCE verifier of the code's authorization request (RFC 7636), sent
        /// by the sign-in page; a client that did not use PKCE leaves it out.
        code_verifier: Option<Secret>,
    },
}

/// Whether a `provider` value makes a social login: anything but empty or `email` (any case,
/// surrounding spaces ignored). The one rule, for the typed request and for the carrier alike.
pub(crate) fn names_social_provider(provider: &str) -> bool {
    let p = provider.trim();
    !p.is_empty() && !p.eq_ignore_ascii_case("email")
}

impl TryFrom<&Params> for Login {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        if let Some(provider) = non_empty(params, "provider").map(str::trim)
            && names_social_provider(provider)
        {
            return Ok(Login::Social {
                provider: provider.to_owned(),
                access_token: non_empty(params, "accessToken").map(Secret::new),
                code_oauth: non_empty(params, "codeOAuth").map(Secret::new),
                code_verifier: non_empty(params, "codeVerifier").map(Secret::new),
            });
        }
        let (user_name, password) = match non_empty(params, "userName") {
            Some(user) => (Some(user), non_empty(params, "password")),
            // Basic stands in for both, because they belong together.
            None => match params.basic() {
                Some((user, password)) => (Some(user), Some(password).filter(|p| !p.is_empty())),
                None => (None, non_empty(params, "password")),
            },
        };
        let user_name = user_name
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or(RequestError::Empty("userName"))?;
        let password = password.ok_or(RequestError::Empty("password"))?;
        Ok(Login::Password { user_name: user_name.to_owned(), password: Secret::new(password) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(query: &str, basic: Option<&str>) -> Result<Login, RequestError> {
        let mut b = Params::builder().query(query);
        if let Some(h) = basic {
            b = b.basic_auth(h);
        }
        Login::try_from(&b.build())
    }

    fn password(user: &str, pass: &str) -> Result<Login, RequestError> {
        Ok(Login::Password { user_name: user.into(), password: Secret::new(pass) })
    }

    #[test]
    fn decodes() {
        // "YUBiLmM6cDpx" is base64 of "a@b.c:p:q".
        let basic = Some("Basic YUBiLmM6cDpx");
        assert_eq!(login("userName=+ada+&password=x", None), password("ada", "x"));
        assert_eq!(login("userName=ada&password=", None), Err(RequestError::Empty("password")));
        assert_eq!(login("password=x", None), Err(RequestError::Empty("userName")));
        assert_eq!(login("userName=+&password=x", None), Err(RequestError::Empty("userName")));
        assert_eq!(login("", basic), password("a@b.c", "p:q"));
        assert_eq!(login("userName=&password=zz", basic), password("a@b.c", "p:q"));
        assert_eq!(login("userName=x", basic), Err(RequestError::Empty("password")));
        assert_eq!(login("userName=x&password=y&provider=Email", None), password("x", "y"));
        assert_eq!(
            login("provider=google&accessToken=t", None),
            Ok(Login::Social {
                provider: "google".into(),
                access_token: Some(Secret::new("t")),
                code_oauth: None,
                code_verifier: None,
            })
        );
        assert_eq!(RequestError::Empty("password").to_string(), "password empty");
    }

    #[test]
    fn debug_redacts() {
        let shown = format!("{:?}", password("ada", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

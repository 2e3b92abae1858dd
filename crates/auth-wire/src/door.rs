//! The front door's inputs and URL encodings (spec §10, decision 0006): the sign-in page's `return`,
//! the QR helper's fields, the sign-in link that forward auth answers with, and the identity header
//! values.
//!
//! These are not rows of the endpoint table (`api`): the front door answers HTML and redirects, not
//! envelopes. They live here because only auth-wire reads a parameter by name or encodes a URL.
//! Nothing here decides whether a host belongs to a portal; [`ReturnTo`] only parses, the transport
//! checks its host.

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::api::RequestError;
use crate::params::Params;

/// Where the browser goes after signing in: an absolute path on this origin, or an `http(s)` URL.
///
/// Parsing refuses whatever a browser could read as another origin or a script: `//host`, `/\host`,
/// user information (`https://portal@evil/`), other schemes, spaces, backslashes and control
/// characters. Whether an absolute URL's host is the portal's is the caller's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo {
    url: String,
    origin: Option<(String, String)>,
}

impl ReturnTo {
    /// Parses a `return` value; `None` when it is not a safe same-site candidate.
    pub fn parse(text: &str) -> Option<ReturnTo> {
        let text = text.trim();
        if text.is_empty()
            || text.len() > 2048
            || text.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return None;
        }
        if let Some(rest) = text.strip_prefix('/') {
            if rest.starts_with('/') {
                return None;
            }
            return Some(ReturnTo { url: text.to_owned(), origin: None });
        }
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..authority_end)?;
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        if !authority.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) {
            return None;
        }
        let authority = authority.to_ascii_lowercase();
        let url = format!("{scheme}://{authority}{}", rest.get(authority_end..).unwrap_or(""));
        Some(ReturnTo { url, origin: Some((scheme, authority)) })
    }

    /// The URL as the browser should be sent to it.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host without its port, lower-case, for an absolute URL (`None` for a path).
    pub fn host(&self) -> Option<&str> {
        let (_, authority) = self.origin.as_ref()?;
        Some(host_of(authority))
    }

    /// `scheme://host[:port]` of an absolute URL.
    pub fn origin(&self) -> Option<String> {
        self.origin.as_ref().map(|(scheme, authority)| format!("{scheme}://{authority}"))
    }
}

/// The host part of an authority (`host:port`, `[v6]:port`), without the port.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Characters percent-encoded in a query value (everything but RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Characters percent-encoded in an identity header value: controls, non-ASCII (by UTF-8 bytes),
/// `%` itself, and the separators a proxy might split on.
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b'%').add(b'"').add(b',').add(b';').add(b'\\');

/// The sign-in page's address for forward auth's answer: `{origin}/login?return=…`, or the page on
/// the same origin when `origin` is unknown; `return` only when there is one.
pub fn login_location(origin: Option<&str>, return_to: Option<&ReturnTo>) -> String {
    let mut location = format!("{}/login", origin.unwrap_or(""));
    if let Some(r) = return_to {
        location.push_str("?return=");
        location.extend(utf8_percent_encode(r.as_str(), QUERY_VALUE));
    }
    location
}

/// A value for an `X-Auth-User-…` header: percent-encoded UTF-8, so any name survives as ASCII.
pub fn header_value(text: &str) -> String {
    utf8_percent_encode(text, HEADER_VALUE).to_string()
}

/// `GET /login`: where to go after signing in, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginPageRequest {
    /// `return`, when it parses as a candidate (see [`ReturnTo::parse`]).
    pub return_to: Option<ReturnTo>,
}

impl TryFrom<&Params> for LoginPageRequest {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        Ok(Self { return_to: params.get("return").and_then(ReturnTo::parse) })
    }
}

/// `POST /login/totp`: the account and the key the API's step 1 gave, to draw as a QR code.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpQrRequest {
    /// `account`: the e-mail the user typed.
    pub account: String,
    /// `key`: the base32 secret (`tfaKey`).
    pub key: String,
}

impl std::fmt::Debug for TotpQrRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpQrRequest").field("account", &self.account).finish_non_exhaustive()
    }
}

impl Drop for TotpQrRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl TryFrom<&Params> for TotpQrRequest {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let account = params.get("account").map(str::trim).unwrap_or("");
        let key = params.get("key").map(str::trim).unwrap_or("");
        if account.is_empty() || account.len() > 320 {
            return Err(RequestError::Empty("account"));
        }
        // A base32 secret (RFC 4648 alphabet, no padding), of a sane length.
        if key.is_empty() {
            return Err(RequestError::Empty("key"));
        }
        if key.len() > 128
            || !key.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        {
            return Err(RequestError::Invalid { name: "key", problem: "is not a base32 key" });
        }
        Ok(Self { account: account.to_owned(), key: key.to_owned() })
    }
}

/// The `otpauth://totp/<issuer>:<account>?secret=…&issuer=…` URI authenticator apps read
/// (Google Authenticator's key URI format), for a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, key: &str) -> String {
    let label = format!(
        "{}:{}",
        utf8_percent_encode(issuer, QUERY_VALUE),
        utf8_percent_encode(account, QUERY_VALUE)
    );
    format!(
        "otpauth://totp/{label}?secret={key}&issuer={}",
        utf8_percent_encode(issuer, QUERY_VALUE)
    )
}

/// `GET /login/oauth/start`: which provider's button was pressed, and where to go afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthStartRequest {
    /// `provider`, lower-cased.
    pub provider: String,
    /// `return`, when it parses as a candidate.
    pub return_to: Option<ReturnTo>,
}

impl TryFrom<&Params> for OAuthStartRequest {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let provider = params.get("provider").map(str::trim).unwrap_or("");
        if provider.is_empty() {
            return Err(RequestError::Empty("provider"));
        }
        Ok(Self {
            provider: provider.to_ascii_lowercase(),
            return_to: params.get("return").and_then(ReturnTo::parse),
        })
    }
}

/// `GET /login/oauth/callback`: the provider's answer (RFC 6749 §4.1.2): a code and the state, or
/// an error.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct OAuthCallbackRequest {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `error`, when the provider refused (the user said no, or a bad request).
    pub error: Option<String>,
}

impl std::fmt::Debug for OAuthCallbackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCallbackRequest").field("error", &self.error).finish_non_exhaustive()
    }
}

impl Drop for OAuthCallbackRequest {
    fn drop(&mut self) {
        if let Some(code) = &mut self.code {
            zeroize::Zeroize::zeroize(code);
        }
    }
}

impl TryFrom<&Params> for OAuthCallbackRequest {
    type Error = RequestError;

    fn try_from(params: &Params) -> Result<Self, RequestError> {
        let get =
            |name| params.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(Self { code: get("code"), state: get("state"), error: get("error") })
    }
}

/// What the browser keeps between the start of the authorization-code flow and its callback, in
/// the `asc_oauth` cookie: the state to compare, the PKCE verifier, the provider and `return`.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthCookie {
    /// The `state` sent to the provider.
    pub state: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The provider's name.
    pub provider: String,
    /// Where to go afterwards (as it was checked at the start; checked again at the callback).
    pub return_to: Option<String>,
}

impl std::fmt::Debug for OAuthCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCookie").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl Drop for OAuthCookie {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.verifier);
    }
}

impl OAuthCookie {
    /// The cookie value: four base64url fields joined by `.` (cookie-safe characters only).
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes());
        [
            b64(&self.state),
            b64(&self.verifier),
            b64(&self.provider),
            b64(self.return_to.as_deref().unwrap_or("")),
        ]
        .join(".")
    }

    /// Reads a cookie value written by [`OAuthCookie::encode`]; `None` for anything else.
    pub fn decode(value: &str) -> Option<OAuthCookie> {
        use base64::Engine as _;
        let field = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let mut parts = value.split('.');
        let (Some(state), Some(verifier), Some(provider), Some(back), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let back = field(back)?;
        Some(OAuthCookie {
            state: field(state)?,
            verifier: field(verifier)?,
            provider: field(provider)?,
            return_to: Some(back).filter(|b| !b.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: Option<(&str, Option<&str>)>) {
        let got = ReturnTo::parse(text);
        let got = got.as_ref().map(|r| (r.as_str(), r.host()));
        assert_eq!(got, want, "{text:?}");
    }

    #[test]
    fn return_to_takes_paths_and_http_urls_only() {
        check("/app/page?x=1", Some(("/app/page?x=1", None)));
        check(
            "https://Portal.Example:8443/a",
            Some(("https://portal.example:8443/a", Some("portal.example"))),
        );
        check("http://[::1]:8080/", Some(("http://[::1]:8080/", Some("::1"))));
        check("HTTPS://portal.example", Some(("https://portal.example", Some("portal.example"))));
        for bad in [
            "",
            "//evil.example/",
            "/\\evil.example/",
            "javascript:alert(1)",
            "https://portal.example@evil.example/",
            "ftp://portal.example/",
            "https:///path",
            "https://evil.example\\@portal.example/",
            "/a b",
            "https://portal.example/\nx",
            "data:text/html,x",
        ] {
            check(bad, None);
        }
    }

    #[test]
    fn the_oauth_cookie_round_trips() {
        let c = OAuthCookie {
            state: "s1".into(),
            verifier: "v".repeat(43),
            provider: "corp.id".into(),
            return_to: Some("/docs?a=1".into()),
        };
        let back = OAuthCookie::decode(&c.encode()).unwrap();
        assert_eq!((back.state.as_str(), back.provider.as_str()), ("s1", "corp.id"));
        assert_eq!(back.return_to.as_deref(), Some("/docs?a=1"));
        assert!(c.encode().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert!(OAuthCookie::decode("a.b").is_none());
        assert!(!format!("{c:?}").contains("vvvv"));
    }

    #[test]
    fn locations_and_header_values_are_encoded() {
        let r = ReturnTo::parse("https://app.example/x?a=1&b=2").unwrap();
        assert_eq!(
            login_location(Some("https://app.example"), Some(&r)),
            "https://app.example/login?return=https%3A%2F%2Fapp.example%2Fx%3Fa%3D1%26b%3D2"
        );
        assert_eq!(login_location(None, None), "/login");
        assert_eq!(header_value("Ян Ли"), "%D0%AF%D0%BD %D0%9B%D0%B8");
        assert_eq!(header_value("a%b\r\n"), "a%25b%0D%0A");
        assert_eq!(
            otpauth_uri("R7 Portal", "ann@example.com", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/R7%20Portal:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=R7%20Portal"
        );
    }
}

//! The request parameter bag (API.md §2): path > query > body, case-insensitive names, and the credentials
//! carrier read from it, including `Authorization: Basic`.

use std::fmt;

use base64::Engine as _;
use zeroize::Zeroize;

use crate::body::{self, DEFAULT_BODY_LIMIT, DecodeError};

/// Request parameters from every source, in precedence order, looked up case-insensitively.
///
/// Values are kept as sent; `Debug` shows only the names because values include passwords, and every
/// value is wiped from memory when the bag is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    entries: Vec<(String, String)>,
    basic: Option<(String, String)>,
}

/// Overwrites the strings of a list of pairs before their memory is freed (they may hold passwords).
fn wipe(pairs: &mut [(String, String)]) {
    for (k, v) in pairs.iter_mut() {
        k.zeroize();
        v.zeroize();
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        wipe(&mut self.entries);
        if let Some((u, p)) = self.basic.as_mut() {
            u.zeroize();
            p.zeroize();
        }
    }
}

impl Params {
    /// Starts collecting parameters.
    pub fn builder() -> ParamsBuilder {
        ParamsBuilder::default()
    }

    /// The first value whose name matches `name` ignoring ASCII case; sources are searched path, then query,
    /// then body, and within a source in order, so the first one sent wins.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a parameter of that name (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every pair, in precedence order (duplicates included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credentials carrier fields.
    pub fn credentials(&self) -> Credentials {
        Credentials::from_params(self)
    }

    /// The user and password of an `Authorization: Basic` header given to
    /// [`ParamsBuilder::basic_auth`]; only the credential endpoints' requests read it (API.md §2).
    pub fn basic(&self) -> Option<(&str, &str)> {
        self.basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("names", &self.entries.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

/// Collects parameters from the path, the query string and the body.
///
/// The call order does not matter: [`ParamsBuilder::build`] always puts path before query before body.
#[derive(Debug, Clone)]
pub struct ParamsBuilder {
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
    basic: Option<(String, String)>,
    limit: usize,
}

impl Default for ParamsBuilder {
    fn default() -> Self {
        ParamsBuilder {
            path: Vec::new(),
            query: Vec::new(),
            body: Vec::new(),
            basic: None,
            limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Drop for ParamsBuilder {
    fn drop(&mut self) {
        wipe(&mut self.path);
        wipe(&mut self.query);
        wipe(&mut self.body);
        if let Some((u, p)) = self.basic.as_mut() {
            u.zeroize();
            p.zeroize();
        }
    }
}

impl ParamsBuilder {
    /// Adds a path parameter (such as `code`), already percent-decoded.
    pub fn path(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.path.push((name.into(), value.into()));
        self
    }

    /// Adds the pairs of a raw query string (without or with the leading `?`), percent- and `+`-decoded.
    pub fn query(mut self, raw_query: &str) -> Self {
        let raw = raw_query.strip_prefix('?').unwrap_or(raw_query);
        self.query.extend(body::decode_form(raw.as_bytes()));
        self
    }

    /// Sets the body limit in bytes used by [`ParamsBuilder::body`] (default 64 KiB); call it first.
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// Decodes a body by its `Content-Type` header value (see [`crate::decode_body`]).
    ///
    /// # Errors
    /// A [`DecodeError`]; its `status_code()` is the HTTP status to answer with.
    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Result<Self, DecodeError> {
        self.body.extend(body::decode_body(content_type, body, self.limit)?);
        Ok(self)
    }

    /// Keeps the credentials of an `Authorization` header value when it is `Basic` (see
    /// [`basic_credentials`]); anything else is ignored.
    pub fn basic_auth(mut self, authorization: &str) -> Self {
        self.basic = basic_credentials(authorization);
        self
    }

    /// The finished bag.
    pub fn build(mut self) -> Params {
        let mut entries = std::mem::take(&mut self.path);
        entries.append(&mut self.query);
        entries.append(&mut self.body);
        Params { entries, basic: self.basic.take() }
    }
}

/// Parses an `Authorization: Basic base64(user:password)` header value into `(user, password)`.
///
/// The scheme is matched case-insensitively and padding may be omitted. `None` when the value is not Basic,
/// not base64, not UTF-8 or has no `:`.
pub fn basic_credentials(header_value: &str) -> Option<(String, String)> {
    let value = header_value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = rest.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The credentials carrier of the four credential endpoints (API.md §2), plus `code`.
///
/// Every field is as sent (`None` when absent or JSON `null`); deciding what empty means is the server's job.
/// `Debug` redacts the password, tokens and codes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `userName`: an e-mail or a user id.
    pub user_name: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `provider`: empty or `email` for password login, else a social provider.
    pub provider: Option<String>,
    /// `accessToken` of a social provider.
    pub access_token: Option<String>,
    /// `codeOAuth`, an OAuth authorisation code to exchange (clients also send `codeOauth`; names are
    /// case-insensitive).
    pub code_oauth: Option<String>,
    /// `mobilePhone` (setphone).
    pub mobile_phone: Option<String>,
    /// `code` (step 2; the path value wins over the body's).
    pub code: Option<String>,
}

impl Credentials {
    /// Reads the carrier fields from a parameter bag.
    pub fn from_params(params: &Params) -> Credentials {
        let get = |name: &str| params.get(name).map(str::to_owned);
        Credentials {
            user_name: get("userName"),
            password: get("password"),
            provider: get("provider"),
            access_token: get("accessToken"),
            code_oauth: get("codeOAuth"),
            mobile_phone: get("mobilePhone"),
            code: get("code"),
        }
    }

    /// Applies an `Authorization` header's Basic credentials when no `userName` came from the request.
    ///
    /// An empty `userName` counts as none, so a client that sends `userName:""` and the header still logs in
    /// with the header. When applied, both the user and the password come from the header, because they
    /// belong together. Only the four credential endpoints should call this.
    pub fn with_basic(mut self, authorization: Option<&str>) -> Credentials {
        if self.user_name.as_deref().is_some_and(|u| !u.is_empty()) {
            return self;
        }
        if let Some((user, password)) = authorization.and_then(basic_credentials) {
            self.user_name = Some(user);
            self.password = Some(password);
        }
        self
    }

    /// Whether this is a password login: `provider` absent, empty or `email` (any case).
    pub fn is_password_login(&self) -> bool {
        !self.provider.as_deref().is_some_and(crate::api::names_social_provider)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("user_name", &self.user_name)
            .field("password", &hide(&self.password))
            .field("provider", &self.provider)
            .field("access_token", &hide(&self.access_token))
            .field("code_oauth", &hide(&self.code_oauth))
            .field("mobile_phone", &self.mobile_phone)
            .field("code", &hide(&self.code))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_path_query_body() {
        let params = Params::builder()
            .body(Some("application/json"), br#"{"code":"body","userName":"b","x":"body"}"#)
            .unwrap()
            .query("?code=query&x=query")
            .path("code", "path")
            .build();
        assert_eq!(params.get("CODE"), Some("path"));
        assert_eq!(params.get("x"), Some("query"));
        assert_eq!(params.get("username"), Some("b"));
        assert_eq!(params.get("missing"), None);
    }

    #[test]
    fn basic_header() {
        assert_eq!(basic_credentials("Basic YUBiLmM6cDpx"), Some(("a@b.c".into(), "p:q".into())));
        assert_eq!(basic_credentials("basic   YUBiLmM6cDpx"), Some(("a@b.c".into(), "p:q".into())));
        assert_eq!(basic_credentials("Bearer YUBiLmM6cDpx"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic bm9jb2xvbg"), None);
        let c = Credentials::default().with_basic(Some("Basic YUBiLmM6cDpx"));
        assert_eq!(c.user_name.as_deref(), Some("a@b.c"));
        let c = Credentials { user_name: Some("x".into()), ..Credentials::default() }
            .with_basic(Some("Basic YUBiLmM6cDpx"));
        assert_eq!((c.user_name.as_deref(), c.password), (Some("x"), None));
    }

    #[test]
    fn debug_redacts() {
        let c = Credentials {
            password: Some("hunter2".into()),
            code: Some("123456".into()),
            ..Credentials::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("123456"), "{shown}");
        let p = Params::builder().query("password=hunter2").build();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}

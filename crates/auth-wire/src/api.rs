//! The endpoint table (API.md §1): every endpoint the server answers, one module each, as ruma does.
//!
//! Each module holds the endpoint's [`Metadata`] (method, path template, whether it takes credentials or
//! a token, what a success carries), its typed `Request` (decoded from a [`Params`] bag with
//! `TryFrom`, so no other crate reads a parameter by name) and its `Response` type. The server routes,
//! admits, names metrics and answers 405 with `Allow` from this table; the client builds paths from it.
//! Adding an endpoint means adding one module, one line in [`endpoints!`] and one arm in the server.
//!
//! Path templates are written once, here: literal segments match case-insensitively, a `{name}`
//! segment captures one percent-decoded segment with its letter case kept, and a literal template
//! always wins over a capturing one (so `setphone` is never taken as a `{code}`).

use std::borrow::Cow;
use std::sync::OnceLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::envelope::PayloadKind;
use crate::format::{Format, Suffix, split_suffix};
use crate::params::Params;

mod credentials;

pub(crate) use credentials::names_social_provider;
pub use credentials::{Login, Secret};

/// An HTTP method of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name as HTTP spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// The table's method of an HTTP method name (case-sensitive, as HTTP methods are).
    pub fn parse(name: &str) -> Option<Method> {
        match name {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// What a successful answer of an endpoint carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The API envelope with this payload.
    Envelope(PayloadKind),
    /// Plain text (the operations endpoints outside `/api/2.0/`).
    Text,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// A short stable name for logs and metrics (`authentication`, `people_self`, …).
    pub name: &'static str,
    /// The one method the endpoint answers.
    pub method: Method,
    /// The path template, absolute: `/api/2.0/authentication/{code}`.
    pub path: &'static str,
    /// Whether the last segment may carry a `.json`/`.xml`/`.tml` format suffix (every API endpoint).
    pub suffix: bool,
    /// Whether the request carries credentials and so costs a password hash (admission control).
    pub credentials: bool,
    /// Whether the caller must present a token.
    pub token: bool,
    /// What a success carries.
    pub answer: Answer,
}

impl Metadata {
    /// The name of the template's capturing segment (`code` for `…/authentication/{code}`), which
    /// is the name its value has in the parameter bag; `None` for a template without one.
    pub fn capture(&self) -> Option<&'static str> {
        segments(self.path).find(|s| is_capture(s)).and_then(|s| s.get(1..s.len() - 1))
    }
}

/// Declares the endpoint modules and the [`Endpoint`] enum that names them, from one list.
macro_rules! endpoints {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident, )*) => {
        $( pub mod $module; )*

        /// Every endpoint of the table; [`Endpoint::metadata`] is its row.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $( $(#[$doc])* $variant, )*
        }

        impl Endpoint {
            /// Every endpoint, in table order.
            pub const ALL: &'static [Endpoint] = &[$( Endpoint::$variant, )*];

            /// The endpoint's row of the table.
            pub const fn metadata(self) -> &'static Metadata {
                match self {
                    $( Endpoint::$variant => &$module::METADATA, )*
                }
            }
        }
    };
}

endpoints! {
    /// `GET /healthz`.
    Healthz => healthz,
    /// `GET /readyz`.
    Readyz => readyz,
    /// `GET /metrics`.
    Metrics => metrics,
    /// `GET authentication` (is my token valid?).
    CheckToken => check_token,
    /// `POST authentication` (step 1).
    Authenticate => authenticate,
    /// `POST authentication/setphone`.
    SetPhone => set_phone,
    /// `POST authentication/sendsms`.
    SendSms => send_sms,
    /// `POST authentication/logout`.
    Logout => logout,
    /// `POST authentication/{code}` (step 2).
    Code => code,
    /// `GET people/@self`.
    SelfProfile => self_profile,
    /// `GET capabilities`.
    Capabilities => capabilities,
    /// `GET settings/tfaappcodes`.
    BackupCodes => backup_codes,
    /// `PUT settings/tfaappnewcodes`.
    NewBackupCodes => new_backup_codes,
    /// `PUT settings/tfaappnewapp`.
    NewApp => new_app,
    /// `POST people/thirdparty/linkaccount`.
    LinkAccount => link_account,
    /// `DELETE people/thirdparty/unlinkaccount`.
    UnlinkAccount => unlink_account,
    /// `GET people/thirdparty/providers`.
    Providers => providers,
    /// `PUT people/@self/password`.
    ChangePassword => change_password,
    /// `POST people/password` (a reset mail).
    RequestPasswordReset => request_password_reset,
    /// `PUT people/password` (a new password with a mail's key).
    ResetPassword => reset_password,
    /// `GET security/activeconnections`.
    ActiveConnections => active_connections,
    /// `PUT security/activeconnections/logout/{id}`.
    LogoutConnection => logout_connection,
    /// `PUT security/activeconnections/logoutallexceptthis`.
    LogoutAllExceptThis => logout_all_except_this,
    /// `PUT security/activeconnections/logoutall`.
    LogoutAll => logout_all,
}

/// Characters left as they are in a captured path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl Endpoint {
    /// The endpoint's position in [`Endpoint::ALL`], for tables indexed by endpoint.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The stable name for logs and metrics.
    pub const fn name(self) -> &'static str {
        self.metadata().name
    }

    /// The HTTP method.
    pub const fn method(self) -> Method {
        self.metadata().method
    }

    /// The absolute path for a client, with `args` filling the template's `{…}` segments in order
    /// (percent-encoded) and an optional format suffix: `/api/2.0/authentication/123456.json`.
    /// A missing argument leaves its segment empty, which the server answers 404.
    pub fn path(self, args: &[&str], suffix: Option<Format>) -> String {
        let meta = self.metadata();
        let mut args = args.iter();
        let mut path = String::new();
        for seg in segments(meta.path) {
            path.push('/');
            if is_capture(seg) {
                path.extend(utf8_percent_encode(args.next().copied().unwrap_or(""), SEGMENT));
            } else {
                path.push_str(seg);
            }
        }
        if let Some(format) = suffix.filter(|_| meta.suffix) {
            path.push_str(format.suffix());
        }
        path
    }
}

fn segments(template: &'static str) -> impl Iterator<Item = &'static str> {
    template.split('/').filter(|s| !s.is_empty())
}

fn is_capture(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// A request path that names a template of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch {
    template: &'static str,
    /// The captured `{…}` segment, percent-decoded, letter case kept.
    pub capture: Option<String>,
    /// The format suffix of the last segment.
    pub suffix: Option<Suffix>,
}

/// The path is known but not with this method: the methods it does answer, for `Allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodNotAllowed {
    /// The methods of the path, in table order.
    pub allow: Vec<Method>,
    /// The first endpoint of the path, to count the refusal under.
    pub path_of: Endpoint,
}

impl MethodNotAllowed {
    /// The `Allow` header value: `GET, POST`.
    pub fn header_value(&self) -> String {
        self.allow.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl PathMatch {
    /// The endpoint of this path for `method`, or the methods the path answers.
    ///
    /// # Errors
    /// [`MethodNotAllowed`] when the path has no endpoint with this method.
    pub fn endpoint(&self, method: &str) -> Result<Endpoint, MethodNotAllowed> {
        let method = Method::parse(method);
        let mut allow = Vec::new();
        let mut path_of = None;
        for &e in Endpoint::ALL {
            let meta = e.metadata();
            if meta.path != self.template {
                continue;
            }
            if Some(meta.method) == method {
                return Ok(e);
            }
            allow.push(meta.method);
            path_of.get_or_insert(e);
        }
        // A match always comes from a row of the table, so `path_of` is set; healthz is the
        // harmless fallback that keeps this free of panics.
        Err(MethodNotAllowed { allow, path_of: path_of.unwrap_or(Endpoint::Healthz) })
    }
}

/// Matches a request path against the table (API.md §2 "Paths"): case-insensitive, empty segments
/// ignored, one format suffix on the last segment, literal templates before capturing ones.
/// `None` means 404: no template, an unknown suffix, or a segment that is not UTF-8 once decoded.
pub fn match_path(path: &str) -> Option<PathMatch> {
    // Segments without a `%` are borrowed from the path: most requests allocate nothing here.
    let mut decoded = Vec::with_capacity(6);
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        decoded.push(percent_decode_str(raw).decode_utf8().ok()?);
    }
    let last = decoded.pop()?;
    let (name, suffix) = split_suffix(&last).ok()?;
    let keep = name.len();
    decoded.push(match last {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(..keep)?),
        Cow::Owned(mut s) => {
            s.truncate(keep);
            Cow::Owned(s)
        }
    });
    for template in compiled() {
        if suffix.is_some() && !template.suffix {
            continue;
        }
        if let Some(capture) = template.fit(&decoded) {
            return Some(PathMatch { template: template.path, capture, suffix });
        }
    }
    None
}

/// A template of the table, split into its segments once.
struct Compiled {
    path: &'static str,
    segments: Vec<&'static str>,
    suffix: bool,
}

impl Compiled {
    /// `Some(capture)` when `segs` fit the template.
    fn fit(&self, segs: &[Cow<'_, str>]) -> Option<Option<String>> {
        if segs.len() != self.segments.len() {
            return None;
        }
        let mut capture = None;
        for (want, seg) in self.segments.iter().zip(segs) {
            if is_capture(want) {
                capture = Some(seg.as_ref().to_owned());
            } else if !want.eq_ignore_ascii_case(seg) {
                return None;
            }
        }
        Some(capture)
    }
}

/// The templates in the order they are tried: every literal one in the table's order, then every
/// capturing one in the table's order (a literal template anywhere in the table beats a capture).
/// Built on first use: splitting every template on every request was most of what routing cost.
fn compiled() -> &'static [Compiled] {
    static TABLE: OnceLock<Vec<Compiled>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all = Endpoint::ALL.iter().map(|e| {
            let meta = e.metadata();
            Compiled {
                path: meta.path,
                segments: segments(meta.path).collect(),
                suffix: meta.suffix,
            }
        });
        let (literal, capturing): (Vec<_>, Vec<_>) =
            all.partition(|c| !c.segments.iter().any(|s| is_capture(s)));
        literal.into_iter().chain(capturing).collect()
    })
}

/// Why a request's parameters do not make a request of its endpoint (answered 400 `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required parameter is absent or empty: `userName empty`.
    #[error("{0} empty")]
    Empty(&'static str),
    /// A parameter is present but cannot be what it must be.
    #[error("{name} {problem}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it, as the rest of the sentence: `is not a user id`.
        problem: &'static str,
    },
}

/// The endpoints that take nothing from the parameter bag share this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoRequest;

impl TryFrom<&Params> for NoRequest {
    type Error = RequestError;

    fn try_from(_: &Params) -> Result<Self, RequestError> {
        Ok(NoRequest)
    }
}

/// The `provider` of the link endpoints: trimmed, not empty.
pub(crate) fn provider(params: &Params) -> Result<&str, RequestError> {
    non_empty(params, "provider")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(RequestError::Empty("provider"))
}

/// A parameter as sent, `None` when absent or empty.
pub(crate) fn non_empty<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params.get(name).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, want: Option<(Endpoint, Option<&str>, Option<Suffix>)>) {
        let got = match_path(path).map(|m| {
            let method = want.map_or("GET", |w| w.0.method().as_str());
            let e = m.endpoint(method).expect("method");
            (e, m.capture.clone(), m.suffix)
        });
        let want = want.map(|(e, c, s)| (e, c.map(str::to_owned), s));
        assert_eq!(got, want, "{path}");
    }

    #[test]
    fn paths() {
        use Endpoint as E;
        check("/api/2.0/authentication", Some((E::Authenticate, None, None)));
        check("//api/2.0/authentication", Some((E::Authenticate, None, None)));
        check("/API/2.0/Authentication.JSON/", Some((E::Authenticate, None, Some(Suffix::Json))));
        check(
            "/api//2.0/authentication/setphone.xml",
            Some((E::SetPhone, None, Some(Suffix::Xml))),
        );
        check("/api/2.0/authentication/sendsms.tml", Some((E::SendSms, None, Some(Suffix::Tml))));
        check(
            "/api/2.0/authentication/123456.json",
            Some((E::Code, Some("123456"), Some(Suffix::Json))),
        );
        check("/api/2.0/authentication/abcd-EFGH", Some((E::Code, Some("abcd-EFGH"), None)));
        check("/api/2.0/authentication/..%2F..%2Fetc", None);
        check("/api/2.0/authentication/a%2Fb", Some((E::Code, Some("a/b"), None)));
        check("/api/2.0/authentication/Logout", Some((E::Logout, None, None)));
        check("/api/2.0/people/@self.xml", Some((E::SelfProfile, None, Some(Suffix::Xml))));
        check("/api/2.0/people/%40self", Some((E::SelfProfile, None, None)));
        check("/api/2.0/authentication.yaml", None);
        check("/api/2.0/authentication/1/2", None);
        check("/api/2.0/nothing", None);
        check("/", None);
        check("/healthz", Some((E::Healthz, None, None)));
        check("/healthz.json", None);
        check("/api/2.0/authentication/%FF", None);
        check(
            "/api/2.0/security/activeconnections.xml",
            Some((E::ActiveConnections, None, Some(Suffix::Xml))),
        );
        check(
            "/api/2.0/security/activeconnections/logout/123.json",
            Some((E::LogoutConnection, Some("123"), Some(Suffix::Json))),
        );
        check(
            "/api/2.0/Security/ActiveConnections/LogoutAllExceptThis",
            Some((E::LogoutAllExceptThis, None, None)),
        );
        check("/api/2.0/security/activeconnections/logoutall", Some((E::LogoutAll, None, None)));
        check("/api/2.0/security/activeconnections/logout", None);
        check("/api/2.0/security/activeconnections/logoutall/someone", None);
    }

    #[test]
    fn captures_are_named_by_their_template() {
        assert_eq!(Endpoint::Code.metadata().capture(), Some("code"));
        assert_eq!(Endpoint::LogoutConnection.metadata().capture(), Some("id"));
        assert_eq!(Endpoint::LogoutAll.metadata().capture(), None);
    }

    /// The rule of API.md §2 written the slow, obvious way (as routing was before the templates were
    /// split once): two passes over the table, literal templates first.
    fn reference_match(path: &str) -> Option<PathMatch> {
        let mut decoded = Vec::new();
        for raw in path.split('/').filter(|s| !s.is_empty()) {
            decoded.push(percent_decode_str(raw).decode_utf8().ok()?.into_owned());
        }
        let last = decoded.pop()?;
        let (name, suffix) = split_suffix(&last).ok()?;
        decoded.push(name.to_owned());
        for captures in [false, true] {
            for &e in Endpoint::ALL {
                let meta = e.metadata();
                if suffix.is_some() && !meta.suffix {
                    continue;
                }
                if segments(meta.path).any(is_capture) != captures {
                    continue;
                }
                let mut capture = None;
                let mut given = decoded.iter();
                let fits = segments(meta.path).all(|want| match given.next() {
                    Some(seg) if is_capture(want) => {
                        capture = Some(seg.clone());
                        true
                    }
                    Some(seg) => want.eq_ignore_ascii_case(seg),
                    None => false,
                }) && given.next().is_none();
                if fits {
                    return Some(PathMatch { template: meta.path, capture, suffix });
                }
            }
        }
        None
    }

    proptest::proptest! {
        /// Any path made of the table's own segments (in any case, percent-encoded or not), odd
        /// segments and suffixes routes exactly as the reference rule says.
        #[test]
        fn routing_agrees_with_the_reference_rule(
            picks in proptest::collection::vec((0usize..64, 0u8..6), 0..7),
            odd in "[a-zA-Z0-9@%.-]{0,8}",
            suffix in proptest::sample::select(vec!["", ".json", ".XML", ".tml", ".yaml", "."]),
            slashes in proptest::bool::ANY,
        ) {
            let words: Vec<&str> =
                Endpoint::ALL.iter().flat_map(|e| segments(e.metadata().path)).collect();
            let mut path = String::new();
            for (i, how) in picks {
                let word = words[i % words.len()];
                path.push('/');
                if slashes && how == 0 {
                    path.push('/');
                }
                match how {
                    1 => path.push_str(&word.to_uppercase()),
                    2 => path.push_str(&utf8_percent_encode(word, NON_ALPHANUMERIC).to_string()),
                    3 => path.push_str(&odd),
                    _ => path.push_str(word),
                }
            }
            path.push_str(suffix);
            proptest::prop_assert_eq!(match_path(&path), reference_match(&path), "{}", path);
        }
    }

    #[test]
    fn methods_of_a_path() {
        let m = match_path("/api/2.0/authentication").unwrap();
        assert_eq!(m.endpoint("GET"), Ok(Endpoint::CheckToken));
        assert_eq!(m.endpoint("POST"), Ok(Endpoint::Authenticate));
        let refused = m.endpoint("DELETE").unwrap_err();
        assert_eq!(refused.header_value(), "GET, POST");
        let m = match_path("/api/2.0/settings/tfaappnewapp").unwrap();
        assert_eq!(m.endpoint("GET").unwrap_err().header_value(), "PUT");
    }

    /// Every row's own path, built by the client side, routes back to that row: the table is the one
    /// definition of both directions.
    #[test]
    fn every_row_round_trips() {
        for &e in Endpoint::ALL {
            let meta = e.metadata();
            for suffix in [None, Some(Format::Json), Some(Format::Xml)] {
                let path = e.path(&["Ab12-cd"], suffix);
                let m = match_path(&path).unwrap_or_else(|| panic!("{path} routes"));
                assert_eq!(m.endpoint(meta.method.as_str()), Ok(e), "{path}");
                let wants_capture = segments(meta.path).any(is_capture);
                assert_eq!(m.capture.as_deref(), wants_capture.then_some("Ab12-cd"), "{path}");
            }
        }
    }

    #[test]
    fn index_is_the_position_in_all() {
        for (i, e) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Endpoint::ALL.len());
    }
}

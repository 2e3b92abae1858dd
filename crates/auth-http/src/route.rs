//! Path matching (spec §2 "Paths"): case-insensitive, slashes folded, format suffixes, `{code}`.
//!
//! Matching works on percent-decoded segments. A decoded `{code}` segment may contain anything (even a
//! `/`); it stays one segment and is only ever compared as a code, never used as a path.

use auth_wire::{Suffix, split_suffix};
use hyper::Method;
use percent_encoding::percent_decode_str;

/// Every endpoint the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Healthz,
    Readyz,
    Metrics,
    Authentication,
    SetPhone,
    SendSms,
    Logout,
    Code(String),
    PeopleSelf,
    Capabilities,
    TfaAppCodes,
    TfaAppNewCodes,
    TfaAppNewApp,
}

impl Route {
    /// The methods the route answers, for matching and for `Allow`.
    pub(crate) fn methods(&self) -> &'static [Method] {
        match self {
            Route::Healthz | Route::Readyz | Route::Metrics => &[Method::GET],
            Route::Authentication => &[Method::GET, Method::POST],
            Route::SetPhone | Route::SendSms | Route::Logout | Route::Code(_) => &[Method::POST],
            Route::PeopleSelf | Route::Capabilities | Route::TfaAppCodes => &[Method::GET],
            Route::TfaAppNewCodes | Route::TfaAppNewApp => &[Method::PUT],
        }
    }

    /// A short stable name for logs and metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Authentication => "authentication",
            Route::SetPhone => "setphone",
            Route::SendSms => "sendsms",
            Route::Logout => "logout",
            Route::Code(_) => "code",
            Route::PeopleSelf => "people_self",
            Route::Capabilities => "capabilities",
            Route::TfaAppCodes => "tfaappcodes",
            Route::TfaAppNewCodes => "tfaappnewcodes",
            Route::TfaAppNewApp => "tfaappnewapp",
        }
    }
}

/// Why a path matched nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotFound;

/// Matches a request path; the suffix (if any) comes back for negotiation.
pub(crate) fn match_path(path: &str) -> Result<(Route, Option<Suffix>), NotFound> {
    let raw: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, init)) = raw.split_last() else { return Err(NotFound) };
    let decode =
        |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| NotFound);
    let mut segs: Vec<String> =
        init.iter().map(|s| decode(s).map(|d| d.to_ascii_lowercase())).collect::<Result<_, _>>()?;
    let last = decode(last)?;
    let (name, suffix) = split_suffix(&last).map_err(|_| NotFound)?;
    let name_lower = name.to_ascii_lowercase();
    segs.push(name_lower.clone());
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        ["healthz"] if suffix.is_none() => Route::Healthz,
        ["readyz"] if suffix.is_none() => Route::Readyz,
        ["metrics"] if suffix.is_none() => Route::Metrics,
        ["api", "2.0", rest @ ..] => match rest {
            ["authentication"] => Route::Authentication,
            ["authentication", "setphone"] => Route::SetPhone,
            ["authentication", "sendsms"] => Route::SendSms,
            ["authentication", "logout"] => Route::Logout,
            // The code keeps its original letter case: backup codes are typed in either.
            ["authentication", _] => Route::Code(name.to_owned()),
            ["people", "@self"] => Route::PeopleSelf,
            ["capabilities"] => Route::Capabilities,
            ["settings", "tfaappcodes"] => Route::TfaAppCodes,
            ["settings", "tfaappnewcodes"] => Route::TfaAppNewCodes,
            ["settings", "tfaappnewapp"] => Route::TfaAppNewApp,
            _ => return Err(NotFound),
        },
        _ => return Err(NotFound),
    };
    Ok((route, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, want: Option<(Route, Option<Suffix>)>) {
        assert_eq!(match_path(path).ok(), want, "{path}");
    }

    #[test]
    fn paths() {
        check("/api/2.0/authentication", Some((Route::Authentication, None)));
        check("//api/2.0/authentication", Some((Route::Authentication, None)));
        check("/API/2.0/Authentication.JSON/", Some((Route::Authentication, Some(Suffix::Json))));
        check("/api//2.0/authentication/setphone.xml", Some((Route::SetPhone, Some(Suffix::Xml))));
        check("/api/2.0/authentication/sendsms.tml", Some((Route::SendSms, Some(Suffix::Tml))));
        check(
            "/api/2.0/authentication/123456.json",
            Some((Route::Code("123456".into()), Some(Suffix::Json))),
        );
        check("/api/2.0/authentication/abcd-EFGH", Some((Route::Code("abcd-EFGH".into()), None)));
        check("/api/2.0/authentication/..%2F..%2Fetc", None);
        check("/api/2.0/authentication/a%2Fb", Some((Route::Code("a/b".into()), None)));
        check("/api/2.0/authentication/Logout", Some((Route::Logout, None)));
        check("/api/2.0/people/@self.xml", Some((Route::PeopleSelf, Some(Suffix::Xml))));
        check("/api/2.0/people/%40self", Some((Route::PeopleSelf, None)));
        check("/api/2.0/authentication.yaml", None);
        check("/api/2.0/authentication/1/2", None);
        check("/api/2.0/nothing", None);
        check("/", None);
        check("/healthz.json", None);
        check("/api/2.0/authentication/%FF", None);
    }
}

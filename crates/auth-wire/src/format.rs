//! Response-format negotiation (API.md §3): the path suffix first, then `Accept`, JSON by default.

/// The two response encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `application/json; charset=utf-8` (the default).
    #[default]
    Json,
    /// `text/xml; charset=utf-8`.
    Xml,
}

impl Format {
    /// The `Content-Type` header value of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }

    /// The format of a response body from its `Content-Type` (for clients); `None` when it is neither.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        match media_type(content_type).as_str() {
            "application/json" | "text/json" => Some(Format::Json),
            "text/xml" | "application/xml" => Some(Format::Xml),
            _ => None,
        }
    }

    /// The path suffix that asks for this format (`.json` or `.xml`).
    pub const fn suffix(self) -> &'static str {
        match self {
            Format::Json => ".json",
            Format::Xml => ".xml",
        }
    }
}

/// A known format suffix on the last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// `.json`.
    Json,
    /// `.xml`.
    Xml,
    /// `.tml`, upstream's legacy alias of `.xml`.
    Tml,
}

impl Suffix {
    /// The format this suffix selects.
    pub const fn format(self) -> Format {
        match self {
            Suffix::Json => Format::Json,
            Suffix::Xml | Suffix::Tml => Format::Xml,
        }
    }
}

/// The last path segment had a suffix other than `.json`, `.xml` or `.tml` (the caller answers 404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format suffix `.{0}`")]
pub struct UnknownSuffix(pub String);

/// Splits a (percent-decoded) last path segment into its name and format suffix.
///
/// The suffix is whatever follows the last `.`, matched case-insensitively (paths are case-insensitive).
/// `authentication.json` → `("authentication", Some(Json))`; `123456` → `("123456", None)`.
///
/// # Errors
/// [`UnknownSuffix`] when there is a `.` followed by anything else, such as `authentication.html`.
pub fn split_suffix(segment: &str) -> Result<(&str, Option<Suffix>), UnknownSuffix> {
    let Some((name, ext)) = segment.rsplit_once('.') else {
        return Ok((segment, None));
    };
    let suffix = if ext.eq_ignore_ascii_case("json") {
        Suffix::Json
    } else if ext.eq_ignore_ascii_case("xml") {
        Suffix::Xml
    } else if ext.eq_ignore_ascii_case("tml") {
        Suffix::Tml
    } else {
        return Err(UnknownSuffix(ext.to_owned()));
    };
    Ok((name, Some(suffix)))
}

/// Chooses the response format.
///
/// A suffix decides on its own. Without one, the answer is XML only when `Accept` lists `application/xml` or
/// `text/xml` with q > 0 and none of `application/json`, `application/*`, `*/*` with q > 0; otherwise JSON
/// (so `*/*`, a browser's Accept and no Accept all get JSON).
pub fn negotiate(suffix: Option<Suffix>, accept: Option<&str>) -> Format {
    if let Some(suffix) = suffix {
        return suffix.format();
    }
    let Some(accept) = accept else {
        return Format::Json;
    };
    let mut wants_xml = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if !accepted(parts) {
            continue;
        }
        match media.as_str() {
            "application/json" | "application/*" | "*/*" => return Format::Json,
            "application/xml" | "text/xml" => wants_xml = true,
            _ => {}
        }
    }
    if wants_xml { Format::Xml } else { Format::Json }
}

/// Whether a media range's parameters leave it acceptable, i.e. its `q` is above zero.
///
/// An unparsable `q` counts as 1, the default, because a broken header should not silently turn a preference off.
fn accepted<'a>(params: impl Iterator<Item = &'a str>) -> bool {
    for param in params {
        let Some((name, value)) = param.split_once('=') else { continue };
        if name.trim().eq_ignore_ascii_case("q") {
            return value.trim().parse::<f32>().map_or(true, |q| q > 0.0);
        }
    }
    true
}

/// The lower-cased media type of a `Content-Type` value, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_suffixes() {
        assert_eq!(split_suffix("authentication.json"), Ok(("authentication", Some(Suffix::Json))));
        assert_eq!(split_suffix("123456.XML"), Ok(("123456", Some(Suffix::Xml))));
        assert_eq!(split_suffix("setphone.tml"), Ok(("setphone", Some(Suffix::Tml))));
        assert_eq!(split_suffix("@self"), Ok(("@self", None)));
        assert_eq!(split_suffix("a.html"), Err(UnknownSuffix("html".into())));
    }

    #[test]
    fn negotiates() {
        let check =
            |suffix, accept, want| assert_eq!(negotiate(suffix, accept), want, "{accept:?}");
        check(None, None, Format::Json);
        check(Some(Suffix::Tml), Some("application/json"), Format::Xml);
        check(Some(Suffix::Json), Some("text/xml"), Format::Json);
        check(None, Some("*/*"), Format::Json);
        check(None, Some("text/xml"), Format::Xml);
        check(None, Some("application/xml;q=0.9, text/plain"), Format::Xml);
        check(None, Some("application/xml, application/json"), Format::Json);
        check(None, Some("application/xml, */*;q=0"), Format::Xml);
        check(None, Some("application/xml;q=0"), Format::Json);
        check(
            None,
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Format::Json,
        );
        check(None, Some("TEXT/XML; Q=1"), Format::Xml);
    }

    #[test]
    fn reads_response_content_types() {
        assert_eq!(
            Format::from_content_type("application/json; charset=UTF-8"),
            Some(Format::Json)
        );
        assert_eq!(Format::from_content_type("text/xml; charset=utf-8"), Some(Format::Xml));
        assert_eq!(Format::from_content_type("text/plain"), None);
    }
}

//! Request body decoding (API.md §2): JSON, form-urlencoded, multipart and XML bodies into name/value pairs.
//!
//! Every decoder is total: any input gives pairs or a typed [`DecodeError`], never a panic, and none of them
//! recurses on input nesting (serde_json has its own depth limit; the XML reader only counts depth).

use std::borrow::Cow;

use quick_xml::events::Event;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error_code::ErrorCode;
use crate::format::media_type;
use crate::multipart;

/// The default body limit, 64 KiB (API.md §2).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Why a request body could not be read; each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is larger than the limit (413).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A non-empty body with a content type the API does not read (415).
    #[error("unsupported content type `{media_type}`")]
    UnsupportedMediaType {
        /// The media type as sent, lower-cased, without parameters.
        media_type: String,
    },
    /// The JSON body is not valid JSON (400).
    #[error("Unable to deserialize json: {0}")]
    Json(String),
    /// The JSON body is valid but not an object (400).
    #[error("JSON body is not an object")]
    JsonNotObject,
    /// The form body could not be read (400).
    #[error("invalid form body: {0}")]
    Form(String),
    /// The multipart body could not be read (400).
    #[error("invalid multipart body: {0}")]
    Multipart(String),
    /// The XML body is not well-formed (400).
    #[error("invalid XML body: {0}")]
    Xml(String),
    /// The XML body has a DTD (and so possibly entity declarations), which is refused (400).
    #[error("XML with a DTD or entity declarations is refused")]
    XmlDtd,
}

impl DecodeError {
    /// The HTTP status to answer with: 400, 413 or 415.
    pub fn status_code(&self) -> u16 {
        self.error_code().status_code()
    }

    /// The stable error code to answer with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            DecodeError::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// The body types the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyType {
    Json,
    Form,
    Multipart,
    Xml,
}

/// Decodes a request body into name/value pairs in body order.
///
/// `content_type` is the raw header value (its `charset` is ignored). An empty body gives no pairs whatever
/// the content type; a non-empty body without a content type is read as a form, as upstream does.
///
/// # Errors
/// See [`DecodeError`]; the size check comes first so an oversized body is never parsed.
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Vec<(String, String)>, DecodeError> {
    if body.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let body_type = match content_type {
        None => BodyType::Form,
        Some(ct) => match media_type(ct).as_str() {
            "application/json" => BodyType::Json,
            "application/x-www-form-urlencoded" => BodyType::Form,
            "multipart/form-data" => BodyType::Multipart,
            "text/xml" | "application/xml" => BodyType::Xml,
            // An empty header value is as good as none: the client did not say.
            "" => BodyType::Form,
            other => {
                return Err(DecodeError::UnsupportedMediaType { media_type: other.to_owned() });
            }
        },
    };
    match body_type {
        BodyType::Json => decode_json(body),
        BodyType::Form => Ok(decode_form(body)),
        BodyType::Multipart => multipart::decode(content_type.unwrap_or(""), body),
        BodyType::Xml => decode_xml(body),
    }
}

/// Reads `application/x-www-form-urlencoded` (also used for query strings).
///
/// Bytes that are not UTF-8 after percent-decoding become U+FFFD rather than an error, as browsers and
/// upstream's form collection do.
pub(crate) fn decode_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The top-level members of a JSON object, each with its raw value text, in document order.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                // Keys are read as Cow so that escaped keys (rare) still work while plain ones are borrowed.
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key.0, value));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A string that borrows from the input when it can.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowVisitor;

        impl<'de> Visitor<'de> for CowVisitor {
            type Value = CowStr<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(CowVisitor)
    }
}

/// Reads a JSON object body.
///
/// `null`, nested objects and arrays are dropped (null means absent); numbers and booleans keep their literal
/// text, which is why the values are read raw instead of through `serde_json::Value` (that would turn `1.50`
/// into `1.5` and let the last duplicate key win).
fn decode_json(body: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let members: Members<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            DecodeError::JsonNotObject
        } else {
            DecodeError::Json(e.to_string())
        }
    })?;
    let mut out = Vec::with_capacity(members.0.len());
    for (key, raw) in members.0 {
        let text = raw.get();
        let value = match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map_err(|e| DecodeError::Json(e.to_string()))?,
            Some(b'n' | b'{' | b'[') | None => continue,
            Some(_) => text.to_owned(),
        };
        out.push((key.into_owned(), value));
    }
    Ok(out)
}

/// Reads an XML body: the root element's direct children that hold only text become pairs.
///
/// Attributes, deeper elements and children with element content are ignored. Depth is only counted, never
/// recursed on, so nesting cannot exhaust the stack; a DTD is refused outright because it is how entity
/// declarations (and expansion attacks) get in, and quick-xml rejects any entity it does not know.
fn decode_xml(body: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    struct Child {
        name: String,
        text: String,
        has_elements: bool,
    }

    let xml_err = |e: &dyn std::fmt::Display| DecodeError::Xml(e.to_string());
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut child: Option<Child> = None;
    loop {
        match reader.read_event().map_err(|e| xml_err(&e))? {
            Event::Start(e) => {
                depth += 1;
                match depth {
                    1 if seen_root => {
                        return Err(DecodeError::Xml("more than one root element".to_owned()));
                    }
                    1 => seen_root = true,
                    2 => {
                        let name = std::str::from_utf8(e.name().as_ref())
                            .map_err(|e| xml_err(&e))?
                            .to_owned();
                        child = Some(Child { name, text: String::new(), has_elements: false });
                    }
                    _ => {
                        if let Some(c) = child.as_mut() {
                            c.has_elements = true;
                        }
                    }
                }
            }
            Event::Empty(e) => match depth {
                0 if seen_root => {
                    return Err(DecodeError::Xml("more than one root element".to_owned()));
                }
                0 => seen_root = true,
                1 => {
                    let name =
                        std::str::from_utf8(e.name().as_ref()).map_err(|e| xml_err(&e))?.to_owned();
                    out.push((name, String::new()));
                }
                _ => {
                    if let Some(c) = child.as_mut() {
                        c.has_elements = true;
                    }
                }
            },
            Event::End(_) => {
                if depth == 2
                    && let Some(c) = child.take()
                    && !c.has_elements
                {
                    out.push((c.name, c.text));
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                if depth == 2 {
                    let text = t.unescape().map_err(|e| xml_err(&e))?;
                    if let Some(c) = child.as_mut() {
                        c.text.push_str(&text);
                    }
                } else if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(DecodeError::Xml("text outside the root element".to_owned()));
                }
            }
            Event::CData(c) => {
                if depth == 2 {
                    let bytes = c.into_inner();
                    let text = std::str::from_utf8(&bytes).map_err(|e| xml_err(&e))?;
                    if let Some(c) = child.as_mut() {
                        c.text.push_str(text);
                    }
                } else if depth == 0 {
                    return Err(DecodeError::Xml("text outside the root element".to_owned()));
                }
            }
            Event::DocType(_) => return Err(DecodeError::XmlDtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if depth != 0 {
        return Err(DecodeError::Xml("the document ends inside an element".to_owned()));
    }
    if !seen_root {
        return Err(DecodeError::Xml("no root element".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(ct: Option<&str>, body: &str) -> Result<Vec<(String, String)>, DecodeError> {
        decode_body(ct, body.as_bytes(), DEFAULT_BODY_LIMIT)
    }

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn json_rules() {
        let got = pairs(
            Some("application/json; charset=utf-8"),
            r#"{"a":"x\/y","n":1.50,"b":false,"z":null,"o":{"q":1},"l":[1],"a":"second","e":""}"#,
        );
        assert_eq!(
            got,
            Ok(p(&[("a", "x/y"), ("n", "1.50"), ("b", "false"), ("a", "second"), ("e", "")]))
        );
        assert_eq!(pairs(Some("application/json"), "[1]"), Err(DecodeError::JsonNotObject));
        assert_eq!(pairs(Some("application/json"), "\"s\""), Err(DecodeError::JsonNotObject));
        assert!(matches!(pairs(Some("application/json"), "{"), Err(DecodeError::Json(_))));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        // serde_json skips raw values without recursing, so deep nesting is simply ignored.
        assert_eq!(pairs(Some("application/json"), &deep), Ok(Vec::new()));
    }

    #[test]
    fn content_type_rules() {
        assert_eq!(pairs(None, "userName=a%40b&x"), Ok(p(&[("userName", "a@b"), ("x", "")])));
        assert_eq!(pairs(Some("text/plain"), ""), Ok(Vec::new()));
        assert_eq!(
            pairs(Some("text/plain"), "a=b"),
            Err(DecodeError::UnsupportedMediaType { media_type: "text/plain".into() })
        );
        assert_eq!(decode_body(None, b"abc", 2), Err(DecodeError::TooLarge { limit: 2 }));
        assert_eq!(DecodeError::TooLarge { limit: 2 }.status_code(), 413);
        assert_eq!(DecodeError::JsonNotObject.status_code(), 400);
    }

    #[test]
    fn xml_rules() {
        let got = pairs(
            Some("text/xml"),
            r#"<?xml version="1.0"?><request a="1"><userName>a&amp;b</userName><x><y>deep</y></x><c/><d><![CDATA[<p>]]></d></request>"#,
        );
        assert_eq!(got, Ok(p(&[("userName", "a&b"), ("c", ""), ("d", "<p>")])));
        assert_eq!(
            pairs(Some("application/xml"), r#"<!DOCTYPE r [<!ENTITY e "x">]><r><a>&e;</a></r>"#),
            Err(DecodeError::XmlDtd)
        );
        assert!(matches!(pairs(Some("text/xml"), "<r><a>&e;</a></r>"), Err(DecodeError::Xml(_))));
        let deep = format!("<r>{}</r>", "<a>".repeat(20_000));
        assert!(matches!(pairs(Some("text/xml"), &deep), Err(DecodeError::Xml(_))));
        let deep_ok =
            format!("<r><v>1</v><a>{}{}</a></r>", "<a>".repeat(10_000), "</a>".repeat(10_000));
        let got = decode_body(Some("text/xml"), deep_ok.as_bytes(), usize::MAX);
        assert_eq!(got, Ok(p(&[("v", "1")])));
        assert!(matches!(pairs(Some("text/xml"), "<a/><b/>"), Err(DecodeError::Xml(_))));
        assert!(matches!(pairs(Some("text/xml"), "   "), Err(DecodeError::Xml(_))));
    }
}

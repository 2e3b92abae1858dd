//! Hand-written JSON and XML writers with upstream's exact byte rules (upstream-behaviour.md §2.6–§2.7).
//!
//! Each DTO describes its fields once, in wire order, through [`Sink`]; the JSON and XML sinks turn that into
//! bytes. Writing by hand (instead of through serde) is what gives us exact key order, the omission rules,
//! `\/` escaping and `<token />` without fighting a serializer.

use std::fmt::Write as _;

use crate::date::ApiDate;

/// Something that can describe itself as an ordered list of named fields.
pub(crate) trait WriteFields {
    /// Writes every field that is present, in wire order.
    fn write_fields<S: Sink>(&self, sink: &mut S);
}

/// The receiver of one object's fields; implemented for JSON and XML.
pub(crate) trait Sink: Sized {
    /// A field whose value is null (JSON `null`, XML `<name />`).
    fn null(&mut self, name: &str);
    /// A string field.
    fn str(&mut self, name: &str, value: &str);
    /// A boolean field.
    fn bool(&mut self, name: &str, value: bool);
    /// An integer field.
    fn int(&mut self, name: &str, value: i64);
    /// A date field.
    fn date(&mut self, name: &str, value: &ApiDate);
    /// A list of strings (JSON array, XML repeated elements).
    fn str_list(&mut self, name: &str, values: &[String]);
    /// A nested object.
    fn object<T: WriteFields + ?Sized>(&mut self, name: &str, value: &T);
    /// A list of objects (JSON array, XML repeated elements).
    fn object_list<T: WriteFields>(&mut self, name: &str, items: &[T]);
}

/// Encodes `root` as a JSON object.
pub(crate) fn to_json<T: WriteFields + ?Sized>(root: &T) -> String {
    let mut out = String::with_capacity(192);
    write_json_object(&mut out, root);
    out
}

/// Encodes `root` as the children of a `<result>` element, with no declaration.
pub(crate) fn to_xml<T: WriteFields + ?Sized>(root: &T) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<result>");
    root.write_fields(&mut XmlSink { out: &mut out });
    out.push_str("</result>");
    out
}

fn write_json_object<T: WriteFields + ?Sized>(out: &mut String, value: &T) {
    out.push('{');
    value.write_fields(&mut JsonSink { out, first: true });
    out.push('}');
}

/// Writes a JSON string literal with upstream's escaping rules.
///
/// `"`, `\` and `/` get a backslash; characters below U+0020 and U+FFFE/U+FFFF become `\u00xx` with lower-case
/// hex (no short forms); characters outside the BMP become their two UTF-16 surrogates escaped the same way
/// (upstream escapes every surrogate code unit, so an emoji is `\ud83d\ude00`); everything else, Cyrillic
/// included, is written raw.
pub(crate) fn json_string(out: &mut String, value: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in value.char_indices() {
        let escape = matches!(c, '"' | '\\' | '/' | '\u{0}'..='\u{1f}' | '\u{fffe}'..);
        if !escape {
            continue;
        }
        out.push_str(value.get(start..i).unwrap_or(""));
        match c {
            '"' | '\\' | '/' => {
                out.push('\\');
                out.push(c);
            }
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(value.get(start..).unwrap_or(""));
    out.push('"');
}

/// Writes XML text content.
///
/// `&`, `<`, `>` become entities. Control characters that XML 1.0 cannot carry raw (and `\r`, which parsers
/// would normalise away) become character references so they survive a round trip through our own reader;
/// NUL cannot be represented in XML at all and becomes U+FFFD.
pub(crate) fn xml_text(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, c) in value.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\u{0}' => "\u{fffd}",
            '\t' | '\n' => continue,
            '\u{1}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => "",
            _ => continue,
        };
        out.push_str(value.get(start..i).unwrap_or(""));
        if replacement.is_empty() {
            let _ = write!(out, "&#x{:X};", u32::from(c));
        } else {
            out.push_str(replacement);
        }
        start = i + c.len_utf8();
    }
    out.push_str(value.get(start..).unwrap_or(""));
}

struct JsonSink<'a> {
    out: &'a mut String,
    first: bool,
}

impl JsonSink<'_> {
    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        json_string(self.out, name);
        self.out.push(':');
    }
}

impl Sink for JsonSink<'_> {
    fn null(&mut self, name: &str) {
        self.key(name);
        self.out.push_str("null");
    }

    fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        json_string(self.out, value);
    }

    fn bool(&mut self, name: &str, value: bool) {
        self.key(name);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn int(&mut self, name: &str, value: i64) {
        self.key(name);
        let _ = write!(self.out, "{value}");
    }

    fn date(&mut self, name: &str, value: &ApiDate) {
        self.key(name);
        // Dates never contain characters that need escaping, so they skip the string writer as upstream does.
        self.out.push('"');
        value.write_to(self.out);
        self.out.push('"');
    }

    fn str_list(&mut self, name: &str, values: &[String]) {
        self.key(name);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            json_string(self.out, v);
        }
        self.out.push(']');
    }

    fn object<T: WriteFields + ?Sized>(&mut self, name: &str, value: &T) {
        self.key(name);
        write_json_object(self.out, value);
    }

    fn object_list<T: WriteFields>(&mut self, name: &str, items: &[T]) {
        self.key(name);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_json_object(self.out, item);
        }
        self.out.push(']');
    }
}

struct XmlSink<'a> {
    out: &'a mut String,
}

impl XmlSink<'_> {
    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}

impl Sink for XmlSink<'_> {
    fn null(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" />");
    }

    fn str(&mut self, name: &str, value: &str) {
        // An empty string is `<name></name>`, distinct from null's `<name />`, as Json.NET's converter writes it.
        self.open(name);
        xml_text(self.out, value);
        self.close(name);
    }

    fn bool(&mut self, name: &str, value: bool) {
        self.open(name);
        self.out.push_str(if value { "true" } else { "false" });
        self.close(name);
    }

    fn int(&mut self, name: &str, value: i64) {
        self.open(name);
        let _ = write!(self.out, "{value}");
        self.close(name);
    }

    fn date(&mut self, name: &str, value: &ApiDate) {
        self.open(name);
        value.write_to(self.out);
        self.close(name);
    }

    fn str_list(&mut self, name: &str, values: &[String]) {
        for v in values {
            self.str(name, v);
        }
    }

    fn object<T: WriteFields + ?Sized>(&mut self, name: &str, value: &T) {
        self.open(name);
        value.write_fields(self);
        self.close(name);
    }

    fn object_list<T: WriteFields>(&mut self, name: &str, items: &[T]) {
        for item in items {
            self.object(name, item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping_follows_upstream() {
        let mut s = String::new();
        json_string(&mut s, "a/b\"c\\d\n\u{1f}Жé😀\u{ffff}");
        assert_eq!(s, "\"a\\/b\\\"c\\\\d\\u000a\\u001fЖé\\ud83d\\ude00\\uffff\"");
    }

    #[test]
    fn xml_escaping() {
        let mut s = String::new();
        xml_text(&mut s, "a<b>&\"'\r\n\t\u{0}\u{1}");
        assert_eq!(s, "a&lt;b&gt;&amp;\"'&#xD;\n\t\u{fffd}&#x1;");
    }
}

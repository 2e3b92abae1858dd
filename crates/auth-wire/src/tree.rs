//! A small format-neutral tree that decoded responses pass through, so each DTO has one decoder for both formats.
//!
//! JSON is read with serde_json and converted; XML is read with quick-xml's pull parser into the same tree.
//! XML carries no types, so the accessors accept `"true"` for a boolean and text for a number; that ambiguity is
//! why the decoders are told which DTO to expect instead of guessing.

use quick_xml::events::Event;

/// How deep an XML response may nest; real envelopes use three levels.
const MAX_XML_DEPTH: usize = 32;

/// One decoded value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// JSON `null`, or an XML element written as `<name />`.
    Null,
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number, as its literal text.
    Number(String),
    /// A JSON string or the text of an XML leaf element.
    Text(String),
    /// A JSON array.
    List(Vec<Node>),
    /// A JSON object or an XML element with child elements, members in document order (repeats kept).
    Object(Vec<(String, Node)>),
}

/// What was wrong with the shape of a decoded value; becomes a client error message.
pub(crate) type ShapeResult<T> = Result<T, String>;

impl Node {
    /// The first member called `name`, if this is an object.
    pub(crate) fn field(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The items of a list field: a JSON array, or every repeated XML element of that name.
    pub(crate) fn list_field(&self, name: &str) -> Vec<&Node> {
        let Node::Object(members) = self else { return Vec::new() };
        let mut matches = members.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (matches.next(), matches.next()) {
            (None, _) => Vec::new(),
            (Some(Node::List(items)), None) => items.iter().collect(),
            (Some(first), second) => {
                let mut all = vec![first];
                all.extend(second);
                all.extend(matches);
                all
            }
        }
    }

    /// A string-ish value: `None` for null, the text for strings and numbers.
    pub(crate) fn as_opt_str(&self, what: &str) -> ShapeResult<Option<&str>> {
        match self {
            Node::Null => Ok(None),
            Node::Text(s) | Node::Number(s) => Ok(Some(s)),
            _ => Err(format!("`{what}` is not a string")),
        }
    }

    pub(crate) fn as_bool(&self, what: &str) -> ShapeResult<bool> {
        match self {
            Node::Bool(b) => Ok(*b),
            Node::Text(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Node::Text(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(format!("`{what}` is not a boolean")),
        }
    }

    pub(crate) fn as_int(&self, what: &str) -> ShapeResult<i64> {
        match self {
            Node::Number(s) | Node::Text(s) => {
                s.trim().parse().map_err(|_| format!("`{what}` is not an integer"))
            }
            _ => Err(format!("`{what}` is not an integer")),
        }
    }
}

/// Helpers for reading optional typed members of an object.
pub(crate) fn opt_string(obj: &Node, name: &str) -> ShapeResult<Option<String>> {
    match obj.field(name) {
        None => Ok(None),
        Some(v) => Ok(v.as_opt_str(name)?.map(str::to_owned)),
    }
}

/// A required string member; null or absent is an error.
pub(crate) fn req_string(obj: &Node, name: &str) -> ShapeResult<String> {
    opt_string(obj, name)?.ok_or_else(|| format!("`{name}` is missing"))
}

/// An optional boolean member; absent or null is `false` (the token object omits `false`).
pub(crate) fn flag(obj: &Node, name: &str) -> ShapeResult<bool> {
    match obj.field(name) {
        None | Some(Node::Null) => Ok(false),
        Some(v) => v.as_bool(name),
    }
}

/// Converts a serde_json value.
pub(crate) fn from_json(value: serde_json::Value) -> Node {
    match value {
        serde_json::Value::Null => Node::Null,
        serde_json::Value::Bool(b) => Node::Bool(b),
        serde_json::Value::Number(n) => Node::Number(n.to_string()),
        serde_json::Value::String(s) => Node::Text(s),
        serde_json::Value::Array(items) => Node::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Node::Object(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// An element being read: its name, child elements so far, and its own text so far.
struct Frame {
    name: String,
    children: Vec<(String, Node)>,
    text: String,
}

impl Frame {
    fn finish(self) -> (String, Node) {
        // Text between child elements is formatting whitespace in every envelope we read, so a parent drops it.
        let node = if self.children.is_empty() {
            Node::Text(self.text)
        } else {
            Node::Object(self.children)
        };
        (self.name, node)
    }
}

/// Parses an XML document into its root element's name and value.
///
/// The reader is iterative (no recursion) and depth-limited, so hostile nesting cannot exhaust the stack.
/// A DTD is refused because nothing we read needs one and it is the door to entity expansion attacks.
pub(crate) fn parse_xml(bytes: &[u8]) -> ShapeResult<(String, Node)> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Node)> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("invalid XML: {e}"))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err("XML has more than one root element".to_owned());
                }
                if stack.len() >= MAX_XML_DEPTH {
                    return Err("XML nests too deeply".to_owned());
                }
                let name = utf8(e.name().as_ref())?;
                stack.push(Frame { name, children: Vec::new(), text: String::new() });
            }
            Event::Empty(e) => {
                let name = utf8(e.name().as_ref())?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, Node::Null)),
                    None if root.is_none() => root = Some((name, Node::Null)),
                    None => return Err("XML has more than one root element".to_owned()),
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or("unbalanced XML end tag")?;
                let finished = frame.finish();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(finished),
                    None => root = Some(finished),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("invalid XML text: {e}"))?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err("text outside the XML root element".to_owned()),
                }
            }
            Event::CData(c) => {
                let text = utf8(&c.into_inner())?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&text),
                    None => return Err("text outside the XML root element".to_owned()),
                }
            }
            Event::DocType(_) => return Err("XML with a DTD is refused".to_owned()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("XML ends inside an element".to_owned());
    }
    root.ok_or_else(|| "XML has no root element".to_owned())
}

fn utf8(bytes: &[u8]) -> ShapeResult<String> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| "XML is not valid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envelope_shapes() {
        let (name, node) = parse_xml(
            b"<result><a /><b></b><c>x&amp;y</c><d><e>1</e></d><l>1</l><l>2</l></result>",
        )
        .unwrap();
        assert_eq!(name, "result");
        assert_eq!(node.field("a"), Some(&Node::Null));
        assert_eq!(node.field("b"), Some(&Node::Text(String::new())));
        assert_eq!(node.field("c"), Some(&Node::Text("x&y".into())));
        assert_eq!(node.field("d").and_then(|d| d.field("e")), Some(&Node::Text("1".into())));
        assert_eq!(node.list_field("l").len(), 2);
    }

    #[test]
    fn refuses_hostile_xml() {
        assert!(parse_xml(b"<!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>").is_err());
        let deep = "<a>".repeat(100_000);
        assert!(parse_xml(deep.as_bytes()).is_err());
        assert!(parse_xml(b"<a></a><b></b>").is_err());
        assert!(parse_xml(b"<a>").is_err());
        assert!(parse_xml(b"").is_err());
        assert!(parse_xml(b"<a></b>").is_err());
    }
}

//! A small `multipart/form-data` reader (RFC 7578) for bodies already in memory.
//!
//! The well-kept crates (`multer`, `multipart`) are built around async streams and bring `http`, `futures`
//! and friends into the dependency tree of every client. Our bodies are at most 64 KiB and fully buffered, and
//! we only need the text fields, so a careful slice-based reader is smaller and easier to audit. Parts with a
//! `filename` are files, which upstream's form collection does not include either, so they are skipped.

use crate::body::DecodeError;

fn err(msg: &str) -> DecodeError {
    DecodeError::Multipart(msg.to_owned())
}

/// Decodes the text fields of a multipart body; `content_type` must carry the `boundary` parameter.
pub(crate) fn decode(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, DecodeError> {
    let boundary = header_params(content_type)
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .ok_or_else(|| err("no boundary in the content type"))?;
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(err("bad boundary length"));
    }
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let delimiter = [b"\r\n".as_slice(), &dash_boundary].concat();

    // The first boundary may open the body or follow a preamble (which is ignored).
    let mut rest = match body.strip_prefix(dash_boundary.as_slice()) {
        Some(rest) => rest,
        None => {
            let at = find(body, &delimiter).ok_or_else(|| err("no opening boundary"))?;
            body.get(at + delimiter.len()..).unwrap_or_default()
        }
    };
    let mut fields = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            // The close delimiter; anything after it is an epilogue and ignored.
            return Ok(fields);
        }
        // Transport padding (linear whitespace) may follow a boundary before its line break.
        let trimmed = trim_padding(rest);
        let after_boundary = trimmed
            .strip_prefix(b"\r\n")
            .ok_or_else(|| err("boundary not followed by a line break"))?;
        let (headers, content_and_rest) = match after_boundary.strip_prefix(b"\r\n") {
            Some(no_headers) => (&b""[..], no_headers),
            None => {
                let end = find(after_boundary, b"\r\n\r\n")
                    .ok_or_else(|| err("part headers do not end"))?;
                let (headers, tail) =
                    after_boundary.split_at_checked(end).ok_or_else(|| err("part headers"))?;
                (headers, tail.get(4..).unwrap_or_default())
            }
        };
        let end = find(content_and_rest, &delimiter)
            .ok_or_else(|| err("part is not terminated by a boundary"))?;
        let (content, tail) =
            content_and_rest.split_at_checked(end).ok_or_else(|| err("part content"))?;
        rest = tail.get(delimiter.len()..).unwrap_or_default();

        if let Some(name) = field_name(headers)? {
            fields.push((name, String::from_utf8_lossy(content).into_owned()));
        }
    }
}

/// The `name` of a form-data part, or `None` for a part that is a file or not form-data.
fn field_name(headers: &[u8]) -> Result<Option<String>, DecodeError> {
    let headers = std::str::from_utf8(headers).map_err(|_| err("part headers are not UTF-8"))?;
    for line in headers.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else { continue };
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let kind = value.split(';').next().unwrap_or("").trim();
        if !kind.eq_ignore_ascii_case("form-data") {
            return Ok(None);
        }
        let params: Vec<(String, String)> = header_params(value).collect();
        if params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("filename") || k.eq_ignore_ascii_case("filename*"))
        {
            return Ok(None);
        }
        return Ok(params
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("name"))
            .map(|(_, v)| v));
    }
    Ok(None)
}

/// The `key=value` parameters after the first `;` of a header value; values may be quoted with `\` escapes.
fn header_params(value: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut chars = value.chars().peekable();
    // Skip the leading media type / disposition type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    std::iter::from_fn(move || {
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
                chars.next();
            }
            chars.peek()?;
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c == ';' {
                    break;
                }
                key.push(c);
                chars.next();
            }
            let mut val = String::new();
            if chars.peek() == Some(&'=') {
                chars.next();
                while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                    chars.next();
                }
                if chars.peek() == Some(&'"') {
                    chars.next();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => val.extend(chars.next()),
                            _ => val.push(c),
                        }
                    }
                    // Whatever follows the closing quote up to the next `;` is junk; skip it.
                    while chars.peek().is_some_and(|c| *c != ';') {
                        chars.next();
                    }
                } else {
                    while let Some(&c) = chars.peek() {
                        if c == ';' {
                            break;
                        }
                        val.push(c);
                        chars.next();
                    }
                    val.truncate(val.trim_end().len());
                }
            }
            let key = key.trim().to_owned();
            if !key.is_empty() {
                return Some((key, val));
            }
        }
    })
}

fn trim_padding(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
    bytes.get(skip..).unwrap_or_default()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=\"XyZ\"";

    #[test]
    fn reads_text_fields_and_skips_files() {
        let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"userName\"\r\n\r\na@b.c\r\n\
                    --XyZ  \r\ncontent-disposition: form-data; name=\"pass;word\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nFILE\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n--XyZ--\r\nepilogue";
        let got = decode(CT, body.as_bytes()).unwrap();
        let want: Vec<(String, String)> = vec![
            ("userName".into(), "a@b.c".into()),
            ("pass;word".into(), "line1\r\nline2".into()),
            ("empty".into(), String::new()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn errors_are_typed() {
        assert!(decode("multipart/form-data", b"x").is_err());
        assert!(
            decode(CT, b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno end").is_err()
        );
        assert!(decode(CT, b"nothing here").is_err());
        assert_eq!(decode(CT, b"--XyZ--").unwrap(), Vec::new());
    }
}

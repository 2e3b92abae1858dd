//! Hostile input over real HTTP: every request of the corpus in `tests/data/hostile/` gets the answer its
//! manifest names — a 4xx error envelope with the right `code`, or, for malformed HTTP framing that hyper
//! refuses before our code runs, a bare 4xx (see `docs/SECURITY.md`) — never a 5xx and never a hang; the
//! server serves the next request after each family, and the corpus changes nothing.
//!
//! The corpus format is described in `tests/data/hostile/README.md`: one JSON manifest per family, each case
//! a request built from literal text, hex bytes and `{"repeat": …, "times": N}` runs (so a 10 000-deep JSON
//! document is a short line in the file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Exchange, Response, ServerOptions, TestServer, base64, exchange};
use serde_json::Value;

const USER: &str = "hostile@example.com";
const PASS: &str = "Hostile-Pass-1";

/// The longest any one case may take; anything slower is a hang. The slowest legitimate answers are the
/// 408s and header-timeout closes, which the server gives after its 2 s timeouts.
const CASE_DEADLINE: Duration = Duration::from_secs(10);

/// Cases run in parallel, this many at a time.
const THREADS: usize = 8;

/// What a case must get back.
#[derive(Debug, Clone)]
enum Expect {
    /// An error envelope with this status (and code, when given), in JSON or XML.
    Envelope { status: u16, code: Option<String>, message: Option<String>, xml: bool },
    /// A success with exactly this body.
    Body { status: u16, body: String },
    /// A response written by hyper itself for broken framing: this status, no envelope.
    Bare { status: u16 },
    /// The connection is closed without a response (a header timeout).
    Closed,
}

/// One corpus case, resolved to the bytes that go on the wire.
#[derive(Debug, Clone)]
struct Case {
    family: String,
    name: String,
    bytes: Vec<u8>,
    half_close: bool,
    expect: Expect,
}

/// Placeholder values substituted into every literal segment.
struct Vars {
    host: String,
    basic: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join("hostile")
}

/// Expands a value: a string is literal text; an array is a list of segments, each a string, a
/// `{"hex": "…"}` or a `{"repeat": "…", "times": N}`.
fn expand(value: &Value, vars: &Vars, what: &str) -> Vec<u8> {
    let literal = |s: &str| {
        s.replace("{{USER}}", USER)
            .replace("{{PASS}}", PASS)
            .replace("{{BASIC}}", &vars.basic)
            .replace("{{HOST}}", &vars.host)
            .into_bytes()
    };
    match value {
        Value::String(s) => literal(s),
        Value::Array(parts) => parts
            .iter()
            .flat_map(|part| match part {
                Value::String(s) => literal(s),
                Value::Object(o) => {
                    if let Some(hex) = o.get("hex").and_then(Value::as_str) {
                        assert!(hex.len() % 2 == 0, "{what}: odd hex {hex}");
                        (0..hex.len())
                            .step_by(2)
                            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
                            .collect()
                    } else {
                        let unit = o.get("repeat").and_then(Value::as_str).expect("repeat");
                        let times = o.get("times").and_then(Value::as_u64).expect("times");
                        literal(unit).repeat(usize::try_from(times).expect("times"))
                    }
                }
                other => panic!("{what}: bad segment {other}"),
            })
            .collect(),
        other => panic!("{what}: bad value {other}"),
    }
}

fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Builds the request bytes of a non-raw case.
fn build(case: &Value, vars: &Vars, what: &str) -> Vec<u8> {
    let text = |key: &str, default: &str| {
        case.get(key).map_or_else(|| default.as_bytes().to_vec(), |v| expand(v, vars, what))
    };
    let method = text("method", "POST");
    let mut out = method.clone();
    out.push(b' ');
    out.extend(text("path", "/api/2.0/authentication"));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let headers: Vec<(String, Vec<u8>)> = case
        .get("headers")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let name = h[0].as_str().expect("header name").to_owned();
                    (name, expand(&h[1], vars, what))
                })
                .collect()
        })
        .unwrap_or_default();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        out.extend_from_slice(format!("Host: {}\r\n", vars.host).as_bytes());
    }
    for (k, v) in &headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(ct) = case.get("content_type") {
        out.extend_from_slice(b"Content-Type: ");
        out.extend(expand(ct, vars, what));
        out.extend_from_slice(b"\r\n");
    }
    let body = text("body", "");
    let transfer = case.get("transfer").and_then(Value::as_str);
    let mut framed = Vec::new();
    match transfer {
        None => {
            let length = case
                .get("content_length")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| body.len().to_string());
            if !body.is_empty() || method == b"POST" || method == b"PUT" {
                out.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
            }
            framed = body;
        }
        Some(kind) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            let size = match kind {
                "chunked-single" => body.len().max(1),
                "chunked-bytes" => 1,
                _ => 1000,
            };
            for piece in body.chunks(size) {
                chunk(&mut framed, piece);
            }
            if kind != "chunked-open" {
                framed.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend(framed);
    out
}

fn load(vars: &Vars) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/data/hostile")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("manifest");
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        let family = doc["family"].as_str().expect("family").to_owned();
        for c in doc["cases"].as_array().expect("cases") {
            let name = c["name"].as_str().expect("name").to_owned();
            let what = format!("{family}/{name}");
            let bytes = match c.get("raw") {
                Some(raw) => expand(raw, vars, &what),
                None => build(c, vars, &what),
            };
            let e = &c["expect"];
            let status = e.get("status").and_then(Value::as_u64).map(|s| s as u16);
            let expect = if e.get("closed").is_some() {
                Expect::Closed
            } else if e.get("bare").is_some() {
                Expect::Bare { status: status.expect("status") }
            } else if let Some(body) = e.get("body").and_then(Value::as_str) {
                Expect::Body { status: status.expect("status"), body: body.to_owned() }
            } else {
                Expect::Envelope {
                    status: status.expect("status"),
                    code: e.get("code").and_then(Value::as_str).map(str::to_owned),
                    message: e.get("message").and_then(Value::as_str).map(str::to_owned),
                    xml: e.get("format").and_then(Value::as_str) == Some("xml"),
                }
            };
            let half_close = c.get("half_close").and_then(Value::as_bool).unwrap_or(false);
            cases.push(Case { family: family.clone(), name, bytes, half_close, expect });
        }
    }
    cases
}

/// Checks one answer; `Err` says what was wrong.
fn check(case: &Case, got: &Exchange) -> Result<(), String> {
    let response = match (got, &case.expect) {
        (Exchange::TimedOut { received }, _) => {
            return Err(format!(
                "no answer within {CASE_DEADLINE:?} (a hang); had {} bytes",
                received.len()
            ));
        }
        (Exchange::Unreachable(e), _) => return Err(e.clone()),
        (Exchange::Closed, Expect::Closed) => return Ok(()),
        (Exchange::Closed, _) => return Err("closed without a response".into()),
        (Exchange::Response(r), _) => r,
    };
    if response.status >= 500 {
        return Err(format!("{} {}", response.status, response.text()));
    }
    let status_is = |want: u16| {
        if response.status == want {
            Ok(())
        } else {
            Err(format!("status {} (want {want}): {}", response.status, response.text()))
        }
    };
    match &case.expect {
        Expect::Closed => Err(format!("answered {} instead of closing", response.status)),
        // hyper's own answer: the status, `content-length: 0`, and the connection closed.
        Expect::Bare { status } => {
            status_is(*status)?;
            if response.body.is_empty() && response.header("connection") == Some("close") {
                Ok(())
            } else {
                Err(format!("not hyper's bare answer: {:?} {}", response.headers, response.text()))
            }
        }
        Expect::Body { status, body } => {
            status_is(*status)?;
            if response.text() == *body { Ok(()) } else { Err(format!("body {}", response.text())) }
        }
        Expect::Envelope { status, code, message, xml } => {
            status_is(*status)?;
            if !(400..500).contains(status) {
                return Err(format!("manifest expects a non-4xx envelope {status}"));
            }
            check_envelope(response, *status, code.as_deref(), *xml)?;
            // Where the reason matters (a DTD, an ignored member), the message must say it.
            match message {
                Some(m) if !response.text().contains(m.as_str()) => {
                    Err(format!("message is not {m:?}: {}", response.text()))
                }
                _ => Ok(()),
            }
        }
    }
}

/// The error envelope of spec §3, in the format asked for.
fn check_envelope(r: &Response, status: u16, code: Option<&str>, xml: bool) -> Result<(), String> {
    let text = r.text();
    if xml {
        if r.header("content-type") != Some("text/xml; charset=utf-8") {
            return Err(format!("content type {:?}", r.header("content-type")));
        }
        let head =
            format!("<result><status>1</status><statusCode>{status}</statusCode><error><message>");
        let code_ok = code.is_none_or(|c| text.contains(&format!("<code>{c}</code>")));
        return if text.starts_with(&head) && text.ends_with("</error></result>") && code_ok {
            Ok(())
        } else {
            Err(format!("not the XML error envelope: {text}"))
        };
    }
    if r.header("content-type") != Some("application/json; charset=utf-8") {
        return Err(format!("content type {:?}: {text}", r.header("content-type")));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
    let keys: Vec<&str> =
        v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    let message_ok = v["error"]["message"].as_str().is_some_and(|m| !m.is_empty());
    let code_ok = code.is_none_or(|c| v["error"]["code"] == c) && v["error"]["code"].is_string();
    if v["status"] == 1 && v["statusCode"] == status && keys.len() == 3 && message_ok && code_ok {
        Ok(())
    } else {
        Err(format!(
            "not the error envelope{}: {text}",
            code.map(|c| format!(" ({c})")).unwrap_or_default()
        ))
    }
}

fn healthy(addr: SocketAddr) -> Result<(), String> {
    match exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        CASE_DEADLINE,
        false,
    ) {
        Exchange::Response(r) if r.status == 200 => Ok(()),
        other => Err(format!("/healthz: {other:?}")),
    }
}

/// A server for the corpus: an SMS-2FA portal whose login throttle will not engage (the corpus repeats
/// wrong passwords for its one user), 2 s header and body timeouts, and one user without a phone.
fn hostile_server() -> TestServer {
    let data = DataDir::new();
    data.run_cli(&[
        "portal",
        "set",
        "--tfa",
        "sms",
        "--set",
        "login_limit=1000000",
        "--set",
        "account_limit=1000000",
    ])
    .ok();
    data.run_cli(&["user", "add", "--email", USER, "--password", PASS]).ok();
    TestServer::start_in(
        data,
        ServerOptions::new()
            .env("AUTH_HTTP__HEADER_TIMEOUT_SECS", "2")
            .env("AUTH_HTTP__BODY_TIMEOUT_SECS", "2"),
    )
}

#[test]
fn every_hostile_request_gets_a_clear_4xx_and_the_server_keeps_serving() {
    let server = hostile_server();
    let addr = server.addr();
    let vars = Vars { host: addr.to_string(), basic: base64(format!("{USER}:{PASS}").as_bytes()) };
    let cases = load(&vars);
    assert!(cases.len() >= 200, "the corpus has only {} cases", cases.len());
    let mut names: Vec<String> = cases.iter().map(|c| format!("{}/{}", c.family, c.name)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut families: Vec<&str> = cases.iter().map(|c| c.family.as_str()).collect();
    families.dedup();
    for family in families {
        let batch: Vec<&Case> = cases.iter().filter(|c| c.family == family).collect();
        let per_thread = batch.len().div_ceil(THREADS);
        let results: Vec<(String, Result<(), String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .chunks(per_thread.max(1))
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|c| {
                                let got = exchange(addr, &c.bytes, CASE_DEADLINE, c.half_close);
                                (format!("{}/{}", c.family, c.name), check(c, &got))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("case thread")).collect()
        });
        failures
            .extend(results.into_iter().filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}"))));
        // The server still serves the next request after every family.
        if let Err(e) = healthy(addr) {
            failures.push(format!("after {family}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n--- server log tail\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        tail(&server.stderr(), 40)
    );

    // The corpus changed nothing: no phone stored, no SMS sent, no token issued, and the user still logs
    // in (step 1 of the SMS portal: no phone yet, so nothing is sent).
    let users = server.run_cli(&["user", "list", "--json"]).json();
    let user = users.as_array().expect("users").iter().find(|u| u["email"] == USER).expect("user");
    assert!(user.get("phone").is_none_or(Value::is_null), "{user}");
    assert!(server.sms_messages().is_empty(), "{:?}", server.sms_messages());
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    let login = server.post_form(
        "/api/2.0/authentication",
        &format!("userName={}&password={PASS}", USER.replace('@', "%40")),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(
        login.text(),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"sms":true}}"#
    );
    eprintln!("hostile corpus: {} cases in {:?}", cases.len(), started.elapsed());
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

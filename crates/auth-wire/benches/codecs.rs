//! Codec micro-benchmarks (issue 6): the token envelope encoded and decoded in JSON and XML, the
//! `people/@self` and error envelopes the server writes most, and request decoding of JSON, form,
//! multipart and XML bodies into the parameter bag.
//!
//! Run with `cargo bench -p auth-wire` (add `-- --quick` for a fast, rougher pass). The numbers are
//! per operation; docs/PERFORMANCE.md explains how they relate to a request's cost.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use auth_wire::{
    ApiDate, DEFAULT_BODY_LIMIT, Envelope, ErrorCode, ErrorEnvelope, Format, Params, Profile,
    ProfilePhone, TokenResponse, decode_body, decode_response,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A token as the server issues it: 32 random bytes in base64url, 43 characters.
const TOKEN: &str = "q3Jx0v9cV6eL1mW2nB8kT4pR7sY5uZ0aH3dG6fJ9iK1";

fn expires() -> ApiDate {
    ApiDate::new(1_768_031_184, 420_689_700, 3 * 3600).unwrap()
}

fn issued() -> Envelope {
    Envelope::ok(200, TokenResponse::issued(TOKEN, expires()))
}

fn sms_challenge() -> Envelope {
    Envelope::ok(200, TokenResponse::sms_challenge(Some(expires()), Some("+7912***6789".into())))
}

fn profile() -> Envelope {
    Envelope::ok(
        200,
        Profile {
            id: "6f1c3a52-8a7e-4c1b-9d43-2b8f0e9a1c77".into(),
            user_name: "alice@example.com".into(),
            first_name: "Alice".into(),
            last_name: "Liddell".into(),
            display_name: "Alice Liddell".into(),
            email: "alice@example.com".into(),
            phone: Some(ProfilePhone { noise: "+7912***6789".into(), activated: true }),
            is_admin: false,
        },
    )
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, env) in
        [("token", issued()), ("sms_challenge", sms_challenge()), ("self", profile())]
    {
        g.bench_function(format!("{name}/json"), |b| b.iter(|| black_box(&env).to_json()));
        g.bench_function(format!("{name}/xml"), |b| b.iter(|| black_box(&env).to_xml()));
    }
    let error = ErrorEnvelope::new(ErrorCode::InvalidCredentials);
    g.bench_function("error/json", |b| b.iter(|| black_box(&error).to_json()));
    g.bench_function("error/xml", |b| b.iter(|| black_box(&error).to_xml()));
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, env) in [("token", issued()), ("sms_challenge", sms_challenge())] {
        for format in [Format::Json, Format::Xml] {
            let bytes = env.encode(format);
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_function(format!("{name}/{}", label(format)), |b| {
                b.iter(|| decode_response::<TokenResponse>(format, black_box(&bytes)).unwrap())
            });
        }
    }
    let bytes = profile().to_json();
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("self/json", |b| {
        b.iter(|| decode_response::<Profile>(Format::Json, black_box(&bytes)).unwrap())
    });
    g.finish();
}

fn label(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Xml => "xml",
    }
}

/// The request bodies real clients send to `POST authentication`, in each accepted type.
fn request_bodies() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    const BOUNDARY: &str = "----bench7MA4YWxkTrZu0gW";
    let multipart = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"userName\"\r\n\r\nalice@example.com\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ncorrect horse battery\r\n\
         --{BOUNDARY}--\r\n"
    );
    vec![
        (
            "json",
            "application/json; charset=utf-8",
            // What the Android app sends: extra members and nulls that must be ignored.
            br#"{"userName":"alice@example.com","password":"correct horse battery","portal":"portal.example.com","code":"","codeOauth":null,"provider":""}"#.to_vec(),
        ),
        (
            "form",
            "application/x-www-form-urlencoded",
            b"userName=alice%40example.com&password=correct+horse+battery&provider=".to_vec(),
        ),
        (
            "xml",
            "text/xml",
            b"<request><userName>alice@example.com</userName><password>correct horse battery</password><provider></provider></request>".to_vec(),
        ),
        ("multipart", "multipart/form-data; boundary=----bench7MA4YWxkTrZu0gW", multipart.into_bytes()),
    ]
}

fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    for (name, content_type, body) in request_bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        // The body decoder alone …
        g.bench_function(format!("body/{name}"), |b| {
            b.iter(|| {
                decode_body(Some(content_type), black_box(&body), DEFAULT_BODY_LIMIT).unwrap()
            })
        });
        // … and the whole parameter bag as the router builds it, up to the credentials.
        g.bench_function(format!("credentials/{name}"), |b| {
            b.iter(|| {
                Params::builder()
                    .query(black_box(""))
                    .body(Some(content_type), black_box(&body))
                    .unwrap()
                    .build()
                    .credentials()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode, requests);
criterion_main!(benches);

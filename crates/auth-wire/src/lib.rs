//! The bytes of the portal authentication API (API.md §2–§3), for the server and for clients.
//!
//! This crate knows the wire and nothing else: the JSON and XML envelopes with their exact key order and
//! omission rules, the DTOs, the date format, response-format negotiation, and request decoding into a
//! case-insensitive parameter bag. It does no I/O and depends on none of our other crates (nor on tokio or
//! hyper), so an SDK can use it alone.
//!
//! Server side:
//!
//! ```
//! use auth_wire::{negotiate, split_suffix, ApiDate, Envelope, ErrorCode, ErrorEnvelope, Params, TokenResponse};
//!
//! let (name, suffix) = split_suffix("authentication.xml").unwrap();
//! assert_eq!(name, "authentication");
//! let format = negotiate(suffix, Some("application/json"));
//! let params = Params::builder()
//!     .query("")
//!     .body(Some("application/x-www-form-urlencoded"), b"username=alice%40example.com&password=s3cret")
//!     .unwrap()
//!     .build();
//! let credentials = params.credentials();
//! assert_eq!(credentials.user_name.as_deref(), Some("alice@example.com"));
//!
//! let expires = ApiDate::new(1_768_031_184, 420_689_700, 0).unwrap();
//! let body = Envelope::ok(200, TokenResponse::sms_challenge(Some(expires), Some("+7912***6789".into())))
//!     .encode(format);
//! assert!(body.starts_with(b"<result><count>1</count>"));
//! let error = ErrorEnvelope::new(ErrorCode::InvalidCredentials).to_json();
//! assert_eq!(
//!     error,
//!     br#"{"status":1,"statusCode":401,"error":{"message":"User authentication failed","code":"invalid_credentials"}}"#
//! );
//! ```

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod api;
mod body;
mod client;
mod date;
pub mod door;
mod dto;
mod envelope;
mod error_code;
mod format;
mod multipart;
mod params;
mod tree;
mod write;

pub use api::{Endpoint, Login, Method, RequestError, Secret};
pub use body::{DEFAULT_BODY_LIMIT, DecodeError, decode_body};
pub use client::BodyFormat;
pub use date::{ApiDate, DateError};
pub use dto::{
    ActiveConnections, BackupCode, Capabilities, Connection, Profile, ProfilePhone, ProviderLink,
    TokenResponse,
};
pub use envelope::{
    ApiError, ClientError, Envelope, ErrorEnvelope, Payload, PayloadKind, ResponseType,
    decode_response,
};
pub use error_code::{ErrorCode, UnknownErrorCode};
pub use format::{Format, Suffix, UnknownSuffix, negotiate, split_suffix};
pub use params::{Credentials, Params, ParamsBuilder, basic_credentials};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

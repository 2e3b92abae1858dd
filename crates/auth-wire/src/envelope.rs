//! The success and error envelopes (API.md §3), encoded to exact bytes and decoded back for clients.
//!
//! JSON: `{"count":1,"status":0,"statusCode":200,"response":{…}}` and
//! `{"status":1,"statusCode":401,"error":{"message":"…","code":"…"}}`. XML: the same members under `<result>`.

use crate::dto::{
    ActiveConnections, BackupCode, Capabilities, Profile, ProviderLink, TokenResponse,
};
use crate::error_code::ErrorCode;
use crate::format::Format;
use crate::tree::{self, Node, ShapeResult};
use crate::write::{self, Sink, WriteFields};

/// The `response` member of a success envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The token object of the credential endpoints.
    Token(TokenResponse),
    /// `people/@self`.
    Profile(Profile),
    /// `capabilities`.
    Capabilities(Capabilities),
    /// The backup codes list (`count` is its length).
    BackupCodes(Vec<BackupCode>),
    /// The portal's social providers and whether the caller linked each (`count` is its length).
    ProviderLinks(Vec<ProviderLink>),
    /// `"response":true` (logout, tfaappnewapp) or the answer of `GET authentication`.
    Bool(bool),
    /// The caller's sessions (`GET security/activeconnections`).
    ActiveConnections(ActiveConnections),
    /// A bare string: the caller's display name, which upstream answers to
    /// `PUT security/activeconnections/logoutallexceptthis`.
    String(String),
}

/// Which [`Payload`] a client expects; XML carries no types, so the decoder must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// [`Payload::Token`].
    Token,
    /// [`Payload::Profile`].
    Profile,
    /// [`Payload::Capabilities`].
    Capabilities,
    /// [`Payload::BackupCodes`].
    BackupCodes,
    /// [`Payload::ProviderLinks`].
    ProviderLinks,
    /// [`Payload::Bool`].
    Bool,
    /// [`Payload::ActiveConnections`].
    ActiveConnections,
    /// [`Payload::String`].
    String,
}

impl Payload {
    /// The kind of this payload.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Token(_) => PayloadKind::Token,
            Payload::Profile(_) => PayloadKind::Profile,
            Payload::Capabilities(_) => PayloadKind::Capabilities,
            Payload::BackupCodes(_) => PayloadKind::BackupCodes,
            Payload::ProviderLinks(_) => PayloadKind::ProviderLinks,
            Payload::Bool(_) => PayloadKind::Bool,
            Payload::ActiveConnections(_) => PayloadKind::ActiveConnections,
            Payload::String(_) => PayloadKind::String,
        }
    }

    /// The envelope's `count`: the list length for lists, 1 otherwise.
    pub fn count(&self) -> usize {
        match self {
            Payload::BackupCodes(codes) => codes.len(),
            Payload::ProviderLinks(links) => links.len(),
            _ => 1,
        }
    }

    fn write_response<S: Sink>(&self, s: &mut S) {
        match self {
            Payload::Token(t) => s.object("response", t),
            Payload::Profile(p) => s.object("response", p),
            Payload::Capabilities(c) => s.object("response", c),
            Payload::BackupCodes(codes) => s.object_list("response", codes),
            Payload::ProviderLinks(links) => s.object_list("response", links),
            Payload::Bool(b) => s.bool("response", *b),
            Payload::ActiveConnections(c) => s.object("response", c),
            Payload::String(text) => s.str("response", text),
        }
    }

    fn from_envelope(root: &Node, kind: PayloadKind) -> ShapeResult<Payload> {
        if kind == PayloadKind::BackupCodes {
            // An empty list has no `<response>` element in XML at all, so absence means "no codes".
            let codes = root.list_field("response").into_iter().map(BackupCode::from_node);
            return codes.collect::<ShapeResult<Vec<_>>>().map(Payload::BackupCodes);
        }
        if kind == PayloadKind::ProviderLinks {
            let links = root.list_field("response").into_iter().map(ProviderLink::from_node);
            return links.collect::<ShapeResult<Vec<_>>>().map(Payload::ProviderLinks);
        }
        let response = root.field("response").ok_or("the envelope has no `response`")?;
        Ok(match kind {
            PayloadKind::Token => Payload::Token(TokenResponse::from_node(response)?),
            PayloadKind::Profile => Payload::Profile(Profile::from_node(response)?),
            PayloadKind::Capabilities => Payload::Capabilities(Capabilities::from_node(response)?),
            PayloadKind::Bool => Payload::Bool(response.as_bool("response")?),
            PayloadKind::ActiveConnections => {
                Payload::ActiveConnections(ActiveConnections::from_node(response)?)
            }
            PayloadKind::String => {
                Payload::String(response.as_opt_str("response")?.unwrap_or_default().to_owned())
            }
            PayloadKind::BackupCodes => Payload::BackupCodes(Vec::new()),
            PayloadKind::ProviderLinks => Payload::ProviderLinks(Vec::new()),
        })
    }
}

impl From<TokenResponse> for Payload {
    fn from(v: TokenResponse) -> Self {
        Payload::Token(v)
    }
}

impl From<Profile> for Payload {
    fn from(v: Profile) -> Self {
        Payload::Profile(v)
    }
}

impl From<Capabilities> for Payload {
    fn from(v: Capabilities) -> Self {
        Payload::Capabilities(v)
    }
}

impl From<Vec<BackupCode>> for Payload {
    fn from(v: Vec<BackupCode>) -> Self {
        Payload::BackupCodes(v)
    }
}

impl From<Vec<ProviderLink>> for Payload {
    fn from(v: Vec<ProviderLink>) -> Self {
        Payload::ProviderLinks(v)
    }
}

impl From<ActiveConnections> for Payload {
    fn from(v: ActiveConnections) -> Self {
        Payload::ActiveConnections(v)
    }
}

impl From<String> for Payload {
    fn from(v: String) -> Self {
        Payload::String(v)
    }
}

impl From<bool> for Payload {
    fn from(v: bool) -> Self {
        Payload::Bool(v)
    }
}

/// A type that can be the `response` of a success envelope; lets clients decode straight into it.
pub trait ResponseType: Into<Payload> + Sized {
    /// The payload kind to decode.
    const KIND: PayloadKind;

    /// Takes the value out of a payload of kind [`Self::KIND`].
    fn from_payload(payload: Payload) -> Option<Self>;
}

macro_rules! response_type {
    ($ty:ty, $kind:ident) => {
        impl ResponseType for $ty {
            const KIND: PayloadKind = PayloadKind::$kind;

            fn from_payload(payload: Payload) -> Option<Self> {
                match payload {
                    Payload::$kind(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

response_type!(TokenResponse, Token);
response_type!(Profile, Profile);
response_type!(Capabilities, Capabilities);
response_type!(Vec<BackupCode>, BackupCodes);
response_type!(Vec<ProviderLink>, ProviderLinks);
response_type!(bool, Bool);
response_type!(ActiveConnections, ActiveConnections);
response_type!(String, String);

/// A success envelope: HTTP status plus payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The HTTP status, repeated as `statusCode` (200 for every success here; the SDK treats other 2xx as empty).
    pub status_code: u16,
    /// The `response` member.
    pub payload: Payload,
}

impl Envelope {
    /// A success envelope.
    pub fn ok(status_code: u16, payload: impl Into<Payload>) -> Envelope {
        Envelope { status_code, payload: payload.into() }
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        write::to_json(self).into_bytes()
    }

    /// The XML bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        write::to_xml(self).into_bytes()
    }

    /// The bytes in the given format.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Json => self.to_json(),
            Format::Xml => self.to_xml(),
        }
    }

    /// Decodes a response body (for clients): the success envelope, or the server's error as
    /// [`ClientError::Api`].
    ///
    /// # Errors
    /// [`ClientError::Api`] for an error envelope, [`ClientError::Malformed`] for anything that is not an
    /// envelope of the expected kind.
    pub fn decode(format: Format, body: &[u8], kind: PayloadKind) -> Result<Envelope, ClientError> {
        let root = parse_root(format, body)?;
        let status = match root.field("status") {
            Some(s) => s.as_int("status").map_err(ClientError::Malformed)?,
            None => 0,
        };
        let status_code = match root.field("statusCode") {
            Some(s) => {
                s.as_int("statusCode").and_then(status_u16).map_err(ClientError::Malformed)?
            }
            None => 200,
        };
        if status != 0 || root.field("error").is_some() {
            return Err(ClientError::Api(
                ApiError::from_node(&root, status_code).map_err(ClientError::Malformed)?,
            ));
        }
        let payload = Payload::from_envelope(&root, kind).map_err(ClientError::Malformed)?;
        Ok(Envelope { status_code, payload })
    }
}

impl WriteFields for Envelope {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        let count = self.payload.count();
        if count != 0 {
            s.int("count", i64::try_from(count).unwrap_or(i64::MAX));
        }
        s.int("status", 0);
        s.int("statusCode", i64::from(self.status_code));
        self.payload.write_response(s);
    }
}

/// An error envelope: `{"status":1,"statusCode":…,"error":{"message":…,"code":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    /// The HTTP status, repeated as `statusCode`.
    pub status_code: u16,
    /// The stable code.
    pub code: ErrorCode,
    /// Human text.
    pub message: String,
}

impl ErrorEnvelope {
    /// The envelope for `code` with the spec's status and default message.
    pub fn new(code: ErrorCode) -> ErrorEnvelope {
        ErrorEnvelope {
            status_code: code.status_code(),
            code,
            message: code.default_message().to_owned(),
        }
    }

    /// The envelope for `code` with its spec status and a specific message (e.g. `userName empty`).
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> ErrorEnvelope {
        ErrorEnvelope { status_code: code.status_code(), code, message: message.into() }
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        write::to_json(self).into_bytes()
    }

    /// The XML bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        write::to_xml(self).into_bytes()
    }

    /// The bytes in the given format.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Json => self.to_json(),
            Format::Xml => self.to_xml(),
        }
    }
}

/// The `error` object's members, in wire order.
struct ErrorBody<'a> {
    message: &'a str,
    code: ErrorCode,
}

impl WriteFields for ErrorBody<'_> {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.str("message", self.message);
        s.str("code", self.code.as_str());
    }
}

impl WriteFields for ErrorEnvelope {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.int("status", 1);
        s.int("statusCode", i64::from(self.status_code));
        s.object("error", &ErrorBody { message: &self.message, code: self.code });
    }
}

/// An error the server reported in an error envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server error {status_code}: {message}")]
pub struct ApiError {
    /// The envelope's `statusCode`.
    pub status_code: u16,
    /// The stable code; `None` when the server sent none (upstream CommunityServer) or one this version does
    /// not know (see `raw_code`).
    pub code: Option<ErrorCode>,
    /// The `code` text as sent, when there was one.
    pub raw_code: Option<String>,
    /// The human message (empty when the server sent none).
    pub message: String,
}

impl ApiError {
    fn from_node(root: &Node, status_code: u16) -> ShapeResult<ApiError> {
        let (message, raw_code) = match root.field("error") {
            Some(error @ Node::Object(_)) => {
                (tree::opt_string(error, "message")?, tree::opt_string(error, "code")?)
            }
            _ => (None, None),
        };
        Ok(ApiError {
            status_code,
            code: raw_code.as_deref().and_then(ErrorCode::parse),
            raw_code,
            message: message.unwrap_or_default(),
        })
    }
}

impl From<ErrorEnvelope> for ApiError {
    fn from(e: ErrorEnvelope) -> Self {
        ApiError {
            status_code: e.status_code,
            code: Some(e.code),
            raw_code: Some(e.code.as_str().to_owned()),
            message: e.message,
        }
    }
}

/// Why a client could not get the value it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error(transparent)]
    Api(ApiError),
    /// The body is not an envelope of the expected shape (for instance upstream's plain-text `Unauthorized`).
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// Decodes a response body straight into the expected DTO (for clients).
///
/// ```
/// use auth_wire::{decode_response, Format, TokenResponse};
/// let body = br#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"tfa":true}}"#;
/// let token: TokenResponse = decode_response(Format::Json, body).unwrap();
/// assert!(token.tfa && token.token.is_none());
/// ```
///
/// # Errors
/// As [`Envelope::decode`].
pub fn decode_response<T: ResponseType>(format: Format, body: &[u8]) -> Result<T, ClientError> {
    let envelope = Envelope::decode(format, body, T::KIND)?;
    T::from_payload(envelope.payload)
        .ok_or_else(|| ClientError::Malformed("unexpected payload kind".to_owned()))
}

fn parse_root(format: Format, body: &[u8]) -> Result<Node, ClientError> {
    let root = match format {
        Format::Json => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| ClientError::Malformed(format!("invalid JSON: {e}")))?;
            tree::from_json(value)
        }
        Format::Xml => {
            let (name, node) = tree::parse_xml(body).map_err(ClientError::Malformed)?;
            if name != "result" {
                return Err(ClientError::Malformed(format!("XML root is `{name}`, not `result`")));
            }
            node
        }
    };
    match root {
        Node::Object(_) => Ok(root),
        _ => Err(ClientError::Malformed("the body is not an envelope object".to_owned())),
    }
}

fn status_u16(value: i64) -> ShapeResult<u16> {
    u16::try_from(value).map_err(|_| "`statusCode` out of range".to_owned())
}

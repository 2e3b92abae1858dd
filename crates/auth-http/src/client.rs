//! A small typed client of the API, built on `auth-wire`'s codecs and hyper-util's HTTP/1 client.
//!
//! It is what our own integration tests and benchmarks use, and a worked example for SDK authors:
//! methods and paths come from the endpoint table (`auth_wire::Endpoint`), requests are encoded with
//! `auth_wire::Credentials::encode`, responses decoded with `auth_wire::decode_response`, so the client
//! and the server share one definition of the wire.

use auth_wire::{
    ApiError, BodyFormat, Credentials, Endpoint, Format, Profile, ResponseType, TokenResponse,
    decode_response,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error(transparent)]
    Api(ApiError),
    /// The exchange itself failed (connection, bad URL, unreadable response).
    #[error("transport: {0}")]
    Transport(String),
    /// The response was not a valid envelope.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl From<auth_wire::ClientError> for ClientError {
    fn from(e: auth_wire::ClientError) -> Self {
        match e {
            auth_wire::ClientError::Api(a) => ClientError::Api(a),
            other => ClientError::Malformed(other.to_string()),
        }
    }
}

/// A client of one server.
#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    format: Format,
    body: BodyFormat,
}

impl Client {
    /// A client of `base_url` (`http://host:port`), asking for JSON and sending JSON bodies.
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            base: base_url.into().trim_end_matches('/').to_owned(),
            format: Format::Json,
            body: BodyFormat::Json,
        }
    }

    /// Asks for this response format.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sends request bodies in this format.
    pub fn with_body_format(mut self, body: BodyFormat) -> Self {
        self.body = body;
        self
    }

    /// Calls one endpoint of the table; `args` fill its path's `{…}` segments.
    async fn call<T: ResponseType>(
        &self,
        endpoint: Endpoint,
        args: &[&str],
        creds: Option<&Credentials>,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let uri = format!("{}{}", self.base, endpoint.path(args, None));
        let method = endpoint.method().as_str();
        let mut req = hyper::Request::builder().method(method).uri(uri).header(
            ACCEPT,
            if self.format == Format::Xml { "application/xml" } else { "application/json" },
        );
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, t);
        }
        let body = match creds {
            Some(c) => {
                let (content_type, bytes) = c.encode(self.body);
                req = req.header(CONTENT_TYPE, content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp =
            self.http.request(req).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        Ok(decode_response::<T>(self.format, &bytes)?)
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user_name: Some(user.to_owned()),
            password: Some(password.to_owned()),
            ..Credentials::default()
        }
    }

    /// Step 1: `POST authentication`.
    pub async fn login(&self, user: &str, password: &str) -> Result<TokenResponse, ClientError> {
        self.call(Endpoint::Authenticate, &[], Some(&Self::creds(user, password)), None).await
    }

    /// `POST authentication/setphone`.
    pub async fn set_phone(
        &self,
        user: &str,
        password: &str,
        phone: &str,
    ) -> Result<TokenResponse, ClientError> {
        let mut c = Self::creds(user, password);
        c.mobile_phone = Some(phone.to_owned());
        self.call(Endpoint::SetPhone, &[], Some(&c), None).await
    }

    /// `POST authentication/sendsms`.
    pub async fn send_sms(&self, user: &str, password: &str) -> Result<TokenResponse, ClientError> {
        self.call(Endpoint::SendSms, &[], Some(&Self::creds(user, password)), None).await
    }

    /// Step 2: `POST authentication/{code}`.
    pub async fn verify_code(
        &self,
        user: &str,
        password: &str,
        code: &str,
    ) -> Result<TokenResponse, ClientError> {
        self.call(Endpoint::Code, &[code], Some(&Self::creds(user, password)), None).await
    }

    /// `GET authentication`: whether the token is valid.
    pub async fn check(&self, token: &str) -> Result<bool, ClientError> {
        self.call(Endpoint::CheckToken, &[], None, Some(token)).await
    }

    /// `POST authentication/logout`.
    pub async fn logout(&self, token: &str) -> Result<bool, ClientError> {
        self.call(Endpoint::Logout, &[], None, Some(token)).await
    }

    /// `GET people/@self`.
    pub async fn me(&self, token: &str) -> Result<Profile, ClientError> {
        self.call(Endpoint::SelfProfile, &[], None, Some(token)).await
    }
}

//! The client side: endpoint paths and methods, and request bodies for the credential endpoints.
//!
//! Together with [`crate::decode_response`] this is all an SDK needs; it does no I/O, so any HTTP client fits.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::envelope::PayloadKind;
use crate::format::Format;
use crate::params::Credentials;
use crate::write::{self, Sink, WriteFields};

/// Characters left as they are in a `{code}` path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The endpoints of API.md §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST authentication` (step 1).
    Authenticate,
    /// `POST authentication/setphone`.
    SetPhone,
    /// `POST authentication/sendsms`.
    SendSms,
    /// `POST authentication/{code}` (step 2).
    Code(String),
    /// `GET authentication` (is my token valid?).
    CheckToken,
    /// `POST authentication/logout`.
    Logout,
    /// `GET people/@self`.
    SelfProfile,
    /// `GET capabilities`.
    Capabilities,
    /// `GET settings/tfaappcodes`.
    BackupCodes,
    /// `PUT settings/tfaappnewcodes`.
    NewBackupCodes,
    /// `PUT settings/tfaappnewapp`.
    NewApp,
}

impl Endpoint {
    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        match self {
            Endpoint::CheckToken
            | Endpoint::SelfProfile
            | Endpoint::Capabilities
            | Endpoint::BackupCodes => "GET",
            Endpoint::NewBackupCodes | Endpoint::NewApp => "PUT",
            _ => "POST",
        }
    }

    /// The absolute path, with an optional format suffix: `/api/2.0/authentication/123456.json`.
    pub fn path(&self, suffix: Option<Format>) -> String {
        let mut path = String::from("/api/2.0/");
        match self {
            Endpoint::Authenticate | Endpoint::CheckToken => path.push_str("authentication"),
            Endpoint::SetPhone => path.push_str("authentication/setphone"),
            Endpoint::SendSms => path.push_str("authentication/sendsms"),
            Endpoint::Code(code) => {
                path.push_str("authentication/");
                path.extend(utf8_percent_encode(code, SEGMENT));
            }
            Endpoint::Logout => path.push_str("authentication/logout"),
            Endpoint::SelfProfile => path.push_str("people/@self"),
            Endpoint::Capabilities => path.push_str("capabilities"),
            Endpoint::BackupCodes => path.push_str("settings/tfaappcodes"),
            Endpoint::NewBackupCodes => path.push_str("settings/tfaappnewcodes"),
            Endpoint::NewApp => path.push_str("settings/tfaappnewapp"),
        }
        if let Some(format) = suffix {
            path.push_str(format.suffix());
        }
        path
    }

    /// The payload a success answer carries; pass it to [`crate::Envelope::decode`].
    pub fn response_kind(&self) -> PayloadKind {
        match self {
            Endpoint::Authenticate | Endpoint::SetPhone | Endpoint::SendSms | Endpoint::Code(_) => {
                PayloadKind::Token
            }
            Endpoint::CheckToken | Endpoint::Logout | Endpoint::NewApp => PayloadKind::Bool,
            Endpoint::SelfProfile => PayloadKind::Profile,
            Endpoint::Capabilities => PayloadKind::Capabilities,
            Endpoint::BackupCodes | Endpoint::NewBackupCodes => PayloadKind::BackupCodes,
        }
    }
}

/// The request body encodings a client may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyFormat {
    /// `application/json`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl BodyFormat {
    /// The request `Content-Type`.
    pub const fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }
}

impl Credentials {
    /// Encodes the present fields as a request body; returns the `Content-Type` to send with it.
    ///
    /// Field names are the spec's camelCase (`userName`, `password`, `provider`, `accessToken`, `codeOAuth`,
    /// `mobilePhone`, `code`); absent fields are left out.
    pub fn encode(&self, format: BodyFormat) -> (&'static str, Vec<u8>) {
        let body = match format {
            BodyFormat::Json => write::to_json(self).into_bytes(),
            BodyFormat::Form => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (name, value) in self.fields() {
                    form.append_pair(name, value);
                }
                form.finish().into_bytes()
            }
        };
        (format.content_type(), body)
    }

    fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("userName", &self.user_name),
            ("password", &self.password),
            ("provider", &self.provider),
            ("accessToken", &self.access_token),
            ("codeOAuth", &self.code_oauth),
            ("mobilePhone", &self.mobile_phone),
            ("code", &self.code),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }
}

impl WriteFields for Credentials {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        for (name, value) in self.fields() {
            s.str(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Endpoint::Code("12 3/4".into()).path(Some(Format::Xml)),
            "/api/2.0/authentication/12%203%2F4.xml"
        );
        assert_eq!(Endpoint::SelfProfile.path(None), "/api/2.0/people/@self");
        assert_eq!(Endpoint::NewApp.method(), "PUT");
    }

    #[test]
    fn encodes_bodies() {
        let c = Credentials {
            user_name: Some("a@b.c".into()),
            password: Some("p&q=/".into()),
            ..Credentials::default()
        };
        assert_eq!(
            c.encode(BodyFormat::Json),
            ("application/json", br#"{"userName":"a@b.c","password":"p&q=\/"}"#.to_vec())
        );
        assert_eq!(
            c.encode(BodyFormat::Form),
            (
                "application/x-www-form-urlencoded",
                b"userName=a%40b.c&password=p%26q%3D%2F".to_vec()
            )
        );
    }
}

//! The client side: request bodies for the credential endpoints.
//!
//! Together with the endpoint table ([`crate::api::Endpoint`] gives each endpoint's method and path) and
//! [`crate::decode_response`] this is all an SDK needs; it does no I/O, so any HTTP client fits.

use crate::params::Credentials;
use crate::write::{self, Sink, WriteFields};

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

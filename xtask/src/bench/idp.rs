//! A minimal local OpenID provider for the `social_login` scenario: discovery and a JWKS over plain
//! HTTP on loopback (which the server allows for loopback only), and ID tokens signed here.
//!
//! The scenario measures the ID-token path, which the server verifies locally against the cached
//! keys: after the first login the provider is never asked again, so a thread that answers two
//! documents is all the provider the benchmark needs. The signing key is the server's own test key
//! (`crates/auth-server/src/social/testdata`), never used outside tests and benchmarks.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const KEY_PEM: &[u8] =
    include_bytes!("../../../crates/auth-server/src/social/testdata/test-rsa-1.pem");
const KID: &str = "bench-1";
/// The client id the server is configured with (and the ID tokens' audience).
pub(crate) const CLIENT_ID: &str = "bench";

/// The provider: its issuer URL, and the key to sign with.
pub(crate) struct Idp {
    pub(crate) issuer: String,
    key: EncodingKey,
}

impl Idp {
    /// Starts answering on a free loopback port, on a thread of its own for the rest of the run.
    pub(crate) fn start() -> anyhow::Result<Idp> {
        let key = EncodingKey::from_rsa_pem(KEY_PEM).context("the bench signing key")?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the bench IdP")?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256)?)?;
        if let Some(o) = jwk.as_object_mut() {
            o.insert("kid".into(), json!(KID));
            o.insert("use".into(), json!("sig"));
            o.insert("alg".into(), json!("RS256"));
        }
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/me"),
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })
        .to_string();
        let jwks = json!({ "keys": [jwk] }).to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => ("200 OK", discovery.as_str()),
                    "/jwks" => ("200 OK", jwks.as_str()),
                    _ => ("404 Not Found", "{}"),
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
            }
        });
        Ok(Idp { issuer, key })
    }

    /// An ID token for `subject`, valid for two hours.
    pub(crate) fn id_token(&self, subject: &str) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 7200,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }

    /// The server's `[[social.providers]]` table for this provider.
    pub(crate) fn config(&self) -> String {
        format!(
            "[[social.providers]]\nname = \"bench\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"bench-secret\"\nredirect_uri = \"http://127.0.0.1/callback\"\n",
            self.issuer
        )
    }
}

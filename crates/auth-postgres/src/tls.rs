//! TLS to PostgreSQL (issue 15) through tokio-postgres-rustls, with libpq's `sslmode` words.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`; libpq also has `verify-ca` and
//! `verify-full`, and `sslrootcert` for the CA file. This module reads those two out of the
//! connection string, hands tokio-postgres a string it accepts (`require` for every verifying mode),
//! and does the verification in the rustls client configuration:
//! - `verify-full`: the chain against the CA file (or the system's roots) and the host name;
//! - `verify-ca`, and `require` with a CA file (as libpq does): the chain, not the host name;
//! - `require` without a CA file: encrypted but not authenticated, as libpq; documented as such;
//! - `prefer`, `disable`: what tokio-postgres does with them (`prefer` may fall back to plain text).
//!
//! Whether plain text is acceptable for a host is the server's configuration rule, not this module's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::PgError;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain text (what tokio-postgres and libpq default to).
    Prefer,
    /// TLS; the certificate is checked only when a CA file is given (libpq's rule).
    Require,
    /// TLS, the chain checked against the CA.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, PgError> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PgError::Config(format!(
                    "sslmode={other:?}: use disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }

    /// Whether every connection is encrypted (no fall-back to plain text).
    pub fn always_encrypted(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// What the connection string says about TLS, and the string tokio-postgres is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mode (`prefer` when the string names none, as libpq).
    pub mode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<PathBuf>,
    /// The connection string without `sslrootcert`, with `sslmode` in tokio-postgres' words.
    pub(crate) url: String,
}

impl TlsSettings {
    /// Whether every host the string names is this machine (loopback addresses, `localhost`, a Unix
    /// socket, or no host at all, which means the default socket), where plain text crosses no
    /// network.
    pub fn only_loopback(&self) -> bool {
        let Ok(config) = self.url.parse::<tokio_postgres::Config>() else { return false };
        let hosts = config.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.to_canonical().is_loopback())
            }
            tokio_postgres::config::Host::Unix(_) => true,
        });
        hosts && config.get_hostaddrs().iter().all(|ip| ip.to_canonical().is_loopback())
    }
}

/// Reads `sslmode` and `sslrootcert` from a `postgres://` URL or a `key=value` string.
pub fn tls_settings(url: &str) -> Result<TlsSettings, PgError> {
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<Option<String>, PgError> {
        match key {
            "sslmode" => {
                mode = SslMode::parse(value)?;
                let word = match mode {
                    SslMode::Disable => "disable",
                    SslMode::Prefer => "prefer",
                    _ => "require",
                };
                Ok(Some(format!("sslmode={word}")))
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(value));
                Ok(None)
            }
            _ => Ok(Some(format!("{key}={value}"))),
        }
    };
    let rewritten = if url.contains("://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let decoded = percent_decode(v);
                    match take(k, &decoded)? {
                        // Only the two keys we read are re-encoded; the rest stays byte for byte.
                        Some(_) if k != "sslmode" => kept.push(pair.to_owned()),
                        Some(p) => kept.push(p),
                        None => {}
                    }
                }
                if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
            }
        }
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some((k, v)) => {
                    if let Some(p) = take(k.trim(), v.trim_matches('\''))? {
                        kept.push(if k.trim() == "sslmode" { p } else { token.to_owned() });
                    }
                }
                None => kept.push(token.to_owned()),
            }
        }
        kept.join(" ")
    };
    Ok(TlsSettings { mode, root_cert, url: rewritten })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // ring: deny.toml keeps aws-lc-rs out, and no process-wide default is installed.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, PgError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| PgError::Config(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert
                    .map_err(|e| PgError::Config(format!("sslrootcert {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| PgError::Config(format!("sslrootcert {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(PgError::Config(format!(
                    "sslrootcert {}: no PEM certificate in the file",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(roots)
}

/// The rustls client configuration for `settings` (unused for `disable`).
pub(crate) fn client_config(settings: &TlsSettings) -> Result<rustls::ClientConfig, PgError> {
    let root_cert = settings.root_cert.as_deref();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Config(format!("TLS: {e}")))?;
    let verifier = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| PgError::Config(format!("TLS: {e}")))
    };
    let config = match (settings.mode, root_cert) {
        (SslMode::VerifyFull, ca) => {
            builder.with_root_certificates(roots(ca)?).with_no_client_auth()
        }
        (SslMode::VerifyCa, ca)
        | (SslMode::Require | SslMode::Prefer | SslMode::Disable, ca @ Some(_)) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier(roots(ca)?)?)))
            .with_no_client_auth(),
        (SslMode::Require | SslMode::Prefer | SslMode::Disable, None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `verify-ca`: the chain must lead to the CA; the name in the certificate is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` without a CA file: libpq encrypts without checking who answers. The handshake's
/// signatures are still checked, so the session key belongs to the certificate shown.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, mode: SslMode, root: Option<&str>, rewritten: &str) {
        let s = tls_settings(url).unwrap();
        assert_eq!(
            (s.mode, s.root_cert.as_deref(), s.url.as_str()),
            (mode, root.map(Path::new), rewritten),
            "{url}"
        );
    }

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_rewritten() {
        check("postgres://u@db/auth", SslMode::Prefer, None, "postgres://u@db/auth");
        check(
            "postgres://u@db/auth?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
            SslMode::VerifyFull,
            Some("/etc/ca.pem"),
            "postgres://u@db/auth?sslmode=require&connect_timeout=5",
        );
        check(
            "postgresql://db/a?sslmode=verify-ca",
            SslMode::VerifyCa,
            None,
            "postgresql://db/a?sslmode=require",
        );
        check(
            "postgres://db/a?sslmode=disable",
            SslMode::Disable,
            None,
            "postgres://db/a?sslmode=disable",
        );
        check(
            "host=db dbname=auth sslmode=verify-full sslrootcert=/etc/ca.pem",
            SslMode::VerifyFull,
            Some("/etc/ca.pem"),
            "host=db dbname=auth sslmode=require",
        );
        assert!(tls_settings("postgres://db/a?sslmode=maybe").is_err());
        let local = |url: &str| tls_settings(url).unwrap().only_loopback();
        assert!(local("postgres://u@127.0.0.1:5432/a") && local("postgres://u@localhost/a"));
        assert!(local("postgres://u@[::1]/a") && local("host=/run/postgresql dbname=a"));
        assert!(!local("postgres://u@db.example/a") && !local("postgres://u@10.0.0.5/a"));
        assert!(!local("host=127.0.0.1,db.example dbname=a"));
        assert!(SslMode::Require.always_encrypted() && !SslMode::Prefer.always_encrypted());
    }
}

//! The `self_tls` scenario's certificates: a throwaway CA (rcgen on ring), a server certificate for
//! 127.0.0.1 written where the second server process reads it, and a client that trusts that CA.
//!
//! The generator offers only HTTP/1.1 by ALPN, so `self_tls` differs from `self` by TLS alone.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Writes `cert.pem` and `key.pem` into `dir`; answers the `AUTH_TLS__…` settings and a connector.
pub(crate) fn prepare(
    dir: &Path,
) -> anyhow::Result<(Vec<(String, String)>, tokio_rustls::TlsConnector)> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "auth bench CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &ca)?;
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).context("writing the bench certificate")?;
    std::fs::write(&key_file, key.serialize_pem()).context("writing the bench key")?;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).context("the bench CA")?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let env = vec![
        ("AUTH_TLS__CERT_FILE".to_owned(), cert_file.display().to_string()),
        ("AUTH_TLS__KEY_FILE".to_owned(), key_file.display().to_string()),
    ];
    Ok((env, tokio_rustls::TlsConnector::from(Arc::new(config))))
}

//! A test certificate authority (rcgen on ring) and HTTPS over one kept-alive connection, for the
//! TLS listener's tests and any harness that needs a server certificate.
//!
//! It does not speak HTTP beyond what those tests need: one request, one response with a
//! `Content-Length`, on a connection the test holds.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::ServerName;

use crate::{Request, Response, WAIT};

/// A certificate authority that lives as long as the test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (one PEM block).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The certificate's DER bytes, to tell two certificates apart.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for these names (IP addresses become IP SANs).
    pub fn issue(&self, names: &[&str]) -> Issued {
        let mut server =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        server.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("x"));
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = server.signed_by(&key, &self.issuer).expect("server certificate");
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }
}

/// A client configuration trusting `ca_file`, offering these ALPN protocols.
pub fn client_config_alpn(ca_file: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut config = (*crate::oidc::client_config(ca_file)).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// One TLS connection to a server, kept open across requests.
pub struct TlsConnection {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    addr: SocketAddr,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnection").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TlsConnection {
    /// Connects and completes the handshake (verifying the certificate for the address's IP).
    pub fn open(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(WAIT))?;
        tcp.set_write_timeout(Some(WAIT))?;
        let conn = rustls::ClientConnection::new(Arc::clone(config), ServerName::from(addr.ip()))
            .map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Self { tls, addr })
    }

    /// The server's end-entity certificate (DER).
    pub fn peer_certificate(&self) -> Vec<u8> {
        self.tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .expect("a server certificate")
    }

    /// The protocol ALPN chose.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// Sends `request` (HTTP/1.1, kept alive) and reads one response by its `Content-Length`.
    pub fn send(&mut self, request: &Request) -> Response {
        let bytes = request.to_bytes(self.addr);
        self.tls.write_all(&bytes).expect("writing the request");
        self.tls.flush().expect("flushing the request");
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    raw.truncate(end + 4 + length);
                    return Response::parse(&raw);
                }
            }
            let n = self.tls.read(&mut buf).expect("reading the response");
            assert!(n > 0, "the server closed the connection mid-response");
            raw.extend_from_slice(&buf[..n]);
        }
    }
}

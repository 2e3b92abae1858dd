//! The TLS listener's certificate (spec §10): the PEM chain and key read from `[tls]`, behind a
//! resolver that SIGHUP swaps without touching open connections.
//!
//! A connection keeps the key it shook hands with; only new handshakes see a reloaded certificate.
//! A reload that fails (unreadable file, no certificate, a key that does not match) keeps the old
//! certificate and logs why. Nothing here ever logs key material.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use auth_http::rustls;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{0}: no PEM certificate in the file")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("{0}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file")]
    NoKey(PathBuf),
    /// rustls refused the key or the pair.
    #[error("{path}: {source}")]
    Rustls {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// Where the certificate chain and its key live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM, the server's certificate first, then its chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    // ring, explicitly: deny.toml keeps aws-lc-rs out, and no process-wide default is installed.
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the pair: the key must load and match the first certificate.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
    };
    let cert_pem = read(&files.cert_file)?;
    let key_pem = read(&files.key_file)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert_file.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(files.key_file.clone()))?;
    let rustls_err = |source| TlsError::Rustls { path: files.key_file.clone(), source };
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(rustls_err)?;
    Ok(certified)
}

/// The current certificate; [`CertStore::reload`] replaces it.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads the files once; the server does not start without a usable certificate.
    pub fn open(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let first = load(&files)?;
        Ok(Arc::new(Self { files, current: RwLock::new(Arc::new(first)) }))
    }

    /// Reads the files again; on success new handshakes use them, on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load(&self.files)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            // A panic while holding the lock cannot leave a half-written Arc; take it over.
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The rustls configuration of the listener: TLS 1.2 and 1.3, h2 then HTTP/1.1 by ALPN, the
    /// certificate from this store at every handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|source| TlsError::Rustls { path: self.files.key_file.clone(), source })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reloads on every SIGHUP for the life of the process. The handler is installed now, so a
    /// SIGHUP right after start-up is never the default action (which would end the process).
    pub fn reload_on_sighup(self: &Arc<Self>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let store = Arc::clone(self);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match store.reload() {
                    Ok(()) => tracing::info!(
                        cert_file = %store.files.cert_file.display(),
                        "SIGHUP: TLS certificate reloaded"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "SIGHUP: TLS certificate not reloaded; keeping the current one"
                    ),
                }
            }
        });
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(current) => Some(Arc::clone(&current)),
            Err(poisoned) => Some(Arc::clone(&poisoned.into_inner())),
        }
    }
}

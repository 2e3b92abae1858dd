//! The server key and what is derived from it: keyed hashes of codes and sealing of stored secrets.
//!
//! One 32-byte server key (kept by the operator in a 0600 file) protects everything secret that must be
//! stored: SMS and backup codes are stored as HMAC-SHA256 under a sub-key, so a stolen database cannot be
//! brute-forced offline without the key; TOTP secrets, the one-time reveal of backup codes and SMS texts
//! in the outbox are sealed with ChaCha20-Poly1305 under another sub-key. Sub-keys are derived with
//! HMAC(server key, purpose), so one purpose can never be used to attack another.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ports::{Rng, RngExt};

type HmacSha256 = Hmac<Sha256>;

/// Why sealed data could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Too short, tampered with, sealed under another key or for another context.
    #[error("sealed data cannot be opened (wrong key or tampered)")]
    Unseal,
    /// The cipher refused to seal (never expected).
    #[error("sealing failed")]
    Seal,
}

/// The operator's server key.
#[derive(Clone)]
pub struct ServerKey {
    hash_key: Zeroizing<[u8; 32]>,
    seal_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

fn derive(master: &[u8; 32], purpose: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the code panic-free.
    if let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(master) {
        mac.update(purpose);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

impl ServerKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(master: [u8; 32]) -> Self {
        let master = Zeroizing::new(master);
        Self {
            hash_key: derive(&master, b"auth-core/v1/keyed-hash"),
            seal_key: derive(&master, b"auth-core/v1/seal"),
        }
    }

    /// HMAC-SHA256 of the parts, each length-prefixed so that no two part lists collide.
    pub fn keyed_hash(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut out = [0u8; 32];
        if let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(self.hash_key.as_ref()) {
            for p in parts {
                mac.update(&(p.len() as u64).to_be_bytes());
                mac.update(p);
            }
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Seals `plaintext` for `context` (authenticated, bound to the context): nonce ‖ ciphertext.
    pub fn seal(
        &self,
        rng: &dyn Rng,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.seal_key.as_ref()));
        let nonce_bytes: [u8; 12] = rng.bytes();
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad: context })
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`ServerKey::seal`] sealed for the same context.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (nonce, ct) = sealed.split_at_checked(12).ok_or(CryptoError::Unseal)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.seal_key.as_ref()));
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unseal)
    }
}

/// Plain SHA-256 (tokens are 256 random bits, so no key is needed to make their hash useless).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SeqRng;

    #[test]
    fn seal_round_trips_and_binds_context() {
        let key = ServerKey::from_bytes([7; 32]);
        let rng = SeqRng::new(1);
        let sealed = key.seal(&rng, b"ctx", b"secret bytes").unwrap();
        assert_eq!(key.open(b"ctx", &sealed).unwrap().as_slice(), b"secret bytes");
        assert_eq!(key.open(b"other", &sealed), Err(CryptoError::Unseal));
        let other = ServerKey::from_bytes([8; 32]);
        assert_eq!(other.open(b"ctx", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(b"ctx", &sealed[..5]), Err(CryptoError::Unseal));
    }

    #[test]
    fn keyed_hash_separates_parts_and_keys() {
        let key = ServerKey::from_bytes([1; 32]);
        assert_ne!(key.keyed_hash(&[b"ab", b"c"]), key.keyed_hash(&[b"a", b"bc"]));
        assert_ne!(key.keyed_hash(&[b"x"]), ServerKey::from_bytes([2; 32]).keyed_hash(&[b"x"]));
        assert_eq!(key.keyed_hash(&[b"x"]), key.keyed_hash(&[b"x"]));
    }
}

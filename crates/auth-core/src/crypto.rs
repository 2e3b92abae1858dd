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

use crate::primitives::{Rng, RngExt};

type HmacSha256 = Hmac<Sha256>;

/// Every purpose the server key is used for, in one place: each keyed hash and each sealed value names
/// its purpose, so one can never be mistaken for (or used to attack) another.
///
/// The labels are stored data's own: changing one makes every value made under it unreadable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyContext {
    /// Keyed hash of an SMS code, bound to its user and phone.
    SmsCode,
    /// Keyed hash of a backup code, bound to its user.
    BackupCode,
    /// A sealed TOTP secret, bound to its user.
    TotpSecret,
    /// The sealed one-time reveal of a user's new backup codes.
    BackupReveal,
    /// A sealed SMS text waiting in the outbox.
    SmsOutbox,
    /// The keyed hash that names, in throttle keys, a typed login that matches no user.
    LoginKey,
    /// The MAC of an `asc_device` cookie (a known client, spec §5.1).
    DeviceCookie,
    /// The keyed hash an exchanged `codeOAuth` is remembered under (spec §5.4).
    OAuthCode,
    /// The check value of the key itself, stored in the database so that a node started with
    /// another key refuses to run.
    KeyCheck,
    /// A sealed upstream realm (machine key, salt, cost) of imported password hashes (spec §11).
    UpstreamRealm,
    /// The keyed hash that names an upstream realm in stored hashes.
    UpstreamRealmId,
    /// A sealed job of the outbox's e-mail channel (a reset request or a rendered notice).
    MailOutbox,
    /// The keyed hash a password-reset key is stored under (spec §14).
    ResetKey,
}

impl KeyContext {
    /// The label that separates this purpose from the others.
    pub const fn label(self) -> &'static [u8] {
        match self {
            KeyContext::SmsCode => b"sms-code",
            KeyContext::BackupCode => b"backup-code",
            KeyContext::TotpSecret => b"totp-secret:",
            KeyContext::BackupReveal => b"backup-reveal:",
            KeyContext::SmsOutbox => b"sms-outbox",
            KeyContext::KeyCheck => b"key-check",
            KeyContext::LoginKey => b"login-key",
            KeyContext::DeviceCookie => b"device-cookie",
            KeyContext::OAuthCode => b"oauth-code",
            KeyContext::UpstreamRealm => b"upstream-realm",
            KeyContext::UpstreamRealmId => b"upstream-realm-id",
            KeyContext::MailOutbox => b"mail-outbox",
            KeyContext::ResetKey => b"reset-key",
        }
    }

    /// The associated data a sealed value of this purpose is bound to: the label, then `binding`
    /// (the owner's id, or nothing).
    fn aad(self, binding: &[u8]) -> Vec<u8> {
        [self.label(), binding].concat()
    }
}

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

    /// HMAC-SHA256 of the purpose's label and the parts, each length-prefixed so that no two part
    /// lists collide.
    pub fn keyed_hash(&self, context: KeyContext, parts: &[&[u8]]) -> [u8; 32] {
        self.keyed_hash_raw(std::iter::once(context.label()).chain(parts.iter().copied()))
    }

    fn keyed_hash_raw<'a>(&self, parts: impl Iterator<Item = &'a [u8]>) -> [u8; 32] {
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

    /// A value that identifies this key without revealing it (a keyed hash of a fixed text): equal for
    /// equal keys, different for different ones.
    pub fn check_value(&self) -> [u8; 32] {
        self.keyed_hash(KeyContext::KeyCheck, &[b"auth-server key check v1"])
    }

    /// Seals `plaintext` for a purpose and its owner (`binding`, such as the user id's bytes; empty for
    /// none), authenticated and bound to both: nonce ‖ ciphertext.
    pub fn seal(
        &self,
        rng: &dyn Rng,
        context: KeyContext,
        binding: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let aad = context.aad(binding);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.seal_key.as_ref()));
        let nonce_bytes: [u8; 12] = rng.bytes();
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`ServerKey::seal`] sealed for the same purpose and owner.
    pub fn open(
        &self,
        context: KeyContext,
        binding: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let aad = context.aad(binding);
        let (nonce, ct) = sealed.split_at_checked(12).ok_or(CryptoError::Unseal)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.seal_key.as_ref()));
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
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
        let ctx = KeyContext::TotpSecret;
        let sealed = key.seal(&rng, ctx, b"owner", b"secret bytes").unwrap();
        assert_eq!(key.open(ctx, b"owner", &sealed).unwrap().as_slice(), b"secret bytes");
        assert_eq!(key.open(ctx, b"other", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(KeyContext::BackupReveal, b"owner", &sealed), Err(CryptoError::Unseal));
        let other = ServerKey::from_bytes([8; 32]);
        assert_eq!(other.open(ctx, b"owner", &sealed), Err(CryptoError::Unseal));
        assert_eq!(key.open(ctx, b"owner", &sealed[..5]), Err(CryptoError::Unseal));
    }

    #[test]
    fn keyed_hash_separates_parts_contexts_and_keys() {
        let key = ServerKey::from_bytes([1; 32]);
        let c = KeyContext::SmsCode;
        assert_ne!(key.keyed_hash(c, &[b"ab", b"c"]), key.keyed_hash(c, &[b"a", b"bc"]));
        assert_ne!(key.keyed_hash(c, &[b"x"]), key.keyed_hash(KeyContext::BackupCode, &[b"x"]));
        let other = ServerKey::from_bytes([2; 32]);
        assert_ne!(key.keyed_hash(c, &[b"x"]), other.keyed_hash(c, &[b"x"]));
        assert_eq!(key.keyed_hash(c, &[b"x"]), key.keyed_hash(c, &[b"x"]));
    }

    #[test]
    fn check_values_tell_keys_apart() {
        let a = ServerKey::from_bytes([1; 32]);
        assert_eq!(a.check_value(), ServerKey::from_bytes([1; 32]).check_value());
        assert_ne!(a.check_value(), ServerKey::from_bytes([2; 32]).check_value());
    }

    /// Stored hashes and sealed values predate the enum: the label is the first hashed part and the
    /// prefix of the associated data, exactly as the literal contexts were.
    #[test]
    fn contexts_keep_the_stored_formats() {
        let key = ServerKey::from_bytes([3; 32]);
        let raw = key.keyed_hash_raw([b"sms-code".as_slice(), b"u", b"p"].into_iter());
        assert_eq!(key.keyed_hash(KeyContext::SmsCode, &[b"u", b"p"]), raw);
        assert_eq!(KeyContext::TotpSecret.aad(b"id"), b"totp-secret:id");
        assert_eq!(KeyContext::SmsOutbox.aad(b""), b"sms-outbox");
    }
}

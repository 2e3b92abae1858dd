//! The upstream portal's password hash, so users imported from an ONLYOFFICE / R7 portal sign in
//! with their old passwords (spec §5.1 "Legacy and outdated hashes", §11).
//!
//! Upstream stores `base64(SHA-512(client hash ‖ user id ‖ machine key))`, where the client hash is
//! PBKDF2-HMAC-SHA256 of the password under an installation-wide salt, rendered as lower-case hex
//! (`upstream-behaviour.md` §4.2). Verifying it needs the installation's machine key, so an import
//! stores the [`UpstreamRealm`] (key, salt, cost) sealed under the server key, and each imported hash
//! names its realm. The hash is only ever verified, never made: the first successful login replaces it
//! with argon2id. The computation is as slow as upstream's (100 000 PBKDF2 rounds by default), which
//! is why it runs on the hasher's threads, never on the caller's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::crypto::{KeyContext, ServerKey, ct_eq};
use crate::ids::UserId;
use crate::secret::SecretString;

/// The prefix of an upstream hash's stored form.
const PREFIX: &str = "$onlyoffice$v=1$";

/// What upstream mixes into the machine key to derive the installation salt when
/// `core.password.salt` is not set (`PasswordHasher.cs`).
const SALT_SEED: &str = "{9450BEF7-7D9F-4E4F-A18A-971D8681722D}";

/// The upstream defaults of `core.password.iterations` and `core.password.size` (bits).
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// See [`DEFAULT_ITERATIONS`].
pub const DEFAULT_SIZE_BITS: u32 = 256;

/// One upstream installation's password settings: its machine key, its installation salt and the
/// PBKDF2 cost. Secret (the machine key lets anyone holding a dump test passwords offline), so it is
/// redacted in `Debug` and stored only sealed.
#[derive(Clone)]
pub struct UpstreamRealm {
    machine_key: SecretString,
    salt: SecretString,
    iterations: u32,
    size_bytes: usize,
}

impl std::fmt::Debug for UpstreamRealm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRealm")
            .field("iterations", &self.iterations)
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}

/// The stored form of a realm could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored upstream realm is malformed")]
pub struct MalformedRealm;

impl UpstreamRealm {
    /// The realm of an installation. `password_salt` is `core.password.salt` when the installation
    /// set one; without it the salt is derived from the machine key as upstream does, which costs one
    /// PBKDF2 run here. Zero iterations or size are taken as upstream's defaults; the size is in bits.
    pub fn new(
        machine_key: SecretString,
        password_salt: Option<SecretString>,
        iterations: u32,
        size_bits: u32,
    ) -> Self {
        let iterations = if iterations == 0 { DEFAULT_ITERATIONS } else { iterations };
        let size_bits = if size_bits == 0 { DEFAULT_SIZE_BITS } else { size_bits };
        let size_bytes = usize::try_from(size_bits / 8).unwrap_or(32).max(1);
        let salt = match password_salt {
            Some(s) => s,
            None => {
                let seed = Sha256::digest(SALT_SEED.as_bytes());
                SecretString::new(pbkdf2_hex(
                    machine_key.expose().as_bytes(),
                    &seed,
                    iterations,
                    size_bytes,
                ))
            }
        };
        Self { machine_key, salt, iterations, size_bytes }
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The realm's name in stored hashes: a keyed hash of its settings, so the same installation
    /// imported twice gets the same name and the name says nothing about the machine key.
    pub fn id(&self, key: &ServerKey) -> String {
        let h = key.keyed_hash(
            KeyContext::UpstreamRealmId,
            &[
                self.machine_key.expose().as_bytes(),
                self.salt.expose().as_bytes(),
                &self.iterations.to_be_bytes(),
                &(self.size_bytes as u64).to_be_bytes(),
            ],
        );
        data_encoding::HEXLOWER.encode(h.get(..8).unwrap_or(&h))
    }

    /// The plaintext the sealed stored form holds (`iterations:size:salt:machine key`; the key comes
    /// last because it may itself contain `:`).
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            format!(
                "{}:{}:{}:{}",
                self.iterations,
                self.size_bytes,
                self.salt.expose(),
                self.machine_key.expose()
            )
            .into_bytes(),
        )
    }

    /// Reads back [`UpstreamRealm::to_bytes`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, MalformedRealm> {
        let text = std::str::from_utf8(bytes).map_err(|_| MalformedRealm)?;
        let mut parts = text.splitn(4, ':');
        let mut next = || parts.next().ok_or(MalformedRealm);
        let iterations = next()?.parse().map_err(|_| MalformedRealm)?;
        let size_bytes = next()?.parse().map_err(|_| MalformedRealm)?;
        let salt = SecretString::new(next()?);
        let machine_key = SecretString::new(next()?);
        if iterations == 0 || size_bytes == 0 {
            return Err(MalformedRealm);
        }
        Ok(Self { machine_key, salt, iterations, size_bytes })
    }
}

/// An imported upstream password hash: the realm it was made in, the user id it is bound to and the
/// 64-byte SHA-512 digest. Stored as `$onlyoffice$v=1$<realm>$<user id>$<base64 digest>`.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamHash {
    realm: String,
    user: String,
    digest: [u8; 64],
}

impl std::fmt::Debug for UpstreamHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest is offline-attackable material, like any password hash.
        write!(f, "UpstreamHash(realm {}, <redacted>)", self.realm)
    }
}

impl UpstreamHash {
    /// From `core_usersecurity.pwdhash` of `user` (88 characters of base64 of the SHA-512). `None`
    /// when it is not 64 bytes of base64: the 44-character SHA-256 of pre-v11 portals is dead upstream
    /// too and is not accepted.
    pub fn from_pwdhash(realm_id: &str, user: UserId, pwdhash_b64: &str) -> Option<Self> {
        let bytes = STANDARD.decode(pwdhash_b64.trim()).ok()?;
        let digest: [u8; 64] = bytes.try_into().ok()?;
        if realm_id.is_empty() || !realm_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some(Self { realm: realm_id.to_owned(), user: user.to_string(), digest })
    }

    /// The realm the hash was made in.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}${}${}", self.realm, self.user, STANDARD.encode(self.digest))
    }

    /// Reads the stored form; `None` when `s` is not one.
    pub fn decode(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(PREFIX)?;
        let mut parts = rest.split('$');
        let realm = parts.next()?;
        let user = parts.next()?;
        let digest = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let user: UserId = user.parse().ok()?;
        Self::from_pwdhash(realm, user, digest)
    }

    /// Whether `password` is the one this hash was made from, compared in constant time. A blank
    /// password never matches (upstream hashes a random value instead), but costs the same.
    pub fn verify(&self, realm: &UpstreamRealm, password: &SecretString) -> bool {
        let client = client_hash(realm, password);
        let mut h = Sha512::new();
        h.update(client.as_bytes());
        h.update(self.user.as_bytes());
        h.update(realm.machine_key.expose().as_bytes());
        let digest = h.finalize();
        ct_eq(&digest, &self.digest) && !password.expose().trim().is_empty()
    }
}

/// Upstream's client hash of a password (what its web form sends): PBKDF2-HMAC-SHA256 under the
/// installation salt, as lower-case hex.
pub fn client_hash(realm: &UpstreamRealm, password: &SecretString) -> String {
    pbkdf2_hex(
        password.expose().as_bytes(),
        realm.salt.expose().as_bytes(),
        realm.iterations,
        realm.size_bytes,
    )
}

fn pbkdf2_hex(password: &[u8], salt: &[u8], iterations: u32, size: usize) -> String {
    let mut out = Zeroizing::new(vec![0u8; size]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    data_encoding::HEXLOWER.encode(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public default machine key, which the reference vectors use.
    const KEY: &str = "Vskoproizvolny Salt par Chivreski";
    const IVAN: &str = "11111111-2222-3333-4444-555555555555";
    const IVAN_HASH: &str =
        "7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ==";

    fn realm() -> UpstreamRealm {
        UpstreamRealm::new(SecretString::new(KEY), None, 0, 0)
    }

    #[test]
    fn matches_the_reference_vectors() {
        let r = realm();
        assert_eq!(
            r.salt.expose(),
            "5eebed6be0f23d12718f84f9904a38810231737febccfb3b031a3a789cedbc59",
            "derived installation salt (upstream-behaviour.md §11)"
        );
        assert_eq!(
            client_hash(&r, &SecretString::new("password123")),
            "116e618564555c31da2ec47f7b6cbe4077fb53c7fd6af03f41b79d5d45273f3f"
        );
        let h = UpstreamHash::from_pwdhash("r1", IVAN.parse().unwrap(), IVAN_HASH).unwrap();
        assert!(h.verify(&r, &SecretString::new("password123")));
        assert!(!h.verify(&r, &SecretString::new("password124")));
        // Bound to the user id: the same digest under another user does not verify.
        let other = UpstreamHash::from_pwdhash(
            "r1",
            "22222222-3333-4444-5555-666666666666".parse().unwrap(),
            IVAN_HASH,
        )
        .unwrap();
        assert!(!other.verify(&r, &SecretString::new("password123")));
        // And to the machine key.
        let wrong_key = UpstreamRealm::new(SecretString::new("another key"), None, 0, 0);
        assert!(!h.verify(&wrong_key, &SecretString::new("password123")));
    }

    #[test]
    fn stored_forms_round_trip_and_refuse_dead_hashes() {
        let user: UserId = IVAN.parse().unwrap();
        let h = UpstreamHash::from_pwdhash("0a1b", user, IVAN_HASH).unwrap();
        let text = h.encode();
        assert!(text.starts_with("$onlyoffice$v=1$0a1b$11111111-2222-3333-4444-555555555555$"));
        assert_eq!(UpstreamHash::decode(&text), Some(h.clone()));
        assert!(!format!("{h:?}").contains(&IVAN_HASH[..10]));
        // The 44-character SHA-256 of pre-v11 portals (here of `admin`) is not an upstream hash.
        assert!(
            UpstreamHash::from_pwdhash("r", user, "jGl25bVBBBW96Qi9Te4V37Fnqchz/Eu4qB9vKrRIqRg=")
                .is_none()
        );
        assert!(UpstreamHash::decode("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA").is_none());
        assert!(UpstreamHash::decode(&format!("{text}$extra")).is_none());
        assert!(UpstreamHash::from_pwdhash("bad$realm", user, IVAN_HASH).is_none());
    }

    #[test]
    fn realms_round_trip_through_their_sealed_form() {
        let r =
            UpstreamRealm::new(SecretString::new("key:with:colons"), Some("salt".into()), 5, 128);
        let back = UpstreamRealm::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back.machine_key.expose(), "key:with:colons");
        assert_eq!(back.salt.expose(), "salt");
        assert_eq!((back.iterations, back.size_bytes), (5, 16));
        assert!(UpstreamRealm::from_bytes(b"0:32:s:k").is_err());
        assert!(UpstreamRealm::from_bytes(b"nonsense").is_err());
        assert!(!format!("{r:?}").contains("colons"));
    }

    #[test]
    fn blank_passwords_never_match() {
        // A realm cheap enough to search for a blank password's digest directly.
        let r = UpstreamRealm::new(SecretString::new("k"), Some("s".into()), 1, 256);
        let user: UserId = IVAN.parse().unwrap();
        let client = client_hash(&r, &SecretString::new("   "));
        let digest = Sha512::digest(format!("{client}{IVAN}k").as_bytes());
        let h = UpstreamHash::from_pwdhash("r", user, &STANDARD.encode(digest)).unwrap();
        assert!(!h.verify(&r, &SecretString::new("   ")));
    }
}

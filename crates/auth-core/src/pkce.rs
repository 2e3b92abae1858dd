//! The browser side of the authorization-code flow (RFC 6749 §4.1 with RFC 7636 PKCE), as the
//! sign-in page starts it: a `state` that ties the provider's answer to this browser, and a code
//! verifier whose S256 challenge goes to the provider.
//!
//! Both are random from the [`Rng`] port; nothing here talks to a provider or stores anything.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::primitives::{Rng, RngExt as _};
use crate::secret::SecretString;

/// A fresh `state` and code verifier, and the challenge to send.
#[derive(Debug)]
pub struct Pkce {
    /// The `state` parameter: 128 random bits, base64url.
    pub state: SecretString,
    /// The code verifier: 256 random bits, base64url (43 characters, RFC 7636 §4.1).
    pub verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`, the S256 `code_challenge`.
    pub challenge: String,
}

impl Pkce {
    /// Draws a new pair from `rng`.
    pub fn generate(rng: &dyn Rng) -> Pkce {
        let state = URL_SAFE_NO_PAD.encode(rng.bytes::<16>());
        let verifier = URL_SAFE_NO_PAD.encode(rng.bytes::<32>());
        let challenge = challenge(&verifier);
        Pkce { state: SecretString::from(state), verifier: SecretString::from(verifier), challenge }
    }
}

/// The S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pairs_are_fresh_and_well_formed() {
        let rng = crate::testkit::SeqRng::new(7);
        let a = Pkce::generate(&rng);
        let b = Pkce::generate(&rng);
        assert_ne!(a.verifier.expose(), b.verifier.expose());
        assert_eq!(a.verifier.expose().len(), 43);
        assert_eq!(a.challenge, challenge(a.verifier.expose()));
    }
}

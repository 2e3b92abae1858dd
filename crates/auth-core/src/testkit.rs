//! Test doubles for every port, and the store conformance suite (feature `testkit`).
//!
//! These are real implementations, not mocks: [`MemStore`] keeps the same promises as a database
//! adapter (it passes [`conformance::run`]), [`FakeClock`] moves only when told, [`SeqRng`] is a
//! deterministic generator, and [`RecordingSms`] keeps what was "sent" so a test can read the code.
//! `build_service` wires them into an [`AuthService`] with cheap hash parameters.

pub mod conformance;
mod fakes;
mod mem;

pub use fakes::{
    FakeClock, FakeDirectory, FakeSocial, RecordingMailer, RecordingObserver, RecordingSms, SeqRng,
};
pub use mem::MemStore;

use std::sync::Arc;

use crate::crypto::ServerKey;
use crate::password::{Argon2Hasher, HashParams};
use crate::ports::NoSocialProviders;
use crate::service::{AuthService, CoreLimits, Deps};

/// A service over in-memory fakes, with its store and clock, for tests.
pub struct TestWorld {
    /// The service.
    pub service: Arc<AuthService>,
    /// Its store.
    pub store: Arc<MemStore>,
    /// Its clock.
    pub clock: Arc<FakeClock>,
    /// Its randomness.
    pub rng: Arc<SeqRng>,
    /// Its server key.
    pub key: ServerKey,
    /// What the service reported for metrics.
    pub observer: Arc<RecordingObserver>,
}

/// Builds a [`TestWorld`] with the default limits; the clock starts at 2026-01-10T07:46:24Z.
pub fn build_service() -> TestWorld {
    build_service_with(CoreLimits::default())
}

/// Builds a [`TestWorld`] with these global limits.
pub fn build_service_with(limits: CoreLimits) -> TestWorld {
    build_service_social(limits, Arc::new(NoSocialProviders))
}

/// Builds a [`TestWorld`] with these global limits and this social provider port.
pub fn build_service_social(
    limits: CoreLimits,
    social: Arc<dyn crate::ports::SocialProvider>,
) -> TestWorld {
    build_service_ports(limits, social, Arc::new(crate::ports::NoDirectories))
}

/// Builds a [`TestWorld`] with these global limits, this social provider port and this directory
/// port.
pub fn build_service_ports(
    limits: CoreLimits,
    social: Arc<dyn crate::ports::SocialProvider>,
    directory: Arc<dyn crate::ports::Directory>,
) -> TestWorld {
    let store = Arc::new(MemStore::new());
    let clock = Arc::new(FakeClock::new(jiff::Timestamp::constant(1_768_031_184, 420_689_700)));
    let rng = Arc::new(SeqRng::new(42));
    let key = ServerKey::from_bytes([0x5A; 32]);
    // The hasher's failure would be a bug in the fixed test parameters.
    #[allow(clippy::expect_used)]
    let hasher = Argon2Hasher::new(HashParams::insecure_for_tests(), rng.clone())
        .expect("test hash parameters are valid");
    let observer = Arc::new(RecordingObserver::default());
    let service = Arc::new(AuthService::with_observer(
        Deps {
            store: store.clone(),
            hasher: Arc::new(hasher),
            social,
            directory,
            clock: clock.clone(),
            rng: rng.clone(),
            key: key.clone(),
        },
        limits,
        observer.clone(),
    ));
    TestWorld { service, store, clock, rng, key, observer }
}

impl TestWorld {
    /// The SMS texts waiting in the outbox, oldest first, unsealed (as the gateway would get them).
    pub async fn outbox_texts(&self) -> Vec<(String, String)> {
        use crate::ports::OutboxStore;
        let mut msgs = self.store.recent_sms(10_000).await.unwrap_or_default();
        msgs.reverse();
        msgs.iter()
            .filter_map(|m| {
                let text = self
                    .key
                    .open(crate::crypto::KeyContext::SmsOutbox, b"", &m.sealed_text)
                    .ok()?;
                Some((m.to.clone(), String::from_utf8_lossy(&text).into_owned()))
            })
            .collect()
    }

    /// The code in the newest outbox message to `to`.
    pub async fn last_code_to(&self, to: &str) -> Option<String> {
        self.outbox_texts()
            .await
            .into_iter()
            .rev()
            .find(|(t, _)| t == to)
            .map(|(_, text)| text.chars().filter(char::is_ascii_digit).collect())
    }
}

/// A token record for store tests: used last at its issue, no client details, and a public id made
/// from the hash's first eight bytes (hashes that differ there get distinct ids, so the inserts of
/// a test never meet on one).
pub fn token_record(
    hash: [u8; 32],
    user: crate::UserId,
    portal: crate::PortalId,
    issued_at: jiff::Timestamp,
    expires_at: jiff::Timestamp,
) -> crate::ports::TokenRecord {
    let mut head = [0u8; 8];
    head.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
    let id = (i64::from_le_bytes(head) & crate::token::MAX_PUBLIC_ID).max(1);
    crate::ports::TokenRecord {
        hash,
        user,
        portal,
        issued_at,
        expires_at,
        id,
        last_used_at: issued_at,
        client_ip: None,
        user_agent: None,
    }
}

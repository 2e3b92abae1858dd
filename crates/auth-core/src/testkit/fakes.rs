//! The small fakes: a settable clock, a deterministic RNG and an SMS gateway that records.

use std::sync::Mutex;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::later;
use crate::observe::{Factor, LoginResult, Observer, ThrottleRule};
use crate::ports::{Clock, MailError, MailMessage, Mailer, Rng, SmsError, SmsGateway, SmsMessage};

/// A clock that moves only when told.
#[derive(Debug)]
pub struct FakeClock(Mutex<Timestamp>);

impl FakeClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        if let Ok(mut t) = self.0.lock() {
            *t = later(*t, by);
        }
    }

    /// Sets the clock.
    pub fn set(&self, to: Timestamp) {
        if let Ok(mut t) = self.0.lock() {
            *t = to;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        self.0.lock().map(|t| *t).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// A deterministic generator (SplitMix64): the same seed gives the same bytes. Not for production.
#[derive(Debug)]
pub struct SeqRng(Mutex<u64>);

impl SeqRng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(seed))
    }

    fn next_u64(&self) -> u64 {
        let Ok(mut s) = self.0.lock() else { return 0 };
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Rng for SeqRng {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(v.get(..n).unwrap_or(&[]));
        }
    }
}

/// An SMS gateway that keeps every message, and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingSms {
    sent: Mutex<Vec<SmsMessage>>,
    failing: Mutex<bool>,
}

impl RecordingSms {
    /// A gateway that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every delivery fail as unavailable (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        if let Ok(mut f) = self.failing.lock() {
            *f = failing;
        }
    }

    /// What was delivered, oldest first.
    pub fn sent(&self) -> Vec<SmsMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The six-digit code in the newest message to `to`.
    pub fn last_code_to(&self, to: &str) -> Option<String> {
        self.sent().iter().rev().find(|m| m.to == to).and_then(|m| {
            let digits: String = m.text.expose().chars().filter(char::is_ascii_digit).collect();
            (digits.len() == 6).then_some(digits)
        })
    }
}

#[async_trait]
impl SmsGateway for RecordingSms {
    async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err(SmsError::Unavailable("test gateway is down".to_owned()));
        }
        if let Ok(mut v) = self.sent.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }
}

/// A mailer that keeps what it "sent", and can be switched down (unavailable) or to refuse.
#[derive(Default)]
pub struct RecordingMailer {
    sent: Mutex<Vec<MailMessage>>,
    failing: Mutex<bool>,
}

impl RecordingMailer {
    /// A mailer that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every delivery fail as unavailable (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        if let Ok(mut f) = self.failing.lock() {
            *f = failing;
        }
    }

    /// What was delivered, oldest first.
    pub fn sent(&self) -> Vec<MailMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The reset key in the newest mail to `to` (the `key=` of its link).
    pub fn last_reset_key_to(&self, to: &str) -> Option<String> {
        self.sent().iter().rev().find(|m| m.to == to).and_then(|m| {
            let text = m.text.expose();
            let at = text.find("key=")? + 4;
            Some(
                text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect(),
            )
        })
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn deliver(&self, mail: &MailMessage) -> Result<(), MailError> {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err(MailError::Unavailable("test mailer is down".to_owned()));
        }
        if let Ok(mut v) = self.sent.lock() {
            v.push(mail.clone());
        }
        Ok(())
    }
}

/// A social provider port that knows a fixed set of proofs: each accepted token or code stands for an
/// identity; anything else is refused; it can be switched "down" to answer unavailable.
#[derive(Default)]
pub struct FakeSocial {
    providers: Vec<String>,
    by_email: bool,
    proofs: Mutex<Vec<(String, String, crate::ports::SocialIdentity)>>,
    down: Mutex<bool>,
    calls: Mutex<u32>,
}

impl FakeSocial {
    /// Offers these providers on every portal; `by_email` allows linking by a verified e-mail.
    pub fn new(providers: &[&str], by_email: bool) -> Self {
        Self {
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
            by_email,
            ..Self::default()
        }
    }

    /// Makes `proof` (a token or a code) at `provider` stand for `identity`.
    pub fn accept(&self, provider: &str, proof: &str, identity: crate::ports::SocialIdentity) {
        if let Ok(mut p) = self.proofs.lock() {
            p.push((provider.to_owned(), proof.to_owned(), identity));
        }
    }

    /// Makes every call fail as unavailable (or work again).
    pub fn set_down(&self, down: bool) {
        if let Ok(mut d) = self.down.lock() {
            *d = down;
        }
    }

    /// How many times the provider was asked (a remembered code is not asked again).
    pub fn calls(&self) -> u32 {
        self.calls.lock().map(|c| *c).unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl crate::ports::SocialProvider for FakeSocial {
    fn offered(&self, _portal: &crate::model::Portal) -> Vec<String> {
        self.providers.clone()
    }

    fn links_by_verified_email(&self, _provider: &str) -> bool {
        self.by_email
    }

    async fn identify(
        &self,
        _portal: &crate::model::Portal,
        provider: &str,
        access_token: Option<&crate::secret::SecretString>,
        code: Option<&crate::secret::SecretString>,
    ) -> Result<crate::ports::SocialIdentity, crate::ports::SocialError> {
        if let Ok(mut c) = self.calls.lock() {
            *c += 1;
        }
        if self.down.lock().map(|d| *d).unwrap_or(false) {
            return Err(crate::ports::SocialError::Unavailable("fake provider is down".into()));
        }
        let proof = access_token.or(code).map(|s| s.expose().to_owned()).unwrap_or_default();
        let proofs = self.proofs.lock().map(|p| p.clone()).unwrap_or_default();
        proofs
            .into_iter()
            .find(|(p, t, _)| p == provider && *t == proof)
            .map(|(_, _, id)| id)
            .ok_or_else(|| crate::ports::SocialError::Rejected("unknown proof".into()))
    }
}

/// One entry of a [`FakeDirectory`]: the logins that find it, its password, and whether it is in the
/// required group.
struct FakeEntry {
    logins: Vec<String>,
    password: String,
    in_group: bool,
    entry: crate::ports::DirectoryEntry,
}

/// A directory port over a fixed list of entries, named `name` and used by every portal; it can be
/// switched "down" to answer unavailable, and counts the binds it was asked for.
pub struct FakeDirectory {
    name: String,
    entries: Mutex<Vec<FakeEntry>>,
    down: Mutex<bool>,
    binds: Mutex<u32>,
}

impl FakeDirectory {
    /// An empty directory called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            entries: Mutex::new(Vec::new()),
            down: Mutex::new(false),
            binds: Mutex::new(0),
        }
    }

    /// Adds an entry found by `uid` or by its e-mail, binding with `password`.
    pub fn add(
        &self,
        uid: &str,
        password: &str,
        in_group: bool,
        entry: crate::ports::DirectoryEntry,
    ) {
        if let Ok(mut e) = self.entries.lock() {
            e.push(FakeEntry {
                logins: vec![uid.to_lowercase(), entry.email.to_lowercase()],
                password: password.to_owned(),
                in_group,
                entry,
            });
        }
    }

    /// Removes the entry found by `uid`.
    pub fn remove(&self, uid: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|x| !x.logins.contains(&uid.to_lowercase()));
        }
    }

    /// Makes every call fail as unavailable (or work again).
    pub fn set_down(&self, down: bool) {
        if let Ok(mut d) = self.down.lock() {
            *d = down;
        }
    }

    /// How many binds as a user were attempted.
    pub fn binds(&self) -> u32 {
        self.binds.lock().map(|c| *c).unwrap_or(0)
    }

    fn is_down(&self) -> bool {
        self.down.lock().map(|d| *d).unwrap_or(true)
    }
}

#[async_trait::async_trait]
impl crate::ports::Directory for FakeDirectory {
    fn directory_for(&self, _portal: &crate::model::Portal) -> Option<String> {
        Some(self.name.clone())
    }

    async fn authenticate(
        &self,
        directory: &str,
        login: &str,
        password: &crate::secret::SecretString,
    ) -> Result<crate::ports::DirectoryEntry, crate::ports::DirectoryError> {
        use crate::ports::DirectoryError;
        if self.is_down() || directory != self.name {
            return Err(DirectoryError::Unavailable("directory down".into()));
        }
        let entries =
            self.entries.lock().map_err(|_| DirectoryError::Unavailable("poisoned".into()))?;
        let Some(e) = entries.iter().find(|e| e.logins.contains(&login.to_lowercase())) else {
            return Err(DirectoryError::UnknownLogin);
        };
        if let Ok(mut b) = self.binds.lock() {
            *b += 1;
        }
        if password.expose() != e.password {
            return Err(DirectoryError::WrongPassword);
        }
        if !e.in_group {
            return Err(DirectoryError::NotInGroup);
        }
        if e.entry.disabled {
            return Err(DirectoryError::Disabled);
        }
        Ok(e.entry.clone())
    }

    async fn entries(
        &self,
        directory: &str,
    ) -> Result<Vec<crate::ports::DirectoryEntry>, crate::ports::DirectoryError> {
        if self.is_down() || directory != self.name {
            return Err(crate::ports::DirectoryError::Unavailable("directory down".into()));
        }
        let entries = self
            .entries
            .lock()
            .map_err(|_| crate::ports::DirectoryError::Unavailable("poisoned".into()))?;
        Ok(entries.iter().filter(|e| e.in_group).map(|e| e.entry.clone()).collect())
    }
}

/// An observer that keeps what it was told, in order, so a test can assert the metrics' inputs.
#[derive(Debug, Default)]
pub struct RecordingObserver {
    logins: Mutex<Vec<(Factor, LoginResult)>>,
    throttles: Mutex<Vec<ThrottleRule>>,
}

impl RecordingObserver {
    /// Every login step reported so far, oldest first.
    pub fn logins(&self) -> Vec<(Factor, LoginResult)> {
        self.logins.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every throttle refusal reported so far, oldest first.
    pub fn throttles(&self) -> Vec<ThrottleRule> {
        self.throttles.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Forgets everything reported so far.
    pub fn clear(&self) {
        if let Ok(mut l) = self.logins.lock() {
            l.clear();
        }
        if let Ok(mut t) = self.throttles.lock() {
            t.clear();
        }
    }
}

impl Observer for RecordingObserver {
    fn login(&self, factor: Factor, result: LoginResult) {
        if let Ok(mut l) = self.logins.lock() {
            l.push((factor, result));
        }
    }

    fn throttled(&self, rule: ThrottleRule) {
        if let Ok(mut t) = self.throttles.lock() {
            t.push(rule);
        }
    }
}

//! Delivering the durable outbox: claim what is due, hand it to the gateway or mailer, record the
//! result. Both channels run the same round (`deliver_round` under a `Courier` each: SMS here,
//! e-mail in `service::recovery`), so leases, renewals, retries and the age limit are written once.
//!
//! Requests only enqueue (a durable write), so a gateway outage loses nothing and never slows a login.
//! A worker in the server calls [`deliver_due`] in a loop. Claims are leases in the store, so several
//! processes can run workers on one database without sending a message twice: each round claims under
//! a random claim number, renews a message's lease just before sending it (a message whose lease ran
//! out while earlier ones were being sent, and which another worker took, is skipped), and writes the
//! result only while the claim still holds. Every message goes out with its id, which gateways pass on
//! as an idempotency key, so even a send whose result was lost is recognisable. A failed attempt is
//! retried with exponential backoff until the message is older than `max_age` (its code has long
//! expired by then, so sending it would only confuse the user).
//!
//! A message given up for good (the gateway refused it, it is too old, or its text cannot be opened)
//! is written to the audit trail as `SmsUndeliverable`, but only by the worker whose claim still held
//! when it marked the message: a user whose code never came shows in the trail exactly once.

use std::net::{IpAddr, Ipv4Addr};

use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditAction, AuditEvent};
use crate::crypto::{KeyContext, ServerKey};
use crate::later;
use crate::ports::{
    Channel, Clock, OutboxMessage, SmsError, SmsGateway, SmsMessage, Store, StoreError,
};
use crate::primitives::{Rng, RngExt};
use crate::secret::SecretString;

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Messages claimed per round.
    pub batch: u32,
    /// How long a claim keeps other workers away (longer than one gateway call can take).
    pub lease: SignedDuration,
    /// Delay after the first failure; doubled after each further one.
    pub base_backoff: SignedDuration,
    /// Longest delay between attempts.
    pub max_backoff: SignedDuration,
    /// Messages older than this are given up.
    pub max_age: SignedDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            batch: 32,
            lease: SignedDuration::from_secs(60),
            base_backoff: SignedDuration::from_secs(1),
            max_backoff: SignedDuration::from_secs(60),
            max_age: SignedDuration::from_hours(1),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> SignedDuration {
        let factor = 1i32.checked_shl(attempts.min(20)).unwrap_or(i32::MAX);
        std::cmp::min(self.base_backoff.saturating_mul(factor), self.max_backoff)
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered now.
    pub sent: u32,
    /// Failed now, to be retried.
    pub retrying: u32,
    /// Given up (rejected by the gateway, unreadable, or too old).
    pub dropped: u32,
    /// Skipped because another worker took them over after this round's lease ran out.
    pub lost: u32,
}

/// What a channel makes of a claimed message before it can go out.
pub(crate) enum Prepared<T> {
    /// Ready for the channel's delivery.
    Ready(T),
    /// Not by this node: sealed under a newer key than its ring holds (spec §13). Left, as a
    /// failed attempt with this reason, for a node that has the key.
    Later(&'static str),
    /// Never: given up with this reason; `audit` says whether the trail hears of it.
    Never {
        /// Why.
        why: String,
        /// Whether to write the channel's "undeliverable" event.
        audit: bool,
    },
}

/// How one hand-over to the gateway or mailer ended.
pub(crate) enum Handed {
    /// Accepted.
    Sent,
    /// Refused for good; not retried.
    Rejected(String),
    /// Not reached or failed; retried with backoff.
    Unavailable(String),
}

/// One outbox channel: how its messages are opened and handed over. The rules common to every
/// channel (claims, leases, renewals, retries, the age limit, the report) are [`deliver_round`]'s.
#[async_trait::async_trait]
pub(crate) trait Courier: Send + Sync {
    /// What a prepared message is.
    type Ready: Send;
    /// The channel this courier claims.
    fn channel(&self) -> Channel;
    /// Opens and prepares a claimed message.
    async fn prepare(&self, msg: &OutboxMessage) -> Result<Prepared<Self::Ready>, StoreError>;
    /// Hands a prepared message over.
    async fn hand_over(&self, msg: &OutboxMessage, ready: Self::Ready) -> Handed;
    /// The audit event of a message given up: it names the message, never its content.
    fn undeliverable(&self, msg: &OutboxMessage, why: &str, at: Timestamp) -> AuditEvent;
}

/// Opens a message's sealed text: a text sealed under a newer key than this node's ring is one
/// for a node that has it ([`Prepared::Later`]), anything else unreadable is given up.
pub(crate) fn unseal<T>(
    key: &ServerKey,
    context: KeyContext,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, Prepared<T>> {
    key.open(context, b"", sealed).map_err(|_| {
        if key.ring().names_newer_key(sealed) {
            Prepared::Later(
                "waiting for a node with the newer server key (this node runs an older key \
                 ring: restart it with the new ring file)",
            )
        } else {
            Prepared::Never {
                why: "given up: text cannot be unsealed (server key changed?)".to_owned(),
                audit: true,
            }
        }
    })
}

/// The event of an outbox message given up, written by the worker (no client asked).
pub(crate) fn undeliverable_event(
    msg: &OutboxMessage,
    action: AuditAction,
    reason: String,
    at: Timestamp,
) -> AuditEvent {
    AuditEvent {
        at,
        portal: msg.portal,
        user: None,
        login: None,
        action,
        // No client asked for this: the worker did. The unspecified address says so.
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        user_agent: None,
        reason: Some(reason),
    }
}

/// Marks a message as never to be tried again (if the claim still holds) and, when it did and
/// `audit`, writes the courier's event: a message given up shows in the trail exactly once.
async fn give_up<C: Courier + ?Sized>(
    store: &dyn Store,
    clock: &dyn Clock,
    courier: &C,
    msg: &OutboxMessage,
    claim: i64,
    why: &str,
    audit: bool,
) -> Result<bool, StoreError> {
    let held = store.mark_sms_failed(msg.id, claim, Timestamp::MAX, why).await?;
    if held && audit {
        store.append_audit(&courier.undeliverable(msg, why, clock.now())).await?;
    }
    Ok(held)
}

/// One round of a channel's worker: claims what is due, prepares each message, renews its lease
/// just before handing it over, and records the result only while the claim holds.
pub(crate) async fn deliver_round<C: Courier + ?Sized>(
    store: &dyn Store,
    clock: &dyn Clock,
    rng: &dyn Rng,
    policy: &RetryPolicy,
    courier: &C,
) -> Result<DeliveryReport, StoreError> {
    let now = clock.now();
    let claim = i64::from_le_bytes(rng.bytes());
    let mut report = DeliveryReport::default();
    let count = |report: &mut DeliveryReport, held: bool, f: fn(&mut DeliveryReport)| {
        if held { f(report) } else { report.lost += 1 }
    };
    let due = store.claim_due(courier.channel(), now, policy.lease, policy.batch, claim).await?;
    for msg in due {
        if now.duration_since(msg.created_at) > policy.max_age {
            let why = match &msg.last_error {
                Some(last) => format!("given up: older than the retry limit (last error: {last})"),
                None => "given up: older than the retry limit".to_owned(),
            };
            let held = give_up(store, clock, courier, &msg, claim, &why, true).await?;
            count(&mut report, held, |r| r.dropped += 1);
            continue;
        }
        let ready = match courier.prepare(&msg).await? {
            Prepared::Ready(ready) => ready,
            Prepared::Later(why) => {
                let next = later(clock.now(), policy.backoff(msg.attempts));
                let held = store.mark_sms_failed(msg.id, claim, next, why).await?;
                count(&mut report, held, |r| r.retrying += 1);
                continue;
            }
            Prepared::Never { why, audit } => {
                let held = give_up(store, clock, courier, &msg, claim, &why, audit).await?;
                count(&mut report, held, |r| r.dropped += 1);
                continue;
            }
        };
        // The lease of a message late in a slow batch may have run out meanwhile: renew it, and
        // leave the message alone if another worker has taken it.
        if !store.renew_sms_claim(msg.id, claim, later(clock.now(), policy.lease)).await? {
            report.lost += 1;
            continue;
        }
        match courier.hand_over(&msg, ready).await {
            Handed::Sent => {
                let held = store.mark_sms_sent(msg.id, claim, clock.now()).await?;
                count(&mut report, held, |r| r.sent += 1);
            }
            Handed::Rejected(why) => {
                let why = format!("rejected: {why}");
                let held = give_up(store, clock, courier, &msg, claim, &why, true).await?;
                count(&mut report, held, |r| r.dropped += 1);
            }
            Handed::Unavailable(why) => {
                let next = later(clock.now(), policy.backoff(msg.attempts));
                let why = format!("unavailable: {why}");
                let held = store.mark_sms_failed(msg.id, claim, next, &why).await?;
                count(&mut report, held, |r| r.retrying += 1);
            }
        }
    }
    Ok(report)
}

/// The SMS channel: texts sealed for [`KeyContext::SmsOutbox`], handed to the gateway.
struct SmsCourier<'a> {
    gateway: &'a dyn SmsGateway,
    key: &'a ServerKey,
}

#[async_trait::async_trait]
impl Courier for SmsCourier<'_> {
    type Ready = SmsMessage;

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn prepare(&self, msg: &OutboxMessage) -> Result<Prepared<SmsMessage>, StoreError> {
        Ok(match unseal(self.key, KeyContext::SmsOutbox, &msg.sealed_text) {
            Ok(text) => Prepared::Ready(SmsMessage {
                id: msg.id,
                to: msg.to.clone(),
                text: SecretString::new(String::from_utf8_lossy(&text).into_owned()),
            }),
            Err(not_now) => not_now,
        })
    }

    async fn hand_over(&self, _msg: &OutboxMessage, sms: SmsMessage) -> Handed {
        match self.gateway.deliver(&sms).await {
            Ok(()) => Handed::Sent,
            Err(SmsError::Rejected(why)) => Handed::Rejected(why),
            Err(SmsError::Unavailable(why)) => Handed::Unavailable(why),
        }
    }

    fn undeliverable(&self, msg: &OutboxMessage, why: &str, at: Timestamp) -> AuditEvent {
        // The recipient as the API shows it (phoneNoise) and the outbox id, which `auth-server
        // sms outbox --store` lists; never the text, which holds the code.
        let reason = format!("message {} to {}: {why}", msg.id, crate::phone::noise(&msg.to));
        undeliverable_event(msg, AuditAction::SmsUndeliverable, reason, at)
    }
}

/// Delivers every due SMS once; returns what happened.
pub async fn deliver_due(
    store: &dyn Store,
    gateway: &dyn SmsGateway,
    key: &ServerKey,
    clock: &dyn Clock,
    rng: &dyn Rng,
    policy: &RetryPolicy,
) -> Result<DeliveryReport, StoreError> {
    deliver_round(store, clock, rng, policy, &SmsCourier { gateway, key }).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::ports::{AuditStore, NewOutboxMessage, OutboxStore};
    use crate::testkit::{FakeClock, MemStore, SeqRng};

    /// A gateway that takes 5 s per message (on the fake clock), and while the 13th message of the
    /// first node's batch is in flight lets a second node run a round of its own.
    struct SlowNode {
        store: Arc<MemStore>,
        clock: Arc<FakeClock>,
        key: ServerKey,
        sent: Arc<Mutex<Vec<i64>>>,
        calls: Mutex<u32>,
    }

    struct Fast(Arc<Mutex<Vec<i64>>>);

    #[async_trait]
    impl SmsGateway for Fast {
        async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
            self.0.lock().unwrap().push(msg.id);
            Ok(())
        }
    }

    #[async_trait]
    impl SmsGateway for SlowNode {
        async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
            self.clock.advance(SignedDuration::from_secs(5));
            self.sent.lock().unwrap().push(msg.id);
            let n = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            if n == 13 {
                let other = Fast(self.sent.clone());
                let rng = SeqRng::new(7);
                let policy = RetryPolicy::default();
                deliver_due(
                    self.store.as_ref(),
                    &other,
                    &self.key,
                    self.clock.as_ref(),
                    &rng,
                    &policy,
                )
                .await
                .unwrap();
            }
            Ok(())
        }
    }

    /// Issue 12, finding 7: a batch that outlives its lease does not make two nodes send one message:
    /// the second node takes over what the first has not reached, and the first skips those.
    #[tokio::test]
    async fn a_slow_batch_and_a_second_node_send_each_message_once() {
        let store = Arc::new(MemStore::new());
        let clock = Arc::new(FakeClock::new(Timestamp::constant(1_768_031_184, 0)));
        let key = ServerKey::from_bytes([3; 32]);
        let rng = SeqRng::new(1);
        for i in 0..32 {
            let sealed =
                key.seal(&rng, KeyContext::SmsOutbox, b"", format!("Code: {i}").as_bytes());
            let msg = NewOutboxMessage {
                portal: crate::ids::PortalId::from_random_bytes([1; 16]),
                to: format!("7912345{i:04}"),
                sealed_text: sealed.unwrap(),
                created_at: clock.now(),
            };
            store.enqueue_sms(&msg).await.unwrap();
        }
        let sent = Arc::new(Mutex::new(Vec::new()));
        let gateway = SlowNode {
            store: store.clone(),
            clock: clock.clone(),
            key: key.clone(),
            sent: sent.clone(),
            calls: Mutex::new(0),
        };
        let report = deliver_due(
            store.as_ref(),
            &gateway,
            &key,
            clock.as_ref(),
            &rng,
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
        let mut ids = sent.lock().unwrap().clone();
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "a message was sent twice: {:?}", sent.lock().unwrap());
        assert_eq!(total, 32, "and none was lost");
        assert!(report.lost > 0, "the first node gave up what the second took: {report:?}");
        let unsent = store.recent_sms(100).await.unwrap();
        assert!(unsent.iter().all(|m| m.sent_at.is_some()), "every message is marked sent once");
    }

    /// A gateway that refuses every message for good.
    struct Refuses;

    #[async_trait]
    impl SmsGateway for Refuses {
        async fn deliver(&self, _msg: &SmsMessage) -> Result<(), SmsError> {
            Err(SmsError::Rejected("invalid number".to_owned()))
        }
    }

    /// Issue 16: a message the provider refuses for good is dropped once, with one audit event that
    /// names it without its text.
    #[tokio::test]
    async fn a_refused_message_is_dropped_and_audited_once() {
        use crate::audit::AuditFilter;
        let store = Arc::new(MemStore::new());
        let clock = FakeClock::new(Timestamp::constant(1_768_031_184, 0));
        let key = ServerKey::from_bytes([3; 32]);
        let rng = SeqRng::new(1);
        let sealed = key.seal(&rng, KeyContext::SmsOutbox, b"", b"Code: 123456").unwrap();
        let id = store
            .enqueue_sms(&NewOutboxMessage {
                portal: crate::ids::PortalId::from_random_bytes([1; 16]),
                to: "79123456789".to_owned(),
                sealed_text: sealed,
                created_at: clock.now(),
            })
            .await
            .unwrap();
        let policy = RetryPolicy::default();
        let report =
            deliver_due(store.as_ref(), &Refuses, &key, &clock, &rng, &policy).await.unwrap();
        assert_eq!(report, DeliveryReport { dropped: 1, ..DeliveryReport::default() });
        // A second round finds nothing due: the message is not tried, nor audited, again.
        clock.advance(SignedDuration::from_hours(2));
        let report =
            deliver_due(store.as_ref(), &Refuses, &key, &clock, &rng, &policy).await.unwrap();
        assert_eq!(report, DeliveryReport::default());
        let filter =
            AuditFilter { action: Some(AuditAction::SmsUndeliverable), ..AuditFilter::default() };
        let events = store.recent_audit(&filter, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let reason = events[0].reason.clone().unwrap();
        assert_eq!(reason, format!("message {id} to +7912***6789: rejected: invalid number"));
        assert!(!reason.contains("123456"));
    }

    /// Issue 17: a node still running the ring from before a rotation leaves a message sealed under
    /// the new key to a node that has it, instead of dropping it as unreadable.
    #[tokio::test]
    async fn a_message_sealed_under_a_newer_key_waits_for_a_node_that_has_it() {
        use crate::crypto::KeyRing;
        let store = Arc::new(MemStore::new());
        let clock = FakeClock::new(Timestamp::constant(1_768_031_184, 0));
        let rng = SeqRng::new(1);
        let rotated = KeyRing::new(&[(1, [3; 32]), (2, [4; 32])]).unwrap();
        let sealed = rotated.seal(&rng, KeyContext::SmsOutbox, b"", b"Code: 123456").unwrap();
        store
            .enqueue_sms(&NewOutboxMessage {
                portal: crate::ids::PortalId::from_random_bytes([1; 16]),
                to: "79123456789".to_owned(),
                sealed_text: sealed,
                created_at: clock.now(),
            })
            .await
            .unwrap();
        let policy = RetryPolicy::default();
        let old = ServerKey::from_bytes([3; 32]);
        let report =
            deliver_due(store.as_ref(), &Refuses, &old, &clock, &rng, &policy).await.unwrap();
        assert_eq!(report, DeliveryReport { retrying: 1, ..DeliveryReport::default() });
        let msg = &store.recent_sms(1).await.unwrap()[0];
        assert!(msg.sent_at.is_none() && msg.last_error.as_deref().unwrap().contains("newer"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), SignedDuration::from_secs(1));
        assert_eq!(p.backoff(1), SignedDuration::from_secs(2));
        assert_eq!(p.backoff(5), SignedDuration::from_secs(32));
        assert_eq!(p.backoff(6), SignedDuration::from_secs(60));
        assert_eq!(p.backoff(1000), SignedDuration::from_secs(60));
    }
}

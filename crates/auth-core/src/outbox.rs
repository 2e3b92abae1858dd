//! Delivering the durable SMS outbox: claim what is due, hand it to the gateway, record the result.
//!
//! Requests only enqueue (a durable write), so a gateway outage loses nothing and never slows a login.
//! A worker in the server calls [`deliver_due`] in a loop. Claims are leases in the store, so several
//! processes can run workers on one database without sending a message twice; a failed attempt is
//! retried with exponential backoff until the message is older than `max_age` (its code has long
//! expired by then, so sending it would only confuse the user).

use jiff::{SignedDuration, Timestamp};

use crate::crypto::{KeyContext, ServerKey};
use crate::later;
use crate::ports::{Clock, OutboxStore, SmsError, SmsGateway, SmsMessage, StoreError};
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
}

/// Marks a message as never to be tried again.
async fn give_up(store: &dyn OutboxStore, id: i64, why: &str) -> Result<(), StoreError> {
    store.mark_sms_failed(id, Timestamp::MAX, why).await
}

/// Delivers every due message once; returns what happened.
pub async fn deliver_due(
    store: &dyn OutboxStore,
    gateway: &dyn SmsGateway,
    key: &ServerKey,
    clock: &dyn Clock,
    policy: &RetryPolicy,
) -> Result<DeliveryReport, StoreError> {
    let now = clock.now();
    let mut report = DeliveryReport::default();
    for msg in store.claim_due_sms(now, policy.lease, policy.batch).await? {
        if now.duration_since(msg.created_at) > policy.max_age {
            give_up(store, msg.id, "given up: older than the retry limit").await?;
            report.dropped += 1;
            continue;
        }
        let Ok(text) = key.open(KeyContext::SmsOutbox, b"", &msg.sealed_text) else {
            give_up(store, msg.id, "given up: text cannot be unsealed (server key changed?)")
                .await?;
            report.dropped += 1;
            continue;
        };
        let sms = SmsMessage {
            to: msg.to.clone(),
            text: SecretString::new(String::from_utf8_lossy(&text).into_owned()),
        };
        match gateway.deliver(&sms).await {
            Ok(()) => {
                store.mark_sms_sent(msg.id, clock.now()).await?;
                report.sent += 1;
            }
            Err(SmsError::Rejected(why)) => {
                give_up(store, msg.id, &format!("rejected: {why}")).await?;
                report.dropped += 1;
            }
            Err(SmsError::Unavailable(why)) => {
                let next = later(clock.now(), policy.backoff(msg.attempts));
                store.mark_sms_failed(msg.id, next, &format!("unavailable: {why}")).await?;
                report.retrying += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The outbox worker: a task that delivers due SMS and e-mail every poll interval until shutdown.
//!
//! Requests only enqueue into the store's durable outbox; this worker claims what is due and hands it
//! to the gateway through `auth_core::outbox::deliver_due`, which owns the retry and lease rules.
//! E-mail (spec §14) goes the same way through `Recovery::deliver_due`, when a mailer is configured.
//! It logs how many messages went, waited or were dropped, never their text or recipient.
//! The same task does the store's housekeeping (`AuthService::housekeeping`): every ten minutes it
//! deletes expired tokens and throttle events no rule can still need, so neither table grows with
//! sessions that ended or with a spray of made-up logins.

use std::sync::Arc;
use std::time::Duration;

use auth_core::crypto::ServerKey;
use auth_core::outbox::{DeliveryReport, RetryPolicy, deliver_due};
use auth_core::ports::{Clock, Mailer, Rng, SmsGateway};
use auth_core::{AuthService, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the worker needs.
pub struct OutboxWorker {
    /// The store holding the outbox.
    pub store: Arc<dyn Store>,
    /// The service whose housekeeping the task runs.
    pub service: Arc<AuthService>,
    /// Where messages go.
    pub gateway: Arc<dyn SmsGateway>,
    /// Opens the sealed texts.
    pub key: ServerKey,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness, for each round's claim number.
    pub rng: Arc<dyn Rng>,
    /// Retries and leases.
    pub policy: RetryPolicy,
    /// Where e-mail goes, when the server mails.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// Retries and leases of e-mail.
    pub mail_policy: RetryPolicy,
    /// Pause between rounds.
    pub poll_interval: Duration,
}

/// A running worker; [`OutboxHandle::stop`] ends it after its current round.
#[derive(Debug)]
pub struct OutboxHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OutboxWorker {
    /// Starts the worker on the current tokio runtime.
    pub fn spawn(self) -> OutboxHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        OutboxHandle { stop, task }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        const PURGE_EVERY: Duration = Duration::from_secs(600);
        let mut next_purge = tokio::time::Instant::now();
        loop {
            self.round().await;
            if tokio::time::Instant::now() >= next_purge {
                self.purge().await;
                next_purge = tokio::time::Instant::now() + PURGE_EVERY;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = stopped.changed() => break,
            }
        }
        tracing::debug!("sms outbox worker stopped");
    }

    async fn round(&self) {
        let report = deliver_due(
            self.store.as_ref(),
            self.gateway.as_ref(),
            &self.key,
            self.clock.as_ref(),
            self.rng.as_ref(),
            &self.policy,
        )
        .await;
        log_round("sms", report, false, "see `auth-server sms outbox --store`");
        if let Some(mailer) = &self.mailer {
            self.mail_round(mailer.as_ref()).await;
        }
    }

    async fn mail_round(&self, mailer: &dyn Mailer) {
        let report = self.service.recovery().deliver_due(mailer, &self.mail_policy).await;
        // "Dropped" e-mail is mostly a reset request for an address nobody has: no alarm.
        log_round("e-mail", report, true, "see the audit trail: MailUndeliverable");
    }
}

/// Logs what one round of a channel did: nothing when it did nothing, counts otherwise, never a
/// text or a recipient. `dropped_is_normal` keeps drops out of the warning.
fn log_round(
    channel: &str,
    report: Result<DeliveryReport, auth_core::ports::StoreError>,
    dropped_is_normal: bool,
    hint: &str,
) {
    match report {
        Ok(r) if r.sent + r.retrying + r.dropped + r.lost == 0 => {}
        Ok(r) if r.retrying + r.lost == 0 && (r.dropped == 0 || dropped_is_normal) => {
            tracing::info!(channel, sent = r.sent, not_sent = r.dropped, "outbox delivered");
        }
        Ok(r) => tracing::warn!(
            channel,
            sent = r.sent,
            retrying = r.retrying,
            dropped = r.dropped,
            lost_lease = r.lost,
            "outbox round had failures ({hint})"
        ),
        Err(e) => tracing::warn!(channel, error = %e, "outbox round failed; will retry"),
    }
}

/// The retries of e-mail: like SMS, but kept for a day rather than an hour, since a notice stays
/// worth sending after a long mail-server outage, and waits between attempts up to five minutes.
pub fn mail_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_age: auth_core::SignedDuration::from_hours(24),
        max_backoff: auth_core::SignedDuration::from_mins(5),
        ..RetryPolicy::default()
    }
}

impl OutboxWorker {
    async fn purge(&self) {
        match self.service.admin().housekeeping().await {
            Ok((0, 0)) => {}
            Ok((tokens, events)) => {
                tracing::info!(tokens, throttle_events = events, "purged expired data");
            }
            Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
        }
    }
}

impl OutboxHandle {
    /// Asks the worker to stop and waits for it to finish its current round.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "sms outbox worker ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use auth_core::outbox::RetryPolicy;
    use auth_core::ports::{Revisions, TokenStore};
    use auth_core::service::NewUser;
    use auth_core::testkit::RecordingSms;
    use auth_core::{SignedDuration, Timestamp};

    use super::OutboxWorker;

    #[tokio::test]
    async fn the_worker_purges_expired_tokens_and_keeps_live_ones() {
        let w = auth_core::testkit::build_service();
        let now = w.service.now();
        let store = w.store.clone();
        let portal = w.service.admin().ensure_default_portal().await.unwrap();
        let user = w
            .service
            .admin()
            .add_user(
                portal.id,
                NewUser {
                    email: "purge@example.com".into(),
                    password: "correct horse".into(),
                    first_name: String::new(),
                    last_name: String::new(),
                    is_admin: false,
                },
            )
            .await
            .unwrap();
        let token = |tag: u8, expires: Timestamp| {
            auth_core::testkit::token_record([tag; 32], user.id, portal.id, now, expires)
        };
        let fresh = Revisions { user: 0, portal: 0 };
        let expired = token(1, now.saturating_sub(SignedDuration::from_secs(1)).unwrap());
        assert!(store.insert_token(&expired, fresh).await.unwrap());
        let live = token(2, now.saturating_add(SignedDuration::from_secs(60)).unwrap());
        assert!(store.insert_token(&live, fresh).await.unwrap());
        let worker = OutboxWorker {
            store: store.clone(),
            service: w.service.clone(),
            gateway: Arc::new(RecordingSms::new()),
            key: w.key.clone(),
            clock: w.clock.clone(),
            rng: w.rng.clone(),
            policy: RetryPolicy::default(),
            mailer: None,
            mail_policy: RetryPolicy::default(),
            poll_interval: Duration::from_millis(10),
        }
        .spawn();
        // The first round purges at once; wait for it with a bounded poll.
        for _ in 0..200 {
            if store.token_by_hash(&[1; 32]).await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.stop().await;
        assert_eq!(store.token_by_hash(&[1; 32]).await.unwrap(), None, "expired token purged");
        assert!(store.token_by_hash(&[2; 32]).await.unwrap().is_some(), "live token kept");
    }
}

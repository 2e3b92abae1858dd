//! The SMS outbox worker: a task that delivers due messages every poll interval until shutdown.
//!
//! Requests only enqueue into the store's durable outbox; this worker claims what is due and hands it
//! to the gateway through `auth_core::outbox::deliver_due`, which owns the retry and lease rules.
//! It logs how many messages went, waited or were dropped, never their text or recipient.

use std::sync::Arc;
use std::time::Duration;

use auth_core::crypto::ServerKey;
use auth_core::outbox::{RetryPolicy, deliver_due};
use auth_core::ports::{Clock, OutboxStore, SmsGateway};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the worker needs.
pub struct OutboxWorker {
    /// The store holding the outbox.
    pub store: Arc<dyn OutboxStore>,
    /// Where messages go.
    pub gateway: Arc<dyn SmsGateway>,
    /// Opens the sealed texts.
    pub key: ServerKey,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Retries and leases.
    pub policy: RetryPolicy,
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
        loop {
            self.round().await;
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
            &self.policy,
        )
        .await;
        match report {
            Ok(r) if r.sent + r.retrying + r.dropped == 0 => {}
            Ok(r) if r.retrying + r.dropped == 0 => {
                tracing::info!(sent = r.sent, "sms outbox delivered");
            }
            Ok(r) => tracing::warn!(
                sent = r.sent,
                retrying = r.retrying,
                dropped = r.dropped,
                "sms outbox round had failures (see `auth-server sms outbox --store`)"
            ),
            Err(e) => tracing::warn!(error = %e, "sms outbox round failed; will retry"),
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

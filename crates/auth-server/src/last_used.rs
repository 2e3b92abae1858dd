//! The task that writes tokens' "last used" times (the sessions list, spec §13) in batches.
//!
//! The core never writes on the token lookup of a request: a use that is due (its stored value is
//! older than `security.last_used_granularity_secs`) waits in a small in-memory batch. This task
//! writes that batch every few seconds in one transaction (`Sessions::flush_last_used`), and once
//! more when it stops, after the listener has drained, so a clean shutdown loses nothing. It does
//! not decide what is due; that is the core's rule.

use std::sync::Arc;
use std::time::Duration;

use auth_core::AuthService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the batch is written: the list is at most this much staler than the granularity, and
/// however many tokens were used meanwhile, it costs one transaction.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// A running flusher; [`LastUsedHandle::stop`] writes the last batch and ends it.
#[derive(Debug)]
pub struct LastUsedHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Starts the flusher on the current tokio runtime.
pub fn spawn(service: Arc<AuthService>, every: Duration) -> LastUsedHandle {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = stopped.changed() => true,
            };
            flush(&service).await;
            if stopping {
                break;
            }
        }
    });
    LastUsedHandle { stop, task }
}

async fn flush(service: &AuthService) {
    match service.sessions().flush_last_used().await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(tokens = n, "recorded token uses"),
        // The batch is kept for the next round; a store that stays down shows in /readyz.
        Err(e) => tracing::warn!(error = %e, "recording token uses failed; will retry"),
    }
}

impl LastUsedHandle {
    /// Writes what is still queued and ends the task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the last-used flusher ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auth_core::ports::{Clock as _, TokenStore as _};
    use auth_core::service::NewUser;
    use auth_core::{LoginMethod, LoginOutcome, Password, RequestContext, SignedDuration};

    /// Issue 17: a due use reaches the store through the flusher, and the last batch is written
    /// when the flusher stops, however long its interval.
    #[tokio::test]
    async fn stopping_writes_the_last_batch() {
        let w = auth_core::testkit::build_service();
        let portal = w.service.admin().ensure_default_portal().await.unwrap();
        let new = NewUser {
            email: "flush@example.com".into(),
            password: "correct horse battery".into(),
            first_name: String::new(),
            last_name: String::new(),
            is_admin: false,
        };
        w.service.admin().add_user(portal.id, new).await.unwrap();
        let ctx = RequestContext {
            portal,
            client_ip: "192.0.2.1".parse().unwrap(),
            client_ip_known: true,
            user_agent: None,
            device: None,
        };
        let login = LoginMethod::password(
            "flush@example.com",
            Password::new("correct horse battery").unwrap(),
        );
        let LoginOutcome::Token(t) = w.service.sign_in().login(&ctx, &login).await.unwrap() else {
            panic!("expected a token")
        };
        let flusher = super::spawn(w.service.clone(), Duration::from_secs(3600));
        w.clock.advance(SignedDuration::from_mins(10));
        let s = w.service.sessions().authenticate(&ctx, t.token.expose()).await.unwrap();
        let stored = w.store.token_by_hash(&s.token_hash).await.unwrap().unwrap();
        assert_eq!(stored.last_used_at, stored.issued_at, "not written by the request");
        flusher.stop().await;
        let stored = w.store.token_by_hash(&s.token_hash).await.unwrap().unwrap();
        assert_eq!(stored.last_used_at, w.clock.now(), "written when the flusher stopped");
    }
}

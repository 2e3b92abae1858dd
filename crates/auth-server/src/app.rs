//! The running server: [`App::build`] wires the pieces and binds the listener, [`App::run_until_stopped`]
//! serves until a shutdown future completes.
//!
//! Building and running are separate so that a test (or another program) can build the app on port 0,
//! read [`App::local_addr`], and stop it with any future it likes. `build` also prepares an empty data
//! directory for use: the default portal, and a first administrator with a generated password that is
//! handed back once through [`App::first_admin`] (the binary prints it; nothing else ever shows it).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use auth_core::ports::PasswordHasher;
use auth_core::service::NewUser;
use auth_core::{AdminError, AuthService, SecretString};
use auth_http::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::hashing::{HashingMetrics, PooledHasher};
use crate::keyfile;
use crate::last_used::LastUsedHandle;
use crate::metrics::{Families, OutboxMetrics};
use crate::outbox::{OutboxHandle, OutboxWorker};
use crate::tls::CertStore;
use crate::wiring;

/// The administrator created on an empty database.
#[derive(Clone, Debug)]
pub struct FirstAdmin {
    /// Their e-mail (the login).
    pub email: String,
    /// The generated password, shown once.
    pub password: SecretString,
}

/// The listener of `metrics_listen` and what it serves.
struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

/// A built server, listening but not yet serving.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics: Option<MetricsListener>,
    router: Router,
    tls: Option<auth_http::TlsAcceptor>,
    store: crate::wiring::StoreHandle,
    outbox: OutboxHandle,
    last_used: LastUsedHandle,
    first_admin: Option<FirstAdmin>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the data directory, prepares an empty database, starts the SMS outbox worker and binds
    /// the listener. Must run inside a tokio runtime.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, HashingMetrics::default()).await
    }

    /// [`App::build`], with the hashing pool reporting its queue through `hashing_metrics`: the
    /// binary makes them before its runtime, whose flood pause reads them
    /// ([`crate::runtime::build`]).
    pub async fn build_with(
        config: Config,
        hashing_metrics: HashingMetrics,
    ) -> anyhow::Result<App> {
        let hashing = config.hashing;
        let pool_metrics = hashing_metrics.clone();
        let core = wiring::open(&config, |rng| {
            let argon = wiring::argon2(&config, rng)?;
            let pool = PooledHasher::start_with_metrics(
                Arc::new(argon),
                hashing.workers,
                hashing.queue,
                pool_metrics,
            )
            .context("cannot start the password hashing threads")?;
            Ok(Arc::new(pool) as Arc<dyn PasswordHasher>)
        })
        .await?;
        let portal = core
            .service
            .admin()
            .ensure_default_portal()
            .await
            .context("cannot create the default portal")?;
        tracing::debug!(portal = %portal.id, "default portal ready");
        let first_admin = create_first_admin(&core.service, &config.bootstrap.admin_email).await?;

        if let Some(dir) =
            config.sms.file_path().and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty())
        {
            keyfile::ensure_private_dir(dir)?;
        }
        let routes: Vec<String> =
            config.sms.routes.iter().map(|r| format!("{}→{}", r.prefix, r.gateway)).collect();
        tracing::info!(gateway = %config.sms.gateway, routes = ?routes, "sms gateways ready");
        let gateways = Arc::clone(&core.sms);

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr().context("cannot read the bound address")?;

        let outbox = OutboxWorker {
            store: core.store.port(),
            service: Arc::clone(&core.service),
            gateway: Arc::clone(&gateways) as _,
            key: core.key.clone(),
            clock: Arc::clone(&core.clock),
            rng: Arc::clone(&core.rng),
            policy: auth_core::outbox::RetryPolicy::default(),
            mailer: core.mailer.clone().map(|m| m as Arc<dyn auth_core::ports::Mailer>),
            mail_policy: crate::outbox::mail_retry_policy(),
            poll_interval: config.outbox.poll_interval,
        }
        .spawn();
        let last_used =
            crate::last_used::spawn(Arc::clone(&core.service), crate::last_used::FLUSH_EVERY);

        let tls = match &config.tls {
            None => None,
            Some(files) => {
                let certs =
                    CertStore::open(files.clone()).context("cannot load the TLS certificate")?;
                certs.reload_on_sighup().context("cannot listen for SIGHUP")?;
                let config = certs.server_config().context("cannot configure TLS")?;
                Some(auth_http::TlsAcceptor::from(config))
            }
        };

        let outbox_metrics =
            Arc::new(OutboxMetrics::new(core.store.port(), Arc::clone(&core.clock)));
        let sms_metrics = gateways.metrics();
        let registry = crate::metrics::registry(&Families {
            logins: &core.logins,
            hashing: &hashing_metrics,
            sms: &sms_metrics,
            outbox: &outbox_metrics,
        });
        let router = Router::new(Arc::clone(&core.service), config.http.clone())
            .with_registry(registry)
            .with_scrape_hook(outbox_metrics);
        let (router, metrics) = match config.metrics_listen {
            None => (router, None),
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?;
                let addr = listener.local_addr().context("cannot read the bound address")?;
                let metrics = MetricsListener { listener, addr, router: router.metrics_only() };
                (router.without_metrics(), Some(metrics))
            }
        };
        Ok(App {
            listener,
            local_addr,
            metrics,
            router,
            tls,
            store: core.store,
            outbox,
            last_used,
            first_admin,
        })
    }

    /// The address the listener is bound to (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the metrics listener (`metrics_listen`), when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// The administrator this build created on an empty database, if it did.
    pub fn first_admin(&self) -> Option<&FirstAdmin> {
        self.first_admin.as_ref()
    }

    /// `https` when the listener speaks TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The service behind the HTTP router.
    pub fn service(&self) -> &Arc<AuthService> {
        self.router.service()
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish, then writes the queued
    /// token uses and stops the outbox worker.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, scheme = self.scheme(), "listening");
        // The metrics listener stops with the main one, whichever way that ends.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let main = async {
            let served = auth_http::serve_with(self.listener, self.router, self.tls, async {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await;
            let _ = stop.send(true);
            served
        };
        let metrics = async {
            let Some(m) = self.metrics else { return Ok(()) };
            tracing::info!(addr = %m.addr, "serving /metrics");
            let mut stopped = stopped.clone();
            auth_http::serve(m.listener, m.router, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        };
        let (served, metrics_served) = tokio::join!(main, metrics);
        if let Err(e) = metrics_served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
        // After the last request: the uses it queued are written before the store closes.
        self.last_used.stop().await;
        self.outbox.stop().await;
        // Folding the WAL back into the database file at a clean stop keeps the data directory to
        // one file for backups; a failure here loses nothing.
        if let Err(e) = self.store.checkpoint().await {
            tracing::debug!(error = %e, "wal checkpoint at shutdown skipped");
        }
        served.context("the HTTP server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Creates the first administrator when the database has no user at all.
async fn create_first_admin(
    service: &AuthService,
    email: &str,
) -> anyhow::Result<Option<FirstAdmin>> {
    if service.admin().count_users().await.context("cannot count users")? > 0 {
        return Ok(None);
    }
    let portal =
        service.admin().find_portal(None).await.context("cannot find the default portal")?;
    let password = service.admin().generate_password(20);
    let new = NewUser {
        email: email.to_owned(),
        password: password.clone(),
        first_name: "Administrator".to_owned(),
        last_name: String::new(),
        is_admin: true,
    };
    match service.admin().add_user(portal.id, new).await {
        Ok(user) => {
            tracing::info!(user = %user.id, "created the first administrator");
            Ok(Some(FirstAdmin { email: user.email, password }))
        }
        // Another process starting on the same empty database got there first; its output shows
        // the password.
        Err(AdminError::Conflict(_)) => Ok(None),
        Err(e) => Err(e).context("cannot create the first administrator"),
    }
}

/// Completes on SIGTERM or ctrl-c (SIGINT).
///
/// The handlers are installed when this function is called, not when the future is first polled, so a
/// signal that arrives right after the server says it is listening is never lost (it would otherwise
/// kill the process with the default action).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, signal = name, "cannot listen for the signal");
            None
        }
    };
    let terminate = install(SignalKind::terminate(), "SIGTERM");
    let interrupt = install(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {}
            () = wait(interrupt) => {}
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    }
}

/// The `serve` command: builds the app, prints the first administrator's credentials (once, on an
/// empty database) and the listening address on stdout, and serves until SIGTERM or ctrl-c.
///
/// The stdout lines are a stable interface: `listening on http://ADDR` (`https://` with `[tls]`) tells
/// scripts and the black-box tests which port was bound.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    serve_with(config, HashingMetrics::default()).await
}

/// [`serve`], with the hashing pool reporting through `hashing_metrics` (see [`App::build_with`]).
pub async fn serve_with(config: Config, hashing_metrics: HashingMetrics) -> anyhow::Result<()> {
    let app = App::build_with(config, hashing_metrics).await?;
    if let Some(admin) = app.first_admin() {
        println!("Created the first administrator (this password is not shown again):");
        println!("  e-mail:   {}", admin.email);
        println!("  password: {}", admin.password.expose());
        println!(
            "Change it with `auth-server user set-password --email {} --password-stdin`.",
            admin.email
        );
    }
    let stop = shutdown_signal();
    if let Some(addr) = app.metrics_addr() {
        println!("metrics on http://{addr}/metrics");
    }
    println!("listening on {}://{}", app.scheme(), app.local_addr());
    app.run_until_stopped(stop).await
}

#[cfg(test)]
mod tests {
    //! The server started from a test without the binary: `App::build` on port 0, a login over HTTP
    //! with the typed client, and a clean stop — what an embedding program or a test harness does.

    use auth_http::client::Client;

    use super::App;
    use crate::config::{Config, Overrides};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn app_builds_serves_and_stops_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            log_json: false,
        };
        // Small hash parameters: a test, not a server default.
        let env = [("AUTH_HASHING__M_COST_KIB", "8"), ("AUTH_HASHING__T_COST", "1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load(None, env, &overrides).unwrap();
        let app = App::build(config).await.unwrap();
        let addr = app.local_addr();
        assert_ne!(addr.port(), 0);
        let admin = app.first_admin().expect("an empty database gets a first admin");
        let (email, password) = (admin.email.clone(), admin.password.expose().to_owned());

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = Client::new(format!("http://{addr}"));
        let token = client
            .login(&email, &password)
            .await
            .unwrap()
            .token
            .expect("no second factor by default");
        assert_eq!(client.me(&token).await.unwrap().email, email);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}

//! One configured directory, ready to ask: connections (TLS by rustls on ring, StartTLS or ldaps://),
//! the bounded pool of service-account connections, and the steps of a login and of a sync.
//!
//! Bounds, so a slow or dead directory cannot pile work up behind it:
//! - at most `pool_size` logins (or syncs) talk to the directory at once; one more waits up to
//!   `timeout_secs` for its turn and is then refused as unavailable;
//! - every step (connect with TLS, bind, search) has the deadline `timeout_secs`;
//! - service connections are kept idle for reuse (binding is a round trip, connecting with TLS
//!   several), and one that broke while idle is replaced once, at once.
//!
//! A user's bind always gets a fresh connection of its own, closed (unbind) right after: a bind
//! changes whose rights a connection has, so a pooled service connection is never bound as a user.
//!
//! What fails maps onto the port's outcomes in one place ([`classify_bind`]): the directory not
//! answering (connect refused, timeout, TLS failure, busy, unavailable) is `Unavailable`; a refused
//! user bind (invalidCredentials, rc 49, and the other refusals) is a wrong password, never
//! `Unavailable`. Passwords never appear in an error, a log line or a `Debug`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_core::SecretString;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{
    LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry, SearchOptions,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::DirectoryConfig;
use super::filter;
use super::trace::{Step, Trace};
use super::{DirectoryEntry, DirectoryError};

/// How long a service connection may sit idle before it is closed rather than reused: directories
/// drop idle connections themselves (Active Directory after 15 minutes), and a reused dead one costs
/// a retry.
const IDLE_MAX: Duration = Duration::from_secs(120);

/// Entries per page of the paged search `ldap sync` makes (Active Directory answers at most 1000
/// entries to one plain search).
const PAGE_SIZE: i32 = 500;

/// Group checks `ldap sync` runs at once over its one connection (LDAP multiplexes operations).
const SYNC_GROUP_CHECKS: usize = 16;

/// LDAP result codes (RFC 4511, appendix A) the client acts on.
mod rc {
    pub(super) const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub(super) const NO_SUCH_OBJECT: u32 = 32;
    pub(super) const INVALID_CREDENTIALS: u32 = 49;
}

/// Why a step failed, before it becomes the port's outcome.
#[derive(Debug)]
pub(super) enum Failure {
    /// The directory did not answer usefully (its reason, for the log; never a password).
    Unavailable(String),
    /// It answered, and refused.
    Refused(DirectoryError),
}

impl Failure {
    pub(super) fn into_error(self) -> DirectoryError {
        match self {
            Failure::Unavailable(why) => DirectoryError::Unavailable(why),
            Failure::Refused(e) => e,
        }
    }
}

/// A service connection taken from the pool, or made for this login.
struct Pooled {
    ldap: ldap3::Ldap,
    /// Whether it was idle before (so a failure may be a connection that died while idle).
    reused: bool,
}

/// One directory.
pub(super) struct DirectoryClient {
    pub(super) config: DirectoryConfig,
    /// `ldaps://host:port` or `ldap://host:port`.
    url: String,
    /// The TLS configuration (for ldaps:// and StartTLS).
    tls: Option<Arc<rustls::ClientConfig>>,
    bind_password: SecretString,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<(ldap3::Ldap, Instant)>>,
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryClient")
            .field("name", &self.config.name)
            .field("url", &self.url)
            .field("start_tls", &self.config.start_tls)
            .field("pool_size", &self.config.pool_size)
            .finish_non_exhaustive()
    }
}

/// What a user search found.
struct Found {
    entry: SearchEntry,
}

impl DirectoryClient {
    pub(super) fn new(
        config: DirectoryConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        bind_password: SecretString,
    ) -> Self {
        Self {
            url: config.url.to_string(),
            permits: Arc::new(Semaphore::new(config.pool_size)),
            idle: Mutex::new(Vec::new()),
            config,
            tls,
            bind_password,
        }
    }

    /// The attributes read from a user's entry.
    fn attributes(&self) -> Vec<String> {
        let a = &self.config.attributes;
        let mut list = vec![a.email.clone(), a.first_name.clone(), a.last_name.clone()];
        list.extend(a.mobile.clone());
        list.extend(a.disabled.clone());
        list
    }

    /// A turn to talk to the directory, waiting at most the step deadline.
    async fn turn(&self) -> Result<OwnedSemaphorePermit, Failure> {
        match tokio::time::timeout(self.config.timeout, Arc::clone(&self.permits).acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Failure::Unavailable("the directory client is shut down".to_owned())),
            Err(_) => Err(Failure::Unavailable(format!(
                "all {} connections to the directory are busy",
                self.config.pool_size
            ))),
        }
    }

    /// A new connection, TLS set up (StartTLS or ldaps://) and nothing else sent yet.
    async fn connect(&self, trace: &mut Trace, step: Step) -> Result<ldap3::Ldap, Failure> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.config.timeout);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls)).set_starttls(self.config.start_tls);
        }
        let connected = LdapConnAsync::with_settings(settings, &self.url).await;
        let (conn, ldap) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                let why = format!("cannot connect to {}: {}", self.url, describe(&e));
                trace.fail(step, &why);
                return Err(Failure::Unavailable(why));
            }
        };
        // The connection's driver runs until every handle is dropped or the socket closes.
        let url = self.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url, error = %describe(&e), "LDAP connection ended with an error");
            }
        });
        let how = match (&self.tls, self.config.start_tls) {
            (None, _) => "plain text (loopback)",
            (Some(_), true) => "StartTLS",
            (Some(_), false) => "TLS",
        };
        trace.ok(step, &format!("{} ({how})", self.url));
        Ok(ldap)
    }

    /// A fresh service connection: connected and bound as the service account.
    async fn fresh_service(&self, trace: &mut Trace) -> Result<ldap3::Ldap, Failure> {
        let mut ldap = self.connect(trace, Step::Connect).await?;
        let bound = tokio::time::timeout(
            self.config.timeout,
            ldap.simple_bind(&self.config.bind_dn, self.bind_password.expose()),
        )
        .await;
        let why = match bound {
            Ok(Ok(result)) if result.rc == 0 => {
                trace.ok(Step::ServiceBind, &self.config.bind_dn);
                return Ok(ldap);
            }
            Ok(Ok(result)) => format!(
                "the service account {} could not bind: {}",
                self.config.bind_dn,
                describe_result(&result)
            ),
            Ok(Err(e)) => format!("service bind failed: {}", describe(&e)),
            Err(_) => format!("service bind: no answer within {:?}", self.config.timeout),
        };
        // A refused service bind is a configuration error (wrong password or DN) that every login
        // would hit: the directory cannot be used, which is not the user's wrong password.
        trace.fail(Step::ServiceBind, &why);
        Err(Failure::Unavailable(why))
    }

    /// A service connection: an idle one when there is one, else a fresh one.
    async fn service(&self, trace: &mut Trace) -> Result<Pooled, Failure> {
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.retain(|(_, since)| since.elapsed() < IDLE_MAX);
            idle.pop()
        };
        match idle {
            Some((ldap, _)) => Ok(Pooled { ldap, reused: true }),
            None => Ok(Pooled { ldap: self.fresh_service(trace).await?, reused: false }),
        }
    }

    /// How many service connections sit idle in the pool.
    #[cfg(test)]
    pub(super) fn idle_connections(&self) -> usize {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Puts a service connection that worked back for the next login.
    fn give_back(&self, ldap: ldap3::Ldap) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.config.pool_size {
            idle.push((ldap, Instant::now()));
        }
    }

    /// Runs `op` on a service connection; when a reused connection fails at the transport (it died
    /// while idle), once more on a fresh one. The connection goes back to the pool after success.
    ///
    /// `op` gets its own handle to the connection (handles are cheap and share it), so its future
    /// owns what it uses and stays `Send`.
    async fn with_service<T, F>(
        &self,
        trace: &mut Trace,
        op: impl Fn(ldap3::Ldap) -> F,
    ) -> Result<(T, ldap3::Ldap), Failure>
    where
        F: Future<Output = Result<T, LdapError>>,
    {
        let mut conn = self.service(trace).await?;
        let result = op(conn.ldap.clone()).await;
        let result = match result {
            Err(e) if conn.reused && is_transport(&e) => {
                tracing::debug!(directory = %self.config.name, error = %describe(&e), "an idle LDAP connection had died; reconnecting");
                conn = Pooled { ldap: self.fresh_service(trace).await?, reused: false };
                op(conn.ldap.clone()).await
            }
            other => other,
        };
        match result {
            Ok(value) => Ok((value, conn.ldap)),
            Err(e) => Err(Failure::Unavailable(describe(&e))),
        }
    }

    /// A login (spec §5.9): search with the service account, bind as the one entry found, then the
    /// group and the disabled flag.
    pub(super) async fn authenticate(
        &self,
        login: &str,
        password: &SecretString,
        trace: &mut Trace,
    ) -> Result<DirectoryEntry, Failure> {
        let _turn = self.turn().await?;
        let found = self.find_user(login, trace).await?;
        let (found, service) = match found {
            (Some(found), service) => (found, service),
            (None, service) => {
                self.give_back(service);
                return Err(Failure::Refused(DirectoryError::UnknownLogin));
            }
        };
        let Some(entry) = self.entry(&found.entry) else {
            self.give_back(service);
            tracing::warn!(directory = %self.config.name, dn = %found.entry.dn, attribute = %self.config.attributes.email, "the directory entry has no e-mail, so it cannot be a portal user");
            trace.fail(Step::Search, "the entry has no e-mail attribute");
            return Err(Failure::Refused(DirectoryError::UnknownLogin));
        };
        // Held across the user's bind, so the group check needs no second turn.
        let mut service = service;
        if let Err(e) = self.bind_user(&entry.dn, password, trace).await {
            self.give_back(service);
            return Err(e);
        }
        let member = self.is_member(&mut service, &entry.dn, trace).await;
        match member {
            Ok(true) => self.give_back(service),
            Ok(false) => {
                self.give_back(service);
                return Err(Failure::Refused(DirectoryError::NotInGroup));
            }
            Err(e) => return Err(e),
        }
        if entry.disabled {
            trace.fail(Step::Disabled, "the directory marks the account disabled");
            return Err(Failure::Refused(DirectoryError::Disabled));
        }
        if self.config.attributes.disabled.is_some() {
            trace.ok(Step::Disabled, "not disabled");
        }
        Ok(entry)
    }

    /// The one entry the user filter admits for `login`, if exactly one does; the service connection
    /// comes back with it.
    async fn find_user(
        &self,
        login: &str,
        trace: &mut Trace,
    ) -> Result<(Option<Found>, ldap3::Ldap), Failure> {
        let filter = filter::user_filter(&self.config.user_filter, login);
        let attrs = self.attributes();
        let base = self.config.user_base.clone();
        let timeout = self.config.timeout;
        let limit = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let searched = self
            .with_service(trace, |mut ldap| {
                let (base, filter, attrs) = (base.clone(), filter.clone(), attrs.clone());
                async move {
                    // Two entries are enough to know that a login is ambiguous.
                    ldap.with_search_options(SearchOptions::new().sizelimit(2).timelimit(limit))
                        .with_timeout(timeout);
                    let result = ldap.search(&base, Scope::Subtree, &filter, attrs).await?;
                    Ok((result.0, result.1))
                }
            })
            .await;
        let ((entries, result), service) = match searched {
            Ok(found) => found,
            Err(Failure::Unavailable(why)) => {
                trace.fail(Step::Search, &why);
                return Err(Failure::Unavailable(format!("user search: {why}")));
            }
            Err(refused) => return Err(refused),
        };
        let entries: Vec<SearchEntry> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect();
        match result.rc {
            0 | rc::SIZE_LIMIT_EXCEEDED => {}
            rc::NO_SUCH_OBJECT => {
                let why = format!("user_base {} does not exist", self.config.user_base);
                tracing::error!(directory = %self.config.name, "{why}");
                trace.fail(Step::Search, &why);
                return Err(Failure::Unavailable(why));
            }
            _ => {
                let why = format!("user search refused: {}", describe_result(&result));
                trace.fail(Step::Search, &why);
                return Err(Failure::Unavailable(why));
            }
        }
        let ambiguous = entries.len() > 1 || result.rc == rc::SIZE_LIMIT_EXCEEDED;
        if ambiguous {
            // More than one person answers to this login: binding as any of them would be a guess.
            tracing::warn!(directory = %self.config.name, login, "the user filter admits more than one entry for this login; refusing it");
            trace.fail(Step::Search, "found more than one entry; a login must name one person");
            return Ok((None, service));
        }
        let mut entries = entries;
        match entries.pop() {
            None => {
                trace.fail(Step::Search, "found 0 entries");
                Ok((None, service))
            }
            Some(entry) => {
                trace.ok(Step::Search, &format!("found 1 entry: {}", entry.dn));
                Ok((Some(Found { entry }), service))
            }
        }
    }

    /// Binds as `dn` with `password` on a connection of its own, and closes it again.
    async fn bind_user(
        &self,
        dn: &str,
        password: &SecretString,
        trace: &mut Trace,
    ) -> Result<(), Failure> {
        // An empty password makes a simple bind "unauthenticated", which some servers answer with
        // success: it must never get that far (RFC 4513, section 5.1.2).
        if password.is_empty() {
            trace.fail(Step::UserBind, "an empty password is refused before any bind");
            return Err(Failure::Refused(DirectoryError::WrongPassword));
        }
        let mut ldap = self.connect(trace, Step::UserConnect).await?;
        let bound =
            tokio::time::timeout(self.config.timeout, ldap.simple_bind(dn, password.expose()))
                .await;
        let outcome = match bound {
            Ok(Ok(result)) => classify_bind(&result),
            Ok(Err(e)) => Err(Failure::Unavailable(format!("user bind failed: {}", describe(&e)))),
            Err(_) => Err(Failure::Unavailable(format!(
                "user bind: no answer within {:?}",
                self.config.timeout
            ))),
        };
        match &outcome {
            Ok(()) => trace.ok(Step::UserBind, dn),
            Err(Failure::Refused(e)) => trace.fail(Step::UserBind, &e.to_string()),
            Err(Failure::Unavailable(why)) => trace.fail(Step::UserBind, why),
        }
        // The connection did its one job; closing it politely is best effort.
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
        outcome
    }

    /// Whether `dn` is a member of `group_dn` (true when no group is configured).
    async fn is_member(
        &self,
        service: &mut ldap3::Ldap,
        dn: &str,
        trace: &mut Trace,
    ) -> Result<bool, Failure> {
        let Some(group) = &self.config.group_dn else { return Ok(true) };
        match self.member_check(service, group, dn).await {
            Ok(true) => {
                trace.ok(Step::Group, &format!("member of {group}"));
                Ok(true)
            }
            Ok(false) => {
                trace.fail(Step::Group, &format!("not a member of {group}"));
                Ok(false)
            }
            Err(why) => {
                trace.fail(Step::Group, &why);
                Err(Failure::Unavailable(why))
            }
        }
    }

    /// One base-object search at the group for an entry listing `dn`: the server matches DNs by
    /// its own rules, and a large group's member list is never transferred.
    async fn member_check(
        &self,
        ldap: &mut ldap3::Ldap,
        group: &str,
        dn: &str,
    ) -> Result<bool, String> {
        let filter = filter::member_filter(dn);
        let searched = tokio::time::timeout(
            self.config.timeout,
            ldap.search(group, Scope::Base, &filter, vec!["1.1"]),
        )
        .await;
        match searched {
            Ok(Ok(result)) => match result.1.rc {
                0 => Ok(result.0.iter().any(|e| !e.is_ref() && !e.is_intermediate())),
                rc::NO_SUCH_OBJECT => {
                    let why = format!("group_dn {group} does not exist");
                    tracing::error!(directory = %self.config.name, "{why}");
                    Err(why)
                }
                _ => Err(format!("group check refused: {}", describe_result(&result.1))),
            },
            Ok(Err(e)) => Err(format!("group check failed: {}", describe(&e))),
            Err(_) => Err(format!("group check: no answer within {:?}", self.config.timeout)),
        }
    }

    /// Every entry the user filter admits (only the group's members when a group is set), for
    /// `ldap sync`; entries without an e-mail are left out with a warning.
    pub(super) async fn entries(&self, trace: &mut Trace) -> Result<Vec<DirectoryEntry>, Failure> {
        let _turn = self.turn().await?;
        let filter = filter::all_users_filter(&self.config.user_filter);
        let attrs = self.attributes();
        let base = self.config.user_base.clone();
        let timeout = self.config.timeout;
        let listed = self
            .with_service(trace, |mut ldap| {
                let (base, filter, attrs) = (base.clone(), filter.clone(), attrs.clone());
                async move {
                    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
                        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
                    let mut stream = ldap
                        .streaming_search_with(adapters, &base, Scope::Subtree, &filter, attrs)
                        .await?;
                    let mut found = Vec::new();
                    loop {
                        match tokio::time::timeout(timeout, stream.next()).await {
                            Ok(Ok(Some(entry))) => found.push(SearchEntry::construct(entry)),
                            Ok(Ok(None)) => break,
                            Ok(Err(e)) => return Err(e),
                            Err(elapsed) => return Err(LdapError::Timeout { elapsed }),
                        }
                    }
                    stream.finish().await.success()?;
                    Ok(found)
                }
            })
            .await;
        let (found, service) = match listed {
            Ok(pair) => pair,
            Err(e) => {
                if let Failure::Unavailable(why) = &e {
                    trace.fail(Step::Search, why);
                }
                return Err(e);
            }
        };
        trace.ok(Step::Search, &format!("found {} entries", found.len()));
        let mut entries = Vec::with_capacity(found.len());
        for entry in &found {
            match self.entry(entry) {
                Some(e) => entries.push(e),
                None => {
                    tracing::warn!(directory = %self.config.name, dn = %entry.dn, "skipping a directory entry without an e-mail")
                }
            }
        }
        if let Some(group) = self.config.group_dn.clone() {
            let mut members = Vec::with_capacity(entries.len());
            for chunk in entries.chunks(SYNC_GROUP_CHECKS) {
                let checks = chunk.iter().map(|e| {
                    let mut ldap = service.clone();
                    let group = group.clone();
                    async move { self.member_check(&mut ldap, &group, &e.dn).await }
                });
                let answers = futures_util::future::join_all(checks).await;
                for (entry, answer) in chunk.iter().zip(answers) {
                    match answer {
                        Ok(true) => members.push(entry.clone()),
                        Ok(false) => {}
                        Err(why) => {
                            trace.fail(Step::Group, &why);
                            return Err(Failure::Unavailable(why));
                        }
                    }
                }
            }
            trace.ok(Step::Group, &format!("{} of them are members of {group}", members.len()));
            entries = members;
        }
        self.give_back(service);
        Ok(entries)
    }

    /// The port's view of an entry; `None` without an e-mail.
    fn entry(&self, entry: &SearchEntry) -> Option<DirectoryEntry> {
        let a = &self.config.attributes;
        let email = first(entry, &a.email).filter(|e| !e.trim().is_empty())?;
        let disabled = match &a.disabled {
            None => false,
            Some(attr) => is_disabled(attr, values(entry, attr)),
        };
        Some(DirectoryEntry {
            directory: self.config.name.clone(),
            dn: entry.dn.clone(),
            email: email.trim().to_owned(),
            first_name: first(entry, &a.first_name).unwrap_or_default(),
            last_name: first(entry, &a.last_name).unwrap_or_default(),
            mobile: a
                .mobile
                .as_deref()
                .and_then(|m| first(entry, m))
                .filter(|m| !m.trim().is_empty()),
            disabled,
        })
    }
}

/// An attribute's values; servers answer with their own spelling of the name, so it is matched
/// without regard to case.
fn values<'e>(entry: &'e SearchEntry, name: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[][..], |(_, v)| v.as_slice())
}

fn first(entry: &SearchEntry, name: &str) -> Option<String> {
    values(entry, name).first().cloned()
}

/// Whether the `disabled` attribute's values mean disabled: Active Directory's `userAccountControl`
/// is a bit field whose bit 2 (ACCOUNTDISABLE) says so; any other attribute (FreeIPA's
/// `nsAccountLock`, a custom flag) is a boolean-ish value.
pub(super) fn is_disabled(attribute: &str, values: &[String]) -> bool {
    if attribute.eq_ignore_ascii_case("userAccountControl") {
        return values.iter().any(|v| v.trim().parse::<i64>().is_ok_and(|bits| bits & 2 != 0));
    }
    values.iter().any(|v| {
        let v = v.trim();
        ["true", "1", "yes"].iter().any(|t| v.eq_ignore_ascii_case(t))
    })
}

/// What a user bind's result means. Success is `Ok`; refusals are a wrong password (or, for Active
/// Directory's "account disabled/expired/locked" sub-codes of rc 49, disabled); only a server that
/// says it cannot work now is unavailable.
pub(super) fn classify_bind(result: &LdapResult) -> Result<(), Failure> {
    match result.rc {
        0 => Ok(()),
        rc::INVALID_CREDENTIALS => {
            // Active Directory explains rc 49 in the text: "…, data 533, …" (disabled), 701
            // (account expired), 775 (locked out); 52e is a plain wrong password.
            let text = result.text.to_ascii_lowercase();
            let disabled = ["data 533", "data 701", "data 775"].iter().any(|d| text.contains(d));
            Err(Failure::Refused(if disabled {
                DirectoryError::Disabled
            } else {
                DirectoryError::WrongPassword
            }))
        }
        // operationsError, protocolError, timeLimitExceeded, adminLimitExceeded,
        // confidentialityRequired, busy, unavailable, other: the server could not judge the password.
        1 | 2 | 3 | 11 | 13 | 51 | 52 | 80 => {
            Err(Failure::Unavailable(format!("user bind: {}", describe_result(result))))
        }
        // inappropriateAuthentication, insufficientAccessRights, unwillingToPerform (a policy lock),
        // and anything else: the password was not accepted.
        _ => Err(Failure::Refused(DirectoryError::WrongPassword)),
    }
}

/// Whether an error means the connection itself is gone (so a fresh one may succeed).
fn is_transport(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::EndOfStream
            | LdapError::IdScrubSend { .. }
    )
}

/// An LDAP error as one line (ldap3's own texts carry no credentials: binds send them, results
/// never echo them).
fn describe(e: &LdapError) -> String {
    match e {
        LdapError::LdapResult { result } => describe_result(result),
        LdapError::Timeout { .. } => "no answer in time".to_owned(),
        other => other.to_string(),
    }
}

fn describe_result(result: &LdapResult) -> String {
    let name = match result.rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "result",
    };
    if result.text.is_empty() {
        format!("{name} (rc {})", result.rc)
    } else {
        format!("{name} (rc {}): {}", result.rc, result.text.trim())
    }
}

//! E-mail delivery over SMTP (spec §14): the real implementation of auth-core's `Mailer` port.
//!
//! [`SmtpMailer`] hands one rendered message to the configured mail server per call, on a fresh
//! connection, one step at a time: connect (TLS from the first byte for `smtps://`), `EHLO`,
//! `STARTTLS` for `smtp://` (required: a server that does not offer it is not used), `AUTH PLAIN` or
//! `AUTH LOGIN` when a user is configured, then `MAIL FROM`, `RCPT TO` and `DATA`. Doing the steps
//! itself rather than through lettre's transport lets it class each failure by the step that ended
//! it: a 5xx reply to a recipient or to the message (`RCPT`, `DATA`) is [`MailError::Rejected`], never
//! retried; anything else (connecting, TLS, a refused login, a refused sender) and every 4xx or lost
//! connection is [`MailError::Unavailable`], retried by the outbox. A refused login or sender is about
//! the server's account or the configuration, the same for every message, so it must not discard them.
//!
//! The message itself is built in module `message`: `multipart/alternative` (text, then HTML), UTF-8,
//! and a `Message-ID` that is the same for every attempt of one outbox message.
//!
//! Secrets: the password is read once from its file into a `SecretString`, and lettre's `tracing`
//! feature is off, so no command (`AUTH …`) is logged. Errors name the server (scheme, host and port),
//! the step and the server's reply; never the password, and never a body, which may hold a reset key.
//! A reply to `AUTH` is reduced to its code, since it answers a line that carried the password.
//! This module does not choose what is sent or when: the outbox worker and the core do.

mod config;
mod message;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::{MailError, MailMessage, Mailer};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

pub(crate) use config::RawEmail;
pub use config::{
    DEFAULT_TIMEOUT_SECS, EmailConfig, EmailConfigError, MAX_TIMEOUT_SECS, PLAINTEXT_QUERY,
    Security, SmtpUrl, parse_smtp_url,
};
pub use message::message_id;

use crate::outbound::{Outbound, SetupError};

/// The longest piece of a server's reply kept in an error: enough for the reason, not a novel.
const MAX_REPLY_CHARS: usize = 300;

/// Why the mailer could not be built at start-up. No variant carries the password.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    /// The password file could not be read.
    #[error("email: cannot read password_file {}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The password file is empty.
    #[error("email: password_file {} is empty", path.display())]
    EmptyPassword {
        /// The file.
        path: PathBuf,
    },
    /// The trust roots could not be gathered (CA file, system store).
    #[error("email: {0}")]
    Roots(#[from] SetupError),
    /// The TLS client could not be set up from them.
    #[error("email: cannot set up TLS for {server}: {reason}")]
    Tls {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
}

/// Delivers messages to the configured SMTP server.
pub struct SmtpMailer {
    config: EmailConfig,
    credentials: Option<Credentials>,
    /// `None` for `?tls=none`; otherwise what the certificate is checked against.
    tls: Option<TlsParameters>,
    hello: ClientId,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.config.smtp)
            .field("user", &self.config.smtp.user)
            .field("from", &self.config.from.to_string())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The step of a delivery that failed, for the error's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Connect,
    StartTls,
    Auth,
    MailFrom,
    Message,
}

impl SmtpMailer {
    /// Builds the mailer of `config`: reads the password file and gathers the trust roots (the
    /// system's and `ca_file`'s, as every outbound TLS client does).
    pub fn from_config(config: &EmailConfig, outbound: &Outbound) -> Result<Self, EmailSetupError> {
        let credentials = match (&config.smtp.user, &config.password_file) {
            (Some(user), Some(path)) => {
                let password = read_password(path)?;
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            // `EmailConfig` pairs a user with a password file; a user without one sends no AUTH.
            _ => None,
        };
        let tls = match config.smtp.security {
            Security::Plaintext => None,
            Security::ImplicitTls | Security::StartTls => {
                Some(tls_parameters(config, outbound.trust_roots(config.ca_file.as_deref())?)?)
            }
        };
        Ok(Self { config: config.clone(), credentials, tls, hello: ClientId::default() })
    }

    /// The external base URL that links in messages are built on (no trailing `/`).
    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// The server, as errors and `email test` show it (no user, no password).
    pub fn server(&self) -> String {
        self.config.smtp.to_string()
    }

    async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<(), MailError> {
        let smtp = &self.config.smtp;
        let implicit = match smtp.security {
            Security::ImplicitTls => self.tls.clone(),
            Security::StartTls | Security::Plaintext => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (smtp.bare_host(), smtp.port),
            Some(self.config.timeout),
            &self.hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| self.unavailable(Step::Connect, &e))?;
        self.session(&mut conn, envelope, bytes).await?;
        // The message is the server's now; a failing QUIT changes nothing. After a failure the
        // connection is only dropped: lettre has already sent QUIT where that is still possible, and
        // after a failed TLS upgrade it has no stream left to write to (writing would panic).
        let _ = conn.quit().await;
        Ok(())
    }

    async fn session(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<(), MailError> {
        if self.config.smtp.security == Security::StartTls {
            let Some(tls) = self.tls.clone() else {
                return Err(MailError::Unavailable(format!(
                    "{}: TLS is not set up",
                    self.server()
                )));
            };
            if !conn.can_starttls() {
                return Err(MailError::Unavailable(format!(
                    "{}: the server does not offer STARTTLS, which smtp:// requires (use smtps:// \
                     for TLS from the first byte)",
                    self.server()
                )));
            }
            conn.starttls(tls, &self.hello)
                .await
                .map_err(|e| self.unavailable(Step::StartTls, &e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| self.unavailable(Step::Auth, &e))?;
        }
        self.transaction(conn, envelope, bytes).await
    }

    /// `MAIL FROM`, `RCPT TO` and `DATA`, each classed on its own (what lettre's `send` does, step by
    /// step). A 5xx reply to `MAIL FROM` is about the sender or the session ("sender not allowed",
    /// "authentication required"), the same for every message: unavailable, so the operator can fix
    /// it and nothing is lost. A 5xx reply to a recipient or to the message is this message's.
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<(), MailError> {
        let server = self.server();
        let info = conn.server_info();
        let mut options = Vec::new();
        let non_ascii =
            envelope.to().iter().chain(envelope.from()).any(|a| !a.to_string().is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(MailError::Rejected(format!(
                    "{server}: an address is not ASCII and the server does not offer SMTPUTF8"
                )));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        // The message is built for 7-bit transport (`message`), so this only guards a change there.
        if !bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(MailError::Unavailable(format!(
                    "{server}: the message is 8-bit and the server does not offer 8BITMIME"
                )));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(|e| self.unavailable(Step::MailFrom, &e))?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), Vec::new()))
                .await
                .map_err(|e| self.refused(Step::Message, &e))?;
        }
        conn.command(Data).await.map_err(|e| self.refused(Step::Message, &e))?;
        conn.message(bytes).await.map_err(|e| self.refused(Step::Message, &e))?;
        Ok(())
    }

    /// A failure of the message itself: rejected for good on a 5xx reply, unavailable otherwise.
    fn refused(&self, step: Step, e: &lettre::transport::smtp::Error) -> MailError {
        if e.is_permanent() {
            MailError::Rejected(format!("{}: {}", self.server(), reply(e)))
        } else {
            self.unavailable(step, e)
        }
    }

    fn unavailable(&self, step: Step, e: &lettre::transport::smtp::Error) -> MailError {
        let server = self.server();
        MailError::Unavailable(match step {
            Step::Connect => format!("{server}: cannot connect: {}", root_cause(e)),
            Step::StartTls => format!("{server}: STARTTLS failed: {}", root_cause(e)),
            // The reply answers a line that held the password: only its code is kept.
            Step::Auth => match e.status() {
                Some(code) => format!(
                    "{server}: the server refused the login of {:?} ({code}); check email.smtp_url's \
                     user and email.password_file",
                    self.config.smtp.user.as_deref().unwrap_or("")
                ),
                None => format!("{server}: login failed: {}", auth_failure(e)),
            },
            Step::MailFrom => format!(
                "{server}: the server refused the sender {} ({}); check email.from and the login",
                self.config.from.email,
                reply(e)
            ),
            Step::Message => format!("{server}: {}", reply(e)),
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn deliver(&self, mail: &MailMessage) -> Result<(), MailError> {
        let message = message::build(&self.config.from, mail)?;
        let bytes = zeroize::Zeroizing::new(message.formatted());
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.send(message.envelope(), &bytes)).await {
            Ok(result) => result,
            Err(_) => Err(MailError::Unavailable(format!(
                "{}: no answer within {}s",
                self.server(),
                timeout.as_secs()
            ))),
        }
    }
}

/// The TLS parameters for the server's host, trusting exactly `roots`.
fn tls_parameters(
    config: &EmailConfig,
    roots: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> Result<TlsParameters, EmailSetupError> {
    let server = config.smtp.to_string();
    let tls_error = |e: lettre::transport::smtp::Error| EmailSetupError::Tls {
        server: server.clone(),
        reason: e.to_string(),
    };
    // Only the roots given are trusted (no store of lettre's own), so SMTP is held to the same
    // trust as every other outbound connection; certificate and host name are always checked.
    let mut builder = TlsParameters::builder(config.smtp.bare_host().to_owned())
        .certificate_store(CertificateStore::None);
    for root in roots {
        builder =
            builder.add_root_certificate(Certificate::from_der(root.to_vec()).map_err(tls_error)?);
    }
    builder.build_rustls().map_err(tls_error)
}

/// The password in `path`, without the line break editors end files with.
fn read_password(path: &std::path::Path) -> Result<SecretString, EmailSetupError> {
    use crate::secret_file::{SecretFileError, Trim, read};
    read(path, Trim::LineEnd, "email").map_err(|e| match e {
        SecretFileError::Read(source) => {
            EmailSetupError::PasswordFile { path: path.to_owned(), source }
        }
        SecretFileError::Empty => EmailSetupError::EmptyPassword { path: path.to_owned() },
    })
}

/// An error and its causes, joined and cut to [`MAX_REPLY_CHARS`].
fn reply(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    cut(&text)
}

/// The innermost cause of `e`: for a connection or TLS failure the one that says what went wrong
/// ("invalid peer certificate: UnknownIssuer", "Connection refused"), without lettre's wrappers.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cut(&cause.to_string())
}

/// What is said of a login that failed without a reply code (no common mechanism, a broken
/// connection): lettre's own words only, never the server's text.
fn auth_failure(e: &lettre::transport::smtp::Error) -> String {
    if e.is_client() {
        "the server offers neither AUTH PLAIN nor AUTH LOGIN".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        "the connection failed during AUTH".to_owned()
    }
}

fn cut(text: &str) -> String {
    let one_line = text.replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(MAX_REPLY_CHARS) {
        Some((at, _)) => format!("{}…", one_line.get(..at).unwrap_or("")),
        None => one_line,
    }
}

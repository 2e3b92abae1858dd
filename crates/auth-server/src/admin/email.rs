//! `auth-server email test` (spec §14): one message through the configured SMTP server, now.
//!
//! It builds the same mailer the server's outbox worker uses, from the same `[email]` section, and
//! hands it one bilingual test message, so what it reports is what a password-reset mail would meet:
//! the TLS handshake and its certificate check, the login, the sender and the recipient. It needs no
//! database and changes nothing. It prints the server (scheme, host and port), the sender, the
//! recipient, the outcome (`sent`, `rejected` or `unavailable`) and the server's answer; never the
//! password, which no error holds.

use std::io::Write;

use anyhow::{Context as _, bail};
use auth_core::SecretString;
use auth_core::ports::{MailError, MailMessage, Mailer as _};

use crate::cli::EmailTest;
use crate::config::Config;
use crate::email::SmtpMailer;
use crate::outbound::Outbound;

/// Sends the test message of `args` and reports the outcome; an `Err` unless the server took it.
pub(super) async fn test(
    config: &Config,
    args: &EmailTest,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use auth_core::primitives::RngExt as _;

    let Some(email) = &config.email else {
        bail!(
            "e-mail is not configured: set email.smtp_url, email.from and email.public_url (see docs/email.md)"
        );
    };
    let outbound = Outbound::new(config.outbound.max_in_flight);
    let mailer =
        SmtpMailer::from_config(email, &outbound).context("cannot set up e-mail delivery")?;
    // A negative id can never be an outbox message's, so its Message-ID (`<test-…>`) never repeats
    // a real message's.
    let id = -i64::from(crate::rng::OsRng.below(i32::MAX as u32).max(1));
    let text = format!(
        "This is a test message from auth-server: e-mail delivery works.\n\
         Links in messages start with {url}\n\n\
         Это тестовое сообщение auth-server: доставка почты работает.\n\
         Ссылки в письмах начинаются с {url}\n",
        url = email.public_url
    );
    let html = format!(
        "<p>This is a test message from auth-server: e-mail delivery works.<br>\
         Links in messages start with {url}</p>\
         <p>Это тестовое сообщение auth-server: доставка почты работает.<br>\
         Ссылки в письмах начинаются с {url}</p>",
        url = html_escape(&email.public_url)
    );
    let mail = MailMessage {
        id,
        to: args.to.trim().to_owned(),
        subject: args.subject.clone(),
        text: SecretString::from(text),
        html: SecretString::from(html),
    };
    let result = mailer.deliver(&mail).await;
    let (outcome, answer) = match &result {
        Ok(()) => ("sent", "the server accepted the message".to_owned()),
        Err(MailError::Rejected(why)) => ("rejected", why.clone()),
        Err(MailError::Unavailable(why)) => ("unavailable", why.clone()),
    };
    writeln!(out, "server:  {}", mailer.server())?;
    writeln!(out, "from:    {}", email.from)?;
    writeln!(out, "to:      {}", mail.to)?;
    writeln!(out, "outcome: {outcome}")?;
    writeln!(out, "answer:  {answer}")?;
    match result {
        Ok(()) => Ok(()),
        Err(_) => bail!("the test message was not sent ({outcome}); see the answer above"),
    }
}

/// `text` safe inside HTML.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

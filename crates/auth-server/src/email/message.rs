//! One outbox message as an Internet message (RFC 5322 with MIME): `From`, `To`, `Subject`, `Date`,
//! a stable `Message-ID`, `Auto-Submitted: auto-generated`, and a `multipart/alternative` body with
//! the text part first and the HTML part second, both UTF-8 (lettre picks quoted-printable or base64
//! per part, so Cyrillic text arrives intact through any 7-bit relay).
//!
//! It does not render texts (the core's templates do) and does not send anything.

use std::str::FromStr as _;

use auth_core::ports::{MailError, MailMessage};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::{Digest as _, Sha256};

/// The `Message-ID` of outbox message `id` sent from `from`: `<outbox-{id}.{tag}@{domain}>`, where
/// the tag is a hash of the sender's address and the id.
///
/// It is the same for every attempt, in every process, so a message delivered twice (the server took
/// it, but the answer was lost and the outbox retried) is recognisable as one message by the
/// recipient's mail system. The tag keeps two installations that share a domain, or a sender changed
/// in the configuration, from producing the same id for different messages. Test messages have
/// negative ids and are named `test-…` instead.
pub fn message_id(from: &Mailbox, id: i64) -> String {
    let address = from.email.to_string().to_ascii_lowercase();
    let digest = Sha256::digest(format!("{address}\n{id}").as_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let local = if id < 0 { format!("test-{}", id.unsigned_abs()) } else { format!("outbox-{id}") };
    format!("<{local}.{tag}@{}>", from.email.domain())
}

/// The message for `mail`, sent by `from`.
///
/// # Errors
///
/// [`MailError::Rejected`] when the recipient is not an address, or the message cannot be built:
/// no retry can change either.
pub(super) fn build(from: &Mailbox, mail: &MailMessage) -> Result<Message, MailError> {
    let to = Mailbox::from_str(mail.to.trim()).map_err(|_| {
        MailError::Rejected(format!("the recipient {:?} is not an e-mail address", mail.to))
    })?;
    // Mail from a robot: vacation responders and other auto-replies must not answer it (RFC 3834).
    let auto_submitted = HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .message_id(Some(message_id(from, mail.id)))
        .date_now()
        .raw_header(auto_submitted)
        .multipart(MultiPart::alternative_plain_html(
            mail.text.expose().to_owned(),
            mail.html.expose().to_owned(),
        ))
        // The builder fails only on a missing sender or recipient, which are set above; the
        // message's text is not in the error, which names the missing header only.
        .map_err(|e| MailError::Rejected(format!("cannot build the message: {e}")))
}

//! The `[email]` configuration (spec §14): where mail goes (`smtp_url`), who sends it (`from`), the
//! password and CA files, the public base URL of links, and the deadline of one delivery.
//!
//! Loading only reads and checks values, like the rest of `config`: the password file and the CA file
//! are read when the mailer is built ([`super::SmtpMailer::from_config`]). Every check names the key,
//! because a misconfigured mail server must fail the start, not the first password reset. There is
//! deliberately no inline password key, and a password written into `smtp_url` is refused: it lives in
//! `password_file` only, so no configuration dump, process list or error can show it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use lettre::message::Mailbox;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// The default deadline of one delivery, from connecting to the server's acceptance of the message.
pub const DEFAULT_TIMEOUT_SECS: u64 = 20;

/// The longest deadline a delivery may have. The outbox leases a message for 60 s before each send,
/// as it does for SMS; a delivery that could outlive its lease might be sent again by another node.
pub const MAX_TIMEOUT_SECS: u64 = 30;

/// The query that allows an `smtp://` URL without TLS (to a loopback address only).
pub const PLAINTEXT_QUERY: &str = "tls=none";

/// What the `[email]` table holds, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEmail {
    smtp_url: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    ca_file: Option<PathBuf>,
    public_url: Option<String>,
    timeout_secs: Option<u64>,
}

/// How the connection to the mail server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (RFC 8314), port 465 by default.
    ImplicitTls,
    /// `smtp://`: the connection is upgraded with STARTTLS before anything else is sent, and a server
    /// that does not offer it is not used (no silent downgrade); port 587 by default.
    StartTls,
    /// `smtp://…?tls=none`: clear text, accepted only to a loopback IP literal (a local relay).
    Plaintext,
}

/// Where the mail server is, and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// How the connection is protected.
    pub security: Security,
    /// The host as written (a name, an IPv4 literal or a bracketed IPv6 literal), lower-case.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The user to authenticate as (percent-decoded); `None` sends no `AUTH`.
    pub user: Option<String>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for SmtpUrl {
    /// The URL without its user: what errors and logs may show of the server.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.security == Security::ImplicitTls { "smtps" } else { "smtp" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)?;
        if self.security == Security::Plaintext {
            write!(f, "?{PLAINTEXT_QUERY}")?;
        }
        Ok(())
    }
}

impl SmtpUrl {
    /// The host without IPv6 brackets: what the TLS certificate must name and what is connected to.
    pub fn bare_host(&self) -> &str {
        self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&self.host)
    }

    /// Whether the host is a loopback IP literal (names are not resolved: a name could resolve
    /// elsewhere, as for the outbound HTTPS client and the LDAP directories).
    pub fn is_loopback(&self) -> bool {
        self.bare_host().parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The `[email]` section, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// The mail server.
    pub smtp: SmtpUrl,
    /// The file holding the password of `smtp.user` (read when the mailer is built).
    pub password_file: Option<PathBuf>,
    /// The sender of every message: `From` and the envelope's `MAIL FROM`; its domain also names
    /// every `Message-ID`.
    pub from: Mailbox,
    /// PEM certificates trusted for the mail server's certificate besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The external base URL of the portal (scheme, host, optional port and path, no trailing `/`),
    /// on which links in messages are built.
    pub public_url: String,
    /// Deadline of one delivery.
    pub timeout: Duration,
}

impl EmailConfig {
    /// The password-reset link for `key`: `{public_url}/login/reset?key=…`, the key percent-encoded.
    ///
    /// It is built on the configured base only, never on a request's `Host`, so a client cannot make
    /// the server mail a victim a link to a host of the client's choosing (reset-link poisoning).
    pub fn reset_link(&self, key: &str) -> String {
        let key: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        format!("{}/login/reset?key={key}", self.public_url)
    }
}

/// A configuration error; the message names the key and never holds a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmailConfigError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, EmailConfigError> {
    Err(EmailConfigError(message.into()))
}

impl RawEmail {
    /// Checks the section; `None` when no `smtp_url` is set (e-mail is then off, and any other key
    /// set is an error, since it would silently do nothing).
    pub(crate) fn resolve(self) -> Result<Option<EmailConfig>, EmailConfigError> {
        let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let text = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let password_file = given(self.password_file);
        let ca_file = given(self.ca_file);
        let from = text(self.from);
        let public_url = text(self.public_url);
        let Some(url) = text(self.smtp_url) else {
            let set: Vec<&str> = [
                ("password_file", password_file.is_some()),
                ("from", from.is_some()),
                ("ca_file", ca_file.is_some()),
                ("public_url", public_url.is_some()),
                ("timeout_secs", self.timeout_secs.is_some()),
            ]
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect();
            if set.is_empty() {
                return Ok(None);
            }
            return fail(format!(
                "email.{}: set, but email.smtp_url is not (e-mail stays off without a server)",
                set.join(", email.")
            ));
        };
        let smtp =
            parse_smtp_url(&url).map_err(|e| EmailConfigError(format!("email.smtp_url: {e}")))?;
        match (&smtp.user, &password_file) {
            (Some(_), None) => {
                return fail(
                    "email.password_file: required when email.smtp_url names a user (the password is \
                     read from this file, never from the URL)",
                );
            }
            (None, Some(_)) => {
                return fail(
                    "email.smtp_url: names no user, but email.password_file is set; write the user \
                     before the host, such as smtps://noreply%40example.com@mail.example.com",
                );
            }
            _ => {}
        }
        if smtp.security == Security::Plaintext && ca_file.is_some() {
            return fail(format!(
                "email.ca_file: set, but email.smtp_url asks for no TLS ({PLAINTEXT_QUERY})"
            ));
        }
        let Some(from) = from else {
            return fail("email.from: required, such as \"Portal <noreply@example.com>\"");
        };
        let from = Mailbox::from_str(&from).map_err(|e| {
            EmailConfigError(format!(
                "email.from: {from:?} is not a mailbox such as \"Portal <noreply@example.com>\" ({e})"
            ))
        })?;
        let Some(public_url) = public_url else {
            return fail(
                "email.public_url: required, the portal's external base URL such as \
                 https://portal.example.com (links in messages are built on it)",
            );
        };
        let public_url = check_public_url(&public_url)
            .map_err(|e| EmailConfigError(format!("email.public_url: {e}")))?;
        let timeout = match self.timeout_secs {
            None => DEFAULT_TIMEOUT_SECS,
            Some(s) if (1..=MAX_TIMEOUT_SECS).contains(&s) => s,
            Some(s) => {
                return fail(format!(
                    "email.timeout_secs: {s} is not between 1 and {MAX_TIMEOUT_SECS}"
                ));
            }
        };
        Ok(Some(EmailConfig {
            smtp,
            password_file,
            from,
            ca_file,
            public_url,
            timeout: Duration::from_secs(timeout),
        }))
    }
}

/// Parses `smtps://[user@]host[:port]`, `smtp://[user@]host[:port]` (STARTTLS required) or
/// `smtp://[user@]host:port?tls=none` (clear text, loopback IP literals only).
///
/// The user is percent-decoded (`noreply%40example.com`); a user name that is itself an address may
/// also be written with its `@` as is, since the host follows the last `@`. A password in the URL is
/// refused without being repeated in the message.
pub fn parse_smtp_url(url: &str) -> Result<SmtpUrl, String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let (implicit, rest) = if lower.starts_with("smtps://") {
        (true, url.get("smtps://".len()..).unwrap_or(""))
    } else if lower.starts_with("smtp://") {
        (false, url.get("smtp://".len()..).unwrap_or(""))
    } else {
        return Err("must start with smtps:// (TLS) or smtp:// (STARTTLS)".to_owned());
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let user = match userinfo {
        None => None,
        Some(u) if u.contains(':') => {
            return Err(
                "holds a password; put it in email.password_file and write only the user in the URL"
                    .to_owned(),
            );
        }
        Some("") => return Err("has an empty user before '@'".to_owned()),
        Some(u) => Some(
            percent_decode_str(u)
                .decode_utf8()
                .map_err(|_| "the user is not valid UTF-8 once percent-decoded".to_owned())?
                .into_owned(),
        ),
    };
    let authority = hostport.strip_suffix('/').unwrap_or(hostport);
    if authority.contains(['/', ' ', '#']) {
        return Err("only a user, a host and a port may follow the scheme".to_owned());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((inner, after)) = v6.split_once(']') else {
            return Err("an IPv6 address needs its closing ']'".to_owned());
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| "bad port".to_owned())?),
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{inner}] is not an IPv6 address"));
        }
        (format!("[{inner}]"), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("names no host".to_owned());
    }
    let port = match port {
        None if implicit => 465,
        None => 587,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{p:?} is not a port")),
        },
    };
    let security = match query {
        None | Some("") => {
            if implicit {
                Security::ImplicitTls
            } else {
                Security::StartTls
            }
        }
        Some(q) if q.eq_ignore_ascii_case(PLAINTEXT_QUERY) && !implicit => Security::Plaintext,
        Some(q) if q.eq_ignore_ascii_case(PLAINTEXT_QUERY) => {
            return Err(format!("smtps:// is TLS; {PLAINTEXT_QUERY} belongs to smtp:// only"));
        }
        Some(q) => {
            return Err(format!(
                "unknown query {q:?}; the only one is ?{PLAINTEXT_QUERY} (clear text to a loopback address)"
            ));
        }
    };
    let smtp = SmtpUrl { security, host: host.to_ascii_lowercase(), port, user };
    if smtp.security == Security::Plaintext && !smtp.is_loopback() {
        return Err(format!(
            "?{PLAINTEXT_QUERY} is allowed only to a loopback IP literal (127.0.0.1, [::1]), because \
             messages hold reset links and the password would cross the network in clear text; \
             use smtps:// or smtp:// with STARTTLS for {}",
            smtp.host
        ));
    }
    Ok(smtp)
}

/// Checks `public_url`: an absolute `https://` or `http://` URL with a host, no user, query or
/// fragment; answers it without a trailing `/`.
fn check_public_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(format!("{url:?} must start with https:// (or http://)")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} names no host"));
    };
    if authority.host().is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    if authority.as_str().contains('@') {
        return Err(format!("{url:?} must not hold a user"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("{url:?} must not hold a query or a fragment; links add their own"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

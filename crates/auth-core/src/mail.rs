//! E-mail (spec §14): what the outbox's e-mail channel carries, and the texts of every message in
//! English and Russian, compiled in.
//!
//! Two kinds of job go through the outbox, sealed like SMS texts:
//! - a **reset request**, which names only the typed address. The request that makes it does the
//!   same work whether or not the address belongs to anyone (one enqueue), so neither its answer nor
//!   its time tells an account apart (no enumeration). The worker looks the address up, and only
//!   then makes a key and renders the mail — or sends nothing;
//! - a **rendered mail** (the security notices), made when the event happens, from what is known
//!   then.
//!
//! Every value put into the HTML part is escaped here; notices carry no code, token or link that
//! signs in (the reset mail's link sets a password, once, within the hour, and no more).

use std::fmt::Write as _;
use std::net::IpAddr;

use jiff::Timestamp;

use crate::model::Language;

/// A job of the e-mail channel, as sealed in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailJob {
    /// "Send a reset link to whoever has this address on the portal, if anyone."
    Reset {
        /// The typed address, lower-cased.
        email: String,
    },
    /// A mail rendered when its event happened.
    Rendered(Rendered),
}

/// A subject with its plain-text and HTML bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Why a sealed job could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed mail job")]
pub struct MalformedJob;

impl MailJob {
    /// The storage form: a tag byte, then length-prefixed UTF-8 fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let field = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            MailJob::Reset { email } => {
                out.push(b'R');
                field(&mut out, email);
            }
            MailJob::Rendered(r) => {
                out.push(b'M');
                field(&mut out, &r.subject);
                field(&mut out, &r.text);
                field(&mut out, &r.html);
            }
        }
        out
    }

    /// Reads what [`MailJob::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<MailJob, MalformedJob> {
        let (tag, mut rest) = bytes.split_first().ok_or(MalformedJob)?;
        let mut field = || -> Result<String, MalformedJob> {
            let (len, tail) = rest.split_at_checked(4).ok_or(MalformedJob)?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| MalformedJob)?) as usize;
            let (s, tail) = tail.split_at_checked(len).ok_or(MalformedJob)?;
            rest = tail;
            String::from_utf8(s.to_vec()).map_err(|_| MalformedJob)
        };
        let job = match tag {
            b'R' => MailJob::Reset { email: field()? },
            b'M' => {
                MailJob::Rendered(Rendered { subject: field()?, text: field()?, html: field()? })
            }
            _ => return Err(MalformedJob),
        };
        if rest.is_empty() { Ok(job) } else { Err(MalformedJob) }
    }
}

/// The security notices (spec §14), each switchable per portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notice {
    /// A sign-in from a client with no `asc_device` cookie and an address not seen lately.
    NewDevice,
    /// The password was changed (by the user, a reset link, or an operator).
    PasswordChanged,
    /// The phone for SMS codes was set, changed or removed.
    PhoneChanged,
    /// The authenticator app was reset.
    TotpReset,
    /// New backup codes were made (the old ones stopped working).
    BackupCodesRegenerated,
    /// Too many wrong passwords from many addresses: unknown clients are refused for a while.
    AccountLimit,
}

impl Notice {
    /// Every notice, in settings order.
    pub const ALL: [Notice; 6] = [
        Notice::NewDevice,
        Notice::PasswordChanged,
        Notice::PhoneChanged,
        Notice::TotpReset,
        Notice::BackupCodesRegenerated,
        Notice::AccountLimit,
    ];

    /// The name in portal settings (`notices=new_device,password_changed,…`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Notice::NewDevice => "new_device",
            Notice::PasswordChanged => "password_changed",
            Notice::PhoneChanged => "phone_changed",
            Notice::TotpReset => "totp_reset",
            Notice::BackupCodesRegenerated => "backup_codes_regenerated",
            Notice::AccountLimit => "account_limit",
        }
    }

    /// The notice of a settings name.
    pub fn parse(s: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == s.trim())
    }
}

/// What a notice says about where the event came from.
#[derive(Clone, Debug)]
pub struct NoticeDetails<'a> {
    /// The portal's name.
    pub portal_name: &'a str,
    /// The portal's language.
    pub language: Language,
    /// The portal's time zone (IANA), for the time shown.
    pub time_zone: &'a str,
    /// When it happened.
    pub at: Timestamp,
    /// The client's address; `None` when an operator did it.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, if any.
    pub user_agent: Option<&'a str>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A user agent as a notice shows it: printable characters only, at most 160 of them, so a crafted
/// header can neither forge lines nor fill the mail.
fn shown_agent(ua: &str) -> String {
    ua.chars().filter(|c| !c.is_control()).take(160).collect()
}

fn local_time(at: Timestamp, time_zone: &str) -> String {
    match jiff::tz::TimeZone::get(time_zone) {
        Ok(tz) => at.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

struct Words {
    hello: &'static str,
    when: &'static str,
    from: &'static str,
    by_operator: &'static str,
    browser: &'static str,
    not_you: &'static str,
    footer: &'static str,
}

const EN: Words = Words {
    hello: "Hello,",
    when: "When",
    from: "From address",
    by_operator: "an administrator of the portal",
    browser: "Browser or app",
    not_you: "If this was not you, change your password and tell your portal administrator.",
    footer: "This is an automatic security notice; it contains no link or code to sign in.",
};

const RU: Words = Words {
    hello: "Здравствуйте!",
    when: "Когда",
    from: "С адреса",
    by_operator: "администратор портала",
    browser: "Браузер или приложение",
    not_you: "Если это были не вы, смените пароль и сообщите администратору портала.",
    footer: "Это автоматическое уведомление о безопасности; в нём нет ссылок или кодов для входа.",
};

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::Ru => &RU,
    }
}

/// The subject and the one sentence of each notice.
fn notice_text(notice: Notice, lang: Language, portal: &str) -> (String, String) {
    let (subject, line) = match (lang, notice) {
        (Language::En, Notice::NewDevice) => {
            ("New sign-in to {p}", "Someone signed in to your account on {p} from a new device.")
        }
        (Language::En, Notice::PasswordChanged) => {
            ("Your password on {p} was changed", "The password of your account on {p} was changed.")
        }
        (Language::En, Notice::PhoneChanged) => (
            "Your phone number on {p} was changed",
            "The phone number your account on {p} receives sign-in codes at was changed.",
        ),
        (Language::En, Notice::TotpReset) => (
            "Your authenticator app on {p} was reset",
            "The authenticator app of your account on {p} was reset; the old one no longer works.",
        ),
        (Language::En, Notice::BackupCodesRegenerated) => (
            "New backup codes on {p}",
            "New backup codes were made for your account on {p}; the old ones no longer work.",
        ),
        (Language::En, Notice::AccountLimit) => (
            "Many failed sign-ins to your account on {p}",
            "There were many failed attempts to sign in to your account on {p} from several \
             addresses. Sign-ins from new devices are refused for a while; your own devices \
             still work.",
        ),
        (Language::Ru, Notice::NewDevice) => {
            ("Новый вход в {p}", "Выполнен вход в вашу учётную запись на {p} с нового устройства.")
        }
        (Language::Ru, Notice::PasswordChanged) => {
            ("Пароль на {p} изменён", "Пароль вашей учётной записи на {p} был изменён.")
        }
        (Language::Ru, Notice::PhoneChanged) => (
            "Номер телефона на {p} изменён",
            "Номер телефона, на который приходят коды входа в вашу учётную запись на {p}, изменён.",
        ),
        (Language::Ru, Notice::TotpReset) => (
            "Приложение-аутентификатор на {p} сброшено",
            "Приложение-аутентификатор вашей учётной записи на {p} сброшено; прежнее больше не \
             работает.",
        ),
        (Language::Ru, Notice::BackupCodesRegenerated) => (
            "Новые резервные коды на {p}",
            "Для вашей учётной записи на {p} созданы новые резервные коды; прежние больше не \
             действуют.",
        ),
        (Language::Ru, Notice::AccountLimit) => (
            "Много неудачных попыток входа на {p}",
            "Было много неудачных попыток войти в вашу учётную запись на {p} с разных адресов. \
             Входы с новых устройств временно отклоняются; ваши устройства по-прежнему работают.",
        ),
    };
    (subject.replace("{p}", portal), line.replace("{p}", portal))
}

/// A simple HTML body: paragraphs (already escaped), a table of facts (escaped here), and more
/// paragraphs after it.
fn html_page(
    lang: Language,
    paragraphs: &[String],
    facts: &[(&str, String)],
    after: &[String],
) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family: sans-serif; line-height: 1.4\">\n",
        lang.as_str()
    );
    for p in paragraphs {
        let _ = writeln!(html, "<p>{p}</p>");
    }
    if !facts.is_empty() {
        html.push_str("<table>\n");
        for (k, v) in facts {
            let _ = writeln!(
                html,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape_html(k),
                escape_html(v)
            );
        }
        html.push_str("</table>\n");
    }
    for p in after {
        let _ = writeln!(html, "<p>{p}</p>");
    }
    html.push_str("</body></html>\n");
    html
}

/// Renders a security notice.
pub fn render_notice(notice: Notice, d: &NoticeDetails<'_>) -> Rendered {
    let w = words(d.language);
    let (subject, line) = notice_text(notice, d.language, d.portal_name);
    let mut facts: Vec<(&str, String)> = vec![(w.when, local_time(d.at, d.time_zone))];
    match d.ip {
        Some(ip) => facts.push((w.from, ip.to_string())),
        None => facts.push((w.from, w.by_operator.to_owned())),
    }
    if let Some(ua) = d.user_agent.map(shown_agent).filter(|ua| !ua.is_empty()) {
        facts.push((w.browser, ua));
    }
    let mut text = format!("{}\n\n{line}\n\n", w.hello);
    for (k, v) in &facts {
        let _ = writeln!(text, "{k}: {v}");
    }
    let _ = write!(text, "\n{}\n\n-- \n{}\n", w.not_you, w.footer);
    let paragraphs = [escape_html(w.hello), escape_html(&line)];
    let after = [escape_html(w.not_you), format!("<small>{}</small>", escape_html(w.footer))];
    Rendered { subject, text, html: html_page(d.language, &paragraphs, &facts, &after) }
}

/// Renders the reset mail with its one-time link.
pub fn render_reset(lang: Language, portal: &str, link: &str, valid_minutes: i64) -> Rendered {
    let (subject, lines, button, ignore) = match lang {
        Language::En => (
            format!("Reset your password on {portal}"),
            format!(
                "Someone (we hope you) asked to reset the password of your account on {portal}. \
                 The link below sets a new one; it works once, for {valid_minutes} minutes."
            ),
            "Set a new password",
            "If you did not ask for this, ignore this mail: your password stays as it is.",
        ),
        Language::Ru => (
            format!("Восстановление пароля на {portal}"),
            format!(
                "Поступил запрос на восстановление пароля вашей учётной записи на {portal}. \
                 Ссылка ниже позволяет задать новый пароль; она действует один раз в течение \
                 {valid_minutes} минут."
            ),
            "Задать новый пароль",
            "Если вы не запрашивали восстановление, просто проигнорируйте это письмо: пароль не изменится.",
        ),
    };
    let w = words(lang);
    let text = format!("{}\n\n{lines}\n\n{link}\n\n{ignore}\n", w.hello);
    let link_html = format!(
        "<a href=\"{0}\">{1}</a><br><small>{0}</small>",
        escape_html(link),
        escape_html(button)
    );
    let paragraphs = [escape_html(w.hello), escape_html(&lines), link_html, escape_html(ignore)];
    Rendered { subject, text, html: html_page(lang, &paragraphs, &[], &[]) }
}

/// Renders the answer to a directory user's reset request: their password is the directory's.
pub fn render_directory_reset(lang: Language, portal: &str) -> Rendered {
    let (subject, line) = match lang {
        Language::En => (
            format!("Your password on {portal}"),
            format!(
                "Someone (we hope you) asked to reset the password of your account on {portal}. \
                 Your account signs in with your organisation's directory, so its password can only \
                 be changed there: use your organisation's password reset, or ask its IT support."
            ),
        ),
        Language::Ru => (
            format!("Ваш пароль на {portal}"),
            format!(
                "Поступил запрос на восстановление пароля вашей учётной записи на {portal}. \
                 Вход выполняется через каталог вашей организации, поэтому пароль меняется только \
                 там: воспользуйтесь восстановлением пароля вашей организации или обратитесь в её \
                 службу поддержки."
            ),
        ),
    };
    let w = words(lang);
    let text = format!("{}\n\n{line}\n", w.hello);
    let paragraphs = [escape_html(w.hello), escape_html(&line)];
    Rendered { subject, text, html: html_page(lang, &paragraphs, &[], &[]) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn jobs_round_trip(subject in ".*", text in ".*", html in ".*", email in ".*") {
            let jobs = [
                MailJob::Reset { email },
                MailJob::Rendered(Rendered { subject, text, html }),
            ];
            for job in jobs {
                prop_assert_eq!(MailJob::decode(&job.encode()), Ok(job));
            }
        }

        #[test]
        fn truncated_or_padded_jobs_are_refused(email in ".{0,40}", cut in 0usize..50) {
            let bytes = MailJob::Reset { email }.encode();
            if cut < bytes.len() {
                prop_assert_eq!(MailJob::decode(&bytes[..cut]), Err(MalformedJob));
            }
            let mut padded = bytes.clone();
            padded.push(0);
            prop_assert_eq!(MailJob::decode(&padded), Err(MalformedJob));
        }

        #[test]
        fn escaped_html_has_no_markup(s in ".*") {
            let e = escape_html(&s);
            prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"'));
        }
    }

    fn details(lang: Language, ua: Option<&str>) -> NoticeDetails<'_> {
        NoticeDetails {
            portal_name: "Acme <Docs>",
            language: lang,
            time_zone: "Europe/Moscow",
            at: Timestamp::constant(1_768_031_184, 0),
            ip: Some("203.0.113.7".parse().unwrap()),
            user_agent: ua,
        }
    }

    #[test]
    fn notices_name_the_event_where_and_when_and_escape_what_the_client_sent() {
        let ua = "<script>alert(1)</script>\r\nBcc: evil@example.com";
        for notice in Notice::ALL {
            for lang in [Language::En, Language::Ru] {
                let m = render_notice(notice, &details(lang, Some(ua)));
                assert!(m.subject.contains("Acme <Docs>"), "{m:?}");
                assert!(m.text.contains("203.0.113.7") && m.text.contains("MSK"), "{m:?}");
                assert!(!m.html.contains("<script>") && m.html.contains("&lt;script&gt;"));
                assert!(m.html.contains("Acme &lt;Docs&gt;"));
                assert!(!m.text.contains("\r\nBcc"), "no header-like line from the agent");
                assert!(!m.text.contains("http"), "a notice holds no link: {}", m.text);
            }
        }
        let ru = render_notice(Notice::PasswordChanged, &details(Language::Ru, None));
        assert!(ru.text.contains("Пароль вашей учётной записи"), "{}", ru.text);
        let op = render_notice(
            Notice::TotpReset,
            &NoticeDetails { ip: None, ..details(Language::En, None) },
        );
        assert!(op.text.contains("an administrator of the portal"), "{}", op.text);
    }

    #[test]
    fn the_reset_mail_holds_the_link_in_both_parts() {
        let link = "https://docs.example.com/login/reset?key=abc&x=\"1\"";
        let m = render_reset(Language::En, "Docs", link, 60);
        assert!(m.text.contains(link));
        assert!(
            m.html.contains(
                "href=\"https://docs.example.com/login/reset?key=abc&amp;x=&quot;1&quot;\""
            )
        );
        assert!(m.text.contains("60 minutes"));
        let d = render_directory_reset(Language::Ru, "Docs");
        assert!(d.text.contains("каталог") && !d.text.contains("http"));
    }

    #[test]
    fn notice_names_parse_back() {
        for n in Notice::ALL {
            assert_eq!(Notice::parse(n.as_str()), Some(n));
        }
        assert_eq!(Notice::parse("nope"), None);
    }
}

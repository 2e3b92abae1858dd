//! `auth-server user import --jsonl FILE` (spec §11): one user per line, imported in batches of one
//! transaction each, fast enough to seed a million pre-hashed users in minutes.
//!
//! A line is `{"email":…, "first_name":…, "last_name":…, "password":… | "password_hash":…, "phone":…,
//! "phone_activated":…, "admin":…, "disabled":…}`. A bad line is reported by its number and nothing of
//! it is imported; the others go on. Plaintext passwords are hashed with the service's own hasher on
//! its thread pool, several at once; pre-hashed ones must be argon2id PHC strings and are stored as
//! they are (a login later rehashes them if their cost differs from the configured one).
//! The messages name fields, never their values: a password in the wrong field must not reach the
//! report.

use std::collections::HashMap;
use std::io::BufRead;

use argon2::password_hash::PasswordHash as Phc;
use auth_core::model::Credential;
use auth_core::password::PasswordHash;
use auth_core::{AuthService, PortalId, SecretString, User};
use futures_util::StreamExt as _;
use serde_json::{Map, Value};

use super::progress::Progress;
use super::report::{Kind, Outcome, Report};

/// How a line gives its password.
#[derive(Debug)]
pub enum LinePassword {
    /// In plain text, to be hashed here.
    Plain(SecretString),
    /// Already an argon2id PHC string.
    Hash(PasswordHash),
}

/// A valid line.
#[derive(Debug)]
pub struct Line {
    /// E-mail (trimmed).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The password.
    pub password: LinePassword,
    /// Phone digits.
    pub phone: Option<String>,
    /// Whether the phone is confirmed.
    pub phone_activated: bool,
    /// Portal administrator.
    pub admin: bool,
    /// Disabled.
    pub disabled: bool,
}

const FIELDS: [&str; 9] = [
    "email",
    "first_name",
    "last_name",
    "password",
    "password_hash",
    "phone",
    "phone_activated",
    "admin",
    "disabled",
];

fn text(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{key} must be true or false")),
    }
}

/// Checks that `phc` is an argon2id PHC string with parameters, salt and hash.
pub fn check_argon2id(phc: &str) -> Result<PasswordHash, String> {
    let parsed = Phc::new(phc).map_err(|_| "password_hash is not a PHC string".to_owned())?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err("password_hash is not argon2id".to_owned());
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("password_hash has no salt or no hash".to_owned());
    }
    argon2::Params::try_from(&parsed)
        .map_err(|_| "password_hash has invalid argon2 parameters".to_owned())?;
    Ok(PasswordHash::from_phc(phc))
}

/// Parses and checks one line (never echoing a value in the error).
pub fn parse_line(raw: &str) -> Result<Line, String> {
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| format!("not a JSON object (column {})", e.column()))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".to_owned());
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let email = text(&obj, "email")?.map(|e| e.trim().to_owned()).unwrap_or_default();
    if email.is_empty() {
        return Err("email is missing".to_owned());
    }
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err("email is not an e-mail address".to_owned());
    }
    let password = match (obj.get("password"), obj.get("password_hash")) {
        (Some(_), Some(_)) => return Err("give password or password_hash, not both".to_owned()),
        (Some(_), None) => {
            let p = text(&obj, "password")?.unwrap_or_default();
            if p.is_empty() {
                return Err("password is empty".to_owned());
            }
            LinePassword::Plain(SecretString::new(p))
        }
        (None, Some(_)) => {
            LinePassword::Hash(check_argon2id(&text(&obj, "password_hash")?.unwrap_or_default())?)
        }
        (None, None) => return Err("password or password_hash is missing".to_owned()),
    };
    let phone = match text(&obj, "phone")?.filter(|p| !p.trim().is_empty()) {
        None => None,
        Some(p) => Some(
            auth_core::phone::Phone::parse(&p)
                .map_err(|_| "phone is not 7 to 15 digits".to_owned())?
                .digits()
                .to_owned(),
        ),
    };
    Ok(Line {
        email,
        first_name: text(&obj, "first_name")?.unwrap_or_default(),
        last_name: text(&obj, "last_name")?.unwrap_or_default(),
        phone_activated: flag(&obj, "phone_activated")? && phone.is_some(),
        phone,
        password,
        admin: flag(&obj, "admin")?,
        disabled: flag(&obj, "disabled")?,
    })
}

/// Why a JSONL import stopped (a bad line is a report entry instead).
#[derive(Debug, thiserror::Error)]
pub enum JsonlFailure {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The store or the hasher failed; lines before the failing batch are in.
    #[error("the import stopped at line {line}: {detail} (the batches before it are in)")]
    Service {
        /// The first line of the batch that failed.
        line: u64,
        /// What failed.
        detail: String,
    },
}

/// Imports every line of `input` into `portal`, `batch` users per transaction.
pub async fn import(
    service: &AuthService,
    portal: PortalId,
    input: &mut dyn BufRead,
    batch: usize,
    concurrency: usize,
    progress: &Progress,
) -> Result<Report, JsonlFailure> {
    let mut report = Report::new(false);
    let batch = batch.clamp(1, 100_000);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut pending: Vec<(u64, Line)> = Vec::with_capacity(batch);
    let mut buf = Vec::new();
    let mut number = 0u64;
    progress.phase("reading lines", 0);
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        number += 1;
        progress.inc(1);
        let Ok(raw) = std::str::from_utf8(&buf) else {
            report.skip(Kind::Line, number.to_string(), "not UTF-8");
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        let line = match parse_line(raw) {
            Ok(l) => l,
            Err(why) => {
                report.skip(Kind::Line, number.to_string(), why);
                continue;
            }
        };
        let key = line.email.to_lowercase();
        if let Some(first) = seen.get(&key) {
            report.skip(Kind::Line, number.to_string(), format!("its e-mail repeats line {first}"));
            continue;
        }
        seen.insert(key, number);
        pending.push((number, line));
        if pending.len() >= batch {
            flush(service, portal, &mut pending, concurrency, &mut report).await?;
        }
    }
    flush(service, portal, &mut pending, concurrency, &mut report).await?;
    // Wiped on drop: `buf` may hold a password of the last line read.
    zeroize::Zeroize::zeroize(&mut buf);
    progress.finish();
    Ok(report)
}

async fn flush(
    service: &AuthService,
    portal: PortalId,
    pending: &mut Vec<(u64, Line)>,
    concurrency: usize,
    report: &mut Report,
) -> Result<(), JsonlFailure> {
    let Some(first_line) = pending.first().map(|(n, _)| *n) else { return Ok(()) };
    let now = service.now();
    let import = service.import();
    let lines = std::mem::take(pending);
    // Plaintext lines hash on the service's pool, as many at once as it has threads to spare;
    // pre-hashed lines cost nothing here.
    let mut users: Vec<(u64, User)> = futures_util::stream::iter(lines)
        .map(|(n, l)| async move {
            let credential = match l.password {
                LinePassword::Hash(h) => Ok(Credential::Password(h)),
                LinePassword::Plain(p) => import.hash_password(&p).await,
            };
            credential.map(|credential| {
                let user = User {
                    id: import.new_user_id(),
                    portal,
                    email: l.email,
                    first_name: l.first_name,
                    last_name: l.last_name,
                    is_admin: l.admin,
                    disabled: l.disabled,
                    credential,
                    phone: l.phone,
                    phone_activated: l.phone_activated,
                    created_at: now,
                    revision: 0,
                };
                (n, user)
            })
        })
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| JsonlFailure::Service { line: first_line, detail: e.to_string() })?;
    users.sort_by_key(|(n, _)| *n);
    let records: Vec<User> = users.iter().map(|(_, u)| u.clone()).collect();
    let inserted = import
        .insert_users(&records)
        .await
        .map_err(|e| JsonlFailure::Service { line: first_line, detail: e.to_string() })?;
    for ((_, _), was_inserted) in users.iter().zip(inserted) {
        // A user whose e-mail the portal has already is left as it is: a re-run changes nothing.
        report.count(Kind::User, if was_inserted { Outcome::Created } else { Outcome::Unchanged });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str =
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$3p6cXYBdRZT0YEOzp1Lb9cUuVtW4jUTjEUC5T1vmvNQ";

    #[test]
    fn lines_are_checked_field_by_field() {
        let ok = parse_line(&format!(
            r#"{{"email":" A@b.test ","first_name":"A","password_hash":"{PHC}","phone":"+7 912 345-67-89","phone_activated":true,"admin":true}}"#
        ))
        .unwrap();
        assert_eq!(
            (ok.email.as_str(), ok.phone.as_deref(), ok.phone_activated, ok.admin, ok.disabled),
            ("A@b.test", Some("79123456789"), true, true, false)
        );
        assert!(matches!(ok.password, LinePassword::Hash(_)));
        let plain =
            parse_line(r#"{"email":"a@b.test","password":"hunter2","disabled":true}"#).unwrap();
        assert!(matches!(&plain.password, LinePassword::Plain(p) if p.expose() == "hunter2"));
        assert!(plain.disabled);

        let check = |raw: &str, why: &str| {
            let err = parse_line(raw).unwrap_err();
            assert!(err.contains(why), "{raw}: {err}");
            assert!(!err.contains("hunter2"), "a value leaked into {err:?}");
        };
        check("not json", "not a JSON object");
        check("[1]", "not a JSON object");
        check(r#"{"password":"hunter2"}"#, "email is missing");
        check(r#"{"email":"nope","password":"hunter2"}"#, "not an e-mail");
        check(r#"{"email":"a@b.test"}"#, "password or password_hash is missing");
        check(r#"{"email":"a@b.test","password":"x","password_hash":"y"}"#, "not both");
        check(r#"{"email":"a@b.test","password":""}"#, "password is empty");
        check(r#"{"email":"a@b.test","password_hash":"hunter2"}"#, "not a PHC string");
        check(
            r#"{"email":"a@b.test","password_hash":"$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$3p6cXYBdRZT0YEOzp1Lb9cUuVtW4jUTjEUC5T1vmvNQ"}"#,
            "not argon2id",
        );
        check(
            r#"{"email":"a@b.test","password":"x","admin":"hunter2"}"#,
            "admin must be true or false",
        );
        check(r#"{"email":"a@b.test","password":"x","phone":"12"}"#, "phone is not 7 to 15 digits");
        check(
            r#"{"email":"a@b.test","password":"x","pasword":"hunter2"}"#,
            "unknown field \"pasword\"",
        );
        check(r#"{"email":"a@b.test","password":7}"#, "password must be a string");
    }
}

//! Reading an identity out of a provider's JSON (a user-info answer or the claims of an ID token):
//! field paths, lenient scalars, and the rules every identity obeys whatever the provider.
//!
//! The rules: the subject must be present and printable (providers give strings or numbers; both are
//! read as text); an e-mail that is not a plausible address is dropped; and an e-mail is verified only
//! when the provider's own verified flag says so, never because it merely exists.

use auth_core::ports::{SocialError, SocialIdentity};
use serde_json::Value;

use super::presets::Fields;

/// The longest subject accepted; longer ones are not what any provider documents.
const MAX_SUBJECT: usize = 255;
/// The longest e-mail address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// Names longer than this are cut, since they are only shown.
const MAX_NAME: usize = 200;

/// Where one provider's profile fields are, as owned paths (a preset's, or the configured map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProfileFields {
    pub(crate) subject: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: Option<String>,
    /// A second flag that also marks the e-mail verified (Microsoft's `xms_edov`).
    pub(crate) extra_verified: Option<String>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
}

impl ProfileFields {
    /// The paths of a preset.
    pub(crate) fn from_preset(fields: Fields, extra_verified: Option<&'static str>) -> Self {
        Self {
            subject: fields.subject.to_owned(),
            email: fields.email.map(str::to_owned),
            email_verified: fields.email_verified.map(str::to_owned),
            extra_verified: extra_verified.map(str::to_owned),
            first_name: fields.first_name.map(str::to_owned),
            last_name: fields.last_name.map(str::to_owned),
        }
    }
}

/// The value at `path`: the key itself when the object has it (claim names may hold dots, as URLs
/// do), else the dotted path, where a numeric segment indexes an array.
pub(crate) fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(found) = value.as_object().and_then(|o| o.get(path)) {
        return Some(found);
    }
    let mut node = value;
    for segment in path.split('.') {
        node = match node {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// A scalar as text: a non-empty string (trimmed) or a number; anything else is absent.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flag: `true`, `"true"`, `1` or `"1"` (providers differ; Google once sent the string).
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"),
        Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    }
}

/// A plausible e-mail address, or nothing.
pub(crate) fn email(candidate: Option<String>) -> Option<String> {
    candidate.filter(|e| {
        e.len() <= MAX_EMAIL
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && e.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
    })
}

fn name(candidate: Option<String>) -> Option<String> {
    candidate.map(|n| n.chars().filter(|c| !c.is_control()).take(MAX_NAME).collect::<String>())
}

/// The identity in `profile` according to `fields`.
pub(crate) fn identity(
    profile: &Value,
    fields: &ProfileFields,
) -> Result<SocialIdentity, SocialError> {
    let field = |path: &Option<String>| path.as_deref().and_then(|p| lookup(profile, p));
    let subject = lookup(profile, &fields.subject).and_then(text).ok_or_else(|| {
        SocialError::Rejected(format!("the profile has no subject in `{}`", fields.subject))
    })?;
    if subject.len() > MAX_SUBJECT || subject.chars().any(char::is_control) {
        return Err(SocialError::Rejected("the profile's subject is not usable".to_owned()));
    }
    let email = email(field(&fields.email).and_then(text));
    let verified = field(&fields.email_verified).is_some_and(truthy)
        || field(&fields.extra_verified).is_some_and(truthy);
    Ok(SocialIdentity {
        subject,
        email_verified: email.is_some() && verified,
        email,
        first_name: name(field(&fields.first_name).and_then(text)),
        last_name: name(field(&fields.last_name).and_then(text)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(subject: &str, email: &str, verified: Option<&str>) -> ProfileFields {
        ProfileFields {
            subject: subject.to_owned(),
            email: Some(email.to_owned()),
            email_verified: verified.map(str::to_owned),
            extra_verified: None,
            first_name: Some("given_name".to_owned()),
            last_name: None,
        }
    }

    #[test]
    fn paths_reach_nested_values_and_dotted_keys() {
        let v = json!({"user": {"ids": [7, 8]}, "https://x.example/claims.id": "u"});
        assert_eq!(lookup(&v, "user.ids.1"), Some(&json!(8)));
        assert_eq!(lookup(&v, "https://x.example/claims.id"), Some(&json!("u")));
        assert_eq!(lookup(&v, "user.missing"), None);
        assert_eq!(lookup(&v, "user.ids.x"), None);
    }

    #[test]
    fn numbers_are_subjects_and_flags_are_lenient() {
        let f = fields("id", "mail", Some("ok"));
        let id = identity(&json!({"id": 42, "mail": "a@b.c", "ok": "true"}), &f).unwrap();
        assert_eq!(
            (id.subject.as_str(), id.email.as_deref(), id.email_verified),
            ("42", Some("a@b.c"), true)
        );
        for flag in [json!(false), json!("no"), json!(0), json!(null)] {
            let id = identity(&json!({"id": "x", "mail": "a@b.c", "ok": flag}), &f).unwrap();
            assert!(!id.email_verified);
        }
    }

    #[test]
    fn a_verified_flag_without_an_address_verifies_nothing() {
        let f = fields("id", "mail", Some("ok"));
        let id = identity(&json!({"id": "x", "mail": "not an address", "ok": true}), &f).unwrap();
        assert_eq!((id.email, id.email_verified), (None, false));
        let id = identity(&json!({"id": "x", "ok": true}), &f).unwrap();
        assert_eq!((id.email, id.email_verified), (None, false));
    }

    #[test]
    fn a_missing_or_unusable_subject_is_refused() {
        let f = fields("id", "mail", None);
        for profile in [json!({}), json!({"id": ""}), json!({"id": true}), json!({"id": "a\nb"})] {
            assert!(matches!(identity(&profile, &f), Err(SocialError::Rejected(_))), "{profile}");
        }
    }
}

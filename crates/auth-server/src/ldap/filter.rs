//! Building search filters from untrusted text: RFC 4515 escaping of assertion values, and the
//! user filter with the login in it.
//!
//! The login comes from a client, so it must reach the directory as a value and never as filter
//! syntax: `*)(uid=*` would otherwise turn "this user" into "every user". Escaping happens here only,
//! byte by byte, and a property test checks that no escaped value holds a metacharacter outside an
//! escape. Nothing here parses filters; the configured template is checked at start-up.

use super::config::LOGIN_PLACEHOLDER;

/// `value` as an RFC 4515 assertion value: `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`,
/// `\5c` and `\00`; every other character is kept as it is (UTF-8 is allowed in a filter string).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            other => out.push(other),
        }
    }
    out
}

/// The user filter for `login`: every placeholder replaced by the escaped login.
pub(super) fn user_filter(template: &str, login: &str) -> String {
    template.replace(LOGIN_PLACEHOLDER, &escape_value(login))
}

/// The user filter that admits every user (for `ldap sync`): each placeholder becomes `*`, which
/// turns `(uid={login})` into the presence filter `(uid=*)`.
pub(super) fn all_users_filter(template: &str) -> String {
    template.replace(LOGIN_PLACEHOLDER, "*")
}

/// The filter that matches a group entry listing `dn` as a member, for a base-object search at the
/// group: `groupOfNames` lists `member`, `groupOfUniqueNames` lists `uniqueMember`, and Active
/// Directory's groups `member`. The server compares DNs by its own matching rule, so spelling
/// differences (case, spaces) between the user's DN and the group's value do not matter.
pub(super) fn member_filter(dn: &str) -> String {
    let dn = escape_value(dn);
    format!("(|(member={dn})(uniqueMember={dn}))")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(escape_value(input), *expected, "escaping {input:?}");
        }
    }

    #[test]
    fn metacharacters_are_escaped_per_rfc_4515() {
        check(&[
            ("ada", "ada"),
            ("*", "\\2a"),
            ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
            ("a\\b", "a\\5cb"),
            ("nul\0byte", "nul\\00byte"),
            ("Лавлейс", "Лавлейс"),
            ("ada@example.com", "ada@example.com"),
            // RFC 4515's own examples (section 4).
            (
                "Parens R Us (for all your parenthetical needs)",
                "Parens R Us \\28for all your parenthetical needs\\29",
            ),
            ("\\", "\\5c"),
        ]);
    }

    #[test]
    fn the_login_goes_into_every_placeholder() {
        let template = "(&(objectClass=person)(|(uid={login})(mail={login})))";
        assert_eq!(
            user_filter(template, "*)(uid=*"),
            "(&(objectClass=person)(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a)))"
        );
        assert_eq!(all_users_filter(template), "(&(objectClass=person)(|(uid=*)(mail=*)))");
        assert_eq!(
            member_filter("cn=Smith\\, J (IT),dc=x"),
            "(|(member=cn=Smith\\5c, J \\28IT\\29,dc=x)(uniqueMember=cn=Smith\\5c, J \\28IT\\29,dc=x))"
        );
    }

    proptest! {
        /// An escaped value has no `*`, `(`, `)` or NUL at all, and every `\` starts one of the five
        /// escapes; so a value can never end its assertion or the filter around it.
        #[test]
        fn escaped_values_hold_no_bare_metacharacter(value in any::<String>()) {
            let escaped = escape_value(&value);
            prop_assert!(!escaped.contains(['*', '(', ')', '\0']));
            let mut rest = escaped.as_str();
            while let Some(at) = rest.find('\\') {
                let escape = rest.get(at..at + 3).unwrap_or("");
                prop_assert!(["\\2a", "\\28", "\\29", "\\5c", "\\00"].contains(&escape), "{escaped:?}");
                rest = rest.get(at + 3..).unwrap_or("");
            }
            // And the filter built around it still parses as one equality assertion.
            let filter = user_filter("(uid={login})", &value);
            prop_assert!(ldap3::parse_filter(&filter).is_ok(), "{filter:?}");
        }
    }
}

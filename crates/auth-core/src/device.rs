//! The `asc_device` cookie: proof that a browser or app completed a login for a user before, so the
//! per-account limit (spec §5.1) lets the owner in while an attacker guessing from elsewhere is held off.
//!
//! The value is `<user id>.<expiry, Unix seconds>.<MAC>`, the MAC a keyed hash of the first two under
//! the server key. It proves nothing but "this client signed in as this user before": it is no
//! credential, so it only ever relaxes the per-account limit, never a password or a second factor.

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};

use crate::crypto::{KeyContext, ServerKey, ct_eq};
use crate::ids::UserId;
use crate::later;

/// How long a device cookie is good for.
pub const VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 90);

fn mac(key: &ServerKey, user: UserId, expires: i64) -> String {
    let full =
        key.keyed_hash(KeyContext::DeviceCookie, &[user.0.as_bytes(), &expires.to_be_bytes()]);
    let short = full.get(..16).unwrap_or(&full);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(short)
}

/// A cookie value for `user`, valid for [`VALIDITY`] from `now`; and its expiry.
pub fn issue(key: &ServerKey, user: UserId, now: Timestamp) -> (String, Timestamp) {
    let expires = later(now, VALIDITY);
    let secs = expires.as_second();
    (format!("{}.{secs}.{}", user.0.simple(), mac(key, user, secs)), expires)
}

/// Whether `value` is a live cookie this server issued for `user`.
pub fn is_valid(key: &ServerKey, value: &str, user: UserId, now: Timestamp) -> bool {
    let mut parts = value.split('.');
    let (Some(id), Some(secs), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(secs) = secs.parse::<i64>() else { return false };
    let issued_for = uuid::Uuid::try_parse(id).map(UserId);
    issued_for == Ok(user)
        && secs > now.as_second()
        && ct_eq(mac(key, user, secs).as_bytes(), tag.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_prove_the_user_until_they_expire() {
        let key = ServerKey::from_bytes([4; 32]);
        let now = Timestamp::constant(1_768_031_184, 0);
        let ada = UserId::from_random_bytes([1; 16]);
        let bob = UserId::from_random_bytes([2; 16]);
        let (value, expires) = issue(&key, ada, now);
        assert_eq!(expires, later(now, VALIDITY));
        assert!(is_valid(&key, &value, ada, now));
        assert!(!is_valid(&key, &value, bob, now), "another user's cookie proves nothing");
        assert!(!is_valid(&key, &value, ada, expires), "expired");
        assert!(!is_valid(&ServerKey::from_bytes([5; 32]), &value, ada, now), "another key");
        let forged = value.replacen(&expires.as_second().to_string(), "99999999999", 1);
        assert!(!is_valid(&key, &forged, ada, now), "a changed expiry breaks the MAC");
        for junk in ["", "a.b", "a.b.c.d", "not.a.cookie"] {
            assert!(!is_valid(&key, junk, ada, now), "{junk}");
        }
    }
}

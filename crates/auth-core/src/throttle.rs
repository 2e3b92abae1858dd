//! Throttles: how many events of one kind a key may have in a sliding window, and the block after.
//!
//! Every limit of the spec — failed logins, wrong codes, SMS sends, the daily second-factor lock — is a
//! [`Rule`] applied to a string key in the shared [`CounterStore`](crate::ports::CounterStore), so several
//! server processes on one database share one count.
//!
//! ```text
//!   acquire(key) ── blocked_until > now ─────────────────────────────► Refused(until)
//!        │
//!        ├── events in (now-window, now] >= limit ── set blocked_until ► Refused(until)
//!        │     until = max(newest event + block, oldest event + window)
//!        │
//!        └── otherwise: record an event now ─────────────────────────► Granted(slot)
//!                           the caller releases the slot when the attempt turns out not to count
//! ```
//!
//! Taking the slot *before* the attempt is checked is what makes the limit exact under concurrency:
//! a sixth password guess cannot slip in while five others are still being verified.
//! A refused request records nothing, so it neither counts nor extends a block.

use jiff::{SignedDuration, Timestamp};

use crate::ids::{PortalId, UserId};
use crate::later;

/// A limit: at most `limit` events per sliding `window`; reaching it blocks the key for `block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Events allowed per window.
    pub limit: u32,
    /// The sliding window.
    pub window: SignedDuration,
    /// How long the key stays blocked once the limit is reached (from the newest event).
    pub block: SignedDuration,
}

impl Rule {
    /// A rule.
    pub const fn new(limit: u32, window: SignedDuration, block: SignedDuration) -> Self {
        Self { limit, window, block }
    }

    /// A rule whose block is the window itself: at most `limit` per window, nothing more.
    pub const fn per(limit: u32, window: SignedDuration) -> Self {
        Self { limit, window, block: window }
    }

    /// How long a store must keep an event for this rule to be decided correctly.
    pub fn retention(&self) -> SignedDuration {
        self.window.saturating_add(self.block)
    }

    /// Decides, from the times of the events still in the window (any order), whether one more
    /// event is allowed now; `Some(until)` means refused until then.
    ///
    /// Store adapters call this inside their transaction so that every store applies one rule.
    pub fn refused_until(
        &self,
        now: Timestamp,
        events_in_window: &[Timestamp],
    ) -> Option<Timestamp> {
        let in_window: Vec<Timestamp> =
            events_in_window.iter().copied().filter(|t| *t > later(now, -self.window)).collect();
        if (in_window.len() as u64) < u64::from(self.limit) {
            return None;
        }
        let newest = in_window.iter().max().copied().unwrap_or(now);
        let oldest = in_window.iter().min().copied().unwrap_or(now);
        Some(std::cmp::max(later(newest, self.block), later(oldest, self.window)))
    }
}

/// The answer of [`CounterStore::acquire`](crate::ports::CounterStore::acquire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The event was recorded; release the slot if the attempt must not count.
    Granted(Slot),
    /// The key is blocked until this instant; nothing was recorded.
    Refused {
        /// When a new attempt may succeed.
        until: Timestamp,
    },
}

/// The answer of [`CounterStore::acquire_then`](crate::ports::CounterStore::acquire_then): the
/// first key refused (and the second was not asked), or the first granted with the second's answer.
/// A type of its own so that "refused, yet the second answered" and "granted, yet the second not
/// asked" cannot be expressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireThen {
    /// The first key is blocked until this instant; nothing was recorded on either key.
    Refused {
        /// When a new attempt may succeed.
        until: Timestamp,
    },
    /// The first key's slot, and what the second key answered.
    Granted(Slot, Acquire),
}

/// How long an address that completed a login for a user stays a known client of that user.
pub const KNOWN_IP_DAYS: i64 = 30;

/// One recorded event, as the store identifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub i64);

/// The throttle keys, in one place so that every process spells them the same way.
///
/// No key holds what a client typed: an account is named by its user id, or (for a login that names
/// no user) by a keyed hash of the lower-cased login, since people type passwords into the user-name
/// field. Client addresses are counted by [`ip_bucket`]: an IPv6 client by its /64, which one host
/// usually holds whole, and an IPv4-mapped address as IPv4.
pub mod keys {
    use super::{PortalId, UserId};
    use std::net::IpAddr;

    /// The part of a key that names a client address: IPv4 as is, IPv6 by its /64 prefix.
    pub fn ip_bucket(ip: IpAddr) -> String {
        match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        }
    }

    /// Failed credential checks per (portal, account, client address); `account` is
    /// `user:<id>` or `login:<keyed hash>`.
    pub fn login(portal: PortalId, account: &str, ip: IpAddr) -> String {
        format!("login:{portal}:{}:{account}", ip_bucket(ip))
    }

    /// Failed password checks per account from every address (the per-account limit, spec §5.1).
    pub fn account(portal: PortalId, account: &str) -> String {
        format!("acct:{portal}:{account}")
    }

    /// Failed social logins per client address (each costs an outbound call, spec §5.4).
    pub fn social(portal: PortalId, ip: IpAddr) -> String {
        format!("social:{portal}:{}", ip_bucket(ip))
    }

    /// The prefix of the keys that remember addresses which completed a login; housekeeping keeps
    /// them as long as [`super::KNOWN_IP_DAYS`], longer than any throttle.
    pub const KNOWN_PREFIX: &str = "known:";

    /// Completed logins of a user from a client address (a "known client", spec §5.1).
    pub fn known_ip(user: UserId, ip: IpAddr) -> String {
        format!("{KNOWN_PREFIX}{user}:{}", ip_bucket(ip))
    }
    /// Wrong SMS codes per phone.
    pub fn sms_wrong(portal: PortalId, phone: &str) -> String {
        format!("smswrong:{portal}:{phone}")
    }
    /// Wrong TOTP or backup codes per user per minute.
    pub fn tfa_minute(user: UserId) -> String {
        format!("tfamin:{user}")
    }
    /// Failed second factors per user per day (the daily lock).
    pub fn second_factor_day(user: UserId) -> String {
        format!("2faday:{user}")
    }
    /// SMS sends per phone (also the resend cool-down's record).
    pub fn sms_phone(portal: PortalId, phone: &str) -> String {
        format!("smsphone:{portal}:{phone}")
    }
    /// The resend cool-down per phone.
    pub fn sms_cooldown(portal: PortalId, phone: &str) -> String {
        format!("smscool:{portal}:{phone}")
    }
    /// SMS sends per user.
    pub fn sms_user(user: UserId) -> String {
        format!("smsuser:{user}")
    }
    /// SMS sends per client address.
    pub fn sms_ip(portal: PortalId, ip: IpAddr) -> String {
        format!("smsip:{portal}:{}", ip_bucket(ip))
    }
    /// SMS sends per portal (the daily budget).
    pub fn sms_portal(portal: PortalId) -> String {
        format!("smsportal:{portal}")
    }
    /// Reset mails asked for per typed address (`account` as in [`login`]: never the address
    /// itself), whether or not it belongs to anyone.
    pub fn reset_address(portal: PortalId, account: &str) -> String {
        format!("resetaddr:{portal}:{account}")
    }
    /// Reset mails asked for per client address.
    pub fn reset_ip(portal: PortalId, ip: IpAddr) -> String {
        format!("resetip:{portal}:{}", ip_bucket(ip))
    }
    /// Notices of one kind mailed to a user (so an engaged limit mails once an hour, not at every
    /// refused attempt).
    pub fn notice(user: UserId, kind: &str) -> String {
        format!("notice:{kind}:{user}")
    }
    /// `setphone` calls per user.
    pub fn setphone(user: UserId) -> String {
        format!("setphone:{user}")
    }
}

#[cfg(test)]
mod key_tests {
    use super::keys::ip_bucket;

    #[test]
    fn addresses_are_bucketed_ipv6_by_64_and_mapped_as_ipv4() {
        let b = |s: &str| ip_bucket(s.parse().unwrap());
        assert_eq!(b("192.0.2.7"), "192.0.2.7");
        assert_eq!(b("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(b("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(b("2001:db8:1:2::ffff"), b("2001:db8:1:2:aaaa::1"));
        assert_ne!(b("2001:db8:1:2::1"), b("2001:db8:1:3::1"));
    }
}

//! The identities of users and portals: UUIDs, written hyphenated.
//!
//! They live apart from the entities in `model` because the throttle keys, the audit trail and the
//! ports all name them, and a module of their own keeps those from depending on each other.

use std::fmt;

use uuid::Uuid;

/// A user's identity, stable for the life of the account (written as a UUID on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

/// A portal's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortalId(pub Uuid);

macro_rules! id_fmt {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
        impl std::str::FromStr for $t {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}
id_fmt!(UserId);
id_fmt!(PortalId);

impl UserId {
    /// A random (version 4) id from 16 bytes of the caller's randomness.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

impl PortalId {
    /// A random (version 4) id from 16 bytes of the caller's randomness.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

//! The rules of portal authentication, as pure code.
//!
//! `auth-core` decides who may log in, when a second factor is needed, how codes and tokens are made,
//! checked and burnt, and what is audited. It never does I/O of its own: stores, the SMS gateway, the
//! password hasher, the clock and randomness all come in through the traits of [`ports`].
//! It knows nothing of HTTP, JSON, XML or SQL; the transport and the store adapters translate.
//!
//! The entry point is [`AuthService`]: built once from the ports, it hands out one handle per capability
//! ([`SignIn`], [`Sessions`], [`TfaSettings`], [`Admin`]), each with its own error enum.
//! With the `testkit` feature the crate also ships in-memory fakes of every port and the store
//! conformance suite that each store adapter runs against itself.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod audit;
pub mod backup;
pub mod crypto;
pub mod device;
pub mod error;
pub mod ids;
pub mod keyring;
pub mod mail;
pub mod model;
pub mod observe;
pub mod outbox;
pub mod password;
pub mod phone;
pub mod pkce;
pub mod policy;
pub mod ports;
pub mod primitives;
pub mod secret;
pub mod service;
pub mod sms;
pub mod throttle;
pub mod token;
pub mod totp;
pub mod upstream;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use audit::{AuditAction, AuditEvent, AuditFilter};
pub use error::{AdminError, LinkError, PortalError, SessionError, SignInError, TfaSettingsError};
pub use model::{
    Language, Portal, PortalId, PortalSettings, Profile, SmsLimits, TfaMode, User, UserId,
};
pub use ports::Store;
pub use secret::SecretString;
pub use service::{
    Admin, AuthService, LoginMethod, LoginOutcome, Password, Recovery, RecoveryError,
    RequestContext, Session, Sessions, SignIn, SocialProof, TfaSettings, TokenIssued, Via,
};

/// Instants, as the whole crate uses them (re-exported so adapters need no jiff of their own).
pub use jiff::{SignedDuration, Timestamp};

pub mod time;

pub(crate) use time::later;

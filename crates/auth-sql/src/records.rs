//! The row → record mappers of the store ports, written once against [`Columns`].
//!
//! Each mapper names the columns it reads, in order; both adapters' `SELECT`s list their columns in
//! that order (the column names differ, `portal` in SQLite and `portal_id` in PostgreSQL, the meaning
//! does not). The statements themselves stay in the adapters, and so does the decoding of each
//! column type. Every range and shape check answers [`Corrupt`], never a panic.

use auth_core::model::Credential;
use auth_core::ports::{
    AccountLink, AuditCursor, BackupCodeRecord, Channel, OutboxMessage, RememberedCode, ResetKey,
    SealedColumn, SealedOwner, SealedValue, SmsCodeRecord, TokenRecord, TotpRecord,
};
use auth_core::{AuditAction, AuditEvent, Portal, PortalId, PortalSettings, User, UserId};

use crate::codec::{self, Corrupt, corrupt};
use crate::columns::Columns;

/// How many columns [`user`] reads; [`session`] reads the token's after them.
pub const USER_COLUMNS: usize = 12;

/// A user from `id, portal, email, first_name, last_name, is_admin, disabled, password_hash, phone,
/// phone_activated, created_at, revision`. The revision comes last because it was added by a later
/// migration; listing it there keeps every other column's index what it was.
pub fn user<E, R>(r: &R) -> Result<User, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    Ok(User {
        id: r.user_id(0)?,
        portal: r.portal_id(1)?,
        email: r.text(2)?,
        first_name: r.text(3)?,
        last_name: r.text(4)?,
        is_admin: r.bool(5)?,
        disabled: r.bool(6)?,
        credential: Credential::decode(&r.text(7)?),
        phone: r.opt_text(8)?,
        phone_activated: r.bool(9)?,
        created_at: r.instant(10)?,
        revision: codec::revision_from(r.big_int(11)?)?,
    })
}

/// A token from `hash, user, portal, issued_at, expires_at, id, last_used_at, client_ip,
/// user_agent`, where `client_ip` is the address as text. The columns added by migration 0005 come
/// last, so the first five keep their indexes.
pub fn token<E, R>(r: &R) -> Result<TokenRecord, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    token_at(r, 0)
}

/// A token and its user from the user's columns (as [`user`] reads them) followed by the token's
/// (as [`token`] reads them): the one-statement lookup of every authenticated request.
pub fn session<E, R>(r: &R) -> Result<(TokenRecord, User), E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let token = token_at(r, USER_COLUMNS)?;
    Ok((token, user(r)?))
}

/// A token whose columns start at `first`.
fn token_at<E, R>(r: &R, first: usize) -> Result<TokenRecord, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let client_ip = match r.opt_text(first + 7)? {
        None => None,
        Some(ip) => Some(ip.parse().map_err(|_| corrupt(format!("bad token client ip {ip:?}")))?),
    };
    Ok(TokenRecord {
        hash: r.hash(first)?,
        user: r.user_id(first + 1)?,
        portal: r.portal_id(first + 2)?,
        issued_at: r.instant(first + 3)?,
        expires_at: r.instant(first + 4)?,
        id: r.big_int(first + 5)?,
        last_used_at: r.instant(first + 6)?,
        client_ip,
        user_agent: r.opt_text(first + 8)?,
    })
}

/// An audit event as [`audit_event`] reads it, followed by its append number `id`: one entry of an
/// export page, with the cursor that resumes after it.
pub fn audit_entry<E, R>(r: &R) -> Result<(AuditCursor, AuditEvent), E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let event = audit_event(r)?;
    Ok((AuditCursor { at: event.at, seq: r.big_int(8)? }, event))
}

/// An SMS code from `user, phone, code_hash, issued_at, expires_at`.
pub fn sms_code<E, R>(r: &R) -> Result<SmsCodeRecord, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    Ok(SmsCodeRecord {
        user: r.user_id(0)?,
        phone: r.text(1)?,
        code_hash: r.hash(2)?,
        issued_at: r.instant(3)?,
        expires_at: r.instant(4)?,
    })
}

/// A TOTP state from `sealed_secret, activated, last_step`.
pub fn totp<E, R>(r: &R) -> Result<TotpRecord, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let last_step = r.opt_big_int(2)?.map(codec::step_from).transpose()?;
    Ok(TotpRecord { sealed_secret: r.bytes(0)?, activated: r.bool(1)?, last_step })
}

/// A sealed value of `column` from `owner, sealed`: the owner is the user id of a TOTP secret or a
/// reveal, the id of an outbox message, the name of a meta entry.
pub fn sealed_value<E, R>(column: SealedColumn, r: &R) -> Result<SealedValue, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let owner = match column {
        SealedColumn::TotpSecret | SealedColumn::BackupReveal => SealedOwner::User(r.user_id(0)?),
        SealedColumn::OutboxText => SealedOwner::Message(r.big_int(0)?),
        SealedColumn::Meta => SealedOwner::Name(r.text(0)?),
    };
    Ok(SealedValue { owner, sealed: r.bytes(1)? })
}

/// Whether `owner` is of the kind `column`'s rows are owned by (a swap of another kind matches
/// nothing).
pub fn owns(column: SealedColumn, owner: &SealedOwner) -> bool {
    matches!(
        (column, owner),
        (SealedColumn::TotpSecret | SealedColumn::BackupReveal, SealedOwner::User(_))
            | (SealedColumn::OutboxText, SealedOwner::Message(_))
            | (SealedColumn::Meta, SealedOwner::Name(_))
    )
}

/// A backup code from `code_hash, used`.
pub fn backup_code<E, R>(r: &R) -> Result<BackupCodeRecord, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    Ok(BackupCodeRecord { code_hash: r.hash(0)?, used: r.bool(1)? })
}

/// An audit event from `at, portal, user, login, action, ip, user_agent, reason`, where `action` is
/// the upstream code (a small integer) and `ip` the address as text.
pub fn audit_event<E, R>(r: &R) -> Result<AuditEvent, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let code = r.small_int(4)?;
    let action = u32::try_from(code)
        .ok()
        .and_then(AuditAction::from_code)
        .ok_or_else(|| corrupt(format!("unknown audit action {code}")))?;
    let ip = r.text(5)?;
    Ok(AuditEvent {
        at: r.instant(0)?,
        portal: r.portal_id(1)?,
        user: r.opt_uuid(2)?.map(UserId),
        login: r.opt_text(3)?,
        action,
        ip: ip.parse().map_err(|_| corrupt(format!("bad audit ip {ip:?}")))?,
        user_agent: r.opt_text(6)?,
        reason: r.opt_text(7)?,
    })
}

/// An outbox message from `id, portal, to_phone, sealed_text, created_at, attempts,
/// next_attempt_at, sent_at, last_error, channel`, where `attempts` is a small integer.
pub fn message<E, R>(r: &R) -> Result<OutboxMessage, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let attempts = r.small_int(5)?;
    Ok(OutboxMessage {
        id: r.big_int(0)?,
        portal: r.portal_id(1)?,
        to: r.text(2)?,
        sealed_text: r.bytes(3)?,
        created_at: r.instant(4)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt(format!("outbox attempts {attempts} out of range")))?,
        next_attempt_at: r.instant(6)?,
        sent_at: r.opt_instant(7)?,
        last_error: r.opt_text(8)?,
        channel: {
            let name = r.text(9)?;
            Channel::parse(&name).ok_or_else(|| corrupt(format!("outbox channel {name:?}")))?
        },
    })
}

/// A reset key from `user_id, portal, revision, created_at, expires_at`.
pub fn reset_key<E, R>(r: &R) -> Result<ResetKey, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    let revision = r.big_int(2)?;
    Ok(ResetKey {
        user: r.user_id(0)?,
        portal: r.portal_id(1)?,
        revision: u64::try_from(revision)
            .map_err(|_| corrupt(format!("reset key revision {revision} out of range")))?,
        created_at: r.instant(3)?,
        expires_at: r.instant(4)?,
    })
}

/// An account link from `portal, provider, subject, user, created_at`.
pub fn account_link<E, R>(r: &R) -> Result<AccountLink, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    Ok(AccountLink {
        portal: r.portal_id(0)?,
        provider: r.text(1)?,
        subject: r.text(2)?,
        user: r.user_id(3)?,
        created_at: r.instant(4)?,
    })
}

/// What a remembered OAuth code proved, from `provider, subject, email, email_verified, expires_at`.
/// The code's hash is the row's key and is not part of the record, so it is not read.
pub fn remembered_code<E, R>(r: &R) -> Result<RememberedCode, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
{
    Ok(RememberedCode {
        provider: r.text(0)?,
        subject: r.text(1)?,
        email: r.opt_text(2)?,
        email_verified: r.bool(3)?,
        expires_at: r.instant(4)?,
    })
}

/// A portal from `id, name, settings, created_at, revision`, where `settings` is the
/// `PortalSettings::encode` text. The hosts live in rows of their own, which the dialects gather
/// differently (SQLite in a second query, PostgreSQL in an array column of the same row), so `hosts`
/// fetches them by id.
pub fn portal<E, R, F>(r: &R, hosts: F) -> Result<Portal, E>
where
    E: From<Corrupt>,
    R: Columns<E> + ?Sized,
    F: FnOnce(PortalId) -> Result<Vec<String>, E>,
{
    let id = r.portal_id(0)?;
    let text = r.text(2)?;
    let settings = PortalSettings::decode(&text)
        .map_err(|e| corrupt(format!("settings of portal {id}: {e}")))?;
    Ok(Portal {
        id,
        name: r.text(1)?,
        settings,
        created_at: r.instant(3)?,
        revision: codec::revision_from(r.big_int(4)?)?,
        hosts: hosts(id)?,
    })
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use auth_core::Timestamp;
    use auth_core::ports::StoreError;
    use uuid::Uuid;

    use super::*;

    /// One column of the fake row: the value types the two dialects hand back.
    #[derive(Clone, Debug)]
    enum V {
        Null,
        Int(i64),
        Text(&'static str),
        Blob(Vec<u8>),
        Id(u8),
    }

    /// A row as a driver would return it, so the mappers run without a database.
    struct Row(Vec<V>);

    /// The fake driver's error: a column of the wrong type (or a missing one).
    #[derive(Debug)]
    struct WrongType(usize);

    fn from_wrong_type(e: &WrongType) -> StoreError {
        StoreError::Unavailable(format!("driver: column {} has another type", e.0))
    }

    crate::db_error! {
        /// The fake adapter's error, declared the way the adapters declare theirs.
        #[derive(Debug)]
        enum TestError {
            /// The fake driver's error.
            Driver(WrongType) => from_wrong_type,
        }
    }

    impl Row {
        fn col(&self, idx: usize) -> Result<&V, TestError> {
            self.0.get(idx).ok_or(TestError::Driver(WrongType(idx)))
        }
    }

    impl Columns<TestError> for Row {
        fn text(&self, idx: usize) -> Result<String, TestError> {
            self.opt_text(idx)?.ok_or(TestError::Driver(WrongType(idx)))
        }
        fn opt_text(&self, idx: usize) -> Result<Option<String>, TestError> {
            match self.col(idx)? {
                V::Null => Ok(None),
                V::Text(s) => Ok(Some((*s).to_owned())),
                _ => Err(WrongType(idx).into()),
            }
        }
        fn bool(&self, idx: usize) -> Result<bool, TestError> {
            match self.col(idx)? {
                V::Int(n) => Ok(*n != 0),
                _ => Err(WrongType(idx).into()),
            }
        }
        fn small_int(&self, idx: usize) -> Result<i64, TestError> {
            self.big_int(idx)
        }
        fn big_int(&self, idx: usize) -> Result<i64, TestError> {
            self.opt_big_int(idx)?.ok_or(TestError::Driver(WrongType(idx)))
        }
        fn opt_big_int(&self, idx: usize) -> Result<Option<i64>, TestError> {
            match self.col(idx)? {
                V::Null => Ok(None),
                V::Int(n) => Ok(Some(*n)),
                _ => Err(WrongType(idx).into()),
            }
        }
        fn blob(&self, idx: usize) -> Result<&[u8], TestError> {
            match self.col(idx)? {
                V::Blob(b) => Ok(b),
                _ => Err(WrongType(idx).into()),
            }
        }
        fn uuid(&self, idx: usize) -> Result<Uuid, TestError> {
            self.opt_uuid(idx)?.ok_or(TestError::Driver(WrongType(idx)))
        }
        fn opt_uuid(&self, idx: usize) -> Result<Option<Uuid>, TestError> {
            match self.col(idx)? {
                V::Null => Ok(None),
                V::Id(b) => Ok(Some(Uuid::from_bytes([*b; 16]))),
                _ => Err(WrongType(idx).into()),
            }
        }
    }

    /// Runs `map` over each case's row and compares the record, or the port error's text.
    fn check<T: PartialEq + Debug>(
        map: fn(&Row) -> Result<T, TestError>,
        cases: Vec<(&str, Vec<V>, Result<T, &str>)>,
    ) {
        for (name, row, want) in cases {
            let got = map(&Row(row)).map_err(|e| StoreError::from(e).to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }

    fn uid(b: u8) -> UserId {
        UserId(Uuid::from_bytes([b; 16]))
    }

    fn pid(b: u8) -> PortalId {
        PortalId(Uuid::from_bytes([b; 16]))
    }

    fn at(n: i64) -> Timestamp {
        codec::ts_from(n).unwrap()
    }

    fn user_row() -> Vec<V> {
        vec![
            V::Id(1),
            V::Id(2),
            V::Text("A@b.c"),
            V::Text("Ann"),
            V::Text("Lee"),
            V::Int(0),
            V::Int(1),
            V::Text("$argon2id$x"),
            V::Null,
            V::Int(0),
            V::Int(1_700_000_000_123_456_789),
            V::Int(3),
        ]
    }

    fn want_user() -> User {
        User {
            id: uid(1),
            portal: pid(2),
            email: "A@b.c".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            is_admin: false,
            disabled: true,
            credential: Credential::decode("$argon2id$x"),
            phone: None,
            phone_activated: false,
            created_at: at(1_700_000_000_123_456_789),
            revision: 3,
        }
    }

    fn token_row(hash: Vec<u8>) -> Vec<V> {
        vec![
            V::Blob(hash),
            V::Id(1),
            V::Id(2),
            V::Int(10),
            V::Int(20),
            V::Int(77),
            V::Int(15),
            V::Text("2001:db8::1"),
            V::Text("agent"),
        ]
    }

    fn want_token() -> TokenRecord {
        TokenRecord {
            hash: [7; 32],
            user: uid(1),
            portal: pid(2),
            issued_at: at(10),
            expires_at: at(20),
            id: 77,
            last_used_at: at(15),
            client_ip: Some("2001:db8::1".parse().unwrap()),
            user_agent: Some("agent".into()),
        }
    }

    #[test]
    fn users_map_and_driver_errors_pass_through() {
        let mut phone = user_row();
        phone[8] = V::Text("4912345");
        phone[9] = V::Int(1);
        let mut wrong_type = user_row();
        wrong_type[2] = V::Int(3);
        let mut null_instant = user_row();
        null_instant[10] = V::Null;
        let mut fresh = user_row();
        fresh[11] = V::Int(0);
        let mut negative_revision = user_row();
        negative_revision[11] = V::Int(-1);
        let mut no_revision = user_row();
        no_revision.truncate(11);
        check(
            user,
            vec![
                ("plain", user_row(), Ok(want_user())),
                (
                    "phone",
                    phone,
                    Ok(User {
                        phone: Some("4912345".into()),
                        phone_activated: true,
                        ..want_user()
                    }),
                ),
                (
                    "wrong type",
                    wrong_type,
                    Err("store unavailable: driver: column 2 has another type"),
                ),
                (
                    "null instant",
                    null_instant,
                    Err("store unavailable: driver: column 10 has another type"),
                ),
                ("revision 0", fresh, Ok(User { revision: 0, ..want_user() })),
                (
                    "negative revision",
                    negative_revision,
                    Err("store data invalid: negative revision -1"),
                ),
                (
                    "no revision column",
                    no_revision,
                    Err("store unavailable: driver: column 11 has another type"),
                ),
            ],
        );
    }

    #[test]
    fn tokens_and_sessions_map() {
        let mut anonymous = token_row(vec![7; 32]);
        anonymous[7] = V::Null;
        anonymous[8] = V::Null;
        let mut bad_ip = token_row(vec![7; 32]);
        bad_ip[7] = V::Text("not an ip");
        check(
            token,
            vec![
                ("token", token_row(vec![7; 32]), Ok(want_token())),
                (
                    "short hash",
                    token_row(vec![7; 2]),
                    Err("store data invalid: column 0: not a 32-byte hash"),
                ),
                (
                    "no client details",
                    anonymous,
                    Ok(TokenRecord { client_ip: None, user_agent: None, ..want_token() }),
                ),
                ("bad ip", bad_ip, Err("store data invalid: bad token client ip \"not an ip\"")),
            ],
        );
        let mut joined = user_row();
        joined.extend(token_row(vec![7; 32]));
        let mut short = user_row();
        short.extend(token_row(vec![7; 31]));
        check(
            session,
            vec![
                ("session", joined, Ok((want_token(), want_user()))),
                ("short hash", short, Err("store data invalid: column 12: not a 32-byte hash")),
            ],
        );
    }

    #[test]
    fn codes_map() {
        check(
            sms_code,
            vec![(
                "sms",
                vec![V::Id(1), V::Text("4912345"), V::Blob(vec![3; 32]), V::Int(5), V::Int(6)],
                Ok(SmsCodeRecord {
                    user: uid(1),
                    phone: "4912345".into(),
                    code_hash: [3; 32],
                    issued_at: at(5),
                    expires_at: at(6),
                }),
            )],
        );
        check(
            totp,
            vec![
                (
                    "fresh",
                    vec![V::Blob(vec![9; 4]), V::Int(0), V::Null],
                    Ok(TotpRecord { sealed_secret: vec![9; 4], activated: false, last_step: None }),
                ),
                (
                    "used",
                    vec![V::Blob(vec![9; 4]), V::Int(1), V::Int(59_000_000)],
                    Ok(TotpRecord {
                        sealed_secret: vec![9; 4],
                        activated: true,
                        last_step: Some(59_000_000),
                    }),
                ),
                (
                    "negative step",
                    vec![V::Blob(vec![9; 4]), V::Int(1), V::Int(-1)],
                    Err("store data invalid: negative TOTP step"),
                ),
            ],
        );
        check(
            backup_code,
            vec![
                (
                    "unused",
                    vec![V::Blob(vec![4; 32]), V::Int(0)],
                    Ok(BackupCodeRecord { code_hash: [4; 32], used: false }),
                ),
                (
                    "long hash",
                    vec![V::Blob(vec![4; 33]), V::Int(0)],
                    Err("store data invalid: column 0: not a 32-byte hash"),
                ),
            ],
        );
    }

    fn audit_row(action: i64, ip: &'static str) -> Vec<V> {
        vec![
            V::Int(5),
            V::Id(2),
            V::Null,
            V::Text("a@b.c"),
            V::Int(action),
            V::Text(ip),
            V::Null,
            V::Null,
        ]
    }

    #[test]
    fn audit_events_map_and_refuse_unknown_actions() {
        let mut with_user = audit_row(4032, "::1");
        with_user[2] = V::Id(1);
        with_user[7] = V::Text("why");
        let want = AuditEvent {
            at: at(5),
            portal: pid(2),
            user: None,
            login: Some("a@b.c".into()),
            action: AuditAction::LoginSuccessViaApi,
            ip: "192.0.2.1".parse().unwrap(),
            user_agent: None,
            reason: None,
        };
        check(
            audit_event,
            vec![
                ("plain", audit_row(1010, "192.0.2.1"), Ok(want.clone())),
                (
                    "with user",
                    with_user,
                    Ok(AuditEvent {
                        user: Some(uid(1)),
                        action: AuditAction::UserConnectedTfaApp,
                        ip: "::1".parse().unwrap(),
                        reason: Some("why".into()),
                        ..want.clone()
                    }),
                ),
                (
                    "unknown action",
                    audit_row(9999, "::1"),
                    Err("store data invalid: unknown audit action 9999"),
                ),
                (
                    "negative action",
                    audit_row(-1010, "::1"),
                    Err("store data invalid: unknown audit action -1010"),
                ),
                (
                    "action beyond u32",
                    audit_row(1 << 32 | 1010, "::1"),
                    Err("store data invalid: unknown audit action 4294968306"),
                ),
                (
                    "bad ip",
                    audit_row(1010, "nowhere"),
                    Err("store data invalid: bad audit ip \"nowhere\""),
                ),
            ],
        );
        let mut entry = audit_row(1010, "192.0.2.1");
        entry.push(V::Int(31));
        let mut no_seq = audit_row(1010, "192.0.2.1");
        no_seq.push(V::Null);
        check(
            audit_entry,
            vec![
                ("entry", entry, Ok((AuditCursor { at: at(5), seq: 31 }, want.clone()))),
                ("no seq", no_seq, Err("store unavailable: driver: column 8 has another type")),
            ],
        );
    }

    fn outbox_row(attempts: i64, sent_at: V) -> Vec<V> {
        vec![
            V::Int(42),
            V::Id(2),
            V::Text("4912345"),
            V::Blob(vec![1, 2]),
            V::Int(5),
            V::Int(attempts),
            V::Int(6),
            sent_at,
            V::Null,
            V::Text("email"),
        ]
    }

    #[test]
    fn outbox_messages_map_and_refuse_impossible_attempts() {
        let want = OutboxMessage {
            id: 42,
            channel: Channel::Email,
            portal: pid(2),
            to: "4912345".into(),
            sealed_text: vec![1, 2],
            created_at: at(5),
            attempts: 3,
            next_attempt_at: at(6),
            sent_at: None,
            last_error: None,
        };
        check(
            message,
            vec![
                ("due", outbox_row(3, V::Null), Ok(want.clone())),
                (
                    "sent",
                    outbox_row(3, V::Int(7)),
                    Ok(OutboxMessage { sent_at: Some(at(7)), ..want.clone() }),
                ),
                (
                    "most attempts",
                    outbox_row(i64::from(u32::MAX), V::Null),
                    Ok(OutboxMessage { attempts: u32::MAX, ..want }),
                ),
                (
                    "unknown channel",
                    {
                        let mut row = outbox_row(3, V::Null);
                        row[9] = V::Text("fax");
                        row
                    },
                    Err("store data invalid: outbox channel \"fax\""),
                ),
                (
                    "negative attempts",
                    outbox_row(-1, V::Null),
                    Err("store data invalid: outbox attempts -1 out of range"),
                ),
                (
                    "attempts beyond u32",
                    outbox_row(1 << 32, V::Null),
                    Err("store data invalid: outbox attempts 4294967296 out of range"),
                ),
            ],
        );
    }

    #[test]
    fn account_links_map() {
        let row = |portal: V| {
            vec![
                portal,
                V::Text("google"),
                V::Text("G-1"),
                V::Id(1),
                V::Int(1_700_000_000_000_000_007),
            ]
        };
        check(
            account_link,
            vec![
                (
                    "link",
                    row(V::Id(2)),
                    Ok(AccountLink {
                        portal: pid(2),
                        provider: "google".into(),
                        subject: "G-1".into(),
                        user: uid(1),
                        created_at: at(1_700_000_000_000_000_007),
                    }),
                ),
                (
                    "null portal",
                    row(V::Null),
                    Err("store unavailable: driver: column 0 has another type"),
                ),
            ],
        );
    }

    #[test]
    fn remembered_codes_map_with_or_without_an_email() {
        let want = RememberedCode {
            provider: "github".into(),
            subject: "42".into(),
            email: Some("Ada@Example.com".into()),
            email_verified: true,
            expires_at: at(9),
        };
        check(
            remembered_code,
            vec![
                (
                    "with email",
                    vec![
                        V::Text("github"),
                        V::Text("42"),
                        V::Text("Ada@Example.com"),
                        V::Int(1),
                        V::Int(9),
                    ],
                    Ok(want.clone()),
                ),
                (
                    "without email",
                    vec![V::Text("github"), V::Text("42"), V::Null, V::Int(0), V::Int(9)],
                    Ok(RememberedCode { email: None, email_verified: false, ..want }),
                ),
                (
                    "null subject",
                    vec![V::Text("github"), V::Null, V::Null, V::Int(0), V::Int(9)],
                    Err("store unavailable: driver: column 1 has another type"),
                ),
            ],
        );
    }

    fn with_hosts(r: &Row) -> Result<Portal, TestError> {
        portal(r, |id| Ok(vec![format!("{}.example", id.0.as_bytes()[0])]))
    }

    #[test]
    fn portals_map_with_their_hosts_and_refuse_bad_settings() {
        let settings = PortalSettings::default();
        let text: &'static str = Box::leak(settings.encode().into_boxed_str());
        check(
            with_hosts,
            vec![
                (
                    "plain",
                    vec![V::Id(2), V::Text("P"), V::Text(text), V::Int(5), V::Int(4)],
                    Ok(Portal {
                        id: pid(2),
                        name: "P".into(),
                        hosts: vec!["2.example".into()],
                        settings,
                        created_at: at(5),
                        revision: 4,
                    }),
                ),
                (
                    "negative revision",
                    vec![V::Id(2), V::Text("P"), V::Text(text), V::Int(5), V::Int(-4)],
                    Err("store data invalid: negative revision -4"),
                ),
                (
                    "bad settings",
                    vec![V::Id(2), V::Text("P"), V::Text("bogus=1"), V::Int(5), V::Int(0)],
                    Err(
                        "store data invalid: settings of portal 02020202-0202-0202-0202-020202020202: \
                         invalid portal setting bogus: unknown setting",
                    ),
                ),
            ],
        );
    }
}

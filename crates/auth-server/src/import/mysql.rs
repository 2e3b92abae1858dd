//! Reading a CommunityServer / R7-Office database (MySQL or MariaDB) into plain records.
//!
//! Read-only: every statement is a `SELECT`, of explicit columns, so a newer upstream schema with more
//! columns reads the same. Optional columns and tables are probed in `information_schema` first, as
//! upstream's own upgrade scripts do (`pwdhashsha512` before v12, `sso_name_id` from v9.1,
//! `tenants_iprestrictions`). The session is `utf8mb4` in UTC, because `TIMESTAMP` columns are
//! converted to the session's zone; date columns are selected as text, because old databases hold
//! `0000-00-00` dates no driver type accepts. Nothing here interprets a value: that is `plan.rs`.

use auth_core::SecretString;
use mysql_async::prelude::{FromValue, Queryable as _};
use mysql_async::{Conn, Opts, OptsBuilder, Row};

use super::upstream::ids;

/// Why the upstream database could not be read. Never carries the URL or its password.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The `--mysql` value is not a `mysql://` URL.
    #[error("the --mysql value is not a valid mysql://USER:PASS@HOST:PORT/DB URL")]
    Url,
    /// No connection (refused, wrong password, unknown database, …).
    #[error("cannot connect to the upstream database: {0}")]
    Connect(String),
    /// A statement failed.
    #[error("cannot read {what} from the upstream database: {detail}")]
    Query {
        /// What was being read.
        what: &'static str,
        /// The server's or driver's message.
        detail: String,
    },
    /// A value of an unexpected type (not text, not a number).
    #[error("unexpected value in {table}.{column}")]
    Value {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
}

/// A `tenants_tenants` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantRow {
    /// Tenant id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Sub-domain label.
    pub alias: String,
    /// Optional custom host.
    pub mapped_domain: Option<String>,
    /// Culture name, e.g. `ru-RU`.
    pub language: String,
    /// A .NET time zone id, Windows or IANA.
    pub time_zone: Option<String>,
    /// `TenantStatus`.
    pub status: i64,
    /// The owner's GUID.
    pub owner_id: Option<String>,
    /// `creationdatetime` as text (UTC).
    pub created: Option<String>,
}

/// A `core_user` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRow {
    /// Portal.
    pub tenant: i64,
    /// GUID.
    pub id: String,
    /// Login e-mail.
    pub email: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// `EmployeeStatus`: 1 active, 2 terminated, 4 leave of absence.
    pub status: i64,
    /// Soft-deleted.
    pub removed: bool,
    /// Mobile number as stored.
    pub phone: Option<String>,
    /// `phone_activation = 1`.
    pub phone_activated: bool,
    /// Non-empty for LDAP users.
    pub sid: Option<String>,
    /// Non-empty for SAML SSO users.
    pub sso_name_id: Option<String>,
    /// `create_on` as text (UTC).
    pub created: Option<String>,
}

/// A `core_usersecurity` row.
#[derive(Clone, Debug, Default)]
pub struct SecurityRow {
    /// The row's own tenant (should be the user's).
    pub tenant: i64,
    /// The user's GUID.
    pub user_id: String,
    /// The current-scheme (or dead legacy) hash.
    pub pwdhash: Option<String>,
    /// Pre-v12 only: the reversibly encrypted plaintext.
    pub pwdhashsha512: Option<SecretString>,
}

/// A `core_usergroup` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRow {
    /// Portal.
    pub tenant: i64,
    /// The member.
    pub user_id: String,
    /// The group.
    pub group_id: String,
    /// 0 member, 1 manager.
    pub ref_type: i64,
    /// Soft-deleted membership.
    pub removed: bool,
}

/// A `webstudio_settings` row of one of the classes the importer reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingRow {
    /// Portal.
    pub tenant: i64,
    /// Settings class GUID, lower-case.
    pub id: String,
    /// The user's GUID, or the empty GUID for portal-wide rows.
    pub user_id: String,
    /// JSON.
    pub data: String,
}

/// An `account_links` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkRow {
    /// The user's GUID.
    pub user_id: String,
    /// MD5 of `provider/subject`.
    pub uid: String,
    /// Provider name.
    pub provider: Option<String>,
    /// `key→value·…`.
    pub profile: String,
    /// `linked` as text (UTC).
    pub linked: Option<String>,
}

/// A `tenants_iprestrictions` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpRestrictionRow {
    /// Portal.
    pub tenant: i64,
    /// Exact IP, range or CIDR.
    pub ip: String,
}

/// Everything the importer reads, in one consistent pass.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Portals (the installation-wide tenant -1 excluded).
    pub tenants: Vec<TenantRow>,
    /// Users.
    pub users: Vec<UserRow>,
    /// Password rows.
    pub security: Vec<SecurityRow>,
    /// Group memberships of the administrators' group.
    pub groups: Vec<GroupRow>,
    /// Settings rows of the classes in [`SETTINGS_READ`].
    pub settings: Vec<SettingRow>,
    /// Social links.
    pub links: Vec<LinkRow>,
    /// IP restriction rules (when the table exists).
    pub ip_restrictions: Vec<IpRestrictionRow>,
    /// `core_settings` (-1, `BaseDomain`), still encrypted.
    pub base_domain_blob: Option<Vec<u8>>,
    /// Whether `core_usersecurity.pwdhashsha512` exists (a pre-v12 database).
    pub has_pwdhashsha512: bool,
}

/// The settings classes read from `webstudio_settings`; other rows are not fetched at all.
pub const SETTINGS_READ: [&str; 9] = [
    ids::TFA_APP,
    ids::TFA_SMS,
    ids::TFA_USER,
    ids::LOGIN,
    ids::IP_RESTRICTIONS,
    ids::WIZARD,
    ids::LDAP,
    ids::SSO,
    ids::COOKIE,
];

/// Connects with `url` (`password`, when given, replaces the URL's, so it can stay out of the process
/// list) and reads a [`Snapshot`].
pub async fn read(url: &str, password: Option<&SecretString>) -> Result<Snapshot, ReadError> {
    let mut conn = connect(url, password).await?;
    let snapshot = read_all(&mut conn).await;
    // A failed goodbye changes nothing about what was read.
    let _ = conn.disconnect().await;
    snapshot
}

async fn connect(url: &str, password: Option<&SecretString>) -> Result<Conn, ReadError> {
    let opts = Opts::from_url(url).map_err(|_| ReadError::Url)?;
    let mut builder = OptsBuilder::from_opts(opts)
        .init(vec!["SET NAMES utf8mb4", "SET time_zone = '+00:00'"])
        // One connection, a handful of statements: nothing to cache.
        .stmt_cache_size(0);
    if let Some(p) = password {
        builder = builder.pass(Some(p.expose()));
    }
    Conn::new(builder).await.map_err(|e| ReadError::Connect(e.to_string()))
}

async fn read_all(conn: &mut Conn) -> Result<Snapshot, ReadError> {
    let has_pwdhashsha512 = has_column(conn, "core_usersecurity", "pwdhashsha512").await?;
    let has_sso = has_column(conn, "core_user", "sso_name_id").await?;
    let has_links = has_table(conn, "account_links").await?;
    let has_ip_rules = has_table(conn, "tenants_iprestrictions").await?;

    let tenants = rows(
        conn,
        "portals",
        "SELECT id, name, alias, mappeddomain, language, timezone, status, owner_id, \
         CAST(creationdatetime AS CHAR) FROM tenants_tenants WHERE id <> -1 ORDER BY id",
    )
    .await?
    .into_iter()
    .map(|mut r| {
        const T: &str = "tenants_tenants";
        Ok(TenantRow {
            id: col(&mut r, 0, T, "id")?,
            name: col(&mut r, 1, T, "name")?,
            alias: col(&mut r, 2, T, "alias")?,
            mapped_domain: col(&mut r, 3, T, "mappeddomain")?,
            language: col(&mut r, 4, T, "language")?,
            time_zone: col(&mut r, 5, T, "timezone")?,
            status: col(&mut r, 6, T, "status")?,
            owner_id: col(&mut r, 7, T, "owner_id")?,
            created: col(&mut r, 8, T, "creationdatetime")?,
        })
    })
    .collect::<Result<Vec<_>, ReadError>>()?;

    let sso = if has_sso { "sso_name_id" } else { "NULL" };
    let users = rows(
        conn,
        "users",
        &format!(
            "SELECT tenant, id, email, firstname, lastname, status, removed, phone, phone_activation, \
             sid, {sso}, CAST(create_on AS CHAR) FROM core_user ORDER BY tenant, id"
        ),
    )
    .await?
    .into_iter()
    .map(|mut r| {
        const T: &str = "core_user";
        Ok(UserRow {
            tenant: col(&mut r, 0, T, "tenant")?,
            id: col(&mut r, 1, T, "id")?,
            email: col(&mut r, 2, T, "email")?,
            first_name: col(&mut r, 3, T, "firstname")?,
            last_name: col(&mut r, 4, T, "lastname")?,
            status: col(&mut r, 5, T, "status")?,
            removed: col::<i64>(&mut r, 6, T, "removed")? != 0,
            phone: col(&mut r, 7, T, "phone")?,
            phone_activated: col::<i64>(&mut r, 8, T, "phone_activation")? == 1,
            sid: col(&mut r, 9, T, "sid")?,
            sso_name_id: col(&mut r, 10, T, "sso_name_id")?,
            created: col(&mut r, 11, T, "create_on")?,
        })
    })
    .collect::<Result<Vec<_>, ReadError>>()?;

    let legacy = if has_pwdhashsha512 { "pwdhashsha512" } else { "NULL" };
    let security = rows(
        conn,
        "password hashes",
        &format!("SELECT tenant, userid, pwdhash, {legacy} FROM core_usersecurity"),
    )
    .await?
    .into_iter()
    .map(|mut r| {
        const T: &str = "core_usersecurity";
        Ok(SecurityRow {
            tenant: col(&mut r, 0, T, "tenant")?,
            user_id: col(&mut r, 1, T, "userid")?,
            pwdhash: col(&mut r, 2, T, "pwdhash")?,
            pwdhashsha512: col::<Option<String>>(&mut r, 3, T, "pwdhashsha512")?
                .filter(|v| !v.trim().is_empty())
                .map(SecretString::new),
        })
    })
    .collect::<Result<Vec<_>, ReadError>>()?;

    let groups = rows(
        conn,
        "group memberships",
        &format!(
            "SELECT tenant, userid, groupid, ref_type, removed FROM core_usergroup \
             WHERE LOWER(groupid) = '{}'",
            ids::ADMIN_GROUP
        ),
    )
    .await?
    .into_iter()
    .map(|mut r| {
        const T: &str = "core_usergroup";
        Ok(GroupRow {
            tenant: col(&mut r, 0, T, "tenant")?,
            user_id: col(&mut r, 1, T, "userid")?,
            group_id: col(&mut r, 2, T, "groupid")?,
            ref_type: col(&mut r, 3, T, "ref_type")?,
            removed: col::<i64>(&mut r, 4, T, "removed")? != 0,
        })
    })
    .collect::<Result<Vec<_>, ReadError>>()?;

    let classes: Vec<String> = SETTINGS_READ.iter().map(|g| format!("'{g}'")).collect();
    let settings = rows(
        conn,
        "settings",
        &format!(
            "SELECT TenantID, LOWER(ID), LOWER(UserID), Data FROM webstudio_settings \
             WHERE LOWER(ID) IN ({})",
            classes.join(",")
        ),
    )
    .await?
    .into_iter()
    .map(|mut r| {
        const T: &str = "webstudio_settings";
        Ok(SettingRow {
            tenant: col(&mut r, 0, T, "TenantID")?,
            id: col(&mut r, 1, T, "ID")?,
            user_id: col(&mut r, 2, T, "UserID")?,
            data: col(&mut r, 3, T, "Data")?,
        })
    })
    .collect::<Result<Vec<_>, ReadError>>()?;

    let links = if has_links {
        rows(
            conn,
            "social links",
            "SELECT id, uid, provider, profile, CAST(linked AS CHAR) FROM account_links",
        )
        .await?
        .into_iter()
        .map(|mut r| {
            const T: &str = "account_links";
            Ok(LinkRow {
                user_id: col(&mut r, 0, T, "id")?,
                uid: col(&mut r, 1, T, "uid")?,
                provider: col(&mut r, 2, T, "provider")?,
                profile: col(&mut r, 3, T, "profile")?,
                linked: col(&mut r, 4, T, "linked")?,
            })
        })
        .collect::<Result<Vec<_>, ReadError>>()?
    } else {
        Vec::new()
    };

    let ip_restrictions = if has_ip_rules {
        rows(conn, "IP restrictions", "SELECT tenant, ip FROM tenants_iprestrictions")
            .await?
            .into_iter()
            .map(|mut r| {
                const T: &str = "tenants_iprestrictions";
                Ok(IpRestrictionRow {
                    tenant: col(&mut r, 0, T, "tenant")?,
                    ip: col(&mut r, 1, T, "ip")?,
                })
            })
            .collect::<Result<Vec<_>, ReadError>>()?
    } else {
        Vec::new()
    };

    let base_domain_blob = rows(
        conn,
        "the base domain",
        "SELECT value FROM core_settings WHERE tenant = -1 AND id = 'BaseDomain'",
    )
    .await?
    .into_iter()
    .next()
    .map(|mut r| col::<Vec<u8>>(&mut r, 0, "core_settings", "value"))
    .transpose()?;

    Ok(Snapshot {
        tenants,
        users,
        security,
        groups,
        settings,
        links,
        ip_restrictions,
        base_domain_blob,
        has_pwdhashsha512,
    })
}

async fn rows(conn: &mut Conn, what: &'static str, sql: &str) -> Result<Vec<Row>, ReadError> {
    conn.query::<Row, _>(sql).await.map_err(|e| ReadError::Query { what, detail: e.to_string() })
}

fn col<T: FromValue>(
    row: &mut Row,
    index: usize,
    table: &'static str,
    column: &'static str,
) -> Result<T, ReadError> {
    match row.take_opt::<T, usize>(index) {
        Some(Ok(v)) => Ok(v),
        _ => Err(ReadError::Value { table, column }),
    }
}

async fn has_column(conn: &mut Conn, table: &str, column: &str) -> Result<bool, ReadError> {
    let n: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
            (table, column),
        )
        .await
        .map_err(|e| ReadError::Query { what: "the schema", detail: e.to_string() })?;
    Ok(n.unwrap_or(0) > 0)
}

async fn has_table(conn: &mut Conn, table: &str) -> Result<bool, ReadError> {
    let n: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .await
        .map_err(|e| ReadError::Query { what: "the schema", detail: e.to_string() })?;
    Ok(n.unwrap_or(0) > 0)
}

//! What the import will bring over: the upstream rows of a [`Snapshot`] mapped onto portals and users
//! as this service has them, with every rule of `upstream-schema.md` (§3 portals and hosts, §4.4 the
//! second factor, §5 users, §6 passwords, §7 phones, §8 authenticators, §10 links, §12 pitfalls).
//!
//! Pure: no I/O, and no core service call; the plans are handed to the core by `mod.rs`. Every row
//! that is left out, and every value that is lost on the way, gets a report entry with its reason.
//! Secrets (recovered passwords, TOTP secrets, backup codes) are carried in wiping, redacting types.

use std::collections::{HashMap, HashSet};

use auth_core::model::{Language, TfaMode};
use auth_core::{SecretString, Timestamp};
use ipnet::IpNet;
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::mysql::{SettingRow, Snapshot, TenantRow, UserRow};
use super::report::{Kind, Report};
use super::upstream::{self, CodeForm, LinkProfile, ids};

/// What the operator gave that shapes the plan.
#[derive(Debug)]
pub struct Options {
    /// `core.machinekey`.
    pub machine_key: SecretString,
    /// `--base-domain`: overrides the database's `BaseDomain`.
    pub base_domain: Option<String>,
    /// `--tenant`: only these aliases (all active ones when empty; the placeholder only when named).
    pub tenants: Vec<String>,
}

/// One portal to create or update.
#[derive(Debug)]
pub struct PortalPlan {
    /// Upstream tenant id.
    pub tenant: i64,
    /// Upstream alias (for the report).
    pub alias: String,
    /// Display name.
    pub name: String,
    /// Host names, canonical first.
    pub hosts: Vec<String>,
    /// Language.
    pub language: Language,
    /// IANA time zone.
    pub time_zone: String,
    /// Second factor.
    pub tfa: TfaMode,
    /// Networks that skip the second factor.
    pub trusted_ips: Vec<IpNet>,
    /// `LoginSettings`: limit, window and block in seconds, when the row exists.
    pub login_throttle: Option<(u32, i64, i64)>,
    /// `creationdatetime`.
    pub created_at: Timestamp,
    /// The users of this portal to import.
    pub users: Vec<UserPlan>,
}

/// What a user signs in with after the import.
#[derive(Debug)]
pub enum PasswordPlan {
    /// The upstream `pwdhash` (88-character base64), verified upstream's way at the first login.
    Upstream(String),
    /// A pre-v12 plaintext recovered from `pwdhashsha512`, to be hashed with argon2id here.
    Recovered(SecretString),
    /// No usable password.
    None,
}

/// An authenticator enrolment.
#[derive(Debug)]
pub struct TotpPlan {
    /// The key bytes (ten ASCII bytes, derived as upstream).
    pub secret: Zeroizing<Vec<u8>>,
    /// Confirmed upstream (it has backup codes).
    pub activated: bool,
    /// Decrypted backup codes and their used flags.
    pub codes: Vec<(SecretString, bool)>,
}

/// A social link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    /// Provider name as upstream spells it (`google`, `facebook`, …).
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// When it was linked.
    pub linked_at: Timestamp,
}

/// One user to create or update.
#[derive(Debug)]
pub struct UserPlan {
    /// The upstream GUID, kept as the id here (tokens and links refer to it).
    pub id: Uuid,
    /// E-mail, trimmed (possibly empty: such users sign in by id).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Owner or member of the administrators' group.
    pub is_admin: bool,
    /// Status other than active.
    pub disabled: bool,
    /// Phone digits.
    pub phone: Option<String>,
    /// Phone activated upstream.
    pub phone_activated: bool,
    /// Password.
    pub password: PasswordPlan,
    /// Authenticator.
    pub totp: Option<TotpPlan>,
    /// Social links.
    pub links: Vec<LinkPlan>,
    /// `create_on`.
    pub created_at: Timestamp,
}

impl UserPlan {
    /// How the report names the user: e-mail and upstream id.
    pub fn label(&self) -> String {
        label(&self.email, &self.id.hyphenated().to_string())
    }
}

fn label(email: &str, id: &str) -> String {
    if email.is_empty() { format!("(no e-mail) {id}") } else { format!("{email} ({id})") }
}

/// The whole plan.
#[derive(Debug)]
pub struct Plan {
    /// The portals to import, each with its users.
    pub portals: Vec<PortalPlan>,
}

impl Plan {
    /// All users, for counting.
    pub fn user_count(&self) -> usize {
        self.portals.iter().map(|p| p.users.len()).sum()
    }
}

/// A `TfaSettingsBase` row (`TfaAppAuthSettings`, `StudioSmsNotificationSettings`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TfaRow {
    #[serde(rename = "Enable")]
    enable: bool,
    #[serde(rename = "MandatoryUsers")]
    mandatory_users: Option<Vec<String>>,
    #[serde(rename = "MandatoryGroups")]
    mandatory_groups: Option<Vec<String>>,
    #[serde(rename = "TrustedIps")]
    trusted_ips: Option<Vec<String>>,
}

/// `TfaAppUserSettings`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TfaUserRow {
    #[serde(rename = "BackupCodes")]
    backup_codes: Option<Vec<BackupCodeRow>>,
    #[serde(rename = "Salt")]
    salt: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BackupCodeRow {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "IsUsed")]
    is_used: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginRow {
    #[serde(rename = "AttemptCount")]
    attempt_count: i64,
    #[serde(rename = "BlockTime")]
    block_time: i64,
    #[serde(rename = "CheckPeriod")]
    check_period: i64,
}

/// A settings class with a single boolean switch (`Enable…`, `Completed`).
#[derive(Debug, Default, Deserialize)]
struct Switches {
    #[serde(rename = "Enable", default)]
    enable: Option<bool>,
    #[serde(rename = "EnableLdapAuthentication", default)]
    enable_ldap: Option<bool>,
    #[serde(rename = "EnableSso", default)]
    enable_sso: Option<bool>,
    #[serde(rename = "Completed", default)]
    completed: Option<bool>,
}

/// Parses upstream's `YYYY-MM-DD HH:MM:SS` (UTC); zero dates and anything else are `None`.
pub fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    let text = text?.trim();
    let civil: jiff::civil::DateTime = text.replacen(' ', "T", 1).parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

fn guid_key(text: &str) -> Option<String> {
    upstream::parse_guid(text).map(|u| u.hyphenated().to_string())
}

/// Indexes of the snapshot that the per-portal pass looks things up in.
struct Index<'a> {
    security: HashMap<String, &'a super::mysql::SecurityRow>,
    admins: HashSet<(i64, String)>,
    portal_settings: HashMap<(i64, &'static str), &'a SettingRow>,
    user_settings: HashMap<(i64, String), &'a SettingRow>,
    ip_rules: HashMap<i64, usize>,
}

impl<'a> Index<'a> {
    fn new(s: &'a Snapshot) -> Self {
        let security =
            s.security.iter().filter_map(|r| guid_key(&r.user_id).map(|k| (k, r))).collect();
        let admins = s
            .groups
            .iter()
            .filter(|g| g.ref_type == 0 && !g.removed)
            .filter(|g| g.group_id.eq_ignore_ascii_case(ids::ADMIN_GROUP))
            .filter_map(|g| guid_key(&g.user_id).map(|k| (g.tenant, k)))
            .collect();
        let mut portal_settings = HashMap::new();
        let mut user_settings = HashMap::new();
        for row in &s.settings {
            if row.id == ids::TFA_USER {
                if let Some(k) = guid_key(&row.user_id) {
                    user_settings.insert((row.tenant, k), row);
                }
            } else if row.user_id == ids::EMPTY
                && let Some(class) = super::mysql::SETTINGS_READ.iter().find(|c| **c == row.id)
            {
                portal_settings.insert((row.tenant, *class), row);
            }
        }
        let mut ip_rules: HashMap<i64, usize> = HashMap::new();
        for r in &s.ip_restrictions {
            *ip_rules.entry(r.tenant).or_default() += 1;
        }
        Self { security, admins, portal_settings, user_settings, ip_rules }
    }

    fn portal_json<T: for<'de> Deserialize<'de> + Default>(
        &self,
        tenant: i64,
        class: &'static str,
        report: &mut Report,
        alias: &str,
    ) -> Option<T> {
        let row = self.portal_settings.get(&(tenant, class))?;
        match serde_json::from_str(&row.data) {
            Ok(v) => Some(v),
            Err(_) => {
                report.note(
                    Kind::Setting,
                    alias,
                    format!("settings row {class} is not valid JSON; defaults used"),
                );
                None
            }
        }
    }
}

/// Maps the snapshot onto plans, recording every skip and loss in `report`.
pub fn plan(snapshot: &Snapshot, options: &Options, report: &mut Report) -> Plan {
    let index = Index::new(snapshot);
    let base = base_domain(snapshot, options, report);
    let wanted: Vec<String> = options.tenants.iter().map(|t| t.trim().to_lowercase()).collect();
    for alias in &wanted {
        if !snapshot.tenants.iter().any(|t| t.alias.eq_ignore_ascii_case(alias)) {
            report.skip(
                Kind::Portal,
                alias.clone(),
                "named by --tenant, but no portal upstream has this alias",
            );
        }
    }
    let mut users_by_tenant: HashMap<i64, Vec<&UserRow>> = HashMap::new();
    for u in &snapshot.users {
        users_by_tenant.entry(u.tenant).or_default().push(u);
    }

    let mut portals = Vec::new();
    for t in &snapshot.tenants {
        let users = users_by_tenant.get(&t.id).map(Vec::as_slice).unwrap_or_default();
        let subject = format!("{} (id {})", t.alias, t.id);
        let named = wanted.iter().any(|w| t.alias.eq_ignore_ascii_case(w));
        let skip = |reason: String, report: &mut Report| {
            report.skip(
                Kind::Portal,
                subject.clone(),
                format!("{reason}; its {} users are not imported", users.len()),
            );
            report.add(Kind::User, super::report::Outcome::Skipped, users.len() as u64);
        };
        if !wanted.is_empty() && !named {
            skip("not named by --tenant".to_owned(), report);
            continue;
        }
        match t.status {
            0 => {}
            1 => {
                skip("suspended upstream (it answers 404 there); reactivate it and re-run to bring it over".to_owned(), report);
                continue;
            }
            2 => {
                skip("deleted".to_owned(), report);
                continue;
            }
            3..=6 => {
                skip(format!("in transition upstream (status {}), re-run later", t.status), report);
                continue;
            }
            other => {
                skip(format!("unknown status {other}"), report);
                continue;
            }
        }
        let wizard_done = index
            .portal_json::<Switches>(t.id, ids::WIZARD, report, &subject)
            .and_then(|s| s.completed);
        let placeholder = t.alias.eq_ignore_ascii_case("localhost") && wizard_done != Some(true)
            || wizard_done == Some(false);
        if placeholder && !named {
            skip(
                "the placeholder portal of a fresh install (set-up wizard not completed); name it with --tenant to import it"
                    .to_owned(),
                report,
            );
            continue;
        }
        let mut portal = portal_plan(t, &base, &index, report, &subject);
        portal.users = user_plans(t, users, &index, options, report);
        portals.push(portal);
    }
    attach_links(snapshot, &mut portals, report);
    Plan { portals }
}

fn base_domain(snapshot: &Snapshot, options: &Options, report: &mut Report) -> String {
    if let Some(b) = options.base_domain.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        return b.to_owned();
    }
    match snapshot.base_domain_blob.as_deref().map(upstream::decrypt_setting) {
        Some(Ok(text)) => text.expose().trim().to_owned(),
        Some(Err(_)) => {
            report.note(
                Kind::Setting,
                "installation",
                "core_settings BaseDomain does not decrypt; give the base domain with --base-domain",
            );
            String::new()
        }
        None => String::new(),
    }
}

fn portal_plan(
    t: &TenantRow,
    base: &str,
    index: &Index<'_>,
    report: &mut Report,
    subject: &str,
) -> PortalPlan {
    let mut hosts = Vec::new();
    if let Some(h) = t.mapped_domain.as_deref().and_then(upstream::mapped_host) {
        hosts.push(h);
    }
    if let Some(h) = upstream::alias_host(&t.alias, base) {
        // The alias host is the one users know first; the mapped domain is upstream's canonical.
        if !hosts.contains(&h) {
            hosts.insert(0, h);
        }
    } else {
        report.note(
            Kind::Portal,
            subject,
            "standalone installation (base domain localhost): upstream answered on the server's own host \
             name, which the database does not hold; give --base-domain, or add a host with `portal set`",
        );
    }
    if hosts.is_empty() {
        report.note(
            Kind::Portal,
            subject,
            "no host name known: it answers every host only while it is the only portal",
        );
    }
    let language = upstream::language(&t.language).unwrap_or_else(|| {
        report.note(
            Kind::Portal,
            subject,
            format!("language {:?} has no equivalent here; set to en", t.language.trim()),
        );
        Language::En
    });
    let time_zone = match t.time_zone.as_deref().map(str::trim).filter(|z| !z.is_empty()) {
        None => {
            report.note(
                Kind::Portal,
                subject,
                "no time zone upstream (it used the server's local zone); set to UTC",
            );
            "UTC".to_owned()
        }
        Some(z) => upstream::time_zone(z).unwrap_or_else(|| {
            report.note(Kind::Portal, subject, format!("time zone {z:?} is unknown; set to UTC"));
            "UTC".to_owned()
        }),
    };

    let sms: Option<TfaRow> = index.portal_json(t.id, ids::TFA_SMS, report, subject);
    let app: Option<TfaRow> = index.portal_json(t.id, ids::TFA_APP, report, subject);
    let sms_on = sms.as_ref().is_some_and(|r| r.enable);
    let app_on = app.as_ref().is_some_and(|r| r.enable);
    if sms_on && app_on {
        report.note(
            Kind::Portal,
            subject,
            "both SMS and app second factors were on upstream; SMS wins, as at upstream's login",
        );
    }
    let (tfa, row) = if sms_on {
        (TfaMode::Sms, sms)
    } else if app_on {
        (TfaMode::App, app)
    } else {
        (TfaMode::None, None)
    };
    let mut trusted_ips = Vec::new();
    if let Some(row) = &row {
        for entry in row.trusted_ips.iter().flatten() {
            match upstream::trusted_ip_cidrs(entry) {
                Some(nets) => {
                    for n in nets {
                        if !trusted_ips.contains(&n) {
                            trusted_ips.push(n);
                        }
                    }
                }
                None => report.note(
                    Kind::Setting,
                    subject,
                    format!(
                        "trusted IP entry {:?} is neither an address, a range nor a CIDR; left out",
                        entry
                    ),
                ),
            }
        }
        let mandatory = row.mandatory_users.as_ref().is_some_and(|v| !v.is_empty())
            || row.mandatory_groups.as_ref().is_some_and(|v| !v.is_empty());
        if mandatory && !trusted_ips.is_empty() {
            report.note(
                Kind::Setting,
                subject,
                "second factor from trusted IPs for chosen users/groups (MandatoryUsers/MandatoryGroups) has no \
                 equivalent: every user skips it from the trusted IPs here",
            );
        }
    }
    let login_throttle =
        index.portal_json::<LoginRow>(t.id, ids::LOGIN, report, subject).and_then(|l| {
            let limit = u32::try_from(l.attempt_count).ok().filter(|n| *n > 0)?;
            (l.check_period > 0 && l.block_time >= 0).then_some((
                limit,
                l.check_period,
                l.block_time,
            ))
        });
    let restrictions = index
        .portal_json::<Switches>(t.id, ids::IP_RESTRICTIONS, report, subject)
        .and_then(|s| s.enable)
        .unwrap_or(false);
    if restrictions {
        let n = index.ip_rules.get(&t.id).copied().unwrap_or(0);
        report.note(
            Kind::Setting,
            subject,
            format!("IP restrictions were on upstream ({n} rules); they are not carried over: restrict at the proxy"),
        );
    }
    if index.portal_json::<Switches>(t.id, ids::LDAP, report, subject).and_then(|s| s.enable_ldap)
        == Some(true)
    {
        report.note(
            Kind::Setting,
            subject,
            "LDAP sign-in was on upstream: configure [[ldap.directories]] for this portal",
        );
    }
    if index.portal_json::<Switches>(t.id, ids::SSO, report, subject).and_then(|s| s.enable_sso)
        == Some(true)
    {
        report.note(
            Kind::Setting,
            subject,
            "SAML single sign-on was on upstream; it is not supported here",
        );
    }
    if index.portal_settings.contains_key(&(t.id, ids::COOKIE)) {
        report.note(
            Kind::Setting,
            subject,
            "upstream's token lifetime settings are not carried over; set token_lifetime_minutes",
        );
    }
    let name = if t.name.trim().is_empty() { t.alias.clone() } else { t.name.trim().to_owned() };
    PortalPlan {
        tenant: t.id,
        alias: t.alias.clone(),
        name,
        hosts,
        language,
        time_zone,
        tfa,
        trusted_ips,
        login_throttle,
        created_at: parse_time(t.created.as_deref()).unwrap_or(Timestamp::UNIX_EPOCH),
        users: Vec::new(),
    }
}

fn user_plans(
    t: &TenantRow,
    users: &[&UserRow],
    index: &Index<'_>,
    options: &Options,
    report: &mut Report,
) -> Vec<UserPlan> {
    let instance_key = upstream::instance_key(&options.machine_key);
    let owner = t.owner_id.as_deref().and_then(guid_key).filter(|o| o != ids::LOST_USER);
    // Live users first, then by id, so that of two e-mails equal but for case the active one wins.
    let mut ordered: Vec<&UserRow> = users.to_vec();
    ordered.sort_by(|a, b| (a.status != 1, &a.id).cmp(&(b.status != 1, &b.id)));
    let mut emails: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for u in ordered {
        let email = u.email.as_deref().unwrap_or_default().trim().to_owned();
        let subject = label(&email, &u.id);
        if u.removed {
            report.skip(Kind::User, subject, "removed upstream");
            continue;
        }
        let Some(id) = upstream::parse_guid(&u.id) else {
            report.skip(Kind::User, subject, "its id is not a GUID");
            continue;
        };
        let key = id.hyphenated().to_string();
        if ids::SYSTEM_USERS.contains(&key.as_str()) {
            report.skip(Kind::User, subject, "a system account of upstream, not a person");
            continue;
        }
        if email.is_empty() {
            report.note(Kind::User, &subject, "no e-mail: signs in by user id only");
        } else if let Some(first) = emails.get(&email.to_lowercase()) {
            report.skip(
                Kind::User,
                subject,
                format!(
                    "its e-mail equals that of {first} but for case; only one can sign in with it"
                ),
            );
            continue;
        } else {
            emails.insert(email.to_lowercase(), key.clone());
        }
        let disabled = u.status != 1;
        let is_admin =
            owner.as_deref() == Some(key.as_str()) || index.admins.contains(&(t.id, key.clone()));
        let (phone, phone_activated) =
            match u.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                None => (None, false),
                Some(raw) => match auth_core::phone::Phone::parse(raw) {
                    Ok(p) => (Some(p.digits().to_owned()), u.phone_activated),
                    Err(_) => {
                        report.skip(
                            Kind::Phone,
                            &subject,
                            "its phone number is not 7 to 15 digits; imported without a phone",
                        );
                        (None, false)
                    }
                },
            };
        let password = password_plan(u, &key, t.id, index, report, &subject);
        let totp = totp_plan(t.id, &key, index, options, &instance_key, report, &subject);
        out.push(UserPlan {
            id,
            email,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            is_admin,
            disabled,
            phone,
            phone_activated,
            password,
            totp,
            links: Vec::new(),
            created_at: parse_time(u.created.as_deref()).unwrap_or(Timestamp::UNIX_EPOCH),
        });
    }
    out
}

fn password_plan(
    u: &UserRow,
    key: &str,
    tenant: i64,
    index: &Index<'_>,
    report: &mut Report,
    subject: &str,
) -> PasswordPlan {
    let nonempty = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if nonempty(&u.sid) {
        report.skip(
            Kind::Password,
            subject,
            "ldap: an LDAP user signs in against the directory; no local password",
        );
        return PasswordPlan::None;
    }
    if nonempty(&u.sso_name_id) {
        report.skip(
            Kind::Password,
            subject,
            "sso: a single sign-on user has no local password; set one or send a reset",
        );
        return PasswordPlan::None;
    }
    let Some(row) = index.security.get(key) else {
        report.skip(Kind::Password, subject, "no password upstream");
        return PasswordPlan::None;
    };
    if row.tenant != tenant {
        report.note(
            Kind::Password,
            subject,
            format!(
                "its password row names portal {} (upstream joins on the user id alone)",
                row.tenant
            ),
        );
    }
    if let Some(legacy) = &row.pwdhashsha512 {
        match upstream::decrypt_pwdhashsha512(legacy.expose()) {
            Ok(plain) if !plain.expose().trim().is_empty() => {
                report.note(
                    Kind::Password,
                    subject,
                    "legacy password recovered (pre-v12 pwdhashsha512), stored as argon2id",
                );
                return PasswordPlan::Recovered(plain);
            }
            _ => report.note(
                Kind::Password,
                subject,
                "pwdhashsha512 does not decrypt; its pwdhash is used instead",
            ),
        }
    }
    let hash = row.pwdhash.as_deref().map(str::trim).unwrap_or_default();
    match hash.len() {
        0 => {
            report.skip(Kind::Password, subject, "no password upstream");
            PasswordPlan::None
        }
        88 => PasswordPlan::Upstream(hash.to_owned()),
        44 => {
            report.skip(
                Kind::Password,
                subject,
                "legacy SHA-256 password (≤ v10.5), dead upstream too: imported without a password; set one or send a reset",
            );
            PasswordPlan::None
        }
        _ => {
            report.skip(
                Kind::Password,
                subject,
                "password hash in no known upstream form: imported without a password",
            );
            PasswordPlan::None
        }
    }
}

fn totp_plan(
    tenant: i64,
    key: &str,
    index: &Index<'_>,
    options: &Options,
    instance_key: &[u8; 32],
    report: &mut Report,
    subject: &str,
) -> Option<TotpPlan> {
    let row = index.user_settings.get(&(tenant, key.to_owned()))?;
    let Ok(parsed) = serde_json::from_str::<TfaUserRow>(&row.data) else {
        report.skip(Kind::Totp, subject, "its authenticator settings are not valid JSON");
        return None;
    };
    let stored = parsed.backup_codes.unwrap_or_default();
    if parsed.salt == 0 {
        if !stored.is_empty() {
            report.skip(
                Kind::Totp,
                subject,
                "backup codes without an authenticator salt: upstream cannot use them either",
            );
        }
        return None;
    }
    let activated = !stored.is_empty();
    if !activated {
        report.note(
            Kind::Totp,
            subject,
            "authenticator set up but never confirmed: imported as not activated",
        );
    }
    let mut codes = Vec::new();
    let mut legacy = 0;
    for c in &stored {
        match upstream::decode_backup_code(&c.code, instance_key, &options.machine_key) {
            Ok((code, form)) => {
                if form == CodeForm::LegacySignature {
                    legacy += 1;
                }
                codes.push((code, c.is_used));
            }
            Err(_) => report.skip(
                Kind::BackupCode,
                subject,
                "does not decrypt under this machine key (made under an older key?); upstream cannot match it either",
            ),
        }
    }
    if legacy > 0 {
        report.note(
            Kind::BackupCode,
            subject,
            format!("{legacy} code(s) in the legacy signed form, read as such"),
        );
    }
    Some(TotpPlan {
        secret: upstream::totp_secret(parsed.salt, &options.machine_key),
        activated,
        codes,
    })
}

fn attach_links(snapshot: &Snapshot, portals: &mut [PortalPlan], report: &mut Report) {
    let mut at: HashMap<String, (usize, usize)> = HashMap::new();
    for (pi, p) in portals.iter().enumerate() {
        for (ui, u) in p.users.iter().enumerate() {
            at.insert(u.id.hyphenated().to_string(), (pi, ui));
        }
    }
    let mut rows: Vec<_> = snapshot.links.iter().collect();
    // Oldest first, so that of two accounts at one provider the first linked is kept.
    rows.sort_by(|a, b| (&a.linked, &a.user_id, &a.uid).cmp(&(&b.linked, &b.user_id, &b.uid)));
    for row in rows {
        let provider = row.provider.as_deref().map(str::trim).unwrap_or_default();
        let subject =
            format!("{} at {}", row.user_id, if provider.is_empty() { "?" } else { provider });
        if provider.is_empty() {
            report.skip(Kind::Link, subject, "no provider");
            continue;
        }
        if provider.eq_ignore_ascii_case("e2e") {
            report.skip(Kind::Link, subject, "a private-room key pair (e2e), not a sign-in");
            continue;
        }
        let Some(&(pi, ui)) = guid_key(&row.user_id).and_then(|k| at.get(&k)) else {
            report.skip(Kind::Link, subject, "orphan: its user is not imported");
            continue;
        };
        let profile = LinkProfile::parse(&row.profile);
        let (Some(id), Some(apr)) = (profile.subject(), profile.provider()) else {
            report.skip(
                Kind::Link,
                subject,
                "its profile names no subject; the stored hash cannot be reversed",
            );
            continue;
        };
        if !upstream::link_uid(apr, id).eq_ignore_ascii_case(row.uid.trim()) {
            report.skip(
                Kind::Link,
                subject,
                "its profile does not match its hash, so the subject is unknown",
            );
            continue;
        }
        let Some(user) = portals.get_mut(pi).and_then(|p| p.users.get_mut(ui)) else { continue };
        if user.links.iter().any(|l| l.provider.eq_ignore_ascii_case(provider)) {
            report.skip(
                Kind::Link,
                subject,
                "a second account at the same provider; one per provider here",
            );
            continue;
        }
        user.links.push(LinkPlan {
            provider: provider.to_lowercase(),
            subject: id.to_owned(),
            linked_at: parse_time(row.linked.as_deref()).unwrap_or(Timestamp::UNIX_EPOCH),
        });
    }
}

#[cfg(test)]
mod tests;

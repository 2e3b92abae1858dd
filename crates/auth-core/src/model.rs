//! The entities the rules work on: portals (tenants) with their settings, and users.
//!
//! These are plain data. They are not `Serialize`: the wire format belongs to auth-wire and the storage
//! format to the store adapters. [`PortalSettings`] has one storage-neutral text form
//! ([`PortalSettings::encode`]) so that every adapter keeps the many per-portal knobs in one column and a
//! new knob needs no migration.

use std::net::IpAddr;

pub use crate::ids::{PortalId, UserId};
use crate::password::PasswordHash;
use crate::throttle::Rule;
use crate::upstream::UpstreamHash;
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};

/// Which second factor a portal demands (spec §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TfaMode {
    /// Password alone.
    #[default]
    None,
    /// A code sent by SMS.
    Sms,
    /// A TOTP authenticator app (or a backup code).
    App,
}

impl TfaMode {
    /// The configuration spelling: `none`, `sms` or `app`.
    pub fn as_str(self) -> &'static str {
        match self {
            TfaMode::None => "none",
            TfaMode::Sms => "sms",
            TfaMode::App => "app",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Some(TfaMode::None),
            "sms" => Some(TfaMode::Sms),
            "app" | "totp" => Some(TfaMode::App),
            _ => None,
        }
    }
}

/// The portal's language; it only chooses the SMS text today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Language {
    /// `en` or `ru`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
        }
    }

    /// Parses `en`/`ru` (any case, and regional forms such as `ru-RU`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.split(['-', '_']).next() {
            Some("en") => Some(Language::En),
            Some("ru") => Some(Language::Ru),
            _ => None,
        }
    }
}

/// The SMS-pumping defences of spec §5.3, per portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsLimits {
    /// `sendsms` is refused while the phone's last code is younger than this.
    pub resend_cooldown: SignedDuration,
    /// At most one `setphone` per user per this period.
    pub setphone_cooldown: SignedDuration,
    /// Sends per phone per day.
    pub per_phone_daily: u32,
    /// Sends per user per day.
    pub per_user_daily: u32,
    /// Sends per client IP per hour.
    pub per_ip_hourly: u32,
    /// Sends for the whole portal per day; `None` means no budget.
    pub portal_daily_budget: Option<u32>,
    /// When not empty, only numbers starting with one of these digit prefixes are accepted.
    pub allowed_prefixes: Vec<String>,
}

impl Default for SmsLimits {
    fn default() -> Self {
        Self {
            resend_cooldown: SignedDuration::from_secs(30),
            setphone_cooldown: SignedDuration::from_secs(30),
            per_phone_daily: 10,
            per_user_daily: 10,
            per_ip_hourly: 20,
            portal_daily_budget: None,
            allowed_prefixes: Vec::new(),
        }
    }
}

/// Every per-portal knob (spec §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSettings {
    /// IANA time zone name used to write dates (`UTC` by default).
    pub time_zone: String,
    /// The portal's language.
    pub language: Language,
    /// The second factor the portal demands.
    pub tfa: TfaMode,
    /// Requests from these networks skip the second factor.
    pub trusted_ips: Vec<IpNet>,
    /// Whether the portal is served over https (adds `Secure` to the cookie).
    pub https: bool,
    /// Failed credential checks per (portal, login, IP).
    pub login_throttle: Rule,
    /// Failed password checks per account from all addresses (spec §5.1, distributed guessing):
    /// once reached, only known clients may try the password until the window's count falls.
    pub account_throttle: Rule,
    /// Lifetime of issued tokens.
    pub token_lifetime: SignedDuration,
    /// SMS send limits.
    pub sms: SmsLimits,
    /// Accepted TOTP steps either side of now (0–10).
    pub totp_window: u8,
    /// How many backup codes a user gets.
    pub backup_code_count: u8,
    /// Issuer label shown in authenticator apps; the portal name when empty.
    pub totp_issuer: String,
    /// Social providers enabled on this portal (names as clients send them in `provider`).
    pub social_providers: Vec<String>,
    /// The directory (`[[ldap.directories]]` name) this portal signs in against, when set here rather
    /// than by the directory's own `portals` list (spec §5.9).
    pub ldap: Option<String>,
    /// The shortest password accepted when one is set (spec §14).
    pub password_min_length: u32,
    /// The security notices mailed to users (spec §14); all of them by default. Nothing is mailed
    /// while the server has no `[email]` configured.
    pub notices: Vec<crate::mail::Notice>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            time_zone: "UTC".to_owned(),
            language: Language::En,
            tfa: TfaMode::None,
            trusted_ips: Vec::new(),
            https: false,
            login_throttle: Rule::new(
                5,
                SignedDuration::from_secs(60),
                SignedDuration::from_secs(60),
            ),
            // The block is zero: refused "until the hour's count falls below the limit".
            account_throttle: Rule::new(20, SignedDuration::from_hours(1), SignedDuration::ZERO),
            token_lifetime: SignedDuration::from_secs(30 * 24 * 3600),
            sms: SmsLimits::default(),
            totp_window: 1,
            backup_code_count: 5,
            totp_issuer: String::new(),
            social_providers: Vec::new(),
            ldap: None,
            password_min_length: 8,
            notices: crate::mail::Notice::ALL.to_vec(),
        }
    }
}

/// Why a portal settings text or value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid portal setting {key}: {reason}")]
pub struct SettingsError {
    /// The setting's name.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError { key: key.to_owned(), reason: reason.into() }
}

impl PortalSettings {
    /// True when requests from `ip` are exempt from the second factor.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is its IPv4 address (spec §5.1).
        let ip = ip.to_canonical();
        self.trusted_ips.iter().any(|net| net.contains(&ip))
    }

    /// Checks the values that the types alone do not: the time zone exists, limits are positive,
    /// the TOTP window is at most ±10 steps.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(bad("time_zone", format!("unknown time zone {:?}", self.time_zone)));
        }
        if self.totp_window > 10 {
            return Err(bad("totp_window", "at most 10"));
        }
        if self.backup_code_count == 0 || self.backup_code_count > 20 {
            return Err(bad("backup_code_count", "between 1 and 20"));
        }
        if self.token_lifetime <= SignedDuration::ZERO {
            return Err(bad("token_lifetime", "must be positive"));
        }
        if self.login_throttle.limit == 0 {
            return Err(bad("login_throttle", "limit must be at least 1"));
        }
        if self.account_throttle.limit == 0 {
            return Err(bad("account_throttle", "limit must be at least 1"));
        }
        if self
            .sms
            .allowed_prefixes
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("sms_allowed_prefixes", "digits only"));
        }
        Ok(())
    }

    /// The storage-neutral text form: one `key=value` per line, in a fixed order.
    pub fn encode(&self) -> String {
        let join = |v: Vec<String>| v.join(",");
        let lines = [
            ("time_zone", self.time_zone.clone()),
            ("language", self.language.as_str().to_owned()),
            ("tfa", self.tfa.as_str().to_owned()),
            ("trusted_ips", join(self.trusted_ips.iter().map(ToString::to_string).collect())),
            ("https", self.https.to_string()),
            ("login_limit", self.login_throttle.limit.to_string()),
            ("login_window_s", self.login_throttle.window.as_secs().to_string()),
            ("login_block_s", self.login_throttle.block.as_secs().to_string()),
            ("account_limit", self.account_throttle.limit.to_string()),
            ("account_window_s", self.account_throttle.window.as_secs().to_string()),
            ("account_block_s", self.account_throttle.block.as_secs().to_string()),
            ("token_lifetime_s", self.token_lifetime.as_secs().to_string()),
            ("sms_resend_cooldown_s", self.sms.resend_cooldown.as_secs().to_string()),
            ("sms_setphone_cooldown_s", self.sms.setphone_cooldown.as_secs().to_string()),
            ("sms_per_phone_daily", self.sms.per_phone_daily.to_string()),
            ("sms_per_user_daily", self.sms.per_user_daily.to_string()),
            ("sms_per_ip_hourly", self.sms.per_ip_hourly.to_string()),
            (
                "sms_portal_daily_budget",
                self.sms.portal_daily_budget.map(|b| b.to_string()).unwrap_or_default(),
            ),
            ("sms_allowed_prefixes", join(self.sms.allowed_prefixes.clone())),
            ("totp_window", self.totp_window.to_string()),
            ("backup_code_count", self.backup_code_count.to_string()),
            ("totp_issuer", self.totp_issuer.replace('\n', " ")),
            ("social_providers", join(self.social_providers.clone())),
            ("ldap", self.ldap.clone().unwrap_or_default()),
            ("password_min_length", self.password_min_length.to_string()),
            ("notices", join(self.notices.iter().map(|n| n.as_str().to_owned()).collect())),
        ];
        let mut out = String::new();
        for (k, v) in lines {
            out.push_str(k);
            out.push('=');
            out.push_str(&v);
            out.push('\n');
        }
        out
    }

    /// Parses [`PortalSettings::encode`]'s form. Missing keys keep their defaults, so a database
    /// written by an older version still reads; unknown keys are refused, so a newer one is not
    /// silently misread.
    pub fn decode(text: &str) -> Result<Self, SettingsError> {
        let mut s = PortalSettings::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').ok_or_else(|| bad(line, "expected key=value"))?;
            s.set(k.trim(), v.trim())?;
        }
        Ok(s)
    }

    /// Sets one setting from its text form (the keys of [`PortalSettings::encode`]).
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), SettingsError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, SettingsError> {
            v.parse().map_err(|_| bad(key, format!("not a number: {v:?}")))
        }
        fn secs(key: &str, v: &str) -> Result<SignedDuration, SettingsError> {
            Ok(SignedDuration::from_secs(num::<i64>(key, v)?))
        }
        fn list(v: &str) -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        match key {
            "time_zone" => self.time_zone = v.to_owned(),
            "language" => self.language = Language::parse(v).ok_or_else(|| bad(key, "en or ru"))?,
            "tfa" => self.tfa = TfaMode::parse(v).ok_or_else(|| bad(key, "none, sms or app"))?,
            "trusted_ips" => {
                self.trusted_ips = list(v)
                    .iter()
                    .map(|n| parse_net(n).ok_or_else(|| bad(key, format!("not a CIDR: {n:?}"))))
                    .collect::<Result<_, _>>()?;
            }
            "https" => self.https = num(key, v)?,
            "login_limit" => self.login_throttle.limit = num(key, v)?,
            "login_window_s" => self.login_throttle.window = secs(key, v)?,
            "login_block_s" => self.login_throttle.block = secs(key, v)?,
            "account_limit" => self.account_throttle.limit = num(key, v)?,
            "account_window_s" => self.account_throttle.window = secs(key, v)?,
            "account_block_s" => self.account_throttle.block = secs(key, v)?,
            "token_lifetime_s" => self.token_lifetime = secs(key, v)?,
            "sms_resend_cooldown_s" => self.sms.resend_cooldown = secs(key, v)?,
            "sms_setphone_cooldown_s" => self.sms.setphone_cooldown = secs(key, v)?,
            "sms_per_phone_daily" => self.sms.per_phone_daily = num(key, v)?,
            "sms_per_user_daily" => self.sms.per_user_daily = num(key, v)?,
            "sms_per_ip_hourly" => self.sms.per_ip_hourly = num(key, v)?,
            "sms_portal_daily_budget" => {
                self.sms.portal_daily_budget = if v.is_empty() { None } else { Some(num(key, v)?) }
            }
            "sms_allowed_prefixes" => self.sms.allowed_prefixes = list(v),
            "totp_window" => self.totp_window = num(key, v)?,
            "backup_code_count" => self.backup_code_count = num(key, v)?,
            "totp_issuer" => self.totp_issuer = v.to_owned(),
            "social_providers" => self.social_providers = list(v),
            "password_min_length" => {
                let n: u32 = num(key, v)?;
                if !(1..=128).contains(&n) {
                    return Err(bad(key, "1 to 128"));
                }
                self.password_min_length = n;
            }
            "notices" => {
                self.notices = list(v)
                    .iter()
                    .map(|n| {
                        crate::mail::Notice::parse(n).ok_or_else(|| {
                            bad(key, format!("unknown notice {n:?} (one of: {})", notice_names()))
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "ldap" => self.ldap = Some(v.trim()).filter(|n| !n.is_empty()).map(str::to_owned),
            _ => return Err(bad(key, "unknown setting")),
        }
        Ok(())
    }
}

fn notice_names() -> String {
    crate::mail::Notice::ALL.map(|n| n.as_str()).join(", ")
}

/// Parses `10.0.0.0/8` or a bare address (taken as a single host).
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A portal (tenant): its names and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    /// Identity.
    pub id: PortalId,
    /// Display name (also the default TOTP issuer).
    pub name: String,
    /// Host names this portal answers to, lower-case.
    pub hosts: Vec<String>,
    /// Settings.
    pub settings: PortalSettings,
    /// Creation time.
    pub created_at: Timestamp,
    /// Bumped by the store on every change; a token is only issued under the revision the login read
    /// (spec §5.8: no token under settings that a completed change has replaced).
    pub revision: u64,
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Identity.
    pub id: UserId,
    /// The portal the user belongs to.
    pub portal: PortalId,
    /// E-mail address, as entered; logins compare it case-insensitively.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Portal administrator.
    pub is_admin: bool,
    /// A disabled user cannot log in and their tokens fail.
    pub disabled: bool,
    /// What the user signs in with.
    pub credential: Credential,
    /// Mobile number, normalised to digits.
    pub phone: Option<String>,
    /// Whether a code sent to `phone` has been entered successfully.
    pub phone_activated: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Bumped by the store whenever the user's tokens are ended (password change, disable, log out
    /// everywhere); a token is only issued under the revision the login read (spec §5.8).
    pub revision: u64,
}

impl User {
    /// The lower-cased e-mail used for lookups and throttle keys.
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }

    /// The directory the user signs in against, for a directory user (spec §5.9).
    pub fn directory(&self) -> Option<&str> {
        match &self.credential {
            Credential::Directory(name) => Some(name),
            _ => None,
        }
    }
}

/// What a user signs in with (spec §5.1, §5.9, §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A password, as an argon2id PHC string made here.
    Password(PasswordHash),
    /// A password hash imported from an upstream portal, verified by the upstream algorithm and
    /// replaced by argon2id at the first successful login.
    Upstream(UpstreamHash),
    /// A directory user: the password lives in the named directory (`[[ldap.directories]]`), and no
    /// local password is kept.
    Directory(String),
    /// No usable password (an imported directory or single-sign-on user, a dead legacy hash): every
    /// password check fails, at the cost of a real one.
    None,
}

/// The stored text of [`Credential::Directory`] starts with this (a PHC string never starts with `!`).
const DIRECTORY_PREFIX: &str = "!directory:";
/// The stored text of [`Credential::None`].
const NO_PASSWORD: &str = "!none";

impl Credential {
    /// The storage-neutral text form, kept in one column by every adapter: the PHC string, the
    /// upstream form (`$onlyoffice$…`), `!directory:NAME` or `!none`.
    pub fn encode(&self) -> String {
        match self {
            Credential::Password(h) => h.as_str().to_owned(),
            Credential::Upstream(h) => h.encode(),
            Credential::Directory(name) => format!("{DIRECTORY_PREFIX}{name}"),
            Credential::None => NO_PASSWORD.to_owned(),
        }
    }

    /// Reads [`Credential::encode`]. Anything that is not one of the marked forms is taken as a PHC
    /// string, checked when used (as before there were other kinds).
    pub fn decode(s: &str) -> Self {
        if let Some(name) = s.strip_prefix(DIRECTORY_PREFIX) {
            return Credential::Directory(name.to_owned());
        }
        if s == NO_PASSWORD {
            return Credential::None;
        }
        match UpstreamHash::decode(s) {
            Some(h) => Credential::Upstream(h),
            None => Credential::Password(PasswordHash::from_phc(s)),
        }
    }

    /// Whether this is a password set here (argon2id): an import never replaces one.
    pub fn is_local_password(&self) -> bool {
        matches!(self, Credential::Password(_))
    }
}

/// What `people/@self` shows (spec §9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Identity.
    pub id: UserId,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// `first last`, or the e-mail when both are empty.
    pub display_name: String,
    /// Masked phone, if any.
    pub phone_noise: Option<String>,
    /// Whether the phone is activated (only meaningful with a phone).
    pub phone_activated: bool,
    /// Portal administrator.
    pub is_admin: bool,
}

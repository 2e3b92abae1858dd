//! The response objects of API.md §1: the token object, `people/@self`, capabilities, backup codes,
//! and the sessions list of §13.
//!
//! Each type writes its fields in wire order with the spec's omission rules and reads them back from either
//! format. Types that hold secrets (tokens, TOTP keys, backup codes) redact them in `Debug`, so they can be
//! logged by accident without leaking.

use std::fmt;

use crate::date::ApiDate;
use crate::tree::{self, Node, ShapeResult};
use crate::write::{Sink, WriteFields};

/// Placeholder shown by `Debug` instead of a secret.
const REDACTED: &str = "<redacted>";

/// The `response` of the credential endpoints (API.md §3, "The token object").
///
/// On the wire `token` is always present (`null` while a second factor is pending), `false` flags and absent
/// strings are omitted, and nothing else is ever `null`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TokenResponse {
    /// The session token, or `None` while a second factor is pending.
    pub token: Option<String>,
    /// Token expiry; or, while an SMS code is pending, when the newest outstanding code expires.
    pub expires: Option<ApiDate>,
    /// SMS 2FA is in play.
    pub sms: bool,
    /// The masked phone (`+7912***6789`); `None` when the user has no phone.
    pub phone_noise: Option<String>,
    /// The TOTP app is in play.
    pub tfa: bool,
    /// The base32 TOTP secret, only while the app is not yet activated.
    pub tfa_key: Option<String>,
}

impl TokenResponse {
    /// A token issued with its expiry: `{"token":"…","expires":"…"}`.
    pub fn issued(token: impl Into<String>, expires: ApiDate) -> TokenResponse {
        TokenResponse {
            token: Some(token.into()),
            expires: Some(expires),
            ..TokenResponse::default()
        }
    }

    /// An SMS challenge: `{"token":null,"expires":…,"sms":true,"phoneNoise":…}`; pass `None`s for the
    /// "no activated phone yet" shape `{"token":null,"sms":true}`.
    pub fn sms_challenge(expires: Option<ApiDate>, phone_noise: Option<String>) -> TokenResponse {
        TokenResponse { expires, sms: true, phone_noise, ..TokenResponse::default() }
    }

    /// A TOTP challenge: `{"token":null,"tfa":true}`, plus `tfaKey` during first enrolment.
    pub fn tfa_challenge(tfa_key: Option<String>) -> TokenResponse {
        TokenResponse { tfa: true, tfa_key, ..TokenResponse::default() }
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("expires", &self.expires)
            .field("sms", &self.sms)
            .field("phone_noise", &self.phone_noise)
            .field("tfa", &self.tfa)
            .field("tfa_key", &self.tfa_key.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl WriteFields for TokenResponse {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        match &self.token {
            Some(token) => s.str("token", token),
            None => s.null("token"),
        }
        if let Some(expires) = &self.expires {
            s.date("expires", expires);
        }
        if self.sms {
            s.bool("sms", true);
        }
        if let Some(noise) = &self.phone_noise {
            s.str("phoneNoise", noise);
        }
        if self.tfa {
            s.bool("tfa", true);
        }
        if let Some(key) = &self.tfa_key {
            s.str("tfaKey", key);
        }
    }
}

impl TokenResponse {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<TokenResponse> {
        let expires = match tree::opt_string(node, "expires")? {
            Some(text) => Some(ApiDate::parse(&text).map_err(|e| format!("`expires`: {e}"))?),
            None => None,
        };
        Ok(TokenResponse {
            token: tree::opt_string(node, "token")?,
            expires,
            sms: tree::flag(node, "sms")?,
            phone_noise: tree::opt_string(node, "phoneNoise")?,
            tfa: tree::flag(node, "tfa")?,
            tfa_key: tree::opt_string(node, "tfaKey")?,
        })
    }
}

/// The caller's phone as `people/@self` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePhone {
    /// The masked number (`mobilePhone` on the wire carries the phoneNoise, never the full number).
    pub noise: String,
    /// Whether the number has been confirmed by an SMS code (`mobilePhoneActivationStatus` 1).
    pub activated: bool,
}

/// The `people/@self` profile (API.md §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user id (a UUID in text form).
    pub id: String,
    /// The login name (the e-mail).
    pub user_name: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Name for display.
    pub display_name: String,
    /// E-mail address.
    pub email: String,
    /// The phone; `mobilePhone` and `mobilePhoneActivationStatus` are omitted when `None`.
    pub phone: Option<ProfilePhone>,
    /// Whether the user is a portal administrator.
    pub is_admin: bool,
}

impl WriteFields for Profile {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.str("id", &self.id);
        s.str("userName", &self.user_name);
        s.str("firstName", &self.first_name);
        s.str("lastName", &self.last_name);
        s.str("displayName", &self.display_name);
        s.str("email", &self.email);
        if let Some(phone) = &self.phone {
            s.str("mobilePhone", &phone.noise);
            s.int("mobilePhoneActivationStatus", i64::from(phone.activated));
        }
        s.bool("isAdmin", self.is_admin);
    }
}

impl Profile {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<Profile> {
        let phone = match tree::opt_string(node, "mobilePhone")? {
            Some(noise) => {
                let activated = match node.field("mobilePhoneActivationStatus") {
                    None | Some(Node::Null) => false,
                    Some(v) => v.as_int("mobilePhoneActivationStatus")? != 0,
                };
                Some(ProfilePhone { noise, activated })
            }
            None => None,
        };
        Ok(Profile {
            id: tree::req_string(node, "id")?,
            user_name: tree::req_string(node, "userName")?,
            first_name: tree::opt_string(node, "firstName")?.unwrap_or_default(),
            last_name: tree::opt_string(node, "lastName")?.unwrap_or_default(),
            display_name: tree::opt_string(node, "displayName")?.unwrap_or_default(),
            email: tree::opt_string(node, "email")?.unwrap_or_default(),
            phone,
            is_admin: tree::flag(node, "isAdmin")?,
        })
    }
}

/// The pre-login discovery object of `GET capabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Always `false` here (no LDAP); kept because clients read it.
    pub ldap_enabled: bool,
    /// Whether social login is offered.
    pub oauth_enabled: bool,
    /// The enabled social providers, e.g. `google`.
    pub providers: Vec<String>,
    /// SSO button label; empty when SSO is off.
    pub sso_label: String,
    /// SSO login URL; empty when SSO is off.
    pub sso_url: String,
}

impl WriteFields for Capabilities {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.bool("ldapEnabled", self.ldap_enabled);
        s.bool("oauthEnabled", self.oauth_enabled);
        s.str_list("providers", &self.providers);
        s.str("ssoLabel", &self.sso_label);
        s.str("ssoUrl", &self.sso_url);
    }
}

impl Capabilities {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<Capabilities> {
        let providers = node
            .list_field("providers")
            .into_iter()
            .map(|p| p.as_opt_str("providers").map(|s| s.unwrap_or_default().to_owned()))
            .collect::<ShapeResult<Vec<_>>>()?;
        Ok(Capabilities {
            ldap_enabled: tree::flag(node, "ldapEnabled")?,
            oauth_enabled: tree::flag(node, "oauthEnabled")?,
            providers,
            sso_label: tree::opt_string(node, "ssoLabel")?.unwrap_or_default(),
            sso_url: tree::opt_string(node, "ssoUrl")?.unwrap_or_default(),
        })
    }
}

/// One backup code as listed by `settings/tfaappcodes`: `{"isUsed":false,"code":"…"}`.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode {
    /// Whether the code has been used.
    pub is_used: bool,
    /// The plaintext code, or `********` when it is listed masked.
    pub code: String,
}

impl BackupCode {
    /// The mask shown instead of a code after its one plaintext showing.
    pub const MASK: &'static str = "********";

    /// A masked entry.
    pub fn masked(is_used: bool) -> BackupCode {
        BackupCode { is_used, code: BackupCode::MASK.to_owned() }
    }
}

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = if self.code == BackupCode::MASK { BackupCode::MASK } else { REDACTED };
        f.debug_struct("BackupCode").field("is_used", &self.is_used).field("code", &code).finish()
    }
}

impl WriteFields for BackupCode {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.bool("isUsed", self.is_used);
        s.str("code", &self.code);
    }
}

impl BackupCode {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<BackupCode> {
        Ok(BackupCode {
            is_used: tree::flag(node, "isUsed")?,
            code: tree::req_string(node, "code")?,
        })
    }
}

/// One provider of `people/thirdparty/providers`: `{"provider":"google","linked":true}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLink {
    /// The provider's configured name.
    pub provider: String,
    /// Whether the caller has linked an identity there.
    pub linked: bool,
}

impl WriteFields for ProviderLink {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.str("provider", &self.provider);
        s.bool("linked", self.linked);
    }
}

impl ProviderLink {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<ProviderLink> {
        Ok(ProviderLink {
            provider: tree::req_string(node, "provider")?,
            linked: tree::flag(node, "linked")?,
        })
    }
}

/// One session of `GET security/activeconnections`:
/// `{"id":…,"ip":"…","date":"…","lastUsed":"…","expires":"…","userAgent":"…"}`.
///
/// `id` and `ip` and `date` keep upstream's names (its login events); `ip` and `userAgent` are
/// omitted when unknown. The id is a number below 2^53, so JavaScript reads it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The session's public id: what `PUT security/activeconnections/logout/{id}` takes.
    pub id: i64,
    /// The client address of the login, when known.
    pub ip: Option<String>,
    /// When the login issued the token.
    pub date: ApiDate,
    /// When the token was last used (to a few minutes).
    pub last_used: ApiDate,
    /// When the token stops being accepted.
    pub expires: ApiDate,
    /// The `User-Agent` of the login, when it sent one.
    pub user_agent: Option<String>,
}

impl WriteFields for Connection {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.int("id", self.id);
        if let Some(ip) = &self.ip {
            s.str("ip", ip);
        }
        s.date("date", &self.date);
        s.date("lastUsed", &self.last_used);
        s.date("expires", &self.expires);
        if let Some(ua) = &self.user_agent {
            s.str("userAgent", ua);
        }
    }
}

impl Connection {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<Connection> {
        let date = |name: &str| -> ShapeResult<ApiDate> {
            ApiDate::parse(&tree::req_string(node, name)?).map_err(|e| format!("`{name}`: {e}"))
        };
        Ok(Connection {
            id: node.field("id").ok_or("`id` is missing")?.as_int("id")?,
            ip: tree::opt_string(node, "ip")?,
            date: date("date")?,
            last_used: date("lastUsed")?,
            expires: date("expires")?,
            user_agent: tree::opt_string(node, "userAgent")?,
        })
    }
}

/// The `response` of `GET security/activeconnections`, upstream's shape:
/// `{"items":[…],"loginEvent":<the id of the presented token>}`, the caller's own session first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveConnections {
    /// The caller's live sessions.
    pub items: Vec<Connection>,
    /// The id of the session the request came with ("this one").
    pub login_event: i64,
}

impl WriteFields for ActiveConnections {
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.object_list("items", &self.items);
        s.int("loginEvent", self.login_event);
    }
}

impl ActiveConnections {
    pub(crate) fn from_node(node: &Node) -> ShapeResult<ActiveConnections> {
        let items = node.list_field("items").into_iter().map(Connection::from_node);
        Ok(ActiveConnections {
            items: items.collect::<ShapeResult<Vec<_>>>()?,
            login_event: node
                .field("loginEvent")
                .ok_or("`loginEvent` is missing")?
                .as_int("loginEvent")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let t = TokenResponse {
            tfa_key: Some("KV5E2MDFKZUEOYSF".into()),
            ..TokenResponse::issued("secret-token", ApiDate::MIN)
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret-token") && !shown.contains("KV5E2"), "{shown}");
        let shown = format!("{:?}", BackupCode { is_used: false, code: "ABCD2345".into() });
        assert!(!shown.contains("ABCD2345"), "{shown}");
    }
}

//! The upstream algorithms the importer must reproduce to read what CommunityServer / R7-Office stored
//! (`shared/reference/upstream-schema.md` §3, §4, §6.3, §8–§10; `upstream-behaviour.md` §6.2).
//!
//! Pure functions: no I/O, no clock, no randomness. They decode; they never encode (the tests' fixture
//! generator in `tests/src/upstream.rs` has its own, independent encoders). Verifying an upstream
//! password hash is not here either: that is `auth_core::upstream`, used at login.
//! Everything that decrypts returns its plaintext wrapped so that it is wiped when dropped and never
//! printed by `Debug`.

use std::net::IpAddr;

use aes::Aes256;
use aes::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
use auth_core::{Language, SecretString};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Why an upstream value could not be decoded. It never carries the value itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not strict standard base64.
    #[error("not base64")]
    Base64,
    /// Not a whole number of AES blocks, or the padding is wrong: the key is not the one it was made with.
    #[error("does not decrypt under this key")]
    Cipher,
    /// The plaintext is not text in the expected encoding.
    #[error("decrypted, but not text")]
    Text,
    /// A legacy signature whose hash does not match: made under another machine key.
    #[error("signature does not match this machine key")]
    Signature,
    /// A legacy signature that is not in the signed form at all.
    #[error("not a signed value")]
    Malformed,
}

/// Ids upstream gives a meaning of their own (`common/ASC.Core.Common/Users/Constants.cs`,
/// `Configuration/Constants.cs`, `Security/Authorizing/Constants.cs`, and each settings class).
pub mod ids {
    /// What upstream returns for "no such user"; never a real account.
    pub const LOST_USER: &str = "4a515a15-d4d6-4b8e-828e-e0586f18f3a3";
    /// System accounts that are not people: lost, outside, poster, system and guest.
    pub const SYSTEM_USERS: [&str; 5] = [
        LOST_USER,
        "e78f4c20-2f3b-4a9d-ad13-5f298bd5a3ba",
        "17097d73-2d1e-4b36-aa07-aeb34af993cd",
        "a37ee56e-3302-4a7b-b67e-ddbea64cd032",
        "712d9ec3-5d2b-4b13-824f-71f00191dcca",
    ];
    /// The administrators' group (`core_usergroup.groupid`).
    pub const ADMIN_GROUP: &str = "cd84e66b-b803-40fc-99f9-b2969a54a1de";
    /// The empty GUID: `webstudio_settings.UserID` of portal-wide rows.
    pub const EMPTY: &str = "00000000-0000-0000-0000-000000000000";
    /// `TfaAppAuthSettings`: the portal's app second factor.
    pub const TFA_APP: &str = "822ca059-aa8f-4588-bee3-6cd2aa920cdb";
    /// `StudioSmsNotificationSettings`: the portal's SMS second factor.
    pub const TFA_SMS: &str = "2802df61-af0d-40d4-abc5-a8506a5352ff";
    /// `TfaAppUserSettings`: one user's authenticator salt and backup codes.
    pub const TFA_USER: &str = "eaf10611-be1e-4634-b7a1-57f913042f78";
    /// `LoginSettings`: the login throttle.
    pub const LOGIN: &str = "588c7e01-8d41-4fce-9779-d4126e019765";
    /// `IPRestrictionsSettings`: the switch of `tenants_iprestrictions`.
    pub const IP_RESTRICTIONS: &str = "2edddf64-f792-4498-a638-2e3e6ebb13c9";
    /// `WizardSettings`: whether the portal's set-up wizard was completed.
    pub const WIZARD: &str = "9a925891-1f92-4ed7-b277-d6f649739f06";
    /// `LdapSettings`.
    pub const LDAP: &str = "197149b3-fbc9-44c2-b42a-232f7e729c16";
    /// `SsoSettingsV2`.
    pub const SSO: &str = "1500187f-b8ab-406f-97b8-04bfe8261dbe";
    /// `TenantCookieSettings` (token lifetime and indexes).
    pub const COOKIE: &str = "16fb8e67-e96d-4b22-b217-c80f25c5de1b";
}

// ----- the generator behind every key (`AscRandom`, upstream-schema §9.1) -------------------------

const MBIG: i32 = i32::MAX;
const MSEED: i32 = 161_803_398;

/// Knuth's subtractive generator as `common/ASC.Common/Security/AscRandom.cs` has it: .NET
/// `System.Random`'s algorithm in C# `int` arithmetic, which wraps at 32 bits (unbounded arithmetic
/// gives a different key for some seeds, the published machine key's among them).
struct AscRandom {
    seeds: [i32; 56],
    inext: usize,
    inextp: usize,
}

impl AscRandom {
    fn new(seed: i32) -> Self {
        let mut me = Self { seeds: [0; 56], inext: 0, inextp: 21 };
        let sub = if seed == i32::MIN { i32::MAX } else { seed.abs() };
        let mut mj = MSEED.wrapping_sub(sub);
        me.set(55, mj);
        let mut mk: i32 = 1;
        for i in 1..55 {
            let ii = (21 * i) % 55;
            me.set(ii, mk);
            mk = mj.wrapping_sub(mk);
            if mk < 0 {
                mk = mk.wrapping_add(MBIG);
            }
            mj = me.at(ii);
        }
        for _ in 0..4 {
            for i in 1..56 {
                let mut v = me.at(i).wrapping_sub(me.at(1 + (i + 30) % 55));
                if v < 0 {
                    v = v.wrapping_add(MBIG);
                }
                me.set(i, v);
            }
        }
        me
    }

    // Every index is below 56 by construction; the accessors only keep the code free of panics.
    fn at(&self, i: usize) -> i32 {
        self.seeds.get(i).copied().unwrap_or(0)
    }

    fn set(&mut self, i: usize, v: i32) {
        if let Some(slot) = self.seeds.get_mut(i) {
            *slot = v;
        }
    }

    /// The next raw sample in `0..i32::MAX`. The indexes wrap at 55, not 56 as in `System.Random`;
    /// that only shows after 34 samples, and no key takes that many.
    fn sample(&mut self) -> i32 {
        self.inext += 1;
        if self.inext >= 55 {
            self.inext = 1;
        }
        self.inextp += 1;
        if self.inextp >= 55 {
            self.inextp = 1;
        }
        let mut r = self.at(self.inext).wrapping_sub(self.at(self.inextp));
        if r == MBIG {
            r -= 1;
        }
        if r < 0 {
            r = r.wrapping_add(MBIG);
        }
        self.set(self.inext, r);
        r
    }

    /// `Next(max)`: the sample scaled in `f64`, left to right, as .NET computes it.
    fn next_below(&mut self, max: i32) -> i32 {
        let scaled = (f64::from(self.sample()) * 4.656_612_875_245_797e-10) * f64::from(max);
        // In range by construction (0 <= scaled < max); truncation is what C#'s cast does.
        #[allow(clippy::cast_possible_truncation)]
        let n = scaled as i32;
        n
    }
}

/// The instance key (`MachinePseudoKeys.GetMachineConstant(32)`): seeded with the last four bytes of
/// the machine key's UTF-8 (after four zero bytes, so short keys work), 32 samples modulo 256.
/// It encrypts backup codes, auth tokens and e2e link rows.
pub fn instance_key(machine_key: &SecretString) -> Zeroizing<[u8; 32]> {
    let mut padded = Zeroizing::new(vec![0u8; 4]);
    padded.extend_from_slice(machine_key.expose().as_bytes());
    let tail: [u8; 4] = padded
        .get(padded.len().saturating_sub(4)..)
        .and_then(|t| t.try_into().ok())
        .unwrap_or_default();
    let mut rng = AscRandom::new(i32::from_le_bytes(tail));
    let mut key = Zeroizing::new([0u8; 32]);
    for b in key.iter_mut() {
        *b = rng.sample().to_le_bytes().first().copied().unwrap_or(0);
    }
    key
}

/// The two keys compiled into upstream (`Crypto.cs`): public, the same on every installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixedKey {
    /// Key 1 (seed 7): `core_usersecurity.pwdhashsha512`, over UTF-16LE text.
    Passwords,
    /// Key 2 (seed 14): `core_settings.value`, over UTF-8 text.
    Settings,
}

/// A fixed key's bytes: 32 draws of `Next(255)`.
pub fn fixed_key(which: FixedKey) -> [u8; 32] {
    let seed = match which {
        // The length of the type name `Boolean`, once and twice.
        FixedKey::Passwords => 7,
        FixedKey::Settings => 14,
    };
    let mut rng = AscRandom::new(seed);
    let mut key = [0u8; 32];
    for b in &mut key {
        *b = u8::try_from(rng.next_below(255)).unwrap_or(0);
    }
    key
}

// ----- the cipher: AES-256-CBC, zero IV, PKCS#7, no MAC (`InstanceCrypto.cs`, `Crypto.cs`) --------

/// Decrypts upstream's cipher text.
pub fn decrypt(key: &[u8; 32], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(DecodeError::Cipher);
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let cipher = cbc::Decryptor::<Aes256>::new(key.into(), &[0u8; 16].into());
    let len = cipher.decrypt_padded_mut::<Pkcs7>(&mut buf).map_err(|_| DecodeError::Cipher)?.len();
    buf.truncate(len);
    Ok(buf)
}

/// Strict standard base64 as .NET's `Convert.FromBase64String` reads it (padding required; the URL
/// alphabet is refused, which is how legacy signed values fall through to their own decoder).
fn base64_strict(text: &str) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    STANDARD.decode(text.trim()).map(Zeroizing::new).map_err(|_| DecodeError::Base64)
}

fn utf8(bytes: &[u8]) -> Result<SecretString, DecodeError> {
    std::str::from_utf8(bytes).map(SecretString::new).map_err(|_| DecodeError::Text)
}

/// A `core_settings.value` blob (fixed key 2 over UTF-8), such as `BaseDomain`. Its text may be a
/// secret (SMTP and OAuth client secrets live there too), so it comes back as one.
pub fn decrypt_setting(value: &[u8]) -> Result<SecretString, DecodeError> {
    let plain = decrypt(&fixed_key(FixedKey::Settings), value)?;
    utf8(&plain)
}

/// A pre-v12 `pwdhashsha512` value: the user's plaintext password, base64 of fixed key 1 over UTF-16LE.
pub fn decrypt_pwdhashsha512(value: &str) -> Result<SecretString, DecodeError> {
    let plain = decrypt(&fixed_key(FixedKey::Passwords), &base64_strict(value)?)?;
    if !plain.len().is_multiple_of(2) {
        return Err(DecodeError::Text);
    }
    let units: Zeroizing<Vec<u16>> = Zeroizing::new(
        plain
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok())
            .map(u16::from_le_bytes)
            .collect(),
    );
    String::from_utf16(&units).map(SecretString::new).map_err(|_| DecodeError::Text)
}

// ----- the authenticator secret (`upstream-behaviour.md` §6.2) ------------------------------------

/// The user's TOTP key bytes from their `TfaAppUserSettings.Salt`: the first ten characters of
/// base64url(base64(SHA-256(salt digits + machine key))), taken as ASCII bytes (not base32-decoded).
/// Callers check that the salt is not 0 (0 means "never set up").
pub fn totp_secret(salt: i64, machine_key: &SecretString) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(salt.to_string());
    input.push_str(machine_key.expose());
    let inner = Zeroizing::new(STANDARD.encode(Sha256::digest(input.as_bytes())));
    let outer = Zeroizing::new(URL_SAFE_NO_PAD.encode(inner.as_bytes()));
    Zeroizing::new(outer.as_bytes().iter().take(10).copied().collect())
}

// ----- backup codes (upstream-schema §8) ----------------------------------------------------------

/// Which form a stored backup code was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeForm {
    /// v11.0+: AES under the instance key.
    Encrypted,
    /// ≤ v10.5: a signed plaintext (`Signature.Create`).
    LegacySignature,
}

/// One `BackupCodes[].Code`: AES under the instance key first (strict base64, valid padding, valid
/// UTF-8), then the legacy signature. An error means upstream cannot match it either.
pub fn decode_backup_code(
    stored: &str,
    instance_key: &[u8; 32],
    machine_key: &SecretString,
) -> Result<(SecretString, CodeForm), DecodeError> {
    let aes = base64_strict(stored).and_then(|c| decrypt(instance_key, &c)).and_then(|p| utf8(&p));
    match aes {
        Ok(code) => Ok((code, CodeForm::Encrypted)),
        Err(_) => decode_signature(stored, machine_key).map(|c| (c, CodeForm::LegacySignature)),
    }
}

/// Reads `Signature.Create(value)` back: ASP.NET `UrlTokenEncode` of
/// `base64(SHA-256(json + machine key)) + "?" + json`, where `json` is the value as a JSON literal.
/// Only string values are wanted here (backup codes).
pub fn decode_signature(
    stored: &str,
    machine_key: &SecretString,
) -> Result<SecretString, DecodeError> {
    let stored = stored.trim();
    let (body, pad) = match stored.char_indices().last() {
        Some((at, c)) if c.is_ascii_digit() => (stored.get(..at).unwrap_or_default(), c),
        _ => return Err(DecodeError::Malformed),
    };
    let pad = usize::from(u8::try_from(pad).unwrap_or(b'0').saturating_sub(b'0'));
    if pad > 2 {
        return Err(DecodeError::Malformed);
    }
    let mut b64 = Zeroizing::new(body.replace('-', "+").replace('_', "/"));
    b64.extend(std::iter::repeat_n('=', pad));
    let payload =
        STANDARD.decode(b64.as_bytes()).map(Zeroizing::new).map_err(|_| DecodeError::Malformed)?;
    let payload = std::str::from_utf8(&payload).map_err(|_| DecodeError::Malformed)?;
    let (hash, json) = payload.split_once('?').ok_or(DecodeError::Malformed)?;
    let mut signed = Zeroizing::new(json.to_owned());
    signed.push_str(machine_key.expose());
    let expected = STANDARD.encode(Sha256::digest(signed.as_bytes()));
    if !auth_core::crypto::ct_eq(expected.as_bytes(), hash.as_bytes()) {
        return Err(DecodeError::Signature);
    }
    let value: String = serde_json::from_str(json).map_err(|_| DecodeError::Malformed)?;
    Ok(SecretString::new(value))
}

// ----- social links (upstream-schema §10) ---------------------------------------------------------

/// A parsed `account_links.profile`: `key→value` pairs joined by `·`, with no escaping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkProfile {
    pairs: Vec<(String, String)>,
}

impl LinkProfile {
    /// Parses the profile text; pieces without an arrow are ignored.
    pub fn parse(text: &str) -> Self {
        let pairs = text
            .split('\u{00B7}')
            .filter_map(|piece| piece.split_once('\u{2192}'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { pairs }
    }

    /// The first value of `key`, when it is not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The provider's subject (`Id`).
    pub fn subject(&self) -> Option<&str> {
        self.get("Id")
    }

    /// The provider (`APr`).
    pub fn provider(&self) -> Option<&str> {
        self.get("APr")
    }
}

/// `account_links.uid`: upper-case hex MD5 of `provider/subject`.
pub fn link_uid(provider: &str, subject: &str) -> String {
    let digest = Md5::digest(format!("{provider}/{subject}").as_bytes());
    data_encoding::HEXUPPER.encode(&digest)
}

// ----- portals (upstream-schema §3, §4.4) ---------------------------------------------------------

/// A `TrustedIps` (or IP restriction) entry as CIDRs: an exact address is a /32 or /128; a range
/// `a-b` is the exact, shortest list of networks covering it (never wider: a single covering network
/// would trust addresses upstream did not); `a/n` is its network. `None` when it is none of these.
pub fn trusted_ip_cidrs(entry: &str) -> Option<Vec<IpNet>> {
    let entry = entry.trim();
    if let Some((from, to)) = entry.split_once('-') {
        let from: IpAddr = from.trim().parse().ok()?;
        let to: IpAddr = to.trim().parse().ok()?;
        let nets: Vec<IpNet> = match (from.to_canonical(), to.to_canonical()) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
                Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
            }
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => {
                Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
            }
            _ => return None,
        };
        return Some(nets);
    }
    if entry.contains('/') {
        return entry.parse::<IpNet>().ok().map(|n| vec![n.trunc()]);
    }
    entry.parse::<IpAddr>().ok().map(|a| vec![IpNet::from(a.to_canonical())])
}

/// Whether a base domain means "standalone": upstream then names the portal after the server's own
/// host name, which the database does not hold.
pub fn is_standalone_base(base: &str) -> bool {
    let base = base.trim().trim_end_matches('.');
    base.is_empty() || base.eq_ignore_ascii_case("localhost")
}

/// The portal's canonical host `alias.base`, lower-case, without a trailing dot; `None` in the
/// standalone cases (base `localhost`, or the first portal's alias `localhost`).
pub fn alias_host(alias: &str, base: &str) -> Option<String> {
    let alias = alias.trim();
    if alias.is_empty() || alias.eq_ignore_ascii_case("localhost") || is_standalone_base(base) {
        return None;
    }
    let host = format!("{alias}.{}", base.trim()).to_lowercase();
    Some(host.trim_end_matches('.').to_owned())
}

/// `mappeddomain` as a host: older rows start with a scheme, which upstream strips; a path, which
/// none should have, is cut off too.
pub fn mapped_host(mapped: &str) -> Option<String> {
    let mut host = mapped.trim().to_lowercase();
    for scheme in ["http://", "https://"] {
        if let Some(rest) = host.strip_prefix(scheme) {
            host = rest.to_owned();
        }
    }
    let host = host.split('/').next().unwrap_or_default().trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_owned())
}

/// The portal language from a culture name (`ru-RU` → ru); anything but Russian or English is `None`
/// and becomes English with a report entry.
pub fn language(culture: &str) -> Option<Language> {
    Language::parse(culture)
}

/// A `tenants_tenants.timezone` as an IANA name: IANA ids are kept (when the bundled database knows
/// them), Windows ids are mapped as CLDR's `windowsZones` does for territory 001.
pub fn time_zone(id: &str) -> Option<String> {
    let id = id.trim();
    if id.is_empty() {
        return None;
    }
    if let Some((_, iana)) = WINDOWS_ZONES.iter().find(|(w, _)| w.eq_ignore_ascii_case(id)) {
        return Some((*iana).to_owned());
    }
    let zone = jiff::tz::TimeZone::get(id).ok()?;
    Some(zone.iana_name().unwrap_or(id).to_owned())
}

/// An upstream GUID, read leniently (braces, upper case), as upstream's own parser does.
pub fn parse_guid(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}

/// CLDR `windowsZones.xml`, territory 001: Windows time zone id → IANA name.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Aleutian Standard Time", "America/Adak"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Marquesas Standard Time", "Pacific/Marquesas"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("UTC-09", "Etc/GMT+9"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("UTC-08", "Etc/GMT+8"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Mountain Standard Time", "America/Denver"),
    ("Yukon Standard Time", "America/Whitehorse"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Easter Island Standard Time", "Pacific/Easter"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("Eastern Standard Time", "America/New_York"),
    ("Haiti Standard Time", "America/Port-au-Prince"),
    ("Cuba Standard Time", "America/Havana"),
    ("US Eastern Standard Time", "America/Indiana/Indianapolis"),
    ("Turks And Caicos Standard Time", "America/Grand_Turk"),
    ("Paraguay Standard Time", "America/Asuncion"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Central Brazilian Standard Time", "America/Cuiaba"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("Tocantins Standard Time", "America/Araguaina"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("Greenland Standard Time", "America/Nuuk"),
    ("Montevideo Standard Time", "America/Montevideo"),
    ("Magallanes Standard Time", "America/Punta_Arenas"),
    ("Saint Pierre Standard Time", "America/Miquelon"),
    ("Bahia Standard Time", "America/Bahia"),
    ("UTC-02", "Etc/GMT+2"),
    ("Mid-Atlantic Standard Time", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("UTC", "Etc/UTC"),
    ("Coordinated Universal Time", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Sao Tome Standard Time", "Africa/Sao_Tome"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Middle East Standard Time", "Asia/Beirut"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("West Bank Standard Time", "Asia/Hebron"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Sudan Standard Time", "Africa/Juba"),
    ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
    ("Sudan Standard Time", "Africa/Khartoum"),
    ("Libya Standard Time", "Africa/Tripoli"),
    ("Namibia Standard Time", "Africa/Windhoek"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Belarus Standard Time", "Europe/Minsk"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Volgograd Standard Time", "Europe/Volgograd"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Astrakhan Standard Time", "Europe/Astrakhan"),
    ("Azerbaijan Standard Time", "Asia/Baku"),
    ("Russia Time Zone 3", "Europe/Samara"),
    ("Mauritius Standard Time", "Indian/Mauritius"),
    ("Saratov Standard Time", "Europe/Saratov"),
    ("Georgian Standard Time", "Asia/Tbilisi"),
    ("Caucasus Standard Time", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("Qyzylorda Standard Time", "Asia/Qyzylorda"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Central Asia Standard Time", "Asia/Bishkek"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Omsk Standard Time", "Asia/Omsk"),
    ("Myanmar Standard Time", "Asia/Yangon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("Altai Standard Time", "Asia/Barnaul"),
    ("W. Mongolia Standard Time", "Asia/Hovd"),
    ("North Asia Standard Time", "Asia/Krasnoyarsk"),
    ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
    ("Tomsk Standard Time", "Asia/Tomsk"),
    ("China Standard Time", "Asia/Shanghai"),
    ("North Asia East Standard Time", "Asia/Irkutsk"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"),
    ("Aus Central W. Standard Time", "Australia/Eucla"),
    ("Transbaikal Standard Time", "Asia/Chita"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("North Korea Standard Time", "Asia/Pyongyang"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Yakutsk Standard Time", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("Vladivostok Standard Time", "Asia/Vladivostok"),
    ("Lord Howe Standard Time", "Australia/Lord_Howe"),
    ("Bougainville Standard Time", "Pacific/Bougainville"),
    ("Russia Time Zone 10", "Asia/Srednekolymsk"),
    ("Magadan Standard Time", "Asia/Magadan"),
    ("Norfolk Standard Time", "Pacific/Norfolk"),
    ("Sakhalin Standard Time", "Asia/Sakhalin"),
    ("Central Pacific Standard Time", "Pacific/Guadalcanal"),
    ("Russia Time Zone 11", "Asia/Kamchatka"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("UTC+12", "Etc/GMT-12"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Kamchatka Standard Time", "Asia/Kamchatka"),
    ("Chatham Islands Standard Time", "Pacific/Chatham"),
    ("UTC+13", "Etc/GMT-13"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
    ("Line Islands Standard Time", "Pacific/Kiritimati"),
];

#[cfg(test)]
mod tests {
    //! Every vector of `upstream-schema.md` §9, §11 and `upstream-behaviour.md` §11 (with the
    //! erratum of upstream-schema §9.1 applied).

    use super::*;

    const MACHINE_KEY: &str = "Vskoproizvolny Salt par Chivreski";

    fn mk() -> SecretString {
        SecretString::new(MACHINE_KEY)
    }

    fn hex(bytes: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(bytes)
    }

    #[test]
    fn the_generator_matches_dot_net_system_random() {
        // Known `new Random(seed).Next()` outputs of .NET Framework (upstream-behaviour §11).
        for (seed, first) in [(0, 1_559_595_546), (1, 534_011_718), (42, 1_434_747_710)] {
            assert_eq!(AscRandom::new(seed).sample(), first, "seed {seed}");
        }
    }

    #[test]
    fn the_instance_key_of_the_public_machine_key_wraps_at_32_bits() {
        assert_eq!(
            hex(instance_key(&mk()).as_slice()),
            "7ed48cc2e99ff6d0325457237ed43c4cba968b9a50b81db53ea4f7776ce821c7"
        );
        // Short keys are padded with zero bytes in front: no panic, a key all the same.
        assert_eq!(instance_key(&SecretString::new("ab")).len(), 32);
        assert_eq!(instance_key(&SecretString::new("")).len(), 32);
    }

    #[test]
    fn the_fixed_keys_are_the_published_ones() {
        let check =
            |which, expected: &str| assert_eq!(hex(&fixed_key(which)), expected, "{which:?}");
        check(
            FixedKey::Passwords,
            "61dea80d5dac0af3d7da72ed711ce066cd55dd06be902c796207f2067ab7c44b",
        );
        check(
            FixedKey::Settings,
            "0aeb8d8b86ca2d76b46f9a6541c0c7c5beac0ebbac485beb1287f75c695a5a23",
        );
    }

    #[test]
    fn settings_blobs_decrypt_under_fixed_key_2() {
        let blob = data_encoding::HEXUPPER.decode(b"E52CE62C5DDA769CDE18123E548F72F9").unwrap();
        assert_eq!(decrypt_setting(&blob).unwrap().expose(), "example.com");
        assert_eq!(decrypt_setting(&blob[..15]), Err(DecodeError::Cipher));
        assert_eq!(decrypt_setting(&[]), Err(DecodeError::Cipher));
    }

    #[test]
    fn pwdhashsha512_decrypts_to_the_plaintext() {
        let plain = decrypt_pwdhashsha512("lV6ouCgHF92+SpCGinbx7TH3Ml+xpSK71ZRd441htu4=").unwrap();
        assert_eq!(plain.expose(), "password123");
        assert_eq!(decrypt_pwdhashsha512("not base64!"), Err(DecodeError::Base64));
        // The same bytes under the wrong key: the padding check refuses them.
        assert!(decrypt_pwdhashsha512("D4bLmI9SSzAMNFCXv8OBoA==").is_err());
    }

    #[test]
    fn the_token_vector_decrypts_under_the_corrected_instance_key() {
        let token = "J8ECHePuMTsAVq1opi9zLY/fO+69nwrprs56RCYD+NmpIFejureLAMRfb0+jpAhNl/RTAEchamDGvHQPLVFdXsl0iw4XU8kqU/OIeF5t+a8JAe1ZxKtmdqjLk1nAJ9nxim8+h+5Z5EIFJbAO+YTVV+ZY6ssytm4cRC/nytevQro=";
        let plain = decrypt(&instance_key(&mk()), &STANDARD.decode(token).unwrap()).unwrap();
        assert_eq!(
            std::str::from_utf8(&plain).unwrap(),
            "$1$$/sUlZaoM8Y9X189bOscoUDuJktLW99RtodEgEJCQKwI=$11111111222233334444555555555555$0$2027-01-10 10:36:24,123$0$42"
        );
    }

    #[test]
    fn totp_secrets_are_derived_as_upstream() {
        let check = |salt: i64, secret: &str, tfa_key: &str, code_at_1700000000: &str| {
            let bytes = totp_secret(salt, &mk());
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), secret, "salt {salt}");
            assert_eq!(data_encoding::BASE32_NOPAD.encode(&bytes), tfa_key, "salt {salt}");
            let code = auth_core::totp::code_at_step(&bytes, 1_700_000_000 / 30);
            assert_eq!(code, code_at_1700000000, "salt {salt}");
        };
        check(200_000_000_000, "UzM0eVhGbE", "KV5E2MDFKZUEOYSF", "943484");
        check(1, "REVieWx2Uk", "KJCVM2LFK54DEVLL", "420159");
    }

    #[test]
    fn the_fixture_backup_codes_decode_in_both_forms() {
        let key = instance_key(&mk());
        let check = |stored: &str, code: &str, form: CodeForm| {
            let (got, got_form) = decode_backup_code(stored, &key, &mk()).unwrap();
            assert_eq!((got.expose(), got_form), (code, form), "{stored}");
        };
        check("D4bLmI9SSzAMNFCXv8OBoA==", "aB3-_z", CodeForm::Encrypted);
        check("OJ4D/3JTYtDgflhxmS6+Tg==", "Qx7_k0", CodeForm::Encrypted);
        check(
            "L2xUcWUzczdzU1JhN1pjN1FKUXhnMnpSMXVRcGpEWHJNT1hnSG5TSWVWVT0_ImFCMy1feiI1",
            "aB3-_z",
            CodeForm::LegacySignature,
        );
        // Under another machine key: the AES key differs and the signature does not match.
        let other = SecretString::new("another key!");
        let other_key = instance_key(&other);
        assert!(decode_backup_code("D4bLmI9SSzAMNFCXv8OBoA==", &other_key, &other).is_err());
        assert_eq!(
            decode_backup_code(
                "L2xUcWUzczdzU1JhN1pjN1FKUXhnMnpSMXVRcGpEWHJNT1hnSG5TSWVWVT0_ImFCMy1feiI1",
                &other_key,
                &other
            )
            .unwrap_err(),
            DecodeError::Signature
        );
        assert_eq!(decode_signature("abc", &mk()).unwrap_err(), DecodeError::Malformed);
        assert_eq!(decode_signature("", &mk()).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn the_legacy_totp_signature_shares_the_first_ten_characters() {
        // upstream-schema §8: `Signature.Create(salt)` before v11 begins with the same ten characters.
        let secret = totp_secret(200_000_000_000, &mk());
        assert_eq!(&secret[..], b"UzM0eVhGbE");
    }

    #[test]
    fn link_profiles_parse_and_their_uid_checks() {
        let p = LinkProfile::parse("Id→123456789012345678901·APr→google·E→ivan@gmail.test");
        assert_eq!(
            (p.subject(), p.provider(), p.get("E")),
            (Some("123456789012345678901"), Some("google"), Some("ivan@gmail.test"))
        );
        assert_eq!(link_uid("google", "123456789012345678901"), "7259D23B1F8CED8379C99670250C8985");
        assert_eq!(link_uid("facebook", "10150000000000001"), "254A55919927FD425F32A731ADDBE4AE");
        assert_eq!(link_uid("e2e", ""), "3C46FACC9A42025B1D655AE1D27121CE");
        let odd = LinkProfile::parse("Id→·junk·APr→vk");
        assert_eq!((odd.subject(), odd.provider()), (None, Some("vk")));
    }

    #[test]
    fn trusted_ips_become_cidrs() {
        let check = |entry: &str, expected: Option<&[&str]>| {
            let got = trusted_ip_cidrs(entry)
                .map(|nets| nets.iter().map(ToString::to_string).collect::<Vec<_>>());
            let want = expected.map(|e| e.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want, "{entry:?}");
        };
        check("10.0.0.0/8", Some(&["10.0.0.0/8"]));
        check("10.1.2.3/8", Some(&["10.0.0.0/8"]));
        check("192.168.1.7", Some(&["192.168.1.7/32"]));
        check(" 2001:db8::1 ", Some(&["2001:db8::1/128"]));
        check("::ffff:192.0.2.1", Some(&["192.0.2.1/32"]));
        check("192.168.0.0-192.168.1.255", Some(&["192.168.0.0/23"]));
        check(
            "10.0.0.1 - 10.0.0.6",
            Some(&["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]),
        );
        check("2001:db8::-2001:db8::ffff", Some(&["2001:db8::/112"]));
        check("10.0.0.9-10.0.0.1", None);
        check("10.0.0.1-2001:db8::1", None);
        check("example.com", None);
        check("10.0.0.0/33", None);
        check("", None);
    }

    #[test]
    fn host_names_follow_alias_base_and_mapped_domain() {
        assert_eq!(alias_host("acme", "example.com"), Some("acme.example.com".to_owned()));
        assert_eq!(alias_host("Acme", "Example.COM."), Some("acme.example.com".to_owned()));
        assert_eq!(alias_host("acme", "localhost"), None);
        assert_eq!(alias_host("localhost", "example.com"), None);
        assert_eq!(alias_host("acme", ""), None);
        assert_eq!(mapped_host("office.acme.test"), Some("office.acme.test".to_owned()));
        assert_eq!(mapped_host("https://Office.Acme.test/"), Some("office.acme.test".to_owned()));
        assert_eq!(mapped_host("http://office.acme.test"), Some("office.acme.test".to_owned()));
        assert_eq!(mapped_host("  "), None);
    }

    #[test]
    fn languages_and_time_zones_map_to_ours() {
        assert_eq!(language("ru-RU"), Some(Language::Ru));
        assert_eq!(language("en-US"), Some(Language::En));
        assert_eq!(language("de-DE"), None);
        assert_eq!(time_zone("Europe/Moscow").as_deref(), Some("Europe/Moscow"));
        assert_eq!(time_zone("Russian Standard Time").as_deref(), Some("Europe/Moscow"));
        assert_eq!(time_zone("russian standard time").as_deref(), Some("Europe/Moscow"));
        assert_eq!(time_zone("Nowhere Standard Time"), None);
        assert_eq!(time_zone(""), None);
        for (windows, iana) in WINDOWS_ZONES {
            assert!(
                jiff::tz::TimeZone::get(iana).is_ok(),
                "{windows} → {iana} is not in the bundle"
            );
        }
    }

    #[test]
    fn guids_parse_leniently() {
        let id = "11111111-2222-3333-4444-555555555555";
        for text in [
            id,
            "{11111111-2222-3333-4444-555555555555}",
            "11111111-2222-3333-4444-555555555555".to_uppercase().as_str(),
        ] {
            assert_eq!(
                parse_guid(text).map(|u| u.hyphenated().to_string()).as_deref(),
                Some(id),
                "{text}"
            );
        }
        assert_eq!(parse_guid("nope"), None);
    }
}

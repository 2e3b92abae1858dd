//! The upstream side of the import tests: the CommunityServer schema (`upstream-schema.md` §2), its
//! worked fixture (§11), and a generator that makes upstream rows with upstream's algorithms.
//!
//! Written on purpose apart from the importer's decoders (`auth_server::import::upstream`), from the
//! reference text alone, so that a mistake in one does not hide the same mistake in the other; the unit
//! tests below tie this generator to the published vectors. It encodes (password hashes, TOTP secrets,
//! AES backup codes, legacy signatures, fixed-key blobs); it never decodes what the importer decodes.

use std::fmt::Write as _;
use std::num::Wrapping;

use aes::Aes256;
use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512};

/// The machine key shipped in upstream's `web.appsettings.config`, used by the worked fixture.
pub const PUBLIC_MACHINE_KEY: &str = "Vskoproizvolny Salt par Chivreski";

/// The fixture schema of upstream-schema §2 (MariaDB), every table the importer reads.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS `tenants_tenants` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `alias` varchar(100) NOT NULL,
  `mappeddomain` varchar(100) DEFAULT NULL,
  `language` char(10) NOT NULL DEFAULT 'en-US',
  `timezone` varchar(50) DEFAULT NULL,
  `trusteddomains` varchar(1024) DEFAULT NULL,
  `trusteddomainsenabled` int(10) NOT NULL DEFAULT '1',
  `status` int(11) NOT NULL DEFAULT '0',
  `statuschanged` datetime DEFAULT NULL,
  `creationdatetime` datetime NOT NULL,
  `owner_id` varchar(38) DEFAULT NULL,
  `last_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  UNIQUE KEY `alias` (`alias`),
  KEY `last_modified` (`last_modified`),
  KEY `mappeddomain` (`mappeddomain`),
  KEY `status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `core_user` (
  `tenant` int(11) NOT NULL,
  `id` varchar(38) NOT NULL,
  `username` varchar(255) NOT NULL,
  `firstname` varchar(64) NOT NULL,
  `lastname` varchar(64) NOT NULL,
  `status` int(11) NOT NULL DEFAULT '1',
  `activation_status` int(11) NOT NULL DEFAULT '0',
  `email` varchar(255) DEFAULT NULL,
  `terminateddate` datetime DEFAULT NULL,
  `culture` varchar(20) DEFAULT NULL,
  `phone` varchar(255) DEFAULT NULL,
  `phone_activation` int(11) NOT NULL DEFAULT '0',
  `sid` varchar(512) DEFAULT NULL,
  `sso_name_id` varchar(512) DEFAULT NULL,
  `sso_session_id` varchar(512) DEFAULT NULL,
  `removed` int(11) NOT NULL DEFAULT '0',
  `create_on` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `last_modified` datetime NOT NULL,
  PRIMARY KEY (`id`),
  KEY `last_modified` (`last_modified`),
  KEY `username` (`tenant`,`username`),
  KEY `email` (`email`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `core_usersecurity` (
  `tenant` int(11) NOT NULL,
  `userid` varchar(38) NOT NULL,
  `pwdhash` varchar(512) DEFAULT NULL,
  `LastModified` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`userid`),
  KEY `pwdhash` (`pwdhash`(255)),
  KEY `tenant` (`tenant`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `core_usergroup` (
  `tenant` int(11) NOT NULL,
  `userid` varchar(38) NOT NULL,
  `groupid` varchar(38) NOT NULL,
  `ref_type` int(11) NOT NULL,
  `removed` int(11) NOT NULL DEFAULT '0',
  `last_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`tenant`,`userid`,`groupid`,`ref_type`),
  KEY `last_modified` (`last_modified`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `webstudio_settings` (
  `TenantID` int(11) NOT NULL,
  `ID` varchar(64) NOT NULL,
  `UserID` varchar(64) NOT NULL,
  `Data` mediumtext NOT NULL,
  PRIMARY KEY (`TenantID`,`ID`,`UserID`),
  KEY `ID` (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `core_settings` (
  `tenant` int(11) NOT NULL,
  `id` varchar(128) NOT NULL,
  `value` mediumblob NOT NULL,
  `last_modified` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`tenant`,`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `account_links` (
  `id` varchar(200) NOT NULL,
  `uid` varchar(200) NOT NULL,
  `provider` char(60) DEFAULT NULL,
  `profile` text NOT NULL,
  `linked` datetime NOT NULL,
  PRIMARY KEY (`id`,`uid`),
  KEY `uid` (`uid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS `tenants_iprestrictions` (
  `id` int(10) NOT NULL AUTO_INCREMENT,
  `tenant` int(10) NOT NULL,
  `ip` varchar(50) NOT NULL,
  `for_admin` TINYINT(1) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `tenant` (`tenant`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
"#;

/// The worked fixture of upstream-schema §11, verbatim.
pub const WORKED_FIXTURE: &str = r#"
INSERT INTO tenants_tenants (id,name,alias,mappeddomain,language,timezone,status,creationdatetime,owner_id)
VALUES (1,'Acme','acme','office.acme.test','ru-RU','Europe/Moscow',0,'2024-01-01 00:00:00','11111111-2222-3333-4444-555555555555'),
       (2,'Old','old_deleted',NULL,'en-US',NULL,2,'2020-01-01 00:00:00',NULL);
INSERT INTO core_settings (tenant,id,value) VALUES (-1,'BaseDomain',0xE52CE62C5DDA769CDE18123E548F72F9);
INSERT INTO core_user (tenant,id,username,firstname,lastname,status,activation_status,email,phone,phone_activation,sid,sso_name_id,removed,last_modified) VALUES
 (1,'11111111-2222-3333-4444-555555555555','ivan','Ivan','Petrov',1,1,'Ivan@Acme.test','79123456789',1,NULL,NULL,0,'2024-01-01 00:00:00'),
 (1,'22222222-3333-4444-5555-666666666666','olga','Olga','Legacy',1,1,'olga@acme.test',NULL,0,NULL,NULL,0,'2024-01-01 00:00:00'),
 (1,'33333333-4444-5555-6666-777777777777','petr','Petr','Gone',2,1,'petr@acme.test',NULL,0,NULL,NULL,1,'2024-01-01 00:00:00'),
 (1,'44444444-5555-6666-7777-888888888888','ldap','Lena','Ldap',1,1,'lena@acme.test',NULL,0,'S-1-5-21-1-2-3-1104',NULL,0,'2024-01-01 00:00:00');
INSERT INTO core_usersecurity (tenant,userid,pwdhash) VALUES
 (1,'11111111-2222-3333-4444-555555555555','7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ=='),
 (1,'22222222-3333-4444-5555-666666666666','75K3eLr+dx6JJFuJ7LwIpEpOFmwGZZkRiB84PURz6U8=');
INSERT INTO core_usergroup (tenant,userid,groupid,ref_type) VALUES
 (1,'11111111-2222-3333-4444-555555555555','cd84e66b-b803-40fc-99f9-b2969a54a1de',0);
INSERT INTO webstudio_settings (TenantID,ID,UserID,Data) VALUES
 (1,'822ca059-aa8f-4588-bee3-6cd2aa920cdb','00000000-0000-0000-0000-000000000000',
  '{"Enable":true,"MandatoryGroups":null,"MandatoryUsers":null,"TrustedIps":["10.0.0.0\\/8"]}'),
 (1,'eaf10611-be1e-4634-b7a1-57f913042f78','11111111-2222-3333-4444-555555555555',
  '{"BackupCodes":[{"Code":"D4bLmI9SSzAMNFCXv8OBoA==","IsUsed":false},{"Code":"OJ4D\\/3JTYtDgflhxmS6+Tg==","IsUsed":true},{"Code":"L2xUcWUzczdzU1JhN1pjN1FKUXhnMnpSMXVRcGpEWHJNT1hnSG5TSWVWVT0_ImFCMy1feiI1","IsUsed":false}],"Salt":200000000000}');
INSERT INTO account_links (id,uid,provider,profile,linked) VALUES
 ('11111111-2222-3333-4444-555555555555','7259D23B1F8CED8379C99670250C8985','google',
  'Id→123456789012345678901·APr→google·E→ivan@gmail.test','2024-01-01 00:00:00'),
 ('33333333-4444-5555-6666-777777777777','254A55919927FD425F32A731ADDBE4AE','facebook',
  'Id→10150000000000001·APr→facebook','2024-01-01 00:00:00');
"#;

/// Turns the worked fixture into its pre-v12 variant: the `pwdhashsha512` column, set for Olga.
pub const PRE_V12: &str = r#"
ALTER TABLE core_usersecurity ADD COLUMN pwdhashsha512 varchar(512) DEFAULT NULL AFTER pwdhash;
UPDATE core_usersecurity SET pwdhashsha512 = 'lV6ouCgHF92+SpCGinbx7TH3Ml+xpSK71ZRd441htu4='
 WHERE userid = '22222222-3333-4444-5555-666666666666';
"#;

// ----- the key generator, from upstream-schema §9.1 --------------------------------------------

/// `AscRandom` in `Wrapping<i32>`, as C# `int` computes.
struct Knuth {
    s: [Wrapping<i32>; 56],
    a: usize,
    b: usize,
}

impl Knuth {
    fn new(seed: i32) -> Knuth {
        let big = Wrapping(i32::MAX);
        let sub = if seed == i32::MIN { i32::MAX } else { seed.abs() };
        let mut s = [Wrapping(0i32); 56];
        let mut mj = Wrapping(161_803_398) - Wrapping(sub);
        s[55] = mj;
        let mut mk = Wrapping(1i32);
        for i in 1..55 {
            let ii = 21 * i % 55;
            s[ii] = mk;
            mk = mj - mk;
            if mk.0 < 0 {
                mk += big;
            }
            mj = s[ii];
        }
        for _round in 0..4 {
            for i in 1..=55 {
                s[i] -= s[1 + (i + 30) % 55];
                if s[i].0 < 0 {
                    s[i] += big;
                }
            }
        }
        Knuth { s, a: 0, b: 21 }
    }

    fn next(&mut self) -> i32 {
        self.a = if self.a + 1 >= 55 { 1 } else { self.a + 1 };
        self.b = if self.b + 1 >= 55 { 1 } else { self.b + 1 };
        let mut r = self.s[self.a] - self.s[self.b];
        if r.0 == i32::MAX {
            r -= Wrapping(1);
        }
        if r.0 < 0 {
            r += Wrapping(i32::MAX);
        }
        self.s[self.a] = r;
        r.0
    }
}

/// The instance key for a machine key (§9.1).
pub fn instance_key(machine_key: &str) -> [u8; 32] {
    let mut k = vec![0u8; 4];
    k.extend_from_slice(machine_key.as_bytes());
    let n = k.len();
    let seed = i32::from_le_bytes([k[n - 4], k[n - 3], k[n - 2], k[n - 1]]);
    let mut g = Knuth::new(seed);
    std::array::from_fn(|_| (g.next() % 256) as u8)
}

/// Fixed key 1 (seed 7) or 2 (seed 14) of §9.2.
pub fn fixed_key(number: u8) -> [u8; 32] {
    let mut g = Knuth::new(i32::from(number) * 7);
    std::array::from_fn(|_| ((f64::from(g.next()) * 4.6566128752457969e-10) * 255.0) as u8)
}

/// AES-256-CBC, zero IV, PKCS#7.
pub fn encrypt(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), &[0u8; 16].into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain)
}

/// A `core_settings.value` blob: fixed key 2 over UTF-8.
pub fn setting_blob(text: &str) -> Vec<u8> {
    encrypt(&fixed_key(2), text.as_bytes())
}

/// A pre-v12 `pwdhashsha512`: fixed key 1 over the password's UTF-16LE, base64.
pub fn pwdhashsha512(password: &str) -> String {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    STANDARD.encode(encrypt(&fixed_key(1), &utf16))
}

/// A ≤ v10.5 `pwdhash`: base64(SHA-256(password)), 44 characters.
pub fn legacy_sha256(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// `account_links.uid`.
pub fn link_uid(provider: &str, subject: &str) -> String {
    data_encoding::HEXUPPER.encode(&Md5::digest(format!("{provider}/{subject}")))
}

fn pbkdf2_hex(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    data_encoding::HEXLOWER.encode(&out)
}

/// One upstream installation: its machine key and password-hash settings.
#[derive(Clone, Debug)]
pub struct Installation {
    /// `core.machinekey`.
    pub machine_key: String,
    /// `core.password.salt`, or the value derived from the machine key.
    pub salt: String,
    /// `core.password.iterations`.
    pub iterations: u32,
}

impl Installation {
    /// The installation of the worked fixture: public key, derived salt, 100 000 iterations.
    pub fn public() -> Installation {
        Installation::new(PUBLIC_MACHINE_KEY, None, 100_000)
    }

    /// An installation with this machine key; `salt` None derives it as upstream does.
    pub fn new(machine_key: &str, salt: Option<&str>, iterations: u32) -> Installation {
        let salt = salt.map(str::to_owned).unwrap_or_else(|| {
            let s = Sha256::digest(b"{9450BEF7-7D9F-4E4F-A18A-971D8681722D}");
            pbkdf2_hex(machine_key.as_bytes(), &s, iterations)
        });
        Installation { machine_key: machine_key.to_owned(), salt, iterations }
    }

    /// The PBKDF2 client hash of a password (what the upstream web form sends).
    pub fn client_hash(&self, password: &str) -> String {
        pbkdf2_hex(password.as_bytes(), self.salt.as_bytes(), self.iterations)
    }

    /// `core_usersecurity.pwdhash` from a client hash: base64(SHA-512(hash + user id + machine key)).
    pub fn pwdhash_from_client_hash(&self, client_hash: &str, user_id: &str) -> String {
        let mut h = Sha512::new();
        h.update(client_hash.as_bytes());
        h.update(user_id.as_bytes());
        h.update(self.machine_key.as_bytes());
        STANDARD.encode(h.finalize())
    }

    /// `core_usersecurity.pwdhash` of a password.
    pub fn pwdhash(&self, password: &str, user_id: &str) -> String {
        self.pwdhash_from_client_hash(&self.client_hash(password), user_id)
    }

    /// The TOTP key bytes for a `TfaAppUserSettings.Salt` (upstream-behaviour §6.2).
    pub fn totp_secret(&self, salt: i64) -> Vec<u8> {
        let inner = STANDARD.encode(Sha256::digest(format!("{salt}{}", self.machine_key)));
        URL_SAFE_NO_PAD.encode(inner)[..10].as_bytes().to_vec()
    }

    /// A v11+ backup code as stored: base64 of AES under the instance key.
    pub fn backup_code(&self, code: &str) -> String {
        STANDARD.encode(encrypt(&instance_key(&self.machine_key), code.as_bytes()))
    }

    /// A ≤ v10.5 backup code as stored: `Signature.Create(code)` (upstream-schema §8).
    pub fn legacy_backup_code(&self, code: &str) -> String {
        let json = serde_json::to_string(code).expect("a JSON string");
        let hash = STANDARD.encode(Sha256::digest(format!("{json}{}", self.machine_key)));
        let b64 = STANDARD.encode(format!("{hash}?{json}"));
        let trimmed = b64.trim_end_matches('=');
        let pad = b64.len() - trimmed.len();
        format!("{}{pad}", trimmed.replace('+', "-").replace('/', "_"))
    }

    /// A `TfaAppUserSettings` JSON: the salt and the codes (stored form, used flag), `/` written as `\/`
    /// as upstream's serializer does.
    pub fn tfa_user_settings(&self, salt: i64, codes: &[(String, bool)]) -> String {
        let list: Vec<String> = codes
            .iter()
            .map(|(c, used)| {
                format!(r#"{{"Code":{},"IsUsed":{used}}}"#, serde_json::to_string(c).unwrap())
            })
            .collect();
        format!(r#"{{"BackupCodes":[{}],"Salt":{salt}}}"#, list.join(",")).replace('/', "\\/")
    }
}

/// A string as an SQL literal (quotes and backslashes escaped).
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Bytes as an SQL hex literal.
pub fn sql_hex(bytes: &[u8]) -> String {
    format!("0x{}", data_encoding::HEXUPPER.encode(bytes))
}

/// Plenty of generated users in one portal, for the benchmark and the volume test: `count` users
/// `user<N>@<domain>`, all with `password` (one PBKDF2 for them all: the client hash depends on the
/// password only), every tenth with an activated phone, every fifth with an authenticator and two
/// codes. Returns the SQL in multi-row statements of at most 1 000 rows.
pub fn generated_users(
    inst: &Installation,
    tenant: i32,
    domain: &str,
    count: usize,
    password: &str,
) -> Vec<String> {
    let client = inst.client_hash(password);
    let mut out = Vec::new();
    let ids: Vec<String> = (0..count).map(|i| generated_id(tenant, i)).collect();
    for (chunk_no, chunk) in ids.chunks(1000).enumerate() {
        let mut users = String::from(
            "INSERT INTO core_user (tenant,id,username,firstname,lastname,status,activation_status,email,phone,phone_activation,removed,last_modified) VALUES ",
        );
        let mut security =
            String::from("INSERT INTO core_usersecurity (tenant,userid,pwdhash) VALUES ");
        let mut tfa =
            String::from("INSERT INTO webstudio_settings (TenantID,ID,UserID,Data) VALUES ");
        let mut tfa_rows = 0;
        for (j, id) in chunk.iter().enumerate() {
            let n = chunk_no * 1000 + j;
            let sep = if j == 0 { "" } else { "," };
            let phone = if n % 10 == 0 { format!("'7912{n:07}'") } else { "NULL".to_owned() };
            let _ = write!(
                users,
                "{sep}({tenant},'{id}','user{n}','First{n}','Last{n}',1,1,'user{n}@{domain}',{phone},{},0,'2024-01-01 00:00:00')",
                u8::from(n % 10 == 0)
            );
            let _ = write!(
                security,
                "{sep}({tenant},'{id}','{}')",
                inst.pwdhash_from_client_hash(&client, id)
            );
            if n % 5 == 0 {
                let codes =
                    vec![(inst.backup_code("abc123"), false), (inst.backup_code("xyz789"), true)];
                let data = inst.tfa_user_settings(200_000_000_000 + n as i64, &codes);
                let _ = write!(
                    tfa,
                    "{}({tenant},'eaf10611-be1e-4634-b7a1-57f913042f78','{id}',{})",
                    if tfa_rows == 0 { "" } else { "," },
                    sql_str(&data)
                );
                tfa_rows += 1;
            }
        }
        out.push(users);
        out.push(security);
        if tfa_rows > 0 {
            out.push(tfa);
        }
    }
    out
}

/// The id of generated user `n` of `tenant`: a GUID that says where it came from.
pub fn generated_id(tenant: i32, n: usize) -> String {
    format!("{tenant:08x}-0000-4000-8000-{n:012x}")
}

#[cfg(test)]
mod tests {
    //! The generator against the published vectors (upstream-schema §9, §11; upstream-behaviour §11
    //! with the erratum of §9.1).

    use super::*;

    const IVAN: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn keys_match_the_reference() {
        let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
        assert_eq!(
            hex(&instance_key(PUBLIC_MACHINE_KEY)),
            "7ed48cc2e99ff6d0325457237ed43c4cba968b9a50b81db53ea4f7776ce821c7"
        );
        assert_eq!(
            hex(&fixed_key(1)),
            "61dea80d5dac0af3d7da72ed711ce066cd55dd06be902c796207f2067ab7c44b"
        );
        assert_eq!(
            hex(&fixed_key(2)),
            "0aeb8d8b86ca2d76b46f9a6541c0c7c5beac0ebbac485beb1287f75c695a5a23"
        );
        assert_eq!(
            data_encoding::HEXUPPER.encode(&setting_blob("example.com")),
            "E52CE62C5DDA769CDE18123E548F72F9"
        );
        assert_eq!(pwdhashsha512("password123"), "lV6ouCgHF92+SpCGinbx7TH3Ml+xpSK71ZRd441htu4=");
    }

    #[test]
    fn password_hashes_match_the_reference() {
        let inst = Installation::public();
        assert_eq!(inst.salt, "5eebed6be0f23d12718f84f9904a38810231737febccfb3b031a3a789cedbc59");
        assert_eq!(
            inst.client_hash("password123"),
            "116e618564555c31da2ec47f7b6cbe4077fb53c7fd6af03f41b79d5d45273f3f"
        );
        assert_eq!(
            inst.pwdhash("password123", IVAN),
            "7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ=="
        );
        assert_eq!(
            inst.pwdhash("password123", "22222222-3333-4444-5555-666666666666"),
            "gdv9LQ9LlnFPp+EakPQs0Zp7XfqKj8DkaFik8DnsftGbpSSfOt8PKkEmBP0oRPAuKIBMDi8IPFMDztDj51pPgA=="
        );
        assert_eq!(legacy_sha256("admin"), "jGl25bVBBBW96Qi9Te4V37Fnqchz/Eu4qB9vKrRIqRg=");
    }

    #[test]
    fn totp_and_backup_codes_match_the_fixture() {
        let inst = Installation::public();
        assert_eq!(inst.totp_secret(200_000_000_000), b"UzM0eVhGbE");
        assert_eq!(inst.totp_secret(1), b"REVieWx2Uk");
        assert_eq!(
            data_encoding::BASE32_NOPAD.encode(&inst.totp_secret(200_000_000_000)),
            "KV5E2MDFKZUEOYSF"
        );
        assert_eq!(inst.backup_code("aB3-_z"), "D4bLmI9SSzAMNFCXv8OBoA==");
        assert_eq!(inst.backup_code("Qx7_k0"), "OJ4D/3JTYtDgflhxmS6+Tg==");
        assert_eq!(
            inst.legacy_backup_code("aB3-_z"),
            "L2xUcWUzczdzU1JhN1pjN1FKUXhnMnpSMXVRcGpEWHJNT1hnSG5TSWVWVT0_ImFCMy1feiI1"
        );
        assert_eq!(link_uid("google", "123456789012345678901"), "7259D23B1F8CED8379C99670250C8985");
        assert_eq!(link_uid("facebook", "10150000000000001"), "254A55919927FD425F32A731ADDBE4AE");
    }

    #[test]
    fn the_worked_fixture_uses_these_values() {
        // The fixture text carries what the generator makes, so a fixture built from the generator and
        // the verbatim one describe the same upstream.
        let inst = Installation::public();
        for value in [
            inst.pwdhash("password123", IVAN),
            inst.backup_code("aB3-_z"),
            inst.backup_code("Qx7_k0").replace('/', "\\\\/"),
            inst.legacy_backup_code("aB3-_z"),
        ] {
            assert!(WORKED_FIXTURE.contains(&value), "{value} not in the fixture");
        }
        let ts = inst.tfa_user_settings(5, &[("a/b".to_owned(), true)]);
        assert_eq!(ts, r#"{"BackupCodes":[{"Code":"a\/b","IsUsed":true}],"Salt":5}"#);
    }
}

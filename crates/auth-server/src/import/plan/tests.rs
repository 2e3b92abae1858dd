//! The mapping on the worked fixture of upstream-schema §11 (as the reader would return it) and on
//! the edge cases of §3, §5 and §12, without a database.

use super::*;
use crate::import::mysql::{GroupRow, LinkRow, SecurityRow};
use crate::import::report::Outcome;

const IVAN: &str = "11111111-2222-3333-4444-555555555555";
const OLGA: &str = "22222222-3333-4444-5555-666666666666";
const PETR: &str = "33333333-4444-5555-6666-777777777777";
const LENA: &str = "44444444-5555-6666-7777-888888888888";

fn user(id: &str, email: &str, status: i64, removed: bool) -> UserRow {
    UserRow {
        tenant: 1,
        id: id.to_owned(),
        email: Some(email.to_owned()),
        first_name: "F".to_owned(),
        last_name: "L".to_owned(),
        status,
        removed,
        created: Some("2024-01-01 00:00:00".to_owned()),
        ..UserRow::default()
    }
}

fn setting(tenant: i64, id: &str, user: &str, data: &str) -> SettingRow {
    SettingRow { tenant, id: id.to_owned(), user_id: user.to_owned(), data: data.to_owned() }
}

/// The §11 fixture as `mysql::read` returns it.
fn fixture() -> Snapshot {
    let mut ivan = user(IVAN, "Ivan@Acme.test", 1, false);
    ivan.phone = Some("79123456789".to_owned());
    ivan.phone_activated = true;
    let mut lena = user(LENA, "lena@acme.test", 1, false);
    lena.sid = Some("S-1-5-21-1-2-3-1104".to_owned());
    Snapshot {
        tenants: vec![
            TenantRow {
                id: 1,
                name: "Acme".into(),
                alias: "acme".into(),
                mapped_domain: Some("office.acme.test".into()),
                language: "ru-RU".into(),
                time_zone: Some("Europe/Moscow".into()),
                status: 0,
                owner_id: Some(IVAN.into()),
                created: Some("2024-01-01 00:00:00".into()),
            },
            TenantRow { id: 2, name: "Old".into(), alias: "old_deleted".into(), language: "en-US".into(), status: 2, ..TenantRow::default() },
        ],
        users: vec![ivan, user(OLGA, "olga@acme.test", 1, false), user(PETR, "petr@acme.test", 2, true), lena],
        security: vec![
            SecurityRow { tenant: 1, user_id: IVAN.into(), pwdhash: Some("7qww0uqYNyVoiHEOeV58G3Owx7co0YjwSQjTBdrrA3LhzZrpvkBWq9GyX0gxMIycPUb+0f/Rvr/0xRo1vERnpQ==".into()), pwdhashsha512: None },
            SecurityRow { tenant: 1, user_id: OLGA.into(), pwdhash: Some("75K3eLr+dx6JJFuJ7LwIpEpOFmwGZZkRiB84PURz6U8=".into()), pwdhashsha512: None },
        ],
        groups: vec![GroupRow { tenant: 1, user_id: IVAN.into(), group_id: ids::ADMIN_GROUP.into(), ref_type: 0, removed: false }],
        settings: vec![
            setting(1, ids::TFA_APP, ids::EMPTY, r#"{"Enable":true,"MandatoryGroups":null,"MandatoryUsers":null,"TrustedIps":["10.0.0.0\/8"]}"#),
            setting(1, ids::TFA_USER, IVAN, r#"{"BackupCodes":[{"Code":"D4bLmI9SSzAMNFCXv8OBoA==","IsUsed":false},{"Code":"OJ4D\/3JTYtDgflhxmS6+Tg==","IsUsed":true},{"Code":"L2xUcWUzczdzU1JhN1pjN1FKUXhnMnpSMXVRcGpEWHJNT1hnSG5TSWVWVT0_ImFCMy1feiI1","IsUsed":false}],"Salt":200000000000}"#),
        ],
        links: vec![
            LinkRow { user_id: IVAN.into(), uid: "7259D23B1F8CED8379C99670250C8985".into(), provider: Some("google".into()), profile: "Id→123456789012345678901·APr→google·E→ivan@gmail.test".into(), linked: Some("2024-01-01 00:00:00".into()) },
            LinkRow { user_id: PETR.into(), uid: "254A55919927FD425F32A731ADDBE4AE".into(), provider: Some("facebook".into()), profile: "Id→10150000000000001·APr→facebook".into(), linked: Some("2024-01-01 00:00:00".into()) },
        ],
        ip_restrictions: Vec::new(),
        base_domain_blob: Some(data_encoding::HEXUPPER.decode(b"E52CE62C5DDA769CDE18123E548F72F9").unwrap()),
        has_pwdhashsha512: false,
    }
}

fn options() -> Options {
    Options {
        machine_key: SecretString::new("Vskoproizvolny Salt par Chivreski"),
        base_domain: None,
        tenants: Vec::new(),
    }
}

fn reasons(report: &Report, kind: Kind) -> Vec<String> {
    report
        .entries()
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| format!("{}: {}", e.subject, e.reason))
        .collect()
}

#[test]
fn the_worked_fixture_gives_its_expected_result() {
    let mut report = Report::new(false);
    let plan = plan(&fixture(), &options(), &mut report);
    assert_eq!(plan.portals.len(), 1, "portal 2 is skipped");
    let p = &plan.portals[0];
    assert_eq!(p.hosts, ["acme.example.com", "office.acme.test"]);
    assert_eq!(
        (p.language, p.time_zone.as_str(), p.tfa),
        (Language::Ru, "Europe/Moscow", TfaMode::App)
    );
    assert_eq!(p.trusted_ips, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    assert_eq!(p.created_at, "2024-01-01T00:00:00Z".parse().unwrap());
    assert!(
        reasons(&report, Kind::Portal).iter().any(|r| r.starts_with("old_deleted (id 2): deleted"))
    );

    let ids: Vec<String> = p.users.iter().map(|u| u.id.to_string()).collect();
    assert_eq!(ids, [IVAN, OLGA, LENA], "Petr is removed");
    let ivan = &p.users[0];
    assert!(ivan.is_admin && !ivan.disabled);
    assert_eq!(ivan.email, "Ivan@Acme.test");
    assert_eq!((ivan.phone.as_deref(), ivan.phone_activated), (Some("79123456789"), true));
    assert!(matches!(&ivan.password, PasswordPlan::Upstream(h) if h.len() == 88));
    let totp = ivan.totp.as_ref().unwrap();
    assert_eq!((&totp.secret[..], totp.activated), (&b"UzM0eVhGbE"[..], true));
    let codes: Vec<(&str, bool)> = totp.codes.iter().map(|(c, u)| (c.expose(), *u)).collect();
    assert_eq!(codes, [("aB3-_z", false), ("Qx7_k0", true), ("aB3-_z", false)]);
    assert_eq!(
        ivan.links,
        vec![LinkPlan {
            provider: "google".into(),
            subject: "123456789012345678901".into(),
            linked_at: "2024-01-01T00:00:00Z".parse().unwrap()
        }]
    );

    let olga = &p.users[1];
    assert!(!olga.is_admin && !olga.disabled && matches!(olga.password, PasswordPlan::None));
    let lena = &p.users[2];
    assert!(!lena.disabled && matches!(lena.password, PasswordPlan::None));
    let pw = reasons(&report, Kind::Password);
    assert!(pw.iter().any(|r| r.contains(OLGA) && r.contains("legacy SHA-256")), "{pw:?}");
    assert!(pw.iter().any(|r| r.contains(LENA) && r.contains("ldap")), "{pw:?}");
    assert!(reasons(&report, Kind::User).iter().any(|r| r.contains(PETR) && r.contains("removed")));
    assert!(reasons(&report, Kind::Link).iter().any(|r| r.contains(PETR) && r.contains("orphan")));
}

#[test]
fn the_pre_v12_variant_recovers_olgas_password() {
    let mut snap = fixture();
    snap.has_pwdhashsha512 = true;
    snap.security[1].pwdhashsha512 =
        Some(SecretString::new("lV6ouCgHF92+SpCGinbx7TH3Ml+xpSK71ZRd441htu4="));
    let mut report = Report::new(false);
    let plan = plan(&snap, &options(), &mut report);
    let olga = &plan.portals[0].users[1];
    assert!(matches!(&olga.password, PasswordPlan::Recovered(p) if p.expose() == "password123"));
    let pw = reasons(&report, Kind::Password);
    assert!(pw.iter().any(|r| r.contains("legacy password recovered")), "{pw:?}");
    // The report never holds the plaintext.
    assert!(!format!("{:?}", report.to_json()).contains("password123"));
}

#[test]
fn tenant_selection_status_and_placeholder_rules() {
    let mut snap = fixture();
    snap.tenants.push(TenantRow {
        id: 3,
        name: "Web Office".into(),
        alias: "localhost".into(),
        language: "en-US".into(),
        status: 0,
        ..TenantRow::default()
    });
    snap.tenants.push(TenantRow { id: 4, alias: "susp".into(), status: 1, ..TenantRow::default() });
    snap.tenants.push(TenantRow {
        id: 5,
        alias: "moving".into(),
        status: 5,
        ..TenantRow::default()
    });
    let mut report = Report::new(false);
    let all = plan(&snap, &options(), &mut report);
    assert_eq!(all.portals.iter().map(|p| p.tenant).collect::<Vec<_>>(), [1]);
    let r = reasons(&report, Kind::Portal);
    assert!(r.iter().any(|r| r.starts_with("localhost (id 3): the placeholder")), "{r:?}");
    assert!(r.iter().any(|r| r.starts_with("susp (id 4): suspended")), "{r:?}");
    assert!(
        r.iter().any(
            |r| r.starts_with("moving (id 5): in transition upstream (status 5), re-run later")
        ),
        "{r:?}"
    );

    let mut report = Report::new(false);
    let only = plan(
        &snap,
        &Options { tenants: vec!["LOCALHOST".into(), "nope".into()], ..options() },
        &mut report,
    );
    assert_eq!(only.portals.iter().map(|p| p.tenant).collect::<Vec<_>>(), [3]);
    assert!(only.portals[0].hosts.is_empty());
    assert_eq!(only.portals[0].time_zone, "UTC");
    assert_eq!(report.get(Kind::User, Outcome::Skipped), 4, "acme's users, not selected");
    assert!(
        reasons(&report, Kind::Portal)
            .iter()
            .any(|r| r.starts_with("nope: named by --tenant, but no portal"))
    );
}

#[test]
fn base_domain_override_system_ids_collisions_and_disabled_users() {
    let mut snap = fixture();
    let mut twin = user("99999999-0000-0000-0000-000000000000", "IVAN@acme.TEST ", 1, false);
    twin.status = 2;
    snap.users.push(twin);
    snap.users.push(user(ids::LOST_USER, "lost@acme.test", 1, false));
    let mut off = user("aaaaaaaa-0000-0000-0000-000000000000", "off@acme.test", 2, false);
    off.phone = Some("12".into());
    snap.users.push(off);
    snap.users.push(user("not-a-guid", "x@acme.test", 1, false));
    let mut report = Report::new(false);
    let plan = plan(
        &snap,
        &Options { base_domain: Some("portal.example.org".into()), ..options() },
        &mut report,
    );
    let p = &plan.portals[0];
    assert_eq!(p.hosts, ["acme.portal.example.org", "office.acme.test"]);
    let off = p.users.iter().find(|u| u.email == "off@acme.test").unwrap();
    assert!(off.disabled && off.phone.is_none());
    assert!(!p.users.iter().any(|u| u.id.to_string() == ids::LOST_USER));
    let users = reasons(&report, Kind::User);
    assert!(
        users.iter().any(|r| r.contains("99999999") && r.contains("but for case")),
        "{users:?}"
    );
    assert!(
        users.iter().any(|r| r.contains(ids::LOST_USER) && r.contains("system account")),
        "{users:?}"
    );
    assert!(
        users.iter().any(|r| r.contains("not-a-guid") && r.contains("not a GUID")),
        "{users:?}"
    );
    assert!(reasons(&report, Kind::Phone).iter().any(|r| r.contains("off@acme.test")));
}

#[test]
fn sms_mode_ranges_windows_zones_and_undecryptable_codes() {
    let mut snap = fixture();
    snap.tenants[0].time_zone = Some("Russian Standard Time".into());
    snap.tenants[0].language = "de-DE".into();
    snap.settings.push(setting(1, ids::TFA_SMS, ids::EMPTY, r#"{"Enable":true,"MandatoryUsers":["x"],"TrustedIps":["192.168.0.0-192.168.1.255","bogus"]}"#));
    snap.settings.push(setting(
        1,
        ids::LOGIN,
        ids::EMPTY,
        r#"{"AttemptCount":7,"BlockTime":120,"CheckPeriod":30}"#,
    ));
    snap.settings[1].data =
        snap.settings[1].data.replace("D4bLmI9SSzAMNFCXv8OBoA==", "AAAAAAAAAAAAAAAAAAAAAA==");
    let mut report = Report::new(false);
    let plan = plan(&snap, &options(), &mut report);
    let p = &plan.portals[0];
    assert_eq!(
        (p.tfa, p.time_zone.as_str(), p.language),
        (TfaMode::Sms, "Europe/Moscow", Language::En)
    );
    assert_eq!(p.trusted_ips, vec!["192.168.0.0/23".parse::<IpNet>().unwrap()]);
    assert_eq!(p.login_throttle, Some((7, 30, 120)));
    assert_eq!(p.users[0].totp.as_ref().unwrap().codes.len(), 2);
    assert_eq!(report.get(Kind::BackupCode, Outcome::Skipped), 1);
    let settings = reasons(&report, Kind::Setting);
    assert!(settings.iter().any(|r| r.contains("\"bogus\"")), "{settings:?}");
    assert!(settings.iter().any(|r| r.contains("MandatoryUsers")), "{settings:?}");
    assert!(reasons(&report, Kind::Portal).iter().any(|r| r.contains("language \"de-DE\"")));
}

#[test]
fn zero_dates_and_odd_times_fall_back() {
    assert_eq!(parse_time(Some("0000-00-00 00:00:00")), None);
    assert_eq!(parse_time(None), None);
    assert_eq!(
        parse_time(Some("2024-03-04 05:06:07")),
        Some("2024-03-04T05:06:07Z".parse().unwrap())
    );
}

//! The admin subcommands (spec §8): users, portals, the SMS outbox and test message, the test e-mail
//! (module `email`), the audit trail, LDAP sign-in (module `ldap`), imports, backup and restore, the
//! key ring (`crate::keys`), run directly against the data directory with no listener.
//!
//! They open the same store and key as the server (so they may run beside a live server: SQLite's WAL
//! lets both work on one file) and call the service's admin operations, which keep every rule: the
//! same argon2id cost, settings validation, sessions ended on a password change. Output goes to the
//! writer given (stdout in the binary): aligned tables by default, JSON with `--json`. A failure is
//! an `Err` with one line of explanation, which the binary prints on stderr before exiting non-zero.

use std::collections::HashMap;
use std::io::{BufRead as _, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use auth_core::model::Credential;
use auth_core::ports::{OutboxMessage, PasswordHasher};
use auth_core::service::NewUser;
use auth_core::{
    AdminError, AuditAction, AuditEvent, AuditFilter, AuthService, Portal, PortalId, SecretString,
    Timestamp, User,
};
use serde_json::{Value, json};

use crate::cli::{
    AuditArgs, Command, EmailCommand, ImportCommand, PasswordSource, PortalAdd, PortalCommand,
    PortalSet, SmsCommand, SmsOutbox, SmsTest, UserAdd, UserCommand, UserRef,
};
use crate::config::Config;
use crate::ldap::LdapDirectories;
use crate::wiring;

mod email;
mod ldap;

/// Runs one admin subcommand, writing its output to `out`.
pub async fn run(command: Command, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    // A test message needs the gateways only: it works before any database exists.
    if let Command::Sms(SmsCommand::Test(args)) = &command {
        return sms_test(config, args, out).await;
    }
    // So does a test e-mail: it needs the SMTP server only.
    if let Command::Email(EmailCommand::Test(args)) = &command {
        return email::test(config, args, out).await;
    }
    // A backup and a restore work on the file itself: a restore must not hold the database open.
    // The imports hash many passwords, so they open the service with the server's hashing pool.
    let command = match command {
        Command::Backup(args) => return crate::backup::backup(config, &args, out),
        Command::Restore(args) => return crate::backup::restore(config, &args, out),
        Command::Import(ImportCommand::Onlyoffice(args)) => {
            return crate::import::cli::onlyoffice(args, config, out).await;
        }
        Command::User(UserCommand::Import(args)) => {
            return crate::import::cli::jsonl(args, config, out).await;
        }
        // The key commands open the store and the ring file themselves: they must see a ring the
        // database does not expect (an interrupted rotation) instead of being refused by it.
        Command::Key(cmd) => return crate::keys::run(cmd, config, out).await,
        other => other,
    };
    let core = open(config).await?;
    let service = Arc::clone(&core.service);
    match command {
        Command::Ldap(cmd) => ldap::run(&core, cmd, out).await,
        Command::Serve => bail!("`serve` is not an admin subcommand"),
        Command::User(cmd) => user(&service, cmd, out).await,
        Command::Portal(cmd) => portal(&service, &core.ldap, cmd, out).await,
        Command::Sms(SmsCommand::Outbox(args)) => sms_outbox(&service, config, &args, out).await,
        Command::Sms(SmsCommand::Test(args)) => sms_test(config, &args, out).await,
        Command::Audit(args) => audit(&service, &args, out).await,
        Command::Backup(_)
        | Command::Restore(_)
        | Command::Import(_)
        | Command::Email(_)
        | Command::Key(_) => {
            bail!("handled before the service opens")
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<wiring::Core> {
    // A command hashes at most one password, so it runs argon2id on its own thread with the
    // server's cost rather than starting a pool.
    wiring::open(
        config,
        |rng| Ok(Arc::new(wiring::argon2(config, rng)?) as Arc<dyn PasswordHasher>),
    )
    .await
}

// ----- users ------------------------------------------------------------------------------------

async fn user(service: &AuthService, cmd: UserCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add(args) => user_add(service, args, out).await,
        UserCommand::List(args) => {
            let portal = match args.portal.as_deref() {
                Some(host) => Some(portal_by_host(service, host).await?.id),
                None => None,
            };
            let users = service.admin().list_users(portal).await?;
            let portals = portal_names(service).await?;
            if args.json {
                let list: Vec<Value> = users.iter().map(|u| user_json(u, &portals)).collect();
                return write_json(out, &Value::Array(list));
            }
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.email.clone(),
                        full_name(u),
                        yes_no(u.is_admin),
                        if u.disabled { "disabled" } else { "enabled" }.to_owned(),
                        match &u.phone {
                            Some(p) if u.phone_activated => p.clone(),
                            Some(p) => format!("{p} (not activated)"),
                            None => "-".to_owned(),
                        },
                        sign_in(u),
                        portals.get(&u.portal).cloned().unwrap_or_default(),
                        u.id.to_string(),
                    ]
                })
                .collect();
            write_table(
                out,
                &["EMAIL", "NAME", "ADMIN", "STATUS", "PHONE", "SIGN-IN", "PORTAL", "ID"],
                rows,
            )
        }
        UserCommand::Disable(who) => {
            let u = find_user(service, &who).await?;
            service.admin().set_disabled(u.id, true).await?;
            line(out, format!("disabled {} and ended their sessions", u.email))
        }
        UserCommand::Enable(who) => {
            let u = find_user(service, &who).await?;
            service.admin().set_disabled(u.id, false).await?;
            line(out, format!("enabled {}", u.email))
        }
        UserCommand::SetPassword(args) => {
            let password = read_password(&args.password)?;
            let u = find_user(service, &args.user).await?;
            match service.admin().set_password_with(u.id, &password, args.force).await {
                Ok(_) => {}
                Err(AdminError::DirectoryUser) => bail!(
                    "{} is a user of directory {}: their password lives in the directory; change it there",
                    u.email,
                    u.directory().unwrap_or("?")
                ),
                Err(e) => return Err(admin_error(e)),
            }
            line(out, format!("changed the password of {} and ended their sessions", u.email))
        }
        UserCommand::ResetPhone(who) => {
            let u = find_user(service, &who).await?;
            service.admin().reset_phone(&u).await?;
            line(out, format!("reset the phone of {}", u.email))
        }
        UserCommand::ResetTfa(who) => {
            let u = find_user(service, &who).await?;
            service.admin().reset_tfa(&u).await?;
            line(out, format!("reset two-factor authentication of {}", u.email))
        }
        UserCommand::LogoutAll(who) => {
            let u = find_user(service, &who).await?;
            let n = service.admin().logout_everywhere(u.id).await?;
            line(out, format!("logged {} out everywhere ({n} sessions ended)", u.email))
        }
        UserCommand::Link(args) => {
            let u = find_user(service, &args.user).await?;
            if !service
                .admin()
                .link(&u, &args.provider, &args.subject)
                .await
                .map_err(admin_error)?
            {
                bail!(
                    "not linked: that {} identity is linked already, or {} has a {} link",
                    args.provider,
                    u.email,
                    args.provider
                );
            }
            line(out, format!("linked {} to {} at {}", args.subject, u.email, args.provider))
        }
        UserCommand::Unlink(args) => {
            let u = find_user(service, &args.user).await?;
            if !service.admin().unlink(&u, &args.provider).await? {
                bail!("{} has no {} link", u.email, args.provider);
            }
            line(out, format!("unlinked {} from {}", u.email, args.provider))
        }
        UserCommand::Import(_) => bail!("`user import` is handled before the service opens"),
        UserCommand::Links(args) => {
            let u = find_user(service, &args.user).await?;
            let links = service.admin().links(&u).await?;
            if args.json {
                let list = links
                    .iter()
                    .map(|l| {
                        json!({
                            "provider": l.provider,
                            "subject": l.subject,
                            "createdAt": l.created_at.to_string(),
                        })
                    })
                    .collect();
                return write_json(out, &Value::Array(list));
            }
            let rows = links
                .iter()
                .map(|l| vec![l.provider.clone(), l.subject.clone(), short_time(l.created_at)])
                .collect();
            write_table(out, &["PROVIDER", "SUBJECT", "LINKED"], rows)
        }
    }
}

async fn user_add(service: &AuthService, args: UserAdd, out: &mut dyn Write) -> anyhow::Result<()> {
    let password = read_password(&args.password)?;
    let portal = match args.portal.as_deref() {
        Some(host) => portal_by_host(service, host).await?,
        None => service.admin().ensure_default_portal().await?.as_ref().clone(),
    };
    let new = NewUser {
        email: args.email.clone(),
        password,
        first_name: args.first_name,
        last_name: args.last_name,
        is_admin: args.admin,
    };
    let user = match service.admin().add_user_with(portal.id, new, args.force).await {
        Ok(u) => u,
        Err(AdminError::Conflict(_)) => {
            bail!("a user with e-mail {} already exists in portal {}", args.email, portal.name)
        }
        Err(e) => return Err(admin_error(e)),
    };
    let role = if user.is_admin { "administrator" } else { "user" };
    line(out, format!("created {role} {} ({}) in portal {}", user.email, user.id, portal.name))
}

fn user_json(u: &User, portals: &HashMap<PortalId, String>) -> Value {
    json!({
        "id": u.id.to_string(),
        "email": u.email,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "isAdmin": u.is_admin,
        "disabled": u.disabled,
        "phone": u.phone,
        "phoneActivated": u.phone_activated,
        "signIn": sign_in(u),
        "directory": u.directory(),
        "portalId": u.portal.to_string(),
        "portal": portals.get(&u.portal),
        "createdAt": u.created_at.to_string(),
    })
}

/// How the user signs in: `password`, `directory:NAME` (spec §5.9), `upstream` (an imported upstream
/// hash, replaced at the first login) or `none` (no usable password).
fn sign_in(u: &User) -> String {
    match &u.credential {
        Credential::Password(_) => "password".to_owned(),
        Credential::Upstream(_) => "upstream".to_owned(),
        Credential::Directory(name) => format!("directory:{name}"),
        Credential::None => "none".to_owned(),
    }
}

fn full_name(u: &User) -> String {
    format!("{} {}", u.first_name, u.last_name).trim().to_owned()
}

async fn find_user(service: &AuthService, who: &UserRef) -> anyhow::Result<User> {
    let portal = match who.portal.as_deref() {
        Some(host) => Some(portal_by_host(service, host).await?.id),
        None => None,
    };
    match service.admin().find_user(portal, &who.email).await {
        Ok(u) => Ok(u),
        Err(AdminError::UserNotFound) => match &who.portal {
            Some(host) => bail!("no user with e-mail {} in portal {host}", who.email),
            None => bail!("no user with e-mail {}", who.email),
        },
        Err(e) => Err(admin_error(e)),
    }
}

/// The password from the flag or from the first line of standard input.
fn read_password(source: &PasswordSource) -> anyhow::Result<SecretString> {
    if let Some(p) = &source.password {
        return Ok(SecretString::new(p.clone()));
    }
    let mut text = String::new();
    std::io::stdin().lock().read_line(&mut text).context("cannot read standard input")?;
    let password = SecretString::new(text.trim_end_matches(['\n', '\r']));
    drop(zeroize_string(text));
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

/// Overwrites a string's bytes before it is freed (the password's copy lives in a `SecretString`).
fn zeroize_string(mut s: String) -> String {
    // Replacing every byte with NUL keeps the string valid UTF-8 while erasing its content.
    let len = s.len();
    s.clear();
    s.extend(std::iter::repeat_n('\0', len));
    s
}

// ----- portals ----------------------------------------------------------------------------------

async fn portal(
    service: &AuthService,
    ldap: &LdapDirectories,
    cmd: PortalCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        PortalCommand::Add(args) => portal_add(service, args, out).await,
        PortalCommand::List(args) => {
            let portals = service.admin().list_portals().await?;
            if args.json {
                return write_json(out, &Value::Array(portals.iter().map(portal_json).collect()));
            }
            let rows = portals
                .iter()
                .map(|p| {
                    let s = &p.settings;
                    vec![
                        p.name.clone(),
                        hosts_text(p),
                        s.tfa.as_str().to_owned(),
                        s.time_zone.clone(),
                        s.language.as_str().to_owned(),
                        format!("{} min", s.token_lifetime.as_secs() / 60),
                        yes_no(s.https),
                        if s.trusted_ips.is_empty() {
                            "-".to_owned()
                        } else {
                            s.trusted_ips
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        },
                        p.id.to_string(),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "NAME",
                    "HOSTS",
                    "TFA",
                    "TIME ZONE",
                    "LANG",
                    "TOKENS",
                    "HTTPS",
                    "TRUSTED IPS",
                    "ID",
                ],
                rows,
            )
        }
        PortalCommand::Set(args) => portal_set(service, ldap, args, out).await,
    }
}

async fn portal_add(
    service: &AuthService,
    args: PortalAdd,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = args.name.clone().or_else(|| args.hosts.first().cloned()).unwrap_or_default();
    let portal = match service.admin().add_portal(&name, &args.hosts).await {
        Ok(p) => p,
        Err(AdminError::Conflict(_)) => {
            bail!("another portal already answers to one of: {}", args.hosts.join(", "))
        }
        Err(e) => return Err(admin_error(e)),
    };
    line(out, format!("created portal {} ({}) for {}", portal.name, portal.id, hosts_text(&portal)))
}

async fn portal_set(
    service: &AuthService,
    ldap: &LdapDirectories,
    args: PortalSet,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut portal = match args.host.as_deref() {
        Some(host) => portal_by_host(service, host).await?,
        None => service.admin().ensure_default_portal().await?.as_ref().clone(),
    };
    let mut changes: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| changes.push((k.to_owned(), v));
    if let Some(v) = args.tfa {
        push("tfa", v);
    }
    if let Some(v) = args.time_zone {
        push("time_zone", v);
    }
    if let Some(v) = args.language {
        push("language", v);
    }
    if let Some(v) = args.trusted_ips {
        push("trusted_ips", v);
    }
    if let Some(m) = args.token_lifetime_minutes {
        let secs = m.checked_mul(60).context("--token-lifetime-minutes: too large")?;
        push("token_lifetime_s", secs.to_string());
    }
    if let Some(v) = args.https {
        push("https", v.to_string());
    }
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv:?}: expected KEY=VALUE, e.g. login_limit=10"))?;
        push(k.trim(), v.trim().to_owned());
    }
    for (k, v) in &changes {
        // A portal pointed at a directory the configuration does not have would answer every login
        // 503; say so now, while the operator is here.
        if k == "ldap" && !v.is_empty() && ldap.config(v).is_none() {
            let names = ldap.names();
            bail!(
                "--set ldap={v}: no [[ldap.directories]] entry is called {v:?} (configured: {})",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            );
        }
        portal.settings.set(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(name) = args.name {
        portal.name = name.trim().to_owned();
        if portal.name.is_empty() {
            bail!("--name: must not be empty");
        }
    }
    service.admin().update_portal(&portal).await.map_err(admin_error)?;
    line(out, format!("portal {} ({}):", portal.name, portal.id))?;
    for setting in portal.settings.encode().lines() {
        line(out, format!("  {setting}"))?;
    }
    Ok(())
}

fn portal_json(p: &Portal) -> Value {
    let settings: serde_json::Map<String, Value> = p
        .settings
        .encode()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    json!({
        "id": p.id.to_string(),
        "name": p.name,
        "hosts": p.hosts,
        "createdAt": p.created_at.to_string(),
        "settings": settings,
    })
}

fn hosts_text(p: &Portal) -> String {
    if p.hosts.is_empty() { "(any host)".to_owned() } else { p.hosts.join(",") }
}

async fn portal_by_host(service: &AuthService, host: &str) -> anyhow::Result<Portal> {
    match service.admin().find_portal(Some(host)).await {
        Ok(p) => Ok(p),
        Err(AdminError::PortalNotFound) => bail!("no portal answers to host {host}"),
        Err(e) => Err(admin_error(e)),
    }
}

async fn portal_names(service: &AuthService) -> anyhow::Result<HashMap<PortalId, String>> {
    Ok(service.admin().list_portals().await?.into_iter().map(|p| (p.id, p.name)).collect())
}

// ----- SMS --------------------------------------------------------------------------------------

async fn sms_outbox(
    service: &AuthService,
    config: &Config,
    args: &SmsOutbox,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match config.sms.file_path() {
        Some(path) if !args.store => sms_file(path, args, out),
        _ => {
            let limit = u32::try_from(args.last).unwrap_or(u32::MAX);
            let mut messages = service.admin().outbox(limit).await?;
            messages.reverse();
            sms_store(&messages, args.json, out)
        }
    }
}

/// `sms test`: one message through the routing, straight to its gateway. The outcome and the
/// provider's answer go to `out`; credentials never do (answers are scrubbed of them, and the
/// configuration's `Debug` hides them).
async fn sms_test(config: &Config, args: &SmsTest, out: &mut dyn Write) -> anyhow::Result<()> {
    use auth_core::primitives::RngExt as _;

    let phone = auth_core::phone::Phone::parse(&args.to)
        .map_err(|e| anyhow::anyhow!("--to {:?}: {e}", args.to))?;
    if let Some(dir) =
        config.sms.file_path().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty())
    {
        crate::keyfile::ensure_private_dir(dir)?;
    }
    let outbound = crate::outbound::Outbound::new(config.outbound.max_in_flight);
    let gateways =
        crate::sms::Gateways::build(&config.sms, &outbound, Arc::new(crate::clock::SystemClock))
            .context("cannot set up SMS delivery")?;
    // A negative id can never be an outbox message's, so a receiver that drops repeated
    // idempotency keys never confuses a test with a real message.
    let id = -i64::from(crate::rng::OsRng.below(i32::MAX as u32).max(1));
    let msg = auth_core::ports::SmsMessage {
        id,
        to: phone.digits().to_owned(),
        text: SecretString::from(args.text.as_str()),
    };
    let (gateway, result) = gateways.send(&msg).await;
    let (outcome, answer) = match &result {
        Ok(receipt) => ("sent", receipt.answer.clone()),
        Err(e) => (e.outcome().as_str(), e.to_string()),
    };
    writeln!(out, "gateway: {gateway}")?;
    writeln!(out, "to:      {}", phone.noise())?;
    writeln!(out, "outcome: {outcome}")?;
    writeln!(out, "answer:  {answer}")?;
    match result {
        Ok(_) => Ok(()),
        Err(_) => bail!("the test message was not sent ({outcome}); see the answer above"),
    }
}

/// The last `--last` lines of the file gateway's file, oldest first.
fn sms_file(path: &Path, args: &SmsOutbox, out: &mut dyn Write) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut records: Vec<Value> = Vec::new();
    for (n, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let record = serde_json::from_str(l)
            .with_context(|| format!("{}:{}: not a JSON line", path.display(), n + 1))?;
        records.push(record);
    }
    let skip = records.len().saturating_sub(args.last);
    let records = records.split_off(skip);
    if args.json {
        return write_json(out, &Value::Array(records));
    }
    let field = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let rows =
        records.iter().map(|r| vec![field(r, "at"), field(r, "to"), field(r, "text")]).collect();
    write_table(out, &["AT", "TO", "TEXT"], rows)
}

fn sms_status(m: &OutboxMessage) -> &'static str {
    if m.sent_at.is_some() {
        "sent"
    } else if m.next_attempt_at == Timestamp::MAX {
        "dropped"
    } else if m.attempts > 0 {
        "retrying"
    } else {
        "queued"
    }
}

/// The store's queue: status and errors, never the (sealed) texts.
fn sms_store(messages: &[OutboxMessage], json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        let list = messages
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "portalId": m.portal.to_string(),
                    "to": m.to,
                    "status": sms_status(m),
                    "createdAt": m.created_at.to_string(),
                    "attempts": m.attempts,
                    "sentAt": m.sent_at.map(|t| t.to_string()),
                    "lastError": m.last_error,
                })
            })
            .collect();
        return write_json(out, &Value::Array(list));
    }
    let rows = messages
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                short_time(m.created_at),
                m.to.clone(),
                sms_status(m).to_owned(),
                m.attempts.to_string(),
                m.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    write_table(out, &["ID", "CREATED", "TO", "STATUS", "ATTEMPTS", "LAST ERROR"], rows)
}

// ----- audit ------------------------------------------------------------------------------------

async fn audit(service: &AuthService, args: &AuditArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut filter = AuditFilter::default();
    if let Some(host) = args.portal.as_deref() {
        filter.portal = Some(portal_by_host(service, host).await?.id);
    }
    if let Some(email) = &args.email {
        let who = UserRef { email: email.clone(), portal: args.portal.clone() };
        filter.user = Some(find_user(service, &who).await?.id);
    }
    if let Some(action) = args.action.as_deref() {
        filter.action = Some(parse_action(action)?);
    }
    if args.since.is_some() || args.until.is_some() {
        return audit_export(service, args, &filter, out).await;
    }
    let events = service.admin().audit_events(&filter, args.last.unwrap_or(50)).await?;
    let emails: HashMap<_, _> =
        service.admin().list_users(None).await?.into_iter().map(|u| (u.id, u.email)).collect();
    let who = |e: &AuditEvent| {
        e.user
            .and_then(|id| emails.get(&id).cloned())
            .or_else(|| e.login.clone())
            .unwrap_or_else(|| "-".to_owned())
    };
    if args.json {
        let list = events
            .iter()
            .map(|e| audit_json(e, e.user.and_then(|id| emails.get(&id)).map(String::as_str)))
            .collect();
        return write_json(out, &Value::Array(list));
    }
    let rows = events
        .iter()
        .map(|e| {
            vec![
                short_time(e.at),
                format!("{} ({})", e.action.name(), e.action.code()),
                who(e),
                e.ip.to_string(),
                e.reason.clone().unwrap_or_else(|| "-".to_owned()),
                e.user_agent.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    write_table(out, &["TIME", "ACTION", "USER", "IP", "REASON", "USER AGENT"], rows)
}

/// Events read per page of an export: one short read each, so an export of any range holds no
/// lock for long and never more than a page in memory.
const EXPORT_PAGE: u32 = 1_000;

/// E-mails remembered during an export; beyond this the cache starts afresh, so a trail of a
/// million users does not load them all.
const EXPORT_EMAILS: usize = 10_000;

/// `audit --since T --until T`: the range `[since, until)` oldest first, in pages, each event
/// written as soon as its page is read: one JSON object per line with `--json` (the objects of
/// `audit --json`), else tab-separated lines under a header.
async fn audit_export(
    service: &AuthService,
    args: &AuditArgs,
    filter: &AuditFilter,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let since = args.since.unwrap_or(Timestamp::MIN);
    let until = args.until.unwrap_or_else(|| service.now());
    if since >= until {
        bail!("--since {since} is not before --until {until}: the range is empty");
    }
    if !args.json {
        line(out, ["TIME", "ACTION", "USER", "IP", "REASON", "USER AGENT"].join("\t"))?;
    }
    let mut emails: HashMap<auth_core::UserId, Option<String>> = HashMap::new();
    let mut after = None;
    loop {
        let page = service.admin().audit_page(filter, since, until, after, EXPORT_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        let full = page.len() == EXPORT_PAGE as usize;
        for (_, e) in &page {
            let email = match e.user {
                None => None,
                Some(id) => {
                    if emails.len() >= EXPORT_EMAILS {
                        emails.clear();
                    }
                    if let std::collections::hash_map::Entry::Vacant(slot) = emails.entry(id) {
                        let found =
                            service.store().user_by_id(id).await.map_err(AdminError::from)?;
                        slot.insert(found.map(|u| u.email));
                    }
                    emails.get(&id).cloned().flatten()
                }
            };
            if args.json {
                let object = audit_json(e, email.as_deref());
                line(out, serde_json::to_string(&object).context("cannot encode JSON")?)?;
            } else {
                let who = email.or_else(|| e.login.clone()).unwrap_or_else(|| "-".to_owned());
                let cells = [
                    e.at.to_string(),
                    format!("{} ({})", e.action.name(), e.action.code()),
                    who,
                    e.ip.to_string(),
                    e.reason.clone().unwrap_or_else(|| "-".to_owned()),
                    e.user_agent.clone().unwrap_or_else(|| "-".to_owned()),
                ];
                // A tab inside a cell would shift the columns: it goes as `\u{9}` like any control.
                let cells: Vec<String> = cells.iter().map(|c| terminal_safe(c)).collect();
                line(out, cells.join("\t"))?;
            }
        }
        if !full {
            break;
        }
    }
    out.flush().context("cannot write output")
}

/// An audit event as `audit --json` and the export write it.
fn audit_json(e: &AuditEvent, email: Option<&str>) -> Value {
    json!({
        "at": e.at.to_string(),
        "portalId": e.portal.to_string(),
        "userId": e.user.map(|u| u.to_string()),
        "email": email,
        "login": e.login,
        "action": e.action.name(),
        "code": e.action.code(),
        "ip": e.ip.to_string(),
        "userAgent": e.user_agent,
        "reason": e.reason,
    })
}

fn parse_action(s: &str) -> anyhow::Result<AuditAction> {
    let s = s.trim();
    let by_code = s.parse::<u32>().ok().and_then(AuditAction::from_code);
    by_code
        .or_else(|| AuditAction::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s)))
        .with_context(|| {
            let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.name()).collect();
            format!("--action: unknown action {s:?}; one of {}", names.join(", "))
        })
}

// ----- output -----------------------------------------------------------------------------------

/// Turns a service refusal into the operator's one-line message.
fn admin_error(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::Invalid(m) => anyhow::anyhow!("{m}"),
        AdminError::DirectoryUser => anyhow::anyhow!(
            "this is a directory user: their password is changed in the directory, not here"
        ),
        other => anyhow::Error::new(other),
    }
}

fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn line(out: &mut dyn Write, text: String) -> anyhow::Result<()> {
    writeln!(out, "{text}").context("cannot write output")
}

pub(crate) fn write_json(out: &mut dyn Write, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    line(out, text)
}

/// Writes rows under headers in columns as wide as their widest cell.
/// A cell as it may reach a terminal: control characters (escape sequences, carriage returns, line
/// breaks) written as `\u{…}`, because cells hold what clients sent (user agents, typed logins) and
/// must not move the operator's cursor or rewrite their screen.
fn terminal_safe(cell: &str) -> String {
    let mut out = String::with_capacity(cell.len());
    for c in cell.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> =
        rows.into_iter().map(|r| r.iter().map(|c| terminal_safe(c)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
            }
        }
        s.trim_end().to_owned()
    };
    line(out, render(headers.to_vec()))?;
    for row in &rows {
        line(out, render(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_cells_cannot_drive_a_terminal() {
        assert_eq!(
            super::terminal_safe("curl/8 \u{1b}[2J\r\nok"),
            "curl/8 \\u{1b}[2J\\u{d}\\u{a}ok"
        );
        assert_eq!(super::terminal_safe("Эл. почта"), "Эл. почта");
    }

    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["A", "BB", "C"],
            vec![vec!["xxx".into(), "y".into(), "z".into()], vec!["".into(), "".into(), "".into()]],
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB  C\nxxx  y   z\n\n");
    }

    #[test]
    fn actions_parse_by_name_or_code() {
        assert_eq!(parse_action("loginfailviaapi").unwrap(), AuditAction::LoginFailViaApi);
        assert_eq!(parse_action("1006").unwrap(), AuditAction::Logout);
        assert!(format!("{}", parse_action("Nope").unwrap_err()).contains("LoginSuccessViaApi"));
    }
}

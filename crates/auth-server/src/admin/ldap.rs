//! `auth-server ldap test` and `auth-server ldap sync` (spec §5.9).
//!
//! `ldap test` runs one directory login step by step with the server's own client and prints each
//! step (connect, service bind, search with the number of entries found, the user's bind, group,
//! disabled), so an operator sees which one fails; it changes nothing. The password is prompted for
//! without echo on a terminal, and otherwise read from the first line of standard input (so a script
//! or a test can pipe it); it is never printed. `ldap sync` asks the core to bring the portal's
//! directory users in line with the directory and prints its report.

use std::io::{BufRead as _, IsTerminal as _, Write};
use std::process::{Command as Process, Stdio};

use anyhow::{Context as _, bail};
use auth_core::{AdminError, AuthService, Portal, SecretString};
use serde_json::{Value, json};

use super::{line, portal_by_host, write_json, zeroize_string};
use crate::cli::{LdapCommand, LdapSync, LdapTest};
use crate::ldap::{LdapDirectories, Trace};
use crate::wiring::Core;

/// Runs one `ldap` subcommand.
pub(super) async fn run(core: &Core, cmd: LdapCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        LdapCommand::Test(args) => test(&core.service, &core.ldap, &args, out).await,
        LdapCommand::Sync(args) => sync(&core.service, &core.ldap, &args, out).await,
    }
}

/// The portal named by `--portal`, or the default one.
async fn portal(service: &AuthService, host: Option<&str>) -> anyhow::Result<Portal> {
    match host {
        Some(host) => portal_by_host(service, host).await,
        None => Ok(service.admin().ensure_default_portal().await?.as_ref().clone()),
    }
}

/// The directory the portal signs in against, or the one `--directory` names.
fn directory(
    ldap: &LdapDirectories,
    portal: &Portal,
    named: Option<&str>,
) -> anyhow::Result<String> {
    if ldap.is_empty() {
        bail!("no LDAP directory is configured ([[ldap.directories]] in the config file)");
    }
    if let Some(name) = named {
        if ldap.config(name).is_none() {
            bail!("no directory called {name:?}; configured: {}", ldap.names().join(", "));
        }
        return Ok(name.to_owned());
    }
    ldap.directory_for_portal(portal).with_context(|| {
        format!(
            "portal {} signs in against no directory (no [[ldap.directories]] entry lists its hosts)",
            portal.name
        )
    })
}

async fn test(
    service: &AuthService,
    ldap: &LdapDirectories,
    args: &LdapTest,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let portal = portal(service, args.portal.as_deref()).await?;
    let name = directory(ldap, &portal, args.directory.as_deref())?;
    let password = read_password(&args.login)?;
    if let Some(config) = ldap.config(&name) {
        line(out, format!("directory {name} ({}) for portal {}", config.url, portal.name))?;
    }
    let mut trace = Trace::on();
    let outcome = ldap.authenticate_traced(&name, &args.login, &password, &mut trace).await;
    let steps = trace.into_steps();
    let width = steps.iter().map(|s| s.step.as_str().len()).max().unwrap_or(0);
    for s in &steps {
        let status = if s.ok { "ok" } else { "FAILED" };
        line(out, format!("{:width$}  {status:6}  {}", s.step.as_str(), s.detail))?;
    }
    match outcome {
        Ok(entry) => {
            line(
                out,
                format!(
                    "signed in: {} ({} {}{}){}",
                    entry.email,
                    entry.first_name,
                    entry.last_name,
                    entry.mobile.as_deref().map(|m| format!(", mobile {m}")).unwrap_or_default(),
                    if entry.disabled { ", disabled" } else { "" }
                ),
            )?;
            Ok(())
        }
        Err(e) => {
            let step = steps.iter().find(|s| !s.ok).map_or("login", |s| s.step.as_str());
            bail!("the directory login failed at {step}: {e}")
        }
    }
}

async fn sync(
    service: &AuthService,
    ldap: &LdapDirectories,
    args: &LdapSync,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let portal = portal(service, args.portal.as_deref()).await?;
    let name = directory(ldap, &portal, None)?;
    let report = match service.admin().sync_directory(&portal).await {
        Ok(r) => r,
        Err(AdminError::DirectoryUnavailable(why)) => {
            bail!("directory {name} cannot be read: {why}")
        }
        Err(e) => return Err(super::admin_error(e)),
    };
    if args.json {
        let refused: Vec<Value> = report
            .refused
            .iter()
            .map(|(email, why)| json!({"email": email, "reason": why}))
            .collect();
        return write_json(
            out,
            &json!({
                "portal": portal.name,
                "directory": name,
                "entries": report.entries,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "disabled": report.disabled,
                "refused": refused,
            }),
        );
    }
    line(out, format!("synchronised portal {} with directory {name}:", portal.name))?;
    for (what, n) in [
        ("entries", report.entries),
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("disabled", report.disabled),
    ] {
        line(out, format!("  {what:9}  {n}"))?;
    }
    line(out, format!("  {:9}  {}", "refused", report.refused.len()))?;
    for (email, why) in &report.refused {
        line(out, format!("    {email}: {why}"))?;
    }
    Ok(())
}

/// The password: prompted for without echo on a terminal, else the first line of standard input.
fn read_password(login: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("Directory password for {login}: ");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut text = String::new();
    let read = stdin.lock().read_line(&mut text);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read the password from standard input")?;
    let password = SecretString::new(text.trim_end_matches(['\n', '\r']));
    drop(zeroize_string(text));
    if password.is_empty() {
        bail!("no password given (an empty password is never sent to the directory)");
    }
    Ok(password)
}

/// Turns the terminal's echo off or on with `stty`, which acts on the terminal it is given as
/// standard input: the server forbids unsafe code, so it does not call termios itself.
fn set_echo(on: bool) {
    let _ = Process::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

//! Tracing set-up: human-readable lines by default, one JSON object per line on request, always on
//! stderr so that stdout stays free for command output and the machine-readable `serve` lines.
//!
//! Nothing in this crate logs a password, code, token or SMS text; fields are counts, ids and paths.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Admin subcommands pass `quiet`, which lowers the default `info`
/// level to `warn` so that their output is not interleaved with start-up chatter.
pub fn init(log: &LogConfig, quiet: bool) -> anyhow::Result<()> {
    let level = if quiet && log.level == "info" { "warn" } else { log.level.as_str() };
    let filter = EnvFilter::try_new(level)
        .with_context(|| format!("log.level: {level:?} is not a valid tracing filter"))?;
    // Colours only for a person at a terminal; files and log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

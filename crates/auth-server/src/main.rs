//! The `auth-server` binary: parses the command line, loads the configuration, starts the async
//! runtime (`auth_server::runtime`: the configured workers and their flood pause), starts logging
//! and hands over to the library (`serve` by default, or an admin subcommand).
//!
//! Exit status: 0 on success, 1 with a one-line `error: …` on stderr when a command fails, 2 for a
//! command-line usage error (from clap).

use std::process::ExitCode;

use anyhow::Context as _;
use auth_server::cli::{Cli, Command};
use auth_server::config::Config;
use auth_server::hashing::HashingMetrics;
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The configuration comes first: it says how many workers the runtime gets.
    let config = Config::from_process(cli.config.as_deref(), &cli.overrides())?;
    // Made before the runtime, whose workers read the hashing queue through them.
    let hashing = HashingMetrics::default();
    let runtime =
        auth_server::runtime::build(&config, &hashing).context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let command = cli.command.unwrap_or(Command::Serve);
        let is_serve = matches!(command, Command::Serve);
        auth_server::logging::init(&config.log, !is_serve)?;
        if is_serve {
            auth_server::serve_with(config, hashing).await
        } else {
            let mut stdout = std::io::stdout().lock();
            auth_server::admin::run(command, &config, &mut stdout).await
        }
    })
}

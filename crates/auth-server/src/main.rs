//! The `auth-server` binary: parses the command line, loads the configuration, starts logging and
//! hands over to the library (`serve` by default, or an admin subcommand).
//!
//! Exit status: 0 on success, 1 with a one-line `error: …` on stderr when a command fails, 2 for a
//! command-line usage error (from clap).

use std::process::ExitCode;

use auth_server::cli::{Cli, Command};
use auth_server::config::Config;
use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_process(cli.config.as_deref(), &cli.overrides())?;
    let command = cli.command.unwrap_or(Command::Serve);
    let is_serve = matches!(command, Command::Serve);
    auth_server::logging::init(&config.log, !is_serve)?;
    if is_serve {
        auth_server::serve(config).await
    } else {
        let mut stdout = std::io::stdout().lock();
        auth_server::admin::run(command, &config, &mut stdout).await
    }
}

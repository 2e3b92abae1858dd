//! The `auth-server` binary: parses the command line, loads the configuration, starts logging and
//! hands over to the library (`serve` by default, or an admin subcommand).
//!
//! Exit status: 0 on success, 1 with a one-line `error: …` on stderr when a command fails, 2 for a
//! command-line usage error (from clap).

use std::process::ExitCode;

use auth_server::cli::{Cli, Command};
use auth_server::config::Config;
use auth_server::sched::{self, Applied};
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
    let config = Config::from_process(cli.config.as_deref(), &cli.overrides())?;
    let command = cli.command.unwrap_or(Command::Serve);
    let is_serve = matches!(command, Command::Serve);
    auth_server::logging::init(&config.log, !is_serve)?;
    if is_serve {
        // Before the runtime exists, so that every thread of the server inherits the policy. Success
        // is logged at debug only: a start-up error must stay the first line on stderr.
        let policy = config.hashing.scheduling;
        match sched::apply(policy) {
            Ok(Applied::Batch) => {
                tracing::debug!("CPU scheduling: SCHED_BATCH (hashing.scheduling)")
            }
            Ok(Applied::Unchanged) => {}
            Err(e) => tracing::warn!("hashing.scheduling = {policy}: {e}; running unchanged"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        if is_serve {
            auth_server::serve(config).await
        } else {
            let mut stdout = std::io::stdout().lock();
            auth_server::admin::run(command, &config, &mut stdout).await
        }
    })
}

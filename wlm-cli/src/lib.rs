//! Glue for the `wlm` command: argument parsing, RON configs, progress, plots, subcommands.
//!
//! The binary is a thin wrapper over [`run`]. Everything here is glue over the library
//! crates (`wlm`, `wlm-data`, `wlm-boids`, `wlm-ot`); this crate is the only one that prints.

mod canvas;
mod cli;
mod plot;
mod progress;

use clap::Parser;

use cli::{Cli, Command};

/// Runs the `wlm` command with the given arguments (without the program name).
///
/// `--help` and `--version` print and return `Ok`; a usage error is returned as an error
/// carrying clap's message.
///
/// # Errors
/// Any failure of the subcommand, with context for the user.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(std::iter::once("wlm".to_string()).chain(args.iter().cloned())) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help, --version: not an error.
            print!("{err}");
            return Ok(());
        }
        Err(err) => {
            let text = err.render().to_string();
            let text = text.trim_start_matches("error: ").trim_end().to_string();
            return Err(anyhow::anyhow!(text));
        }
    };
    let quiet = cli.quiet;
    match cli.command {
        Command::Simulate(_)
        | Command::Train(_)
        | Command::Forecast(_)
        | Command::Interpolate(_)
        | Command::Eval(_)
        | Command::Distance(_)
        | Command::Inspect(_)
        | Command::Plot(_)
        | Command::Demo(_) => {
            let _ = quiet;
            anyhow::bail!("not implemented yet")
        }
    }
}

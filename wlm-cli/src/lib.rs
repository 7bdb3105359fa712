//! Glue for the `wlm` command: argument parsing, RON configs, progress, plots, subcommands.
//!
//! The binary is a thin wrapper over [`run`]. Everything here is glue over the library
//! crates (`wlm`, `wlm-data`, `wlm-boids`, `wlm-ot`); this crate is the only one that prints.
//!
//! The method and the reference experiments it runs are described in `docs/METHOD.md` in the
//! repository.

mod cli;
mod config;
mod data;
mod demo;
mod derived;
mod distance;
mod experiment;
mod figures;
mod flow;
mod flow_experiment;
mod forecast;
mod inspect;
mod landscape;
mod output;
mod overrides;
mod plot;
mod progress;
mod report;
mod runs;
mod simulate;
mod source;

use clap::Parser;

use anyhow::Context;

use cli::{Cli, Command, Simulate};

/// Parses the RON text of an experiment config, applies `--set key=value` overrides in order
/// and checks every field, as `wlm train --config FILE --set …` does; returns the checked
/// config written back as pretty RON (relative paths are left as written).
///
/// The entry point of the `config` fuzz target: for any text and overrides it returns `Ok` or
/// `Err`, and what it returns parses again, unchanged.
///
/// # Errors
/// Malformed RON (with line and column); unknown fields, wrong types and out-of-range values,
/// naming the field; an override without `=`, naming a missing path or with a malformed value.
pub fn check_config(text: &str, overrides: &[String]) -> anyhow::Result<String> {
    config::ExperimentConfig::parse(text, overrides)?.to_ron()
}

/// Parses a flow-matching config (`wlm flow train --config`) with `--set` overrides, checks
/// every field, and returns it as RON (what a flow run directory stores).
///
/// # Errors
/// As [`check_config`], for the fields of a flow config.
pub fn check_flow_config(text: &str, overrides: &[String]) -> anyhow::Result<String> {
    config::to_ron(&flow::FlowExperiment::parse(text, overrides)?)
}

/// Runs the `wlm` command with the given arguments (without the program name).
///
/// `--help` and `--version` print and return `Ok`; a usage error is returned as an error
/// carrying clap's message.
///
/// # Errors
/// Any failure of the subcommand, with context for the user.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let cli =
        match Cli::try_parse_from(std::iter::once("wlm".to_string()).chain(args.iter().cloned())) {
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
    let mode = progress::Mode::detect(cli.quiet);
    match cli.command {
        Command::Simulate(sim) => {
            let (snapshots, out) = match &sim {
                Simulate::Boids(a) => (simulate::boids(a)?, &a.common.out),
                Simulate::GfSde(a) => (simulate::gf_sde(a)?, &a.common.out),
            };
            wlm_data::write_particles_npz(out, &snapshots)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if mode != progress::Mode::Quiet {
                eprintln!(
                    "wrote {}: {} snapshots of {} points in {} dimensions, times {} to {}",
                    out.display(),
                    snapshots.len(),
                    snapshots.n_particles(0),
                    snapshots.dim(),
                    snapshots.times()[0],
                    snapshots.times()[snapshots.len() - 1]
                );
            }
        }
        Command::Train(a) => {
            runs::train(&a, mode)?;
        }
        Command::Forecast(a) => forecast::forecast(&a, mode)?,
        Command::Interpolate(a) => runs::interpolate(&a, mode)?,
        Command::Eval(a) => runs::eval(&a, mode)?,
        Command::Distance(a) => println!("{}", distance::distance(&a)?),
        Command::Inspect(a) => print!("{}", inspect::inspect(&a.file, &a.data_flags)?),
        Command::Plot(a) => {
            let mut config = runs::read_experiment(&a.run_dir)?;
            match a.dims[..] {
                [d0, d1] => config.plot.dims = (d0, d1),
                _ => anyhow::bail!("--dims needs two dimensions, e.g. `--dims 0,1`"),
            }
            let snapshots = data::load_config_data(&config.data)?;
            let split = runs::check_data(&config, &snapshots)?;
            let written =
                figures::plot_run(&a.run_dir, &config, &snapshots, &split, a.out.as_deref())?;
            if written.is_empty() {
                anyhow::bail!(
                    "nothing to plot in {}: no forecast, evaluation or metrics yet",
                    a.run_dir.display()
                );
            }
            for p in written {
                println!("{}", p.display());
            }
        }
        Command::Landscape(a) => {
            for p in landscape::landscape(&a, mode)? {
                println!("{}", p.display());
            }
        }
        Command::Demo(a) => demo::demo(&a, mode)?,
        Command::Flow(c) => flow::run(&c, mode)?,
        Command::Experiment(a) => {
            experiment::experiment(&a, mode)?;
        }
    }
    Ok(())
}

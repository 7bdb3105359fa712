//! `wlm experiment NAME`: the reference experiments of METHOD.md §5 as sets of runs, each trained
//! (or resumed, or reused when finished), evaluated with the baselines, and summarised in a
//! results table (`results.md`) next to the run directories.
//!
//! The configs are the ones in `configs/` (embedded): `--scale cpu` takes the `*_cpu.ron`
//! variant, `--scale reference` the reference-sized one. Each run gets its data path from
//! `--data`, its seeds from `--seeds`, and any `--set` overrides.
//!
//! `plan.rs` turns the arguments into runs, `results.rs` reads finished runs and writes the
//! table, `schedule.rs` writes the runs for a cluster instead of training them here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::ExperimentArgs;
use crate::progress::Mode;
use crate::runs::train_config;

pub(crate) mod plan;
pub(crate) mod results;
mod schedule;

use plan::{experiment_name, plan, PlannedRun};
use results::{finished_result, result_of, write_results, RunResult};

/// Trains (or resumes, or reuses) one run and returns its result.
fn run_one(run: &PlannedRun, dir: &Path, mode: Mode) -> Result<RunResult> {
    if let Some(result) = finished_result(run, dir)? {
        if mode != Mode::Quiet {
            eprintln!(
                "{}: finished earlier, reusing its evaluation",
                dir.display()
            );
        }
        return Ok(result);
    }
    let exists = dir.join(wlm::CHECKPOINT_FILE).exists();
    let evaluation = train_config(&run.config, dir, exists, mode)?;
    result_of(run, dir, evaluation)
}

/// `wlm experiment`: trains every run of the experiment, then writes and prints its results.
///
/// # Errors
/// Planning, training, evaluation and I/O failures, naming the run.
pub(crate) fn experiment(args: &ExperimentArgs, mode: Mode) -> Result<PathBuf> {
    if (args.plan.is_some() || args.collect) && !args.flow.is_empty() {
        bail!("--flow runs its baselines locally: it cannot be combined with --plan or --collect");
    }
    if let Some(kind) = args.plan {
        return schedule::write_plan(args, kind, mode);
    }
    if args.collect {
        return schedule::collect(args, mode);
    }
    let runs = plan(args)?;
    let root = args.out.join(experiment_name(args.name));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut results = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        if mode != Mode::Quiet {
            eprintln!(
                "== {} run {}/{}: {}",
                experiment_name(args.name),
                k + 1,
                runs.len(),
                run.name
            );
        }
        let dir = root.join(&run.name);
        let result =
            run_one(run, &dir, mode).with_context(|| format!("run `{}` failed", run.name))?;
        results.push(result);
    }
    let flow = if args.flow.is_empty() {
        String::new()
    } else {
        crate::flow_experiment::flow_section(&runs, &args.flow, &args.flow_set, &root, mode)?
    };
    write_results(args, &results, &flow, mode)
}

#[cfg(test)]
mod tests;

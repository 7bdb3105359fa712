//! Sweeps beyond one machine: `wlm experiment NAME --plan slurm|commands` writes the run set
//! as one resumable `wlm train` command per run (a Slurm job-array script over a run list, as
//! the reference's `sbatch_run.sbatch` and run lists do, or a plain command list), and
//! `--collect` gathers the finished run directories into the local runner's `results.md`.
//!
//! Layout under `<out>/<experiment>/`: `plan/<run>.ron` (each run's full config, data paths
//! absolute), `plan/commands.txt` (one command per line, line `i + 1` for array index `i`),
//! `plan/<experiment>.sbatch` and `plan/logs/` (Slurm), and the run directories `<run>/`, as
//! the local runner lays them out, so `wlm experiment NAME` and `--collect` read the same runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::plan::{experiment_name, plan};
use super::results::{command_line, finished_result, write_results};
use crate::cli::{ExperimentArgs, PlanKind};
use crate::output::write_text;
use crate::progress::Mode;
use crate::runs::last_metrics;

/// The folder of the plan files, under the experiment's folder.
pub(crate) const PLAN_DIR: &str = "plan";
/// The command list, one line per run.
pub(crate) const COMMANDS_FILE: &str = "commands.txt";

/// `text` quoted for a POSIX shell (single quotes; a single quote as `'\''`).
fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `wlm` binary to call: this one, by its absolute path (the nodes of a cluster share the
/// file system), or `wlm` from `PATH` when it cannot be found.
fn wlm_binary() -> String {
    std::env::current_exe()
        .ok()
        .map_or_else(|| "wlm".into(), |p| p.to_string_lossy().into_owned())
}

/// The Slurm job-array script running line `SLURM_ARRAY_TASK_ID + 1` of `commands`.
fn sbatch_script(args: &ExperimentArgs, n_runs: usize, plan_dir: &Path, commands: &Path) -> String {
    let exp = experiment_name(args.name);
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(
        s,
        "# `wlm experiment {exp}` as a Slurm job array: {n_runs} runs, array index i runs line \
         i + 1 of\n# {}, a resumable `wlm train` (run again, it continues the run's \
         checkpoint,\n# or does nothing when the run is finished).",
        commands.display()
    );
    let _ = writeln!(
        s,
        "# Submit:  sbatch {}",
        plan_dir.join(format!("{exp}.sbatch")).display()
    );
    let _ = writeln!(s, "# Collect: {} --collect", command_line(args));
    let _ = writeln!(s, "#SBATCH --job-name=wlm-{exp}");
    let _ = writeln!(s, "#SBATCH --array=0-{}", n_runs.saturating_sub(1));
    let _ = writeln!(
        s,
        "#SBATCH --output={}/logs/%x-%A_%a.out",
        plan_dir.display()
    );
    let _ = writeln!(s, "#SBATCH --cpus-per-task=2");
    let _ = writeln!(s, "#SBATCH --time=24:00:00");
    // A requeued task resumes its run's checkpoint.
    let _ = writeln!(s, "#SBATCH --requeue");
    s.push_str("set -euo pipefail\n");
    let _ = writeln!(s, "RUNLIST={}", quote(&commands.to_string_lossy()));
    s.push_str(concat!(
        "INDEX=\"${SLURM_ARRAY_TASK_ID:?run as a Slurm array job (or set SLURM_ARRAY_TASK_ID)}\"\n",
        "LINE=$(sed -n \"$((INDEX + 1))p\" \"$RUNLIST\")\n",
        "if [ -z \"$LINE\" ]; then\n",
        "  echo \"no run at array index $INDEX in $RUNLIST\" >&2\n",
        "  exit 1\n",
        "fi\n",
        "export RAYON_NUM_THREADS=\"${RAYON_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-2}}\"\n",
        "echo \"array index $INDEX: $LINE\"\n",
        "eval \"$LINE\"\n",
    ));
    s
}

/// `wlm experiment NAME --plan KIND`: writes each run's config, the command list and (Slurm)
/// the job-array script; prints the commands (`commands`) or the script's path (`slurm`).
///
/// # Errors
/// Planning failures (a missing data file, a bad `--set`, naming the run); write failures.
pub(crate) fn write_plan(args: &ExperimentArgs, kind: PlanKind, mode: Mode) -> Result<PathBuf> {
    let runs = plan(args)?;
    let root = absolute(&args.out.join(experiment_name(args.name)));
    let plan_dir = root.join(PLAN_DIR);
    std::fs::create_dir_all(plan_dir.join("logs"))
        .with_context(|| format!("cannot create {}", plan_dir.display()))?;
    let binary = wlm_binary();
    let mut commands = String::new();
    for run in &runs {
        let mut config = run.config.clone();
        config.data.source.absolutize();
        let config_path = plan_dir.join(format!("{}.ron", run.name));
        write_text(&config_path, &config.to_ron()?)?;
        let _ = writeln!(
            commands,
            "{} train --config {} --run-dir {} --resume-or-start --quiet",
            quote(&binary),
            quote(&config_path.to_string_lossy()),
            quote(&root.join(&run.name).to_string_lossy())
        );
    }
    let commands_path = plan_dir.join(COMMANDS_FILE);
    write_text(&commands_path, &commands)?;
    let written = match kind {
        PlanKind::Commands => {
            print!("{commands}");
            commands_path.clone()
        }
        PlanKind::Slurm => {
            let script = plan_dir.join(format!("{}.sbatch", experiment_name(args.name)));
            write_text(
                &script,
                &sbatch_script(args, runs.len(), &plan_dir, &commands_path),
            )?;
            println!("{}", script.display());
            script
        }
    };
    if mode != Mode::Quiet {
        eprintln!(
            "planned {} runs of `{}`: {} (collect with `{} --collect`)",
            runs.len(),
            experiment_name(args.name),
            commands_path.display(),
            command_line(args)
        );
    }
    Ok(written)
}

/// `wlm experiment NAME --collect`: the results table of the finished runs (the unfinished
/// ones are named on stderr).
///
/// # Errors
/// No finished run; a run directory holding another config; unreadable files.
pub(crate) fn collect(args: &ExperimentArgs, mode: Mode) -> Result<PathBuf> {
    let runs = plan(args)?;
    let root = args.out.join(experiment_name(args.name));
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for run in &runs {
        let dir = root.join(&run.name);
        match finished_result(run, &dir).with_context(|| format!("run `{}`", run.name))? {
            Some(result) => results.push(result),
            None => {
                let state = if dir.join(wlm::CHECKPOINT_FILE).exists() {
                    let step = last_metrics(&dir)?.map_or(0, |m| m.0);
                    format!("step {step} of {}", run.config.train.steps)
                } else {
                    "not started".to_string()
                };
                missing.push(format!("{} ({state})", run.name));
            }
        }
    }
    if results.is_empty() {
        bail!(
            "no finished run under {}: {}",
            root.display(),
            missing.join(", ")
        );
    }
    if !missing.is_empty() && mode != Mode::Quiet {
        eprintln!(
            "collected {} of {} runs; not finished: {}",
            results.len(),
            runs.len(),
            missing.join(", ")
        );
    }
    write_results(args, &results, "", mode)
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting_leaves_plain_paths_and_protects_the_rest() {
        assert_eq!(quote("/a/b-c_d.ron"), "/a/b-c_d.ron");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}

//! The results of an experiment: finished runs read back, and the `results.md` table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wlm::{Evaluation, MeanSe, Role};

use super::plan::{experiment_name, potential_label, PlannedRun};
use crate::cli::{ExperimentArgs, Scale};
use crate::config::from_ron;
use crate::output::write_text;
use crate::progress::Mode;
use crate::runs::{check_same_config, is_finished, last_metrics};

/// The file each experiment's summary is written to, in `<out>/<experiment>/`.
pub(crate) const RESULTS_FILE: &str = "results.md";

/// What a finished run scored.
#[derive(Debug, Clone)]
pub(crate) struct RunResult {
    /// The run.
    pub(crate) run: PlannedRun,
    /// Its evaluation (EMA weights when the config says so).
    pub(crate) evaluation: Evaluation,
    /// Friction at the last step.
    pub(crate) friction: f64,
    /// Training steps done.
    pub(crate) steps: usize,
    /// Training wall time in seconds (summed over resumed sessions).
    pub(crate) wall_seconds: f64,
}

/// The result of a finished run in `dir`, or `None` when `dir` holds no run or an unfinished
/// one.
///
/// # Errors
/// A run of another config in `dir`; unreadable files.
pub(crate) fn finished_result(run: &PlannedRun, dir: &Path) -> Result<Option<RunResult>> {
    if !dir.join(wlm::CHECKPOINT_FILE).exists() {
        return Ok(None);
    }
    check_same_config(&run.config, dir)?;
    if !is_finished(&run.config, dir)? {
        return Ok(None);
    }
    let path = dir.join(wlm::EVALUATION_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let evaluation =
        from_ron::<Evaluation>(&text).with_context(|| format!("invalid {}", path.display()))?;
    Ok(Some(result_of(run, dir, evaluation)?))
}

/// A run's result: its evaluation, with the last step, friction and wall time of its metrics.
pub(crate) fn result_of(run: &PlannedRun, dir: &Path, evaluation: Evaluation) -> Result<RunResult> {
    let (steps, friction, wall_seconds) =
        last_metrics(dir)?.unwrap_or((0, run.config.model.friction.gamma, 0.0));
    Ok(RunResult {
        run: run.clone(),
        evaluation,
        friction,
        steps,
        wall_seconds,
    })
}

/// Writes `<out>/<experiment>/results.md` (the runs' table, then `extra`, e.g. the flow
/// baselines' section) and prints it.
///
/// # Errors
/// Write failures.
pub(crate) fn write_results(
    args: &ExperimentArgs,
    results: &[RunResult],
    extra: &str,
    mode: Mode,
) -> Result<PathBuf> {
    let text = results_markdown(args, results) + extra;
    let path = args.out.join(experiment_name(args.name)).join(RESULTS_FILE);
    write_text(&path, &text)?;
    println!("{text}");
    if mode != Mode::Quiet {
        eprintln!("results: {}", path.display());
    }
    Ok(path)
}

fn fmt_mean_se(m: Option<MeanSe>) -> String {
    match m {
        Some(m) if m.n > 1 => format!("{:.4} ± {:.4}", m.mean, m.se),
        Some(m) => format!("{:.4}", m.mean),
        None => "–".into(),
    }
}

/// The command line that reproduces the results (as typed, with the effective defaults).
pub(crate) fn command_line(args: &ExperimentArgs) -> String {
    let mut c = format!("wlm experiment {}", experiment_name(args.name));
    if let Some(d) = &args.data {
        let _ = write!(c, " --data {}", d.display());
    }
    if !args.seeds.is_empty() {
        let s: Vec<String> = args.seeds.iter().map(u64::to_string).collect();
        let _ = write!(c, " --seeds {}", s.join(","));
    }
    if args.scale == Scale::Reference {
        c.push_str(" --scale reference");
    }
    if !args.potentials.is_empty() {
        let p: Vec<&str> = args
            .potentials
            .iter()
            .map(|&p| potential_label(p))
            .collect();
        let _ = write!(c, " --potentials {}", p.join(","));
    }
    for s in &args.set {
        let _ = write!(c, " --set '{s}'");
    }
    if !args.flow.is_empty() {
        let f: Vec<&str> = args.flow.iter().map(|m| m.key()).collect();
        let _ = write!(c, " --flow {}", f.join(","));
        for s in &args.flow_set {
            let _ = write!(c, " --flow-set '{s}'");
        }
    }
    let _ = write!(c, " --out {}", args.out.display());
    c
}

/// Names of the baselines, in order of first appearance.
fn baseline_names(results: &[RunResult]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in results {
        for b in &r.evaluation.baselines {
            if !names.contains(&b.name) {
                names.push(b.name.clone());
            }
        }
    }
    names
}

fn baseline_of(e: &Evaluation, name: &str) -> Option<MeanSe> {
    e.baselines
        .iter()
        .find(|b| b.name == name)
        .and_then(|b| b.test_w1)
}

/// A markdown table's header and rule: the `lead` columns, "model from last train" when
/// `restart`, one column per baseline, then the `tail` columns.
fn table_head(lead: &[&str], restart: bool, baselines: &[String], tail: &[&str]) -> String {
    let mut columns: Vec<&str> = lead.to_vec();
    if restart {
        columns.push("model from last train");
    }
    columns.extend(baselines.iter().map(String::as_str));
    columns.extend_from_slice(tail);
    let header: String = columns.iter().map(|c| format!(" {c} |")).collect();
    format!("|{header}\n|{}", "---|".repeat(columns.len()))
}

/// The results table: one row per run, then one per group (mean ± SE over its seeds).
pub(crate) fn results_markdown(args: &ExperimentArgs, results: &[RunResult]) -> String {
    let mut out = String::new();
    let exp = experiment_name(args.name);
    let _ = writeln!(out, "# `{exp}` results\n");
    let _ = writeln!(out, "Reproduce with:\n\n```\n{}\n```\n", command_line(args));
    let kind = match results.first() {
        Some(r) if r.evaluation.forecast => "forecast from snapshot 0",
        Some(_) => "interpolation of each held-out snapshot from the observed one before it",
        None => "no runs",
    };
    let _ = writeln!(
        out,
        "Exact W1 on the held-out snapshots ({kind}), EMA weights. Per run: mean ± standard \
         error over the held-out times. Baselines by the same code on the same data. For a \
         forecast, `model W1` rolls out from snapshot 0 through every time; `model from last \
         train` restarts from the last training snapshot, where the baselines start, and \
         decides `beats all baselines`.\n"
    );
    let names = baseline_names(results);
    let restart = results
        .iter()
        .any(|r| r.evaluation.test_w1_from_last.is_some());
    let _ = writeln!(
        out,
        "{}",
        table_head(
            &["run", "steps", "model W1"],
            restart,
            &names,
            &["friction", "train wall (s)"]
        )
    );
    for r in results {
        let mut row = format!(
            "| {} | {} | {} |",
            r.run.name,
            r.steps,
            fmt_mean_se(r.evaluation.test_w1)
        );
        if restart {
            let _ = write!(row, " {} |", fmt_mean_se(r.evaluation.test_w1_from_last));
        }
        for n in &names {
            let _ = write!(row, " {} |", fmt_mean_se(baseline_of(&r.evaluation, n)));
        }
        let _ = write!(row, " {:.4} | {:.1} |", r.friction, r.wall_seconds);
        let _ = writeln!(out, "{row}");
    }
    // Groups: mean ± SE over seeds of each run's mean test W1.
    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        if !groups.contains(&r.run.group.as_str()) {
            groups.push(&r.run.group);
        }
    }
    let _ = writeln!(
        out,
        "\nPer group, over seeds (mean ± standard error of the runs' mean test W1; one seed: \
         the run's mean):\n"
    );
    // A forecast model is compared with the baselines from where they start (the last
    // training snapshot) when it has that score; its forecast from snapshot 0 is shown too.
    let _ = writeln!(
        out,
        "{}",
        table_head(
            &["group", "seeds", "model W1"],
            restart,
            &names,
            &["beats all baselines", "friction"]
        )
    );
    for g in groups {
        let members: Vec<&RunResult> = results.iter().filter(|r| r.run.group == g).collect();
        let over = |f: &dyn Fn(&RunResult) -> Option<f64>| -> Option<MeanSe> {
            let v: Vec<f64> = members.iter().filter_map(|r| f(r)).collect();
            MeanSe::of(&v)
        };
        let model = over(&|r| r.evaluation.test_w1.map(|m| m.mean));
        let mut row = format!("| {g} | {} | {} |", members.len(), fmt_mean_se(model));
        let from_last = over(&|r| r.evaluation.test_w1_from_last.map(|m| m.mean));
        if restart {
            let _ = write!(row, " {} |", fmt_mean_se(from_last));
        }
        let mut beats = true;
        for n in &names {
            let b = over(&|r| baseline_of(&r.evaluation, n).map(|m| m.mean));
            if let (Some(m), Some(b)) = (from_last.or(model), b) {
                beats &= m.mean < b.mean;
            }
            let _ = write!(row, " {} |", fmt_mean_se(b));
        }
        let friction = over(&|r| Some(r.friction));
        let _ = write!(
            row,
            " {} | {} |",
            if beats { "yes" } else { "**no**" },
            fmt_mean_se(friction)
        );
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out, "\nPer held-out time (model W1 of each run):\n");
    for r in results {
        let per: Vec<String> = r
            .evaluation
            .scores
            .iter()
            .filter(|s| s.role == Role::Test)
            .map(|s| format!("t{}={:.4}", s.index, s.w1))
            .collect();
        let _ = writeln!(out, "- {}: {}", r.run.name, per.join(", "));
    }
    out
}

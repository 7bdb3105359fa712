//! `wlm experiment NAME`: the reference experiments of METHOD.md §5 as sets of runs, each trained
//! (or resumed, or reused when finished), evaluated with the baselines, and summarised in a
//! results table (`results.md`) next to the run directories.
//!
//! The configs are the ones in `configs/` (embedded): `--scale cpu` takes the `*_cpu.ron`
//! variant, `--scale reference` the reference-sized one. Each run gets its data path from
//! `--data`, its seeds from `--seeds`, and any `--set` overrides.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wlm::{Evaluation, MeanSe, Role};

use crate::cli::{ExperimentArgs, ExperimentName, PotentialName, Scale};
use crate::config::{from_ron, ExperimentConfig};
use crate::progress::Mode;
use crate::runs::{check_same_config, is_finished, last_metrics, train_config, write_text};

/// The file each experiment's summary is written to, in `<out>/<experiment>/`.
pub(crate) const RESULTS_FILE: &str = "results.md";

/// One run of an experiment.
#[derive(Debug, Clone)]
pub(crate) struct PlannedRun {
    /// Run name (the folder under `<out>/<experiment>/`).
    pub(crate) name: String,
    /// Runs of one group differ only by their seed; the summary averages over them.
    pub(crate) group: String,
    /// The full config.
    pub(crate) config: ExperimentConfig,
}

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

fn base_config(name: ExperimentName, scale: Scale) -> &'static str {
    use ExperimentName as E;
    match (name, scale) {
        (E::OceanSmall, Scale::Cpu) => include_str!("../../configs/ocean_small_cpu.ron"),
        (E::OceanSmall, Scale::Reference) => include_str!("../../configs/ocean_small.ron"),
        (E::OceanBig, Scale::Cpu) => include_str!("../../configs/ocean_big_cpu.ron"),
        (E::OceanBig, Scale::Reference) => include_str!("../../configs/ocean_big.ron"),
        (E::Eb, Scale::Cpu) => include_str!("../../configs/eb_cpu.ron"),
        (E::Eb, Scale::Reference) => include_str!("../../configs/eb.ron"),
        (E::GfSde, Scale::Cpu) => include_str!("../../configs/gf_sde_cpu.ron"),
        (E::GfSde, Scale::Reference) => include_str!("../../configs/gf_sde.ron"),
        (E::Boids, Scale::Cpu) => include_str!("../../configs/boids_cpu.ron"),
        (E::Boids, Scale::Reference) => include_str!("../../configs/boids.ron"),
    }
}

/// The experiment's command-line name.
pub(crate) fn experiment_name(name: ExperimentName) -> &'static str {
    match name {
        ExperimentName::OceanSmall => "ocean-small",
        ExperimentName::OceanBig => "ocean-big",
        ExperimentName::Eb => "eb",
        ExperimentName::GfSde => "gf-sde",
        ExperimentName::Boids => "boids",
    }
}

fn potential_key(p: PotentialName) -> &'static str {
    match p {
        PotentialName::Quadratic => "quadratic",
        PotentialName::StyblinskiTang => "styblinski_tang",
        PotentialName::Bohachevsky => "bohachevsky",
        PotentialName::OakleyOhagan => "oakley_o_hagan",
        PotentialName::WavyPlateau => "wavy_plateau",
    }
}

/// A potential's name in run names and on the command line.
fn potential_label(p: PotentialName) -> &'static str {
    match p {
        PotentialName::Quadratic => "quadratic",
        PotentialName::StyblinskiTang => "styblinski-tang",
        PotentialName::Bohachevsky => "bohachevsky",
        PotentialName::OakleyOhagan => "oakley-ohagan",
        PotentialName::WavyPlateau => "wavy-plateau",
    }
}

/// The data file of a file-based experiment, under `--data`.
fn data_file(args: &ExperimentArgs, relative: &str) -> Result<PathBuf> {
    let Some(dir) = &args.data else {
        bail!(
            "experiment `{}` reads {relative}: give the folder that holds it with --data DIR \
             (see the README for where to get the data sets)",
            experiment_name(args.name)
        );
    };
    let path = dir.join(relative);
    if !path.is_file() {
        bail!(
            "{}: no such file (--data {} must hold {relative})",
            path.display(),
            dir.display()
        );
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn ron_path(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

/// The runs of an experiment, in the order they are trained.
///
/// # Errors
/// A missing data file; a config that the overrides break (naming the field).
pub(crate) fn plan(args: &ExperimentArgs) -> Result<Vec<PlannedRun>> {
    let base = base_config(args.name, args.scale);
    let seeds = if args.seeds.is_empty() {
        vec![0]
    } else {
        args.seeds.clone()
    };
    let exp = experiment_name(args.name);
    // (group, run-name stem, overrides) before seeds.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    match args.name {
        ExperimentName::OceanSmall => {
            let file = data_file(args, "oceans/oceans_with_v0.npz")?;
            groups.push((
                "holdout-1-3-5-7".into(),
                vec![format!("data.source=Particles({})", ron_path(&file))],
            ));
        }
        ExperimentName::OceanBig => {
            let file = data_file(args, "oceans/big_oceans_forecast.npz")?;
            groups.push((
                "forecast-10".into(),
                vec![format!("data.source=Particles({})", ron_path(&file))],
            ));
        }
        ExperimentName::Eb => {
            // The 300-cell subsample has no velocities: start every rollout (training and the
            // evaluation's restarts) from the OT finite-difference estimate, the recommended
            // configuration for data without velocities (docs/RESULTS.md: 0.850 / 0.961 /
            // 1.053 at held-out times 1 / 2 / 3 against 0.942 / 1.145 / 0.982 from rest).
            // `--set train.initial_velocities=Zero --set eval.initial_velocities=Zero` gives
            // the runs from rest, as the reference does without `pcs_delta`.
            let file = data_file(args, "eb/eb_300.npy")?;
            for h in [1, 2, 3] {
                groups.push((
                    format!("holdout-{h}"),
                    vec![
                        format!("data.source=Npy({})", ron_path(&file)),
                        format!("split=Holdout(indices: [{h}])"),
                        "train.initial_velocities=OtCentral".into(),
                        "eval.initial_velocities=OtCentral".into(),
                    ],
                ));
            }
        }
        ExperimentName::GfSde => {
            let potentials = if args.potentials.is_empty() {
                vec![
                    PotentialName::Quadratic,
                    PotentialName::StyblinskiTang,
                    PotentialName::Bohachevsky,
                    PotentialName::OakleyOhagan,
                    PotentialName::WavyPlateau,
                ]
            } else {
                args.potentials.clone()
            };
            for p in potentials {
                for pairing in ["paired", "unpaired"] {
                    // METHOD.md §5: friction 0 with the data's velocities, or friction learned from
                    // 1.0 starting from rest.
                    for (variant, extra) in [
                        (
                            "conservative",
                            [
                                "model.friction=(gamma: 0.0, learnable: false)",
                                "train.initial_velocities=Data",
                                "eval.initial_velocities=Data",
                            ],
                        ),
                        (
                            "dissipative",
                            [
                                "model.friction=(gamma: 1.0, learnable: true)",
                                "train.initial_velocities=Zero",
                                "eval.initial_velocities=Zero",
                            ],
                        ),
                    ] {
                        let mut o = vec![
                            format!("data.source.potential={}", potential_key(p)),
                            format!("data.source.pairing={pairing}"),
                        ];
                        o.extend(extra.iter().map(|s| s.to_string()));
                        groups.push((format!("{}-{pairing}-{variant}", potential_label(p)), o));
                    }
                }
            }
        }
        ExperimentName::Boids => groups.push(("forecast-half".into(), Vec::new())),
    }
    let simulated = matches!(args.name, ExperimentName::GfSde | ExperimentName::Boids);
    let mut runs = Vec::new();
    for (group, overrides) in groups {
        for &seed in &seeds {
            let name = format!("{group}-seed{seed}");
            let mut o = overrides.clone();
            o.push(format!("name={:?}", format!("{exp}-{name}")));
            o.push(format!("train.seed={seed}"));
            o.push(format!("model.init_seed={seed}"));
            if simulated {
                o.push(format!("data.source.seed={seed}"));
            }
            o.extend(args.set.iter().cloned());
            let config = ExperimentConfig::parse(base, &o)
                .with_context(|| format!("config of run `{name}` of experiment `{exp}`"))?;
            runs.push(PlannedRun {
                name,
                group: group.clone(),
                config,
            });
        }
    }
    Ok(runs)
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
fn result_of(run: &PlannedRun, dir: &Path, evaluation: Evaluation) -> Result<RunResult> {
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

/// Whether `source` reads a file (so `--data` matters).
#[cfg(test)]
fn reads_file(source: &crate::config::DataSource) -> bool {
    use crate::config::DataSource;
    !matches!(source, DataSource::Boids(_) | DataSource::GfSde(_))
}

mod schedule;
#[cfg(test)]
mod tests;

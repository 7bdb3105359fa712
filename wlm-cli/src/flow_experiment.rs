//! `wlm experiment NAME --flow METHODS`: the flow-matching baselines of `wlm flow` as extra
//! columns of an experiment, trained on each WLM run's data, split and seed.
//!
//! Each (WLM run, method) pair gets its own flow run directory `<run>-flow-<method>/` next to
//! the WLM run; a finished one (with `scores.ron` and the same config) is reused. The
//! networks and optimisers are those of `configs/flow_ocean_small.ron` (embedded), changed by
//! `--flow-set KEY=VALUE`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm::MeanSe;

use crate::cli::FlowMethod;
use crate::config::from_ron;
use crate::experiment::plan::PlannedRun;
use crate::flow::{FlowExperiment, FlowScores, SCORES_FILE};
use crate::progress::Mode;

impl FlowMethod {
    fn label(self) -> &'static str {
        match self {
            Self::Otcfm => "OT-CFM",
            Self::Icfm => "I-CFM",
            Self::Lfm => "LFM ω=1",
            Self::LfmAniso => "LFM aniso",
        }
    }

    /// The name on the command line and in run names.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Otcfm => "otcfm",
            Self::Icfm => "icfm",
            Self::Lfm => "lfm",
            Self::LfmAniso => "lfm-aniso",
        }
    }

    fn overrides(self) -> &'static [&'static str] {
        match self {
            Self::Otcfm => &[],
            Self::Icfm => &["flow.coupling=Independent"],
            Self::Lfm => &["flow.path=Harmonic(omega: 1.0)"],
            Self::LfmAniso => &["flow.path=Anisotropic(omega_base: 0.8, omega_ratio: 2.0)"],
        }
    }
}

/// The flow config of `method` for one WLM run: its data and split, its seed.
fn flow_config(run: &PlannedRun, method: FlowMethod, extra: &[String]) -> Result<FlowExperiment> {
    let base = include_str!("../../configs/flow_ocean_small.ron");
    let mut overrides: Vec<String> = method.overrides().iter().map(|s| s.to_string()).collect();
    overrides.push(format!("flow.train.seed={}", run.config.train.seed));
    overrides.extend(extra.iter().cloned());
    let mut config = FlowExperiment::parse(base, &overrides)
        .with_context(|| format!("flow config `{}` of run `{}`", method.key(), run.name))?;
    config.name = format!("{}-flow-{}", run.config.name, method.key());
    config.data = run.config.data.clone();
    config.data.source.absolutize();
    config.split = run.config.split.clone();
    Ok(config)
}

/// Trains (or reuses) one flow run.
fn run_one(config: &FlowExperiment, dir: &Path, mode: Mode) -> Result<FlowScores> {
    let scores_path = dir.join(SCORES_FILE);
    if scores_path.is_file() {
        let stored: FlowExperiment = from_ron(
            &std::fs::read_to_string(dir.join("config.ron"))
                .with_context(|| format!("cannot read {}", dir.join("config.ron").display()))?,
        )?;
        if &stored != config {
            bail!(
                "{} holds a flow run with a different config than this experiment plans; \
                 choose another --out or remove it",
                dir.display()
            );
        }
        if mode != Mode::Quiet {
            eprintln!("{}: finished earlier, reusing its scores", dir.display());
        }
        let text = std::fs::read_to_string(&scores_path)
            .with_context(|| format!("cannot read {}", scores_path.display()))?;
        return from_ron(&text).with_context(|| format!("invalid {}", scores_path.display()));
    }
    if dir.exists() {
        // An unfinished flow run (no scores): flow training is short, start it again.
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the unfinished run {}", dir.display()))?;
    }
    crate::flow::train(config, dir, mode)
}

/// Trains the `methods` on every run (their configs changed by `overrides`, `--flow-set`)
/// and returns the markdown section of their results.
///
/// # Errors
/// Config, data, training and I/O failures, naming the run.
pub(crate) fn flow_section(
    runs: &[PlannedRun],
    methods: &[FlowMethod],
    overrides: &[String],
    root: &Path,
    mode: Mode,
) -> Result<String> {
    let mut results: Vec<(FlowMethod, &PlannedRun, FlowScores)> = Vec::new();
    for &method in methods {
        for run in runs {
            let name = format!("{}-flow-{}", run.name, method.key());
            if mode != Mode::Quiet {
                eprintln!("== flow baseline {}: {name}", method.label());
            }
            let config = flow_config(run, method, overrides)?;
            let scores = run_one(&config, &root.join(&name), mode)
                .with_context(|| format!("flow run `{name}` failed"))?;
            results.push((method, run, scores));
        }
    }
    let mut groups: Vec<&str> = Vec::new();
    for run in runs {
        if !groups.contains(&run.group.as_str()) {
            groups.push(&run.group);
        }
    }
    let mut out = String::from(
        "\n## Flow-matching baselines\n\nExact W1 on the same held-out snapshots by the same \
         code (`wlm flow`, configs/flow_ocean_small.ron's network and optimiser), each run on \
         the WLM run's data, split and seed; per group, mean ± standard error over seeds of \
         the runs' mean test W1.\n\n",
    );
    let header: String = methods
        .iter()
        .map(|m| format!(" {} |", m.label()))
        .collect();
    let _ = writeln!(
        out,
        "| group | seeds |{header}\n|---|---|{}",
        "---|".repeat(methods.len())
    );
    for g in groups {
        let n = runs.iter().filter(|r| r.group == g).count();
        let mut row = format!("| {g} | {n} |");
        for &m in methods {
            let values: Vec<f64> = results
                .iter()
                .filter(|(method, run, _)| *method == m && run.group == g)
                .map(|(_, _, s)| s.mean_test_w1)
                .collect();
            let cell = match MeanSe::of(&values) {
                Some(s) if s.n > 1 => format!("{:.4} ± {:.4}", s.mean, s.se),
                Some(s) => format!("{:.4}", s.mean),
                None => "–".into(),
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(out, "{row}");
    }
    Ok(out)
}

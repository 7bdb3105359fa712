//! `wlm train`, `forecast`, `interpolate`, `eval`: run directories, progress, predictions
//! and W1 tables.
//!
//! Besides the learner's files (see `wlm::Run`), a run directory holds `experiment.ron` (the
//! full CLI config, data paths made absolute), `interpolation.npz` (predictions at the test
//! snapshots, each from the observed snapshot before it) and `plots/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use wlm::{Evaluation, Model, Run, Split, StepReport, TrainObserver, Trainer};
use wlm_data::Snapshots;

use crate::cli::{EvalArgs, TrainArgs};
use crate::config::{from_ron, DataSource, ExperimentConfig, EXPERIMENT_FILE, INTERPOLATION_FILE};
use crate::data::load_config_data;
use crate::output::{write_evaluation, write_snapshots, write_text};
use crate::progress::{Mode, Progress};
use crate::report::{evaluation_table, simple_table};
use crate::source::output_layout;
use wlm_data::H5adConfig;

/// Prints training progress.
struct Observer {
    progress: Progress,
    mode: Mode,
    learnable_friction: bool,
}

impl TrainObserver for Observer {
    fn on_step(&mut self, report: &StepReport) {
        let note = if self.learnable_friction {
            format!("friction {:.4}", report.friction)
        } else {
            String::new()
        };
        self.progress.update(report.step, report.loss, &note);
    }

    fn on_evaluation(&mut self, step: usize, e: &Evaluation) {
        if self.mode == Mode::Quiet {
            return;
        }
        let fmt = |m: Option<wlm::MeanSe>| m.map_or("-".into(), |m| format!("{:.4}", m.mean));
        let line = format!(
            "step {step}: W1 train {} test {}",
            fmt(e.train_w1),
            fmt(e.test_w1)
        );
        if self.mode == Mode::Bar {
            eprint!("\r\x1b[K");
        }
        eprintln!("{line}");
    }
}

/// Checks that the data suit the model and the split.
///
/// # Errors
/// A dimension mismatch (naming `model.energy.dim`) or an unusable split.
pub(crate) fn check_data(config: &ExperimentConfig, snapshots: &Snapshots) -> Result<Split> {
    if config.model_dim() != snapshots.dim() {
        bail!(
            "invalid config field `model.energy.dim`: the model is {}-dimensional but the data are {}-dimensional",
            config.model_dim(),
            snapshots.dim()
        );
    }
    let split = config.split.resolve(snapshots.len())?;
    Ok(config.train.model_selection.apply(split)?)
}

/// `wlm train`: trains (or resumes) a run, prints its W1 table and writes its plots.
///
/// # Errors
/// Config, data, training and I/O failures.
pub(crate) fn train(args: &TrainArgs, mode: Mode) -> Result<PathBuf> {
    if args.data.is_none() {
        args.data_flags.require_file("--data FILE")?;
        if !args.holdout.is_empty() || args.forecast_from.is_some() {
            bail!("--holdout and --forecast-from choose the split of --data FILE; with --config, set `split` in the config (--set 'split=Holdout(indices: [1])')");
        }
    }
    if args.resume_or_start {
        let config = match (&args.config, &args.data) {
            (Some(path), _) => ExperimentConfig::load(path, &args.set)?,
            (None, Some(data)) => crate::derived::derived_config(data, args)?,
            (None, None) => bail!("--resume-or-start needs --config or --data"),
        };
        let dir = args
            .run_dir
            .clone()
            .unwrap_or_else(|| default_run_dir(&config));
        resume_or_start(&config, &dir, mode)?;
        return Ok(dir);
    }
    let config = match (&args.config, args.resume) {
        (None, false) if args.data.is_some() => {
            let data = args.data.as_deref().unwrap_or(Path::new(""));
            crate::derived::derived_config(data, args)?
        }
        (Some(path), false) => ExperimentConfig::load(path, &args.set)?,
        (_, true) => {
            if !args.set.is_empty() {
                bail!(
                    "--set cannot change a resumed run: its config is fixed in the run directory"
                );
            }
            let dir = match (&args.run_dir, &args.config) {
                (Some(dir), _) => dir.clone(),
                (None, Some(path)) => default_run_dir(&ExperimentConfig::load(path, &[])?),
                (None, None) => bail!("--resume needs --run-dir or --config"),
            };
            read_experiment(&dir)?
        }
        (None, false) => {
            bail!("--config or --data is required (or --resume with --run-dir)")
        }
    };
    let dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(&config));
    train_config(&config, &dir, args.resume, mode)?;
    Ok(dir)
}

/// Whether the run in `dir` has done all `config.train.steps` and has its evaluation.
///
/// # Errors
/// An unreadable `metrics.csv`.
pub(crate) fn is_finished(config: &ExperimentConfig, dir: &Path) -> Result<bool> {
    Ok(dir.join(wlm::CHECKPOINT_FILE).exists()
        && dir.join(wlm::EVALUATION_FILE).is_file()
        && last_metrics(dir)?.is_some_and(|m| m.0 >= config.train.steps))
}

/// Fails unless the run directory `dir` was started with `config` (data paths absolute).
///
/// # Errors
/// A different config, or an unreadable one.
pub(crate) fn check_same_config(config: &ExperimentConfig, dir: &Path) -> Result<()> {
    let stored = read_experiment(dir)?;
    let mut planned = config.clone();
    planned.data.source.absolutize();
    if stored != planned {
        bail!(
            "{} holds a run with a different config than this one (compare its \
             {EXPERIMENT_FILE}); choose another run directory or remove it",
            dir.display()
        );
    }
    Ok(())
}

/// `wlm train --resume-or-start`: starts the run, resumes it, or leaves it when finished.
fn resume_or_start(config: &ExperimentConfig, dir: &Path, mode: Mode) -> Result<()> {
    let exists = dir.join(wlm::CHECKPOINT_FILE).exists();
    if exists {
        check_same_config(config, dir)?;
        if is_finished(config, dir)? {
            if mode != Mode::Quiet {
                eprintln!("{}: finished earlier, nothing to do", dir.display());
            }
            return Ok(());
        }
    }
    train_config(config, dir, exists, mode)?;
    Ok(())
}

/// Last `(step, friction, wall_seconds)` of a run's `metrics.csv`; `None` before the first
/// step.
///
/// # Errors
/// An unreadable file, or a last line whose step, friction or wall time is not a finite
/// number.
pub(crate) fn last_metrics(dir: &Path) -> Result<Option<(usize, f64, f64)>> {
    let path = dir.join(wlm::METRICS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(line) = text.lines().skip(1).filter(|l| !l.trim().is_empty()).last() else {
        return Ok(None);
    };
    let fields: Vec<&str> = line.split(',').collect();
    let bad = |what: &str| format!("{}: bad `{what}` in line `{line}`", path.display());
    // Finite numbers only, and a step that is a count: "nan" or "-3" would otherwise become a
    // silent NaN in the results or step 0.
    let parse = |k: usize, what: &str| -> Result<f64> {
        fields
            .get(k)
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .with_context(|| bad(what))
    };
    let step = fields
        .first()
        .and_then(|f| f.trim().parse::<usize>().ok())
        .with_context(|| bad("step"))?;
    Ok(Some((
        step,
        parse(4, "friction")?,
        parse(5, "wall_seconds")?,
    )))
}

/// `runs/<name>`.
pub(crate) fn default_run_dir(config: &ExperimentConfig) -> PathBuf {
    Path::new("runs").join(&config.name)
}

/// Trains `config` in `dir` (resuming its checkpoint when `resume`), then evaluates, writes
/// predictions and plots, and prints the W1 table. Returns the evaluation.
///
/// # Errors
/// Config, data, training and I/O failures.
pub(crate) fn train_config(
    config: &ExperimentConfig,
    dir: &Path,
    resume: bool,
    mode: Mode,
) -> Result<Evaluation> {
    let snapshots = load_config_data(&config.data)?;
    let split = check_data(config, &snapshots)?;
    let device = Device::Cpu;
    let mut run = if resume {
        Run::resume(dir, snapshots.clone(), &device)
            .with_context(|| format!("cannot resume the run in {}", dir.display()))?
    } else {
        if dir.join(wlm::CHECKPOINT_FILE).exists() {
            bail!(
                "{} already holds a run: continue it with --resume, or choose another --run-dir",
                dir.display()
            );
        }
        let run = Run::create(dir, config.run_config(), snapshots.clone(), &device)
            .with_context(|| format!("cannot start a run in {}", dir.display()))?;
        let mut stored = config.clone();
        stored.data.source.absolutize();
        write_text(&dir.join(EXPERIMENT_FILE), &stored.to_ron()?)?;
        run
    };
    let first = run.trainer().step_count();
    let total = run.config().train.steps;
    if mode != Mode::Quiet {
        let resuming = if first > 0 {
            format!(" (resuming at step {first})")
        } else {
            String::new()
        };
        let what = format!("`{}`", config.name);
        eprintln!(
            "{}{resuming}",
            training_banner(&what, &snapshots, &split, total)
        );
    }
    let mut observer = Observer {
        progress: Progress::new("train", first, total, mode),
        mode,
        learnable_friction: config.model.friction.learnable,
    };
    let result = run.train(&mut observer);
    observer.progress.finish();
    result.with_context(|| format!("training failed (run directory {})", dir.display()))?;
    let seconds = observer.progress.elapsed();
    // The evaluation of the last step, with the rollouts it scored: nothing simulated again.
    let (evaluation, predictions) = run.finish().context("final evaluation failed")?;
    if !split.is_forecast() {
        let (indices, interpolated): (Vec<usize>, Vec<Tensor>) =
            predictions.interpolations.into_iter().unzip();
        write_interpolations(
            &dir.join(INTERPOLATION_FILE),
            &snapshots,
            &indices,
            &interpolated,
            &output_layout(&config.data.source),
        )?;
    }
    if mode != Mode::Quiet && total > first {
        eprintln!(
            "trained {} steps in {:.1} s ({:.2} steps/s)",
            total - first,
            seconds,
            (total - first) as f64 / seconds.max(1e-9)
        );
    }
    println!("{}", evaluation_table(&evaluation));
    let plots = crate::figures::plot_run(dir, config, &snapshots, &split, None)?;
    if mode != Mode::Quiet {
        eprintln!("run directory: {}", dir.display());
        for p in plots {
            eprintln!("plot: {}", p.display());
        }
    }
    Ok(evaluation)
}

/// Reads a run directory's `experiment.ron`.
///
/// # Errors
/// Missing or invalid file.
pub(crate) fn read_experiment(dir: &Path) -> Result<ExperimentConfig> {
    let path = dir.join(EXPERIMENT_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is {} a run directory written by `wlm train`?",
            path.display(),
            dir.display()
        )
    })?;
    from_ron(&text).with_context(|| format!("invalid {}", path.display()))
}

/// The line that opens a training run (WLM or flow): what trains, on which data and split.
pub(crate) fn training_banner(
    what: &str,
    snapshots: &Snapshots,
    split: &Split,
    steps: usize,
) -> String {
    format!(
        "training {what}: {} snapshots of {} points in {} dimensions, split {} train / {} test, {steps} steps",
        snapshots.len(),
        snapshots.n_particles(0),
        snapshots.dim(),
        split.train.len(),
        split.test.len(),
    )
}

/// Model weights for evaluation: plain weights, or a trainer restored from a checkpoint
/// (whose EMA weights are used when the config asks for them).
pub(crate) enum Weights {
    Plain(Model),
    Checkpoint(Box<Trainer>),
}

impl Weights {
    /// Runs `f` on the model (with the EMA weights swapped in when `use_ema` and the weights
    /// come from a checkpoint).
    pub(crate) fn with_model<T>(
        &self,
        use_ema: bool,
        f: impl FnOnce(&Model) -> Result<T>,
    ) -> Result<T> {
        match self {
            Self::Plain(model) => f(model),
            Self::Checkpoint(trainer) if use_ema => {
                let mut out = None;
                trainer.ema().with_shadows(|| {
                    out = Some(f(trainer.model()));
                    Ok(())
                })?;
                out.unwrap_or_else(|| bail!("evaluation did not run"))
            }
            Self::Checkpoint(trainer) => f(trainer.model()),
        }
    }
}

/// A trained run loaded for evaluation.
pub(crate) struct Loaded {
    /// The run's config (`eval` adjusted to the command line).
    pub(crate) config: ExperimentConfig,
    /// The data (the run's, or `--data`).
    pub(crate) snapshots: Snapshots,
    /// Where the data came from (the layout of `.h5ad` outputs).
    pub(crate) data_source: DataSource,
    /// The run's split of the data.
    pub(crate) split: Split,
    /// The weights.
    pub(crate) weights: Weights,
    /// The weights' file.
    pub(crate) source: PathBuf,
}

/// The `--checkpoint` value that names the run's model-selection weights
/// (`best.safetensors`).
pub(crate) const BEST_CHECKPOINT: &str = "best";

fn is_checkpoint(path: &Path) -> Result<bool> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("cannot read weights {}", path.display()))?;
    Ok(tensors.contains_key("meta/step"))
}

/// Loads a run directory's config, its data (or `--data`) and weights.
///
/// # Errors
/// Missing or invalid files; data of another dimension than the model's (listing what an
/// AnnData file holds).
pub(crate) fn load_run(args: &EvalArgs) -> Result<Loaded> {
    let dir = &args.run_dir;
    let mut config = read_experiment(dir)?;
    // `Model` evaluation velocities start from what training started from, unless set.
    config.eval = config.eval.with_training_start(&config.train);
    if let Some(n) = args.substeps {
        config.eval.steps_per_interval = n;
    }
    if let Some(source) = args.initial_velocities {
        config.eval.initial_velocities = source;
    }
    config.eval.validate()?;
    let (snapshots, data_source) = match &args.data {
        Some(path) => {
            let (_, data) = crate::source::data_config(path, &args.data_flags)?;
            (load_config_data(&data)?, data.source)
        }
        None => {
            args.data_flags.require_file("--data FILE")?;
            (load_config_data(&config.data)?, config.data.source.clone())
        }
    };
    crate::source::check_width(
        config.model_dim(),
        &snapshots,
        &data_source,
        &args.data_flags,
    )?;
    let split = check_data(&config, &snapshots)?;
    let device = Device::Cpu;
    let preferred = if config.eval.use_ema {
        wlm::EMA_WEIGHTS_FILE
    } else {
        wlm::WEIGHTS_FILE
    };
    let source = match &args.checkpoint {
        Some(path) if path.as_os_str() == BEST_CHECKPOINT => {
            let best = dir.join(wlm::BEST_WEIGHTS_FILE);
            if !best.exists() {
                bail!(
                    "{}: no best weights in the run directory: `--checkpoint best` needs a run trained with train.model_selection (TrainW1 or Validation([...]))",
                    best.display()
                );
            }
            best
        }
        Some(path) => path.clone(),
        None if dir.join(preferred).exists() => dir.join(preferred),
        None => dir.join(wlm::CHECKPOINT_FILE),
    };
    if !source.exists() {
        bail!("{}: no such weights or checkpoint file", source.display());
    }
    let model = Model::new(config.model.clone(), &device)?;
    let weights = if is_checkpoint(&source)? {
        let train = snapshots.select(&split.train)?;
        let mut trainer = Trainer::new(model, config.train.clone(), &train)?;
        trainer.load_checkpoint(&source)?;
        Weights::Checkpoint(Box::new(trainer))
    } else {
        model.load_weights(&source)?;
        Weights::Plain(model)
    };
    Ok(Loaded {
        config,
        snapshots,
        data_source,
        split,
        weights,
        source,
    })
}

/// Interpolations of the snapshots `indices`, each from the observed snapshot before it, with
/// the initial velocities an evaluation gives it (OT estimates from the training snapshots).
fn interpolations(
    model: &Model,
    snapshots: &Snapshots,
    indices: &[usize],
    split: &Split,
    config: &ExperimentConfig,
) -> Result<Vec<Tensor>> {
    indices
        .iter()
        .map(|&h| {
            let v = wlm::initial_velocities(model, snapshots, h - 1, &split.train, &config.eval)?;
            Ok(wlm::interpolate_with_velocities(
                model,
                snapshots,
                h,
                &v,
                config.eval.steps_per_interval,
            )?)
        })
        .collect()
}

fn write_interpolations(
    path: &Path,
    snapshots: &Snapshots,
    indices: &[usize],
    predictions: &[Tensor],
    layout: &H5adConfig,
) -> Result<()> {
    let times: Vec<f64> = indices.iter().map(|&h| snapshots.times()[h]).collect();
    let predicted = Snapshots::from_tensors(times, predictions, None)
        .context("the interpolation produced invalid values")?;
    write_snapshots(path, &predicted, layout)
}

/// `wlm interpolate`: each test snapshot from the observed snapshot before it.
///
/// # Errors
/// Loading, simulation and I/O failures; a split without test snapshots.
pub(crate) fn interpolate(args: &EvalArgs, mode: Mode) -> Result<()> {
    let loaded = load_run(args)?;
    let test = &loaded.split.test;
    if test.is_empty() {
        bail!("the run's split has no held-out snapshots to interpolate");
    }
    let eval = &loaded.config.eval;
    let predictions = loaded.weights.with_model(eval.use_ema, |model| {
        interpolations(
            model,
            &loaded.snapshots,
            test,
            &loaded.split,
            &loaded.config,
        )
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join(INTERPOLATION_FILE));
    write_interpolations(
        &out,
        &loaded.snapshots,
        test,
        &predictions,
        &output_layout(&loaded.data_source),
    )?;
    let baselines = wlm::interpolation_baselines(&loaded.snapshots, test)?;
    let pairs: Vec<(usize, &Tensor)> = test.iter().copied().zip(&predictions).collect();
    let w1 = wlm::w1_scores(&loaded.snapshots, &pairs)?;
    let mut rows = Vec::new();
    for (&h, w) in test.iter().zip(w1) {
        let mut values = vec![w];
        for b in &baselines {
            let w =
                b.w1.iter()
                    .find(|(k, _)| *k == h)
                    .map_or(f64::NAN, |(_, w)| *w);
            values.push(w);
        }
        rows.push((h, loaded.snapshots.times()[h], values));
    }
    let mut header = vec!["model"];
    header.extend(baselines.iter().map(|b| b.name.as_str()));
    println!(
        "{}",
        simple_table(
            "interpolation of held-out snapshots from the snapshot before, exact W1",
            &header,
            &rows
        )
    );
    if mode != Mode::Quiet {
        eprintln!("predictions: {}", out.display());
    }
    Ok(())
}

/// `wlm eval`: the full evaluation with baselines; writes `evaluation.ron`.
///
/// # Errors
/// Loading, simulation, metric and I/O failures.
pub(crate) fn eval(args: &EvalArgs, mode: Mode) -> Result<()> {
    let loaded = load_run(args)?;
    let eval = loaded.config.eval.clone();
    let evaluation = loaded.weights.with_model(eval.use_ema, |model| {
        Ok(wlm::evaluate(
            model,
            &loaded.snapshots,
            &loaded.split,
            &eval,
        )?)
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join(wlm::EVALUATION_FILE));
    write_evaluation(&out, &evaluation)?;
    println!("{}", evaluation_table(&evaluation));
    if mode != Mode::Quiet {
        eprintln!("evaluation: {}", out.display());
    }
    Ok(())
}

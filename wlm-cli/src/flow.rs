//! `wlm flow train|interpolate|forecast`: the flow-matching baselines of `wlm-flow` (OT-CFM,
//! I-CFM, Lagrangian flow matching) on the same data, split and exact W1 as WLM.
//!
//! A flow run directory holds `config.ron` (the [`FlowExperiment`], data paths made absolute),
//! `flow.safetensors` (the prediction weights: EMA when `flow.predict.use_ema`),
//! `interpolation.npz` (each held-out snapshot predicted from the observed snapshot before it)
//! or `forecast.npz` (snapshot 0 carried through every observed time), in the layouts of
//! `wlm interpolate` and `wlm forecast`, and `scores.ron` (exact W1 per test snapshot, by
//! `wlm::w1_scores`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use wlm::{Split, SplitConfig};
use wlm_data::Snapshots;
use wlm_flow::{FlowConfig, FlowModel, FlowTrainer};

use crate::cli::FlowCommand;
use crate::config::{from_ron, to_ron, DataConfig, INTERPOLATION_FILE};
use crate::data::load_config_data;
use crate::output::write_text;
use crate::progress::{Mode, Progress};
use crate::report::simple_table;
use crate::runs::training_banner;

/// The config of a flow run inside its directory.
const CONFIG_FILE: &str = "config.ron";
/// The prediction weights inside a flow run directory.
const WEIGHTS_FILE: &str = "flow.safetensors";
/// The scores inside a flow run directory.
pub(crate) const SCORES_FILE: &str = "scores.ron";

/// A flow-matching experiment: data and split as in `wlm train`, and the flow model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowExperiment {
    /// Name; the default run directory is `runs/<name>`.
    pub(crate) name: String,
    /// The data, as in `wlm train` configs.
    pub(crate) data: DataConfig,
    /// Which snapshots train and which are held out.
    pub(crate) split: SplitConfig,
    /// The flow-matching model, training and prediction.
    #[serde(default)]
    pub(crate) flow: FlowConfig,
}

impl FlowExperiment {
    /// Parses RON text, applies `--set` overrides in order and checks every field.
    ///
    /// # Errors
    /// Malformed RON, unknown fields, bad overrides and out-of-range values, naming the field.
    pub(crate) fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let text = crate::config::apply_overrides(text, overrides)?;
        let config: Self = from_ron(&text)?;
        config.flow.validate()?;
        if config.data.max_particles == Some(0) {
            bail!("invalid config field `data.max_particles`: must be at least 1");
        }
        if config.name.is_empty() || config.name.contains(['/', '\\']) {
            bail!("invalid config field `name`: must be a non-empty name without slashes");
        }
        Ok(config)
    }

    /// Reads a config file (relative data paths are relative to its folder).
    ///
    /// # Errors
    /// As [`FlowExperiment::parse`], and an unreadable file.
    pub(crate) fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut config = Self::parse(&text, overrides)
            .with_context(|| format!("invalid config {}", path.display()))?;
        config
            .data
            .source
            .resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }
}

/// W1 of one prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotW1 {
    /// Snapshot index.
    pub(crate) index: usize,
    /// Its time.
    pub(crate) time: f64,
    /// Exact W1 to the observed snapshot.
    pub(crate) w1: f64,
}

/// The scores of a flow run (`scores.ron`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlowScores {
    /// `interpolation` or `forecast`.
    pub(crate) task: String,
    /// Per test snapshot.
    pub(crate) test: Vec<SnapshotW1>,
    /// Mean W1 over the test snapshots.
    pub(crate) mean_test_w1: f64,
    /// Training wall time, seconds (0 when only predicting).
    pub(crate) train_seconds: f64,
}

/// Runs a `wlm flow` subcommand.
///
/// # Errors
/// Config, data, training, prediction and I/O failures.
pub(crate) fn run(command: &FlowCommand, mode: Mode) -> Result<()> {
    match command {
        FlowCommand::Train(args) => {
            let config = FlowExperiment::load(&args.config, &args.set)?;
            let dir = args
                .run_dir
                .clone()
                .unwrap_or_else(|| Path::new("runs").join(&config.name));
            train(&config, &dir, mode)?;
        }
        FlowCommand::Interpolate(args) | FlowCommand::Forecast(args) => {
            let forecast = matches!(command, FlowCommand::Forecast(_));
            let loaded = load(&args.run_dir, args.substeps)?;
            let default = if forecast {
                wlm::FORECAST_FILE
            } else {
                INTERPOLATION_FILE
            };
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| args.run_dir.join(default));
            let scores = predict_and_score(&loaded, forecast, &out, 0.0)?;
            if mode != Mode::Quiet {
                eprintln!("predictions: {}", out.display());
            }
            println!("{}", scores_table(&loaded.config, &loaded, &scores)?);
        }
    }
    Ok(())
}

/// A trained (or being-evaluated) flow run.
struct Loaded {
    config: FlowExperiment,
    snapshots: Snapshots,
    split: Split,
    model: FlowModel,
}

fn prepare(config: &FlowExperiment) -> Result<(Snapshots, Split)> {
    let snapshots = load_config_data(&config.data)?;
    let split = config.split.resolve(snapshots.len())?;
    Ok((snapshots, split))
}

/// Trains `config` into `dir`: weights, predictions, scores. Returns the scores.
///
/// # Errors
/// Config, data, training and I/O failures; `dir` already holding a flow run.
pub(crate) fn train(config: &FlowExperiment, dir: &Path, mode: Mode) -> Result<FlowScores> {
    if dir.join(WEIGHTS_FILE).exists() {
        bail!(
            "{} already holds a flow run: choose another --run-dir",
            dir.display()
        );
    }
    let (snapshots, split) = prepare(config)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
    let mut stored = config.clone();
    stored.data.source.absolutize();
    write_text(&dir.join(CONFIG_FILE), &to_ron(&stored)?)?;
    let total = config.flow.train.steps;
    if mode != Mode::Quiet {
        let what = format!("flow `{}`", config.name);
        eprintln!("{}", training_banner(&what, &snapshots, &split, total));
    }
    let mut trainer = FlowTrainer::new(&config.flow, &snapshots, &split.train)?;
    let mut progress = Progress::new("train", 0, total, mode);
    let result = trainer.train(&mut |step, loss| progress.update(step, loss, ""));
    progress.finish();
    result.with_context(|| format!("training failed (run directory {})", dir.display()))?;
    let seconds = progress.elapsed();
    let model = trainer.finish()?;
    model.save(&dir.join(WEIGHTS_FILE))?;
    let loaded = Loaded {
        config: config.clone(),
        snapshots,
        split,
        model,
    };
    let forecast = loaded.split.is_forecast();
    let out = dir.join(if forecast {
        wlm::FORECAST_FILE
    } else {
        INTERPOLATION_FILE
    });
    let scores = predict_and_score(&loaded, forecast, &out, seconds)?;
    write_text(&dir.join(SCORES_FILE), &to_ron(&scores)?)?;
    if mode != Mode::Quiet {
        eprintln!(
            "trained {total} steps in {seconds:.1} s; run directory: {}",
            dir.display()
        );
    }
    println!("{}", scores_table(config, &loaded, &scores)?);
    Ok(scores)
}

fn load(dir: &Path, substeps: Option<usize>) -> Result<Loaded> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is {} a run directory written by `wlm flow train`?",
            path.display(),
            dir.display()
        )
    })?;
    let mut config: FlowExperiment =
        from_ron(&text).with_context(|| format!("invalid {}", path.display()))?;
    if let Some(n) = substeps {
        config.flow.predict.steps_per_interval = n;
    }
    config.flow.validate()?;
    let (snapshots, split) = prepare(&config)?;
    let model = FlowModel::new(&config.flow, &snapshots, &split.train)?;
    model.load(&dir.join(WEIGHTS_FILE))?;
    Ok(Loaded {
        config,
        snapshots,
        split,
        model,
    })
}

fn cloud_tensor(values: Vec<f64>, dim: usize) -> Result<Tensor> {
    let n = values.len() / dim;
    Ok(Tensor::from_vec(values, (n, dim), &Device::Cpu)?)
}

/// Predicts (interpolation of every test snapshot from the observed one before it, or one
/// forecast from snapshot 0), writes the `.npz` and scores the test snapshots by exact W1.
fn predict_and_score(
    loaded: &Loaded,
    forecast: bool,
    out: &Path,
    train_seconds: f64,
) -> Result<FlowScores> {
    let (snapshots, split, model) = (&loaded.snapshots, &loaded.split, &loaded.model);
    let dim = snapshots.dim();
    let times = snapshots.times();
    let (indices, clouds): (Vec<usize>, Vec<Tensor>) = if forecast {
        let later = &times[1..];
        let mut clouds = vec![cloud_tensor(snapshots.positions(0).to_vec(), dim)?];
        for c in model.trajectory(snapshots.positions(0), times[0], later)? {
            clouds.push(cloud_tensor(c, dim)?);
        }
        let predicted = Snapshots::from_tensors(times.to_vec(), &clouds, None)
            .context("the forecast produced invalid values")?;
        wlm_data::write_particles_npz(out, &predicted)
            .with_context(|| format!("cannot write {}", out.display()))?;
        let test = split.test.clone();
        let picked = test.iter().map(|&k| clouds[k].clone()).collect();
        (test, picked)
    } else {
        if split.test.is_empty() {
            bail!("the run's split has no held-out snapshots to interpolate");
        }
        let clouds = split
            .test
            .iter()
            .map(|&h| {
                let c = model.predict(snapshots.positions(h - 1), times[h - 1], times[h])?;
                cloud_tensor(c, dim)
            })
            .collect::<Result<Vec<_>>>()?;
        let test_times: Vec<f64> = split.test.iter().map(|&h| times[h]).collect();
        let predicted = Snapshots::from_tensors(test_times, &clouds, None)
            .context("the interpolation produced invalid values")?;
        wlm_data::write_particles_npz(out, &predicted)
            .with_context(|| format!("cannot write {}", out.display()))?;
        (split.test.clone(), clouds)
    };
    let pairs: Vec<(usize, &Tensor)> = indices.iter().copied().zip(&clouds).collect();
    let w1 = wlm::w1_scores(snapshots, &pairs)?;
    let test: Vec<SnapshotW1> = indices
        .iter()
        .zip(&w1)
        .map(|(&index, &w1)| SnapshotW1 {
            index,
            time: times[index],
            w1,
        })
        .collect();
    let mean_test_w1 = if w1.is_empty() {
        f64::NAN
    } else {
        w1.iter().sum::<f64>() / w1.len() as f64
    };
    Ok(FlowScores {
        task: if forecast {
            "forecast"
        } else {
            "interpolation"
        }
        .into(),
        test,
        mean_test_w1,
        train_seconds,
    })
}

/// The W1 table: the flow model, and for interpolation the baselines WLM reports.
fn scores_table(config: &FlowExperiment, loaded: &Loaded, scores: &FlowScores) -> Result<String> {
    let mut header = vec!["flow".to_string()];
    let baselines = if scores.task == "interpolation" {
        wlm::interpolation_baselines(&loaded.snapshots, &loaded.split.test)?
    } else {
        Vec::new()
    };
    header.extend(baselines.iter().map(|b| b.name.clone()));
    let rows: Vec<(usize, f64, Vec<f64>)> = scores
        .test
        .iter()
        .map(|s| {
            let mut values = vec![s.w1];
            for b in &baselines {
                values.push(
                    b.w1.iter()
                        .find(|(k, _)| *k == s.index)
                        .map_or(f64::NAN, |(_, w)| *w),
                );
            }
            (s.index, s.time, values)
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Ok(simple_table(
        &format!("flow `{}` ({}), exact W1", config.name, scores.task),
        &header,
        &rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(
        name: "f",
        data: (source: Npy("x.npy")),
        split: Holdout(indices: [1]),
        flow: (path: Harmonic(omega: 1.0), train: (steps: 3)),
    )"#;

    #[test]
    fn every_flow_config_in_the_configs_folder_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("flow_") && name.ends_with(".ron") {
                let c = FlowExperiment::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(c.name.starts_with("flow_"), "{name}: {}", c.name);
                // What a run directory stores parses back to the same config.
                let text = to_ron(&c).unwrap();
                assert_eq!(FlowExperiment::parse(&text, &[]).unwrap(), c, "{name}");
                n += 1;
            }
        }
        assert!(n >= 2, "only {n} flow configs");
    }

    #[test]
    fn flow_configs_parse_override_and_name_bad_fields() {
        let c = FlowExperiment::parse(GOOD, &[]).unwrap();
        assert_eq!(c.flow.train.steps, 3);
        let c = FlowExperiment::parse(GOOD, &["flow.train.steps=7".into()]).unwrap();
        assert_eq!(c.flow.train.steps, 7);
        let err = format!(
            "{:#}",
            FlowExperiment::parse(GOOD, &["flow.path.omega=4.0".into()]).unwrap_err()
        );
        assert!(err.contains("`flow.path.omega`"), "{err}");
        let err = format!(
            "{:#}",
            FlowExperiment::parse(&GOOD.replace("steps: 3", "stepz: 3"), &[]).unwrap_err()
        );
        assert!(err.contains("flow.train.stepz"), "{err}");
    }
}

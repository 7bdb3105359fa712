//! Forecast, interpolation and their exact-W1/W2 evaluation, with the baselines computed by
//! the same code (METHOD.md §4).
//!
//! An evaluation rolls the model out on the calling thread (its force evaluations use rayon
//! themselves), then computes every exact W1/W2 it needs — the model's, the restart's and the
//! baselines' — as one batch of independent rayon jobs against the observed snapshots,
//! converted to tensors once; each value keeps its place, so nothing depends on the number of
//! threads.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;

use crate::config::{EvalConfig, Split, VelocitySource};
use crate::model::Model;
use crate::{Error, Result};

mod predict;
mod scores;

use predict::carried;
pub use predict::{
    forecast, forecast_with_velocities, initial_velocities, interpolate,
    interpolate_with_velocities, Forecast,
};
pub use scores::{baselines, interpolation_baselines, w1_scores};
use scores::{plan_baselines, Jobs, Metric};

/// Mean and standard error (`sample sd / √n`; 0 for a single value) of some scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanSe {
    /// Mean.
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
    /// Number of values.
    pub n: usize,
}

impl MeanSe {
    /// Mean ± standard error of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let se = if n > 1 {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        } else {
            0.0
        };
        Some(Self { mean, se, n })
    }
}

/// The role of a snapshot in a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Snapshot 0, the initial condition (its forecast score is 0 by construction).
    Start,
    /// A training snapshot.
    Train,
    /// A held-out snapshot.
    Test,
    /// A validation snapshot: observed, left out of the loss, scored for model selection.
    Validation,
}

/// Scores of one prediction against one observed snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotScore {
    /// Snapshot index.
    pub index: usize,
    /// Its time.
    pub time: f64,
    /// Train, test or start.
    pub role: Role,
    /// Exact W1 between prediction and observation.
    pub w1: f64,
    /// Exact W2, when asked for.
    pub w2: Option<f64>,
}

/// One baseline's scores on the test snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineScore {
    /// `repeat_last` (the last training snapshot), `constant_velocity` (it, moved by its
    /// velocities), `repeat_previous` (interpolation: the observed snapshot `h − 1`) or
    /// `ot_midpoint` (interpolation: McCann interpolation of snapshots `h − 1` and `h + 1`).
    pub name: String,
    /// `(snapshot index, W1)` per test snapshot.
    pub w1: Vec<(usize, f64)>,
    /// Mean ± standard error over the test snapshots.
    pub test_w1: Option<MeanSe>,
}

/// Evaluation of a model on a split (METHOD.md §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Whether the split is a forecast (else an interpolation).
    pub forecast: bool,
    /// Per-snapshot scores: the forecast from snapshot 0 at every train (and, for a forecast
    /// split, test) snapshot; for an interpolation split, the test rows are interpolations.
    pub scores: Vec<SnapshotScore>,
    /// Mean ± SE of W1 over training snapshots (snapshot 0 excluded).
    pub train_w1: Option<MeanSe>,
    /// Mean ± SE of W1 over test snapshots.
    pub test_w1: Option<MeanSe>,
    /// Mean ± SE of W2 over training snapshots.
    pub train_w2: Option<MeanSe>,
    /// Mean ± SE of W2 over test snapshots.
    pub test_w2: Option<MeanSe>,
    /// Mean ± SE of W1 over validation snapshots (the forecast from snapshot 0 there);
    /// `None` without validation snapshots.
    #[serde(default)]
    pub validation_w1: Option<MeanSe>,
    /// Baselines on the test snapshots, by the same metric code.
    pub baselines: Vec<BaselineScore>,
    /// Forecast split only: the model restarted from the last training snapshot (with its
    /// velocities, or zero, as the config says), scored at every test snapshot: the
    /// like-for-like comparison with the baselines, which start there too. `(index, W1)`.
    #[serde(default)]
    pub from_last: Vec<(usize, f64)>,
    /// Mean ± SE of [`Evaluation::from_last`].
    #[serde(default)]
    pub test_w1_from_last: Option<MeanSe>,
}

/// The rollouts an evaluation scored, kept so that writing predictions (`forecast.npz`,
/// interpolation files) or plotting them does not simulate again.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// The forecast from snapshot 0 through every observed time.
    pub forecast: Forecast,
    /// Forecast split with test snapshots and a last training snapshot after 0: the rollout
    /// from that snapshot, scored in [`Evaluation::from_last`].
    pub from_last: Option<Forecast>,
    /// Interpolation split: `(held-out index, prediction)` for every test snapshot, in the
    /// split's order; empty for a forecast split.
    pub interpolations: Vec<(usize, Tensor)>,
}

/// Forecast from snapshot 0 (and interpolation of held-out snapshots), scored by exact W1
/// (and W2) against every observed snapshot, with the baselines.
///
/// Same as [`evaluate_with_predictions`] without the predictions.
///
/// # Errors
/// As [`evaluate_with_predictions`].
pub fn evaluate(
    model: &Model,
    snapshots: &Snapshots,
    split: &Split,
    config: &EvalConfig,
) -> Result<Evaluation> {
    evaluate_with_predictions(model, snapshots, split, config).map(|(evaluation, _)| evaluation)
}

/// [`evaluate`], also returning the rollouts it scored.
///
/// The rollouts (the forecast from snapshot 0, the restart from the last training snapshot
/// or the interpolations) run one after the other on the calling thread, whose force
/// evaluations use rayon themselves; then every exact W1/W2 of the evaluation — the model's,
/// the restart's and the baselines' — is computed in one rayon batch, each observed snapshot
/// converted to a tensor once. The scores do not depend on the number of threads.
///
/// Initial velocities come from `config.initial_velocities` through [`initial_velocities`]
/// with the training snapshots known: OT estimates never see a snapshot the rollout is scored
/// against (an interpolation of `h` from `h − 1` differences with the training snapshots
/// around it; the restart from the last training snapshot uses the backward difference).
/// With `Model`, the forecast from snapshot 0 starts from `config.model_start_velocities`
/// and is itself the rollout whose velocities the restarts take.
///
/// # Shapes
/// Predictions are `(n_particles(start), dim)` in the model's dtype.
///
/// # Errors
/// [`Error::Config`] (`split`) for a snapshot index the data do not have; as [`forecast`],
/// [`interpolate`] and [`baselines`]; W1/W2 failures (e.g. a problem too large for exact
/// OT), the first in the order of the scores.
pub fn evaluate_with_predictions(
    model: &Model,
    snapshots: &Snapshots,
    split: &Split,
    config: &EvalConfig,
) -> Result<(Evaluation, Predictions)> {
    config.validate()?;
    check_split(snapshots, split)?;
    let is_forecast = split.is_forecast();
    let steps = config.steps_per_interval;
    // Rollouts: they need the model, which stays on this thread. Velocity estimates see the
    // training snapshots (and the start), never a snapshot the rollout is scored against.
    let known = &split.train;
    let v0 = initial_velocities(model, snapshots, 0, known, config)?;
    let fc = forecast_with_velocities(model, snapshots, 0, &v0, steps)?;
    // `Model` velocities at a later start: the forecast from 0 is that rollout (the same
    // steps as `initial_velocities` takes), carried onto the observed start.
    let velocities_at = |start: usize| -> Result<Tensor> {
        if config.initial_velocities == VelocitySource::Model {
            carried(
                model,
                snapshots,
                start,
                &fc.positions[start],
                &fc.velocities[start],
            )
        } else {
            initial_velocities(model, snapshots, start, known, config)
        }
    };
    let interpolations = if is_forecast {
        Vec::new()
    } else {
        split
            .test
            .iter()
            .map(|&h| {
                let v = velocities_at(h - 1)?;
                Ok((
                    h,
                    interpolate_with_velocities(model, snapshots, h, &v, steps)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?
    };
    let restart = match split.train.last() {
        Some(&last) if is_forecast && last > 0 && !split.test.is_empty() => {
            let v = velocities_at(last)?;
            Some(forecast_with_velocities(model, snapshots, last, &v, steps)?)
        }
        _ => None,
    };
    // Scores: every (prediction, observed snapshot) pair is independent.
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    let mut rows =
        Vec::with_capacity(split.train.len() + split.validation.len() + split.test.len());
    for &index in &split.train {
        let role = if index == 0 { Role::Start } else { Role::Train };
        rows.push(jobs.row(index, role, &fc.positions[index], config.w2)?);
    }
    for &index in &split.validation {
        rows.push(jobs.row(index, Role::Validation, &fc.positions[index], config.w2)?);
    }
    for (position, &index) in split.test.iter().enumerate() {
        // A forecast split has no interpolations: its test rows are the forecast's.
        let prediction = match interpolations.get(position) {
            Some((_, interpolated)) => interpolated,
            None => &fc.positions[index],
        };
        rows.push(jobs.row(index, Role::Test, prediction, config.w2)?);
    }
    let mut restart_jobs = Vec::new();
    if let Some(restart) = &restart {
        for &index in split.test.iter().filter(|&&h| h > restart.start) {
            let prediction = to_cpu_f64(&restart.positions[index - restart.start])?;
            restart_jobs.push((index, jobs.distance(Metric::W1, prediction, index)));
        }
    }
    let baseline_plan = plan_baselines(snapshots, split, &observed, &mut jobs)?;
    let values = jobs.run()?;
    let times = snapshots.times();
    let mut scores: Vec<SnapshotScore> = rows
        .iter()
        .map(|row| SnapshotScore {
            index: row.index,
            time: times[row.index],
            role: row.role,
            w1: values[row.w1],
            w2: row.w2.map(|j| values[j]),
        })
        .collect();
    scores.sort_by_key(|s| s.index);
    let from_last: Vec<(usize, f64)> = restart_jobs
        .iter()
        .map(|&(index, job)| (index, values[job]))
        .collect();
    let from_last_values: Vec<f64> = from_last.iter().map(|(_, w)| *w).collect();
    let pick = |role: Role, w2: bool| -> Option<MeanSe> {
        let v: Vec<f64> = scores
            .iter()
            .filter(|s| s.role == role)
            .filter_map(|s| if w2 { s.w2 } else { Some(s.w1) })
            .collect();
        MeanSe::of(&v)
    };
    let evaluation = Evaluation {
        forecast: is_forecast,
        train_w1: pick(Role::Train, false),
        test_w1: pick(Role::Test, false),
        train_w2: pick(Role::Train, true),
        test_w2: pick(Role::Test, true),
        validation_w1: pick(Role::Validation, false),
        baselines: baseline_plan.scores(&values),
        scores,
        test_w1_from_last: MeanSe::of(&from_last_values),
        from_last,
    };
    let predictions = Predictions {
        forecast: fc,
        from_last: restart,
        interpolations,
    };
    Ok((evaluation, predictions))
}

/// Every snapshot index of `split` must exist in `snapshots`.
fn check_split(snapshots: &Snapshots, split: &Split) -> Result<()> {
    match split
        .train
        .iter()
        .chain(&split.test)
        .chain(&split.validation)
        .find(|&&k| k >= snapshots.len())
    {
        Some(k) => Err(Error::config(
            "split",
            format!(
                "snapshot {k} does not exist: the data have {} snapshots",
                snapshots.len()
            ),
        )),
        None => Ok(()),
    }
}

/// Every observed snapshot's positions as an f64 CPU tensor, converted once per evaluation.
fn observed_positions(snapshots: &Snapshots) -> Result<Vec<Tensor>> {
    (0..snapshots.len())
        .map(|k| Ok(snapshots.positions_tensor(k, DType::F64, &Device::Cpu)?))
        .collect()
}

/// A prediction as the f64 CPU tensor the exact solvers read.
fn to_cpu_f64(prediction: &Tensor) -> Result<Tensor> {
    Ok(prediction.to_dtype(DType::F64)?.to_device(&Device::Cpu)?)
}

#[cfg(test)]
mod tests;

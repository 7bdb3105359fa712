//! Forecast, interpolation and their exact-W1/W2 evaluation, with the baselines computed by
//! the same code (METHOD.md §4).
//!
//! An evaluation rolls the model out on the calling thread (its force evaluations use rayon
//! themselves), then computes every exact W1/W2 it needs — the model's, the restart's and the
//! baselines' — as one batch of independent rayon jobs against the observed snapshots,
//! converted to tensors once; each value keeps its place, so nothing depends on the number of
//! threads.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;

use crate::config::{EvalConfig, Split, VelocitySource};
use crate::model::Model;
use crate::trainer::Trainer;
use crate::velocity::{carry_velocities, ot_difference, Scheme};
use crate::{Error, Result};

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

/// A simulated population at every observed time from a start snapshot on.
#[derive(Clone, Debug)]
pub struct Forecast {
    /// Index of the snapshot the rollout started from.
    pub start: usize,
    /// Observed times `t_start, …, t_T`.
    pub times: Vec<f64>,
    /// Predicted positions at each time (`positions[0]` is the observed start cloud).
    pub positions: Vec<Tensor>,
    /// Predicted velocities at each time.
    pub velocities: Vec<Tensor>,
}

impl Forecast {
    /// The prediction as [`Snapshots`] (with velocities), e.g. for `wlm_data::write_particles_npz`.
    ///
    /// # Errors
    /// Non-finite predictions.
    pub fn to_snapshots(&self) -> Result<Snapshots> {
        let velocities: Vec<Option<Tensor>> = self.velocities.iter().cloned().map(Some).collect();
        Ok(Snapshots::from_tensors(
            self.times.clone(),
            &self.positions,
            Some(&velocities),
        )?)
    }
}

/// Initial velocities of a rollout from observed snapshot `start`, from
/// `config.initial_velocities` (see [`VelocitySource`]).
///
/// `known` lists the observed snapshots the estimate may use besides `start` (an
/// evaluation passes the training snapshots; indices out of range are ignored): the OT
/// sources difference `start` with its nearest known neighbours in time (one-sided at the
/// ends of what is known). `Model` rolls the model out from snapshot 0, started with
/// `config.model_start_velocities` (resolved the same way), at `config.steps_per_interval`
/// steps per interval to `t_start`, and carries the simulated velocities onto the observed
/// start cloud along their exact W2 plan ([`carry_velocities`]); at `start = 0` it is the
/// `model_start_velocities` themselves.
///
/// # Shapes
/// → `(n_particles(start), dim)` in the model's dtype, on its device.
///
/// # Errors
/// [`Error::Config`] naming `eval.initial_velocities` (or `eval.model_start_velocities`) for
/// missing data velocities, no known neighbour to difference with, or `Model` without a set
/// `model_start_velocities`; (`start`) for a start out of range; invalid `config`; simulation and
/// exact-OT failures.
pub fn initial_velocities(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    known: &[usize],
    config: &EvalConfig,
) -> Result<Tensor> {
    config.validate()?;
    check_start(snapshots, start)?;
    let source = config.initial_velocities;
    if source != VelocitySource::Model {
        return source_velocities(
            model,
            snapshots,
            start,
            known,
            source,
            "eval.initial_velocities",
        );
    }
    let base = config.model_start_velocities.ok_or_else(|| {
        Error::config(
            "eval.model_start_velocities",
            "Model velocities need the velocities that start the model's rollout from snapshot 0: set it (e.g. to what train.initial_velocities is)",
        )
    })?;
    let v0 = source_velocities(
        model,
        snapshots,
        0,
        known,
        base,
        "eval.model_start_velocities",
    )?;
    if start == 0 {
        return Ok(v0);
    }
    let (dtype, device) = (model.dtype(), model.device());
    let x0 = snapshots.positions_tensor(0, dtype, device)?;
    let times = snapshots.times();
    let states = model.simulate(
        &x0,
        &v0,
        times[0],
        &times[1..=start],
        config.steps_per_interval,
    )?;
    let simulated = states
        .last()
        .ok_or_else(|| Error::Data("the rollout to the start recorded no state".into()))?;
    carried(
        model,
        snapshots,
        start,
        &simulated.positions,
        &simulated.velocities,
    )
}

/// Velocities of a simulated cloud carried onto observed snapshot `start`, in the model's
/// dtype and on its device.
fn carried(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    positions: &Tensor,
    velocities: &Tensor,
) -> Result<Tensor> {
    let observed = snapshots.positions_tensor(start, DType::F64, &Device::Cpu)?;
    let v = carry_velocities(positions, velocities, &observed)?;
    Ok(v.to_dtype(model.dtype())?.to_device(model.device())?)
}

/// The velocities of a source other than `Model` at `start`; `field` names the config field
/// in errors.
fn source_velocities(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    known: &[usize],
    source: VelocitySource,
    field: &str,
) -> Result<Tensor> {
    let (dtype, device) = (model.dtype(), model.device());
    match source {
        VelocitySource::Zero => Ok(snapshots.positions_tensor(start, dtype, device)?.zeros_like()?),
        VelocitySource::Data => snapshots
            .velocities_tensor(start, dtype, device)?
            .ok_or_else(|| {
                Error::config(
                    field,
                    format!("Data was asked for but snapshot {start} has no velocities (use Zero or OtCentral)"),
                )
            }),
        VelocitySource::OtForward | VelocitySource::OtBackward | VelocitySource::OtCentral => {
            let scheme = source.ot_scheme().unwrap_or(Scheme::Central);
            let known = known.iter().copied().filter(|&k| k < snapshots.len());
            let previous = known.clone().filter(|&k| k < start).max();
            let next = known.filter(|&k| k > start).min();
            let v = ot_difference(snapshots, start, previous, next, scheme)
                .map_err(|e| Error::config(field, format!("{source:?}: {e}")))?;
            Ok(v.to_dtype(dtype)?.to_device(device)?)
        }
        VelocitySource::Model => Err(Error::config(
            field,
            "Model velocities cannot start the rollout they are taken from",
        )),
    }
}

fn check_start(snapshots: &Snapshots, start: usize) -> Result<()> {
    if start >= snapshots.len() {
        return Err(Error::config(
            "start",
            format!(
                "snapshot {start} does not exist: the data have {} snapshots",
                snapshots.len()
            ),
        ));
    }
    Ok(())
}

/// The settings of a bare rollout with `velocities` at `steps_per_interval` steps.
fn rollout_config(velocities: VelocitySource, steps_per_interval: usize) -> EvalConfig {
    EvalConfig {
        steps_per_interval,
        initial_velocities: velocities,
        ..EvalConfig::default()
    }
}

/// Rolls out from observed snapshot `start` (with its velocities, zero or an OT estimate)
/// through every later observed time, `steps_per_interval` integrator steps per interval
/// (METHOD.md §4 uses 5).
///
/// The OT sources may use every snapshot of `snapshots`, including the later ones the
/// forecast is compared with; [`evaluate`] restricts them to the training snapshots (use
/// [`initial_velocities`] and [`forecast_with_velocities`] to choose). `Model` velocities need
/// [`EvalConfig::model_start_velocities`]: use those two functions.
///
/// # Shapes
/// Each prediction is `(n_particles(start), dim)`.
///
/// # Errors
/// [`Error::Config`] for a start index out of range, missing velocities, `Model` velocities or
/// 0 steps; force and tensor failures.
pub fn forecast(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    velocities: VelocitySource,
    steps_per_interval: usize,
) -> Result<Forecast> {
    check_start(snapshots, start)?;
    let known: Vec<usize> = (0..snapshots.len()).collect();
    let config = rollout_config(velocities, steps_per_interval);
    let v0 = initial_velocities(model, snapshots, start, &known, &config)?;
    forecast_with_velocities(model, snapshots, start, &v0, steps_per_interval)
}

/// [`forecast`] from observed snapshot `start` with the given initial velocities.
///
/// # Shapes
/// `velocities`: `(n_particles(start), dim)`; each prediction is `(n_particles(start), dim)`.
///
/// # Errors
/// [`Error::Config`] for a start index out of range, velocities of the wrong shape or 0
/// steps; force and tensor failures.
pub fn forecast_with_velocities(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    velocities: &Tensor,
    steps_per_interval: usize,
) -> Result<Forecast> {
    check_start(snapshots, start)?;
    let x0 = snapshots.positions_tensor(start, model.dtype(), model.device())?;
    let v0 = start_velocities(&x0, velocities, start, model)?;
    let times = snapshots.times()[start..].to_vec();
    let states = model.simulate(&x0, &v0, times[0], &times[1..], steps_per_interval)?;
    let mut positions = vec![x0];
    let mut vels = vec![v0];
    for s in states {
        positions.push(s.positions);
        vels.push(s.velocities);
    }
    Ok(Forecast {
        start,
        times,
        positions,
        velocities: vels,
    })
}

/// `velocities` checked against the start cloud `x0`, in the model's dtype and device.
fn start_velocities(
    x0: &Tensor,
    velocities: &Tensor,
    start: usize,
    model: &Model,
) -> Result<Tensor> {
    if velocities.dims() != x0.dims() {
        return Err(Error::config(
            "velocities",
            format!(
                "snapshot {start} has {:?} positions but the initial velocities are {:?}",
                x0.dims(),
                velocities.dims()
            ),
        ));
    }
    Ok(velocities
        .to_dtype(model.dtype())?
        .to_device(model.device())?)
}

/// Interpolation of held-out snapshot `held_out`: start from observed snapshot `held_out − 1`
/// with its velocities (zero, or an OT estimate from the snapshots other than `held_out`)
/// and integrate to `t_{held_out}`. `Model` velocities: see [`forecast`].
///
/// # Shapes
/// → `(n_particles(held_out − 1), dim)`.
///
/// # Errors
/// [`Error::Config`] for `held_out` 0 or out of range, missing velocities, `Model` velocities
/// or 0 steps.
pub fn interpolate(
    model: &Model,
    snapshots: &Snapshots,
    held_out: usize,
    velocities: VelocitySource,
    steps_per_interval: usize,
) -> Result<Tensor> {
    check_held_out(snapshots, held_out)?;
    let known: Vec<usize> = (0..snapshots.len()).filter(|&k| k != held_out).collect();
    let config = rollout_config(velocities, steps_per_interval);
    let v0 = initial_velocities(model, snapshots, held_out - 1, &known, &config)?;
    interpolate_with_velocities(model, snapshots, held_out, &v0, steps_per_interval)
}

/// [`interpolate`] with the given velocities of snapshot `held_out − 1`.
///
/// # Shapes
/// `velocities`: `(n_particles(held_out − 1), dim)` → `(n_particles(held_out − 1), dim)`.
///
/// # Errors
/// [`Error::Config`] for `held_out` 0 or out of range, velocities of the wrong shape or 0
/// steps.
pub fn interpolate_with_velocities(
    model: &Model,
    snapshots: &Snapshots,
    held_out: usize,
    velocities: &Tensor,
    steps_per_interval: usize,
) -> Result<Tensor> {
    check_held_out(snapshots, held_out)?;
    let start = held_out - 1;
    let x0 = snapshots.positions_tensor(start, model.dtype(), model.device())?;
    let v0 = start_velocities(&x0, velocities, start, model)?;
    let t = snapshots.times();
    let states = model.simulate(&x0, &v0, t[start], &[t[held_out]], steps_per_interval)?;
    Ok(states[0].positions.clone())
}

fn check_held_out(snapshots: &Snapshots, held_out: usize) -> Result<()> {
    if held_out == 0 || held_out >= snapshots.len() {
        return Err(Error::config(
            "held_out",
            format!(
                "held-out snapshot must be in 1..{}, got {held_out}",
                snapshots.len()
            ),
        ));
    }
    Ok(())
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
    let mut rows = Vec::with_capacity(split.train.len() + split.test.len());
    for &index in &split.train {
        let role = if index == 0 { Role::Start } else { Role::Train };
        rows.push(jobs.row(index, role, &fc.positions[index], config.w2)?);
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

/// The exact distances of an evaluation.
#[derive(Clone, Copy, Debug)]
enum Metric {
    W1,
    W2,
}

/// One independent exact-OT computation of an evaluation.
#[derive(Debug)]
enum Job {
    /// `metric(prediction, observed[target])`; `prediction` is an f64 CPU tensor.
    Distance {
        metric: Metric,
        prediction: Tensor,
        target: usize,
    },
    /// W1 between observed snapshot `held_out` and the displacement interpolation of its
    /// neighbours `held_out ∓ 1` at `fraction` (the `ot_midpoint` baseline).
    Midpoint { held_out: usize, fraction: f64 },
}

impl Job {
    fn run(&self, observed: &[Tensor]) -> Result<f64> {
        Ok(match self {
            Job::Distance {
                metric: Metric::W1,
                prediction,
                target,
            } => wlm_ot::wasserstein_1(prediction, &observed[*target])?,
            Job::Distance {
                metric: Metric::W2,
                prediction,
                target,
            } => wlm_ot::wasserstein_2(prediction, &observed[*target])?,
            Job::Midpoint { held_out, fraction } => {
                let h = *held_out;
                // The interpolation's points weighted, not repeated: its lcm(N₋, N₊) points
                // against N_h would not fit in memory for coprime sizes of a thousand.
                wlm_ot::displacement_interpolation_w1(
                    &observed[h - 1],
                    &observed[h + 1],
                    *fraction,
                    &observed[h],
                )?
            }
        })
    }
}

/// The indices into [`Jobs`] of one per-snapshot score.
struct Row {
    index: usize,
    role: Role,
    w1: usize,
    w2: Option<usize>,
}

/// A batch of exact-OT computations against the observed snapshots, run in parallel.
struct Jobs<'a> {
    observed: &'a [Tensor],
    jobs: Vec<Job>,
}

impl<'a> Jobs<'a> {
    fn new(observed: &'a [Tensor]) -> Self {
        Self {
            observed,
            jobs: Vec::new(),
        }
    }

    /// Queues `metric(prediction, observed[target])`; returns its index in the results.
    fn distance(&mut self, metric: Metric, prediction: Tensor, target: usize) -> usize {
        self.jobs.push(Job::Distance {
            metric,
            prediction,
            target,
        });
        self.jobs.len() - 1
    }

    /// Queues W1 (and W2 when `w2`) of `prediction` (any dtype and device) against observed
    /// snapshot `index`.
    fn row(&mut self, index: usize, role: Role, prediction: &Tensor, w2: bool) -> Result<Row> {
        let prediction = to_cpu_f64(prediction)?;
        let w2 = w2.then(|| self.distance(Metric::W2, prediction.clone(), index));
        Ok(Row {
            index,
            role,
            w1: self.distance(Metric::W1, prediction, index),
            w2,
        })
    }

    /// Runs every job (in parallel) and returns the values in the order they were queued.
    ///
    /// # Errors
    /// The first failure in that order.
    fn run(self) -> Result<Vec<f64>> {
        let observed = self.observed;
        let results: Vec<Result<f64>> = self.jobs.par_iter().map(|j| j.run(observed)).collect();
        results.into_iter().collect()
    }
}

/// Baselines waiting for their queued W1s: `(name, [(snapshot index, job index)])`.
struct BaselinePlan(Vec<(&'static str, Vec<(usize, usize)>)>);

impl BaselinePlan {
    fn scores(&self, values: &[f64]) -> Vec<BaselineScore> {
        self.0
            .iter()
            .map(|(name, jobs)| {
                baseline_score(name, jobs.iter().map(|&(h, j)| (h, values[j])).collect())
            })
            .collect()
    }
}

/// Queues the baselines of `split` (see [`baselines`]) on `jobs`.
fn plan_baselines(
    snapshots: &Snapshots,
    split: &Split,
    observed: &[Tensor],
    jobs: &mut Jobs<'_>,
) -> Result<BaselinePlan> {
    if !split.is_forecast() {
        return plan_interpolation_baselines(snapshots, &split.test, jobs);
    }
    let last = *split
        .train
        .last()
        .ok_or_else(|| Error::config("split", "no training snapshots"))?;
    let x_last = &observed[last];
    let mut plan = Vec::new();
    let repeat = split
        .test
        .iter()
        .map(|&h| (h, jobs.distance(Metric::W1, x_last.clone(), h)))
        .collect();
    plan.push(("repeat_last", repeat));
    if let Some(v) = snapshots.velocities_tensor(last, DType::F64, &Device::Cpu)? {
        let times = snapshots.times();
        let mut cv = Vec::with_capacity(split.test.len());
        for &h in &split.test {
            let moved = (x_last + (&v * (times[h] - times[last]))?)?;
            cv.push((h, jobs.distance(Metric::W1, moved, h)));
        }
        plan.push(("constant_velocity", cv));
    }
    Ok(BaselinePlan(plan))
}

/// Queues the interpolation baselines of held-out snapshots `test` on `jobs`.
fn plan_interpolation_baselines(
    snapshots: &Snapshots,
    test: &[usize],
    jobs: &mut Jobs<'_>,
) -> Result<BaselinePlan> {
    if let Some(&h) = test.iter().find(|&&h| h == 0 || h >= snapshots.len()) {
        return Err(Error::config(
            "held_out",
            format!(
                "held-out snapshot must be in 1..{}, got {h}",
                snapshots.len()
            ),
        ));
    }
    let previous = test
        .iter()
        .map(|&h| {
            (
                h,
                jobs.distance(Metric::W1, jobs.observed[h - 1].clone(), h),
            )
        })
        .collect();
    let mut plan = vec![("repeat_previous", previous)];
    // The OT midpoint: displacement interpolation between the neighbours h − 1 and h + 1
    // along their exact W2 plan, at the held-out time.
    let times = snapshots.times();
    let midpoint: Vec<(usize, usize)> = test
        .iter()
        .filter(|&&h| h + 1 < snapshots.len())
        .map(|&h| {
            let s = (times[h] - times[h - 1]) / (times[h + 1] - times[h - 1]);
            jobs.jobs.push(Job::Midpoint {
                held_out: h,
                fraction: s.clamp(0.0, 1.0),
            });
            (h, jobs.jobs.len() - 1)
        })
        .collect();
    if !midpoint.is_empty() {
        plan.push(("ot_midpoint", midpoint));
    }
    Ok(BaselinePlan(plan))
}

/// A baseline's per-snapshot W1 with its mean ± SE.
fn baseline_score(name: &str, w1: Vec<(usize, f64)>) -> BaselineScore {
    let values: Vec<f64> = w1.iter().map(|(_, w)| *w).collect();
    BaselineScore {
        name: name.into(),
        test_w1: MeanSe::of(&values),
        w1,
    }
}

/// The baselines of METHOD.md §4 on the test snapshots. Forecast split: `repeat_last` (the last
/// training snapshot) and, when it has velocities, `constant_velocity`
/// (`x + (t_h − t_last) v`). Interpolation split: `repeat_previous` (observed snapshot `h − 1`)
/// and, when `h + 1` exists, `ot_midpoint` (displacement interpolation between snapshots
/// `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`). The W1s are computed
/// in parallel.
///
/// # Errors
/// [`Error::Config`] (`split`) for a snapshot index the data do not have or no training
/// snapshots; W1 failures.
pub fn baselines(snapshots: &Snapshots, split: &Split) -> Result<Vec<BaselineScore>> {
    check_split(snapshots, split)?;
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    let plan = plan_baselines(snapshots, split, &observed, &mut jobs)?;
    Ok(plan.scores(&jobs.run()?))
}

/// The interpolation baselines of held-out snapshots `test`: `repeat_previous` (observed
/// snapshot `h − 1`) and, where `h + 1` exists, `ot_midpoint` (displacement interpolation
/// between snapshots `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`). The
/// W1s are computed in parallel.
///
/// # Errors
/// [`Error::Config`] (`held_out`) for a test index 0 or out of range; W1 failures.
pub fn interpolation_baselines(
    snapshots: &Snapshots,
    test: &[usize],
) -> Result<Vec<BaselineScore>> {
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    let plan = plan_interpolation_baselines(snapshots, test, &mut jobs)?;
    Ok(plan.scores(&jobs.run()?))
}

/// Exact W1 of each prediction against its observed snapshot, computed in parallel, in the
/// order given: e.g. the table of `wlm forecast` or `wlm interpolate`.
///
/// # Shapes
/// Each prediction `(n, dim)` (any dtype and device) against snapshot `k`'s `(n_k, dim)`.
///
/// # Errors
/// [`Error::Config`] (`snapshot`) for an index the data do not have; W1 failures, the first
/// in the order given.
pub fn w1_scores(snapshots: &Snapshots, pairs: &[(usize, &Tensor)]) -> Result<Vec<f64>> {
    if let Some(&(k, _)) = pairs.iter().find(|(k, _)| *k >= snapshots.len()) {
        return Err(Error::config(
            "snapshot",
            format!(
                "snapshot {k} does not exist: the data have {} snapshots",
                snapshots.len()
            ),
        ));
    }
    let observed = observed_positions(snapshots)?;
    let mut jobs = Jobs::new(&observed);
    for &(k, prediction) in pairs {
        jobs.distance(Metric::W1, to_cpu_f64(prediction)?, k);
    }
    jobs.run()
}

impl Trainer {
    /// [`evaluate`] with the EMA weights swapped in when `config.use_ema` (restored after).
    ///
    /// # Errors
    /// As [`evaluate`].
    pub fn evaluate(
        &self,
        snapshots: &Snapshots,
        split: &Split,
        config: &EvalConfig,
    ) -> Result<Evaluation> {
        self.evaluate_with_predictions(snapshots, split, config)
            .map(|(evaluation, _)| evaluation)
    }

    /// [`evaluate_with_predictions`] with the EMA weights swapped in when `config.use_ema`
    /// (restored after); an unset [`EvalConfig::model_start_velocities`] is the training
    /// config's `initial_velocities`.
    ///
    /// # Errors
    /// As [`evaluate_with_predictions`].
    pub fn evaluate_with_predictions(
        &self,
        snapshots: &Snapshots,
        split: &Split,
        config: &EvalConfig,
    ) -> Result<(Evaluation, Predictions)> {
        let config = config.with_training_start(&self.config);
        let run = || evaluate_with_predictions(&self.model, snapshots, split, &config);
        if config.use_ema {
            self.ema.with_shadows(run)
        } else {
            run()
        }
    }

    /// The forecast from snapshot 0 with the EMA weights when `config.use_ema`; its initial
    /// velocities are [`initial_velocities`] with every snapshot known (`Model`: the
    /// `model_start_velocities`, by default the training config's `initial_velocities`).
    ///
    /// # Errors
    /// As [`initial_velocities`] and [`forecast_with_velocities`].
    pub fn forecast(&self, snapshots: &Snapshots, config: &EvalConfig) -> Result<Forecast> {
        let config = config.with_training_start(&self.config);
        let known: Vec<usize> = (0..snapshots.len()).collect();
        let run = || {
            let v0 = initial_velocities(&self.model, snapshots, 0, &known, &config)?;
            forecast_with_velocities(&self.model, snapshots, 0, &v0, config.steps_per_interval)
        };
        if config.use_ema {
            self.ema.with_shadows(run)
        } else {
            run()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SplitConfig;
    use crate::model::{EnergyConfig, ModelConfig, Precision};
    use rand::{Rng, SeedableRng};
    use wlm_energy::AnalyticPotential;

    /// 9 snapshots, Δt = 0.25, of 24, 28 or 32 points in 2-D with velocities: the sizes differ
    /// so that predictions and observations do too.
    fn data() -> Snapshots {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n_snapshots = 9;
        let times: Vec<f64> = (0..n_snapshots).map(|k| 0.25 * k as f64).collect();
        let mut positions = Vec::new();
        let mut velocities = Vec::new();
        for k in 0..n_snapshots {
            let n = 24 + 4 * (k % 3);
            let drift = 0.3 * k as f64;
            let x: Vec<f64> = (0..2 * n)
                .map(|i| rng.random_range(-1.0..1.0) + if i % 2 == 0 { drift } else { 0.0 })
                .collect();
            let v: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-0.5..0.5)).collect();
            positions.push(x);
            velocities.push(Some(v));
        }
        Snapshots::new(times, 2, positions, Some(velocities)).expect("valid snapshots")
    }

    /// An f32 model with an interacting analytic energy (no parameters).
    fn model() -> Model {
        let config = ModelConfig {
            energy: EnergyConfig::Analytic {
                potential: AnalyticPotential::HarmonicRepulsion {
                    stiffness: 1.0,
                    repulsion: 0.5,
                    length: 0.5,
                },
                dim: 2,
            },
            precision: Precision::F32,
            ..ModelConfig::default()
        };
        Model::new(config, &Device::Cpu).expect("model")
    }

    fn observed(data: &Snapshots, k: usize) -> Tensor {
        data.positions_tensor(k, DType::F64, &Device::Cpu)
            .expect("observed")
    }

    /// Plain sequential W1 (or W2) of a prediction (any dtype) against observed snapshot `k`.
    fn w(data: &Snapshots, prediction: &Tensor, k: usize, w2: bool) -> f64 {
        let x = prediction.to_dtype(DType::F64).expect("f64");
        let y = observed(data, k);
        if w2 {
            wlm_ot::wasserstein_2(&x, &y).expect("w2")
        } else {
            wlm_ot::wasserstein_1(&x, &y).expect("w1")
        }
    }

    fn baseline<'a>(e: &'a Evaluation, name: &str) -> &'a BaselineScore {
        e.baselines
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no baseline {name}"))
    }

    #[test]
    fn parallel_forecast_evaluation_equals_sequential_scoring() -> anyhow::Result<()> {
        let (model, data) = (model(), data());
        let split = SplitConfig::Forecast { n_train: 5 }.resolve(data.len())?;
        let config = EvalConfig::default();
        let (e, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
        // The forecast kept is the rollout `forecast` gives.
        let fresh = forecast(&model, &data, 0, config.initial_velocities, 5)?;
        assert_eq!(p.forecast.times, fresh.times);
        for (a, b) in p.forecast.positions.iter().zip(&fresh.positions) {
            assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
        }
        assert!(p.interpolations.is_empty());
        // Model scores, W1 and W2, at every snapshot, in index order.
        let indices: Vec<usize> = e.scores.iter().map(|s| s.index).collect();
        assert_eq!(indices, (0..data.len()).collect::<Vec<_>>());
        for s in &e.scores {
            let prediction = &p.forecast.positions[s.index];
            assert_eq!(
                s.w1,
                w(&data, prediction, s.index, false),
                "W1 at {}",
                s.index
            );
            assert_eq!(
                s.w2,
                Some(w(&data, prediction, s.index, true)),
                "W2 at {}",
                s.index
            );
            assert_eq!(s.time, data.times()[s.index]);
        }
        assert_eq!(e.scores[0].role, Role::Start);
        let train: Vec<f64> = e.scores[1..5].iter().map(|s| s.w1).collect();
        assert_eq!(e.train_w1, MeanSe::of(&train));
        // The restart from the last training snapshot.
        let restart = p.from_last.as_ref().expect("restart");
        assert_eq!(restart.start, 4);
        let expected: Vec<(usize, f64)> = (5..data.len())
            .map(|h| (h, w(&data, &restart.positions[h - 4], h, false)))
            .collect();
        assert_eq!(e.from_last, expected);
        // The baselines.
        let x_last = observed(&data, 4);
        let v_last = data
            .velocities_tensor(4, DType::F64, &Device::Cpu)?
            .expect("velocities");
        let repeat: Vec<(usize, f64)> = (5..data.len())
            .map(|h| (h, w(&data, &x_last, h, false)))
            .collect();
        assert_eq!(baseline(&e, "repeat_last").w1, repeat);
        let mut moved = Vec::new();
        for h in 5..data.len() {
            let dt = data.times()[h] - data.times()[4];
            moved.push((h, w(&data, &(&x_last + (&v_last * dt)?)?, h, false)));
        }
        assert_eq!(baseline(&e, "constant_velocity").w1, moved);
        assert_eq!(e.baselines, baselines(&data, &split)?);
        // Without W2 the W1s are the same.
        let no_w2 = EvalConfig {
            w2: false,
            ..config
        };
        let e1 = evaluate(&model, &data, &split, &no_w2)?;
        assert!(e1.scores.iter().all(|s| s.w2.is_none()) && e1.test_w2.is_none());
        for (a, b) in e1.scores.iter().zip(&e.scores) {
            assert_eq!(a.w1, b.w1);
        }
        Ok(())
    }

    #[test]
    fn parallel_interpolation_evaluation_equals_sequential_scoring() -> anyhow::Result<()> {
        let (model, data) = (model(), data());
        let held_out = vec![2, 3, 6, 8];
        let split = SplitConfig::Holdout {
            indices: held_out.clone(),
        }
        .resolve(data.len())?;
        let config = EvalConfig::default();
        let (e, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
        assert!(!e.forecast && p.from_last.is_none() && e.from_last.is_empty());
        let kept: Vec<usize> = p.interpolations.iter().map(|(h, _)| *h).collect();
        assert_eq!(kept, held_out);
        for s in &e.scores {
            let prediction = if s.role == Role::Test {
                let fresh = interpolate(&model, &data, s.index, config.initial_velocities, 5)?;
                let (_, kept) = &p.interpolations[held_out
                    .iter()
                    .position(|&h| h == s.index)
                    .expect("held out")];
                assert_eq!(kept.to_vec2::<f32>()?, fresh.to_vec2::<f32>()?);
                fresh
            } else {
                p.forecast.positions[s.index].clone()
            };
            assert_eq!(
                s.w1,
                w(&data, &prediction, s.index, false),
                "W1 at {}",
                s.index
            );
            assert_eq!(
                s.w2,
                Some(w(&data, &prediction, s.index, true)),
                "W2 at {}",
                s.index
            );
        }
        let roles: Vec<(usize, Role)> = e.scores.iter().map(|s| (s.index, s.role)).collect();
        let expected_roles: Vec<(usize, Role)> = (0..data.len())
            .map(|k| match k {
                0 => (k, Role::Start),
                k if held_out.contains(&k) => (k, Role::Test),
                k => (k, Role::Train),
            })
            .collect();
        assert_eq!(roles, expected_roles);
        let previous: Vec<(usize, f64)> = held_out
            .iter()
            .map(|&h| (h, w(&data, &observed(&data, h - 1), h, false)))
            .collect();
        assert_eq!(baseline(&e, "repeat_previous").w1, previous);
        let times = data.times();
        let mut midpoint = Vec::new();
        for &h in held_out.iter().filter(|&&h| h + 1 < data.len()) {
            let s = (times[h] - times[h - 1]) / (times[h + 1] - times[h - 1]);
            let mid = wlm_ot::displacement_interpolation(
                &observed(&data, h - 1),
                &observed(&data, h + 1),
                s,
            )?;
            midpoint.push((h, w(&data, &mid, h, false)));
        }
        assert_eq!(midpoint.len(), 3, "snapshot 8 is the last: no midpoint");
        // The baseline weights the interpolation's points instead of repeating them: the same
        // W1 up to rounding.
        let scored = &baseline(&e, "ot_midpoint").w1;
        assert_eq!(scored.len(), midpoint.len());
        for (&(k, got), &(h, want)) in scored.iter().zip(&midpoint) {
            assert_eq!(k, h);
            assert!(
                (got - want).abs() <= 1e-12 * (1.0 + want),
                "{got} vs {want}"
            );
        }
        assert_eq!(e.baselines, interpolation_baselines(&data, &held_out)?);
        Ok(())
    }

    #[test]
    fn scores_do_not_depend_on_the_number_of_threads() -> anyhow::Result<()> {
        let (model, data) = (model(), data());
        let fc = forecast(&model, &data, 0, VelocitySource::Data, 5)?;
        let pairs: Vec<(usize, &Tensor)> = (0..data.len())
            .rev()
            .map(|k| (k, &fc.positions[k]))
            .collect();
        let sequential: Vec<f64> = pairs.iter().map(|&(k, x)| w(&data, x, k, false)).collect();
        let forecast_split = SplitConfig::Forecast { n_train: 3 }.resolve(data.len())?;
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            let (scores, forecast_baselines, interpolation) = pool.install(|| {
                Ok::<_, Error>((
                    w1_scores(&data, &pairs)?,
                    baselines(&data, &forecast_split)?,
                    interpolation_baselines(&data, &[1, 4, 7])?,
                ))
            })?;
            assert_eq!(scores, sequential, "{threads} threads: the order given");
            assert_eq!(forecast_baselines, baselines(&data, &forecast_split)?);
            assert_eq!(interpolation, interpolation_baselines(&data, &[1, 4, 7])?);
        }
        Ok(())
    }

    #[test]
    fn a_split_index_the_data_lack_is_an_error_naming_the_split() -> anyhow::Result<()> {
        let (model, data) = (model(), data());
        let split = Split {
            train: vec![0, 1, 2],
            test: vec![3, 12],
        };
        for message in [
            evaluate(&model, &data, &split, &EvalConfig::default())
                .err()
                .map(|e| e.to_string()),
            baselines(&data, &split).err().map(|e| e.to_string()),
            w1_scores(&data, &[(12, &observed(&data, 0))])
                .err()
                .map(|e| e.to_string()),
        ] {
            let message = message.expect("an error");
            assert!(message.contains("snapshot 12 does not exist"), "{message}");
            assert!(message.contains("9 snapshots"), "{message}");
        }
        let message = evaluate(&model, &data, &split, &EvalConfig::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("`split`"), "{message}");
        Ok(())
    }

    /// An f64 harmonic-repulsion model with stiffness `stiffness`.
    fn model_f64(stiffness: f64) -> Model {
        let config = ModelConfig {
            energy: EnergyConfig::Analytic {
                potential: AnalyticPotential::HarmonicRepulsion {
                    stiffness,
                    repulsion: 0.5,
                    length: 0.5,
                },
                dim: 2,
            },
            precision: Precision::F64,
            ..ModelConfig::default()
        };
        Model::new(config, &Device::Cpu).expect("model")
    }

    /// 9 snapshots (Δt = 0.25) of 20 particles simulated by `truth` at 5 steps per interval,
    /// each snapshot's rows shuffled (unpaired), with their true velocities.
    fn simulated_data(truth: &Model) -> anyhow::Result<Snapshots> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let n = 20;
        let x0: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v0: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-0.5..0.5)).collect();
        let x0 = Tensor::from_vec(x0, (n, 2), &Device::Cpu)?;
        let v0 = Tensor::from_vec(v0, (n, 2), &Device::Cpu)?;
        let times: Vec<f64> = (0..9).map(|k| 0.25 * k as f64).collect();
        let states = truth.simulate(&x0, &v0, 0.0, &times[1..], 5)?;
        let mut positions = vec![x0];
        let mut velocities = vec![Some(v0)];
        for s in states {
            let mut order: Vec<u32> = (0..n as u32).collect();
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
            let order = Tensor::new(order.as_slice(), &Device::Cpu)?;
            positions.push(s.positions.index_select(&order, 0)?);
            velocities.push(Some(s.velocities.index_select(&order, 0)?));
        }
        Ok(Snapshots::from_tensors(
            times,
            &positions,
            Some(&velocities),
        )?)
    }

    fn same(a: &Tensor, b: &Tensor) -> anyhow::Result<bool> {
        Ok(a.to_vec2::<f64>()? == b.to_vec2::<f64>()?)
    }

    /// On data the model itself simulated (rows shuffled at every snapshot), the model's own
    /// velocities carried onto the observed restarts are the true ones, so `Model` restarts
    /// reproduce the `Data` restarts exactly; with another model they differ, and they are the
    /// standalone `initial_velocities` rollout's.
    #[test]
    fn model_velocities_restart_from_the_models_own_rollout() -> anyhow::Result<()> {
        let truth = model_f64(1.0);
        let data = simulated_data(&truth)?;
        let data_config = EvalConfig {
            w2: false,
            ..EvalConfig::default()
        };
        let model_config = EvalConfig {
            initial_velocities: VelocitySource::Model,
            model_start_velocities: Some(VelocitySource::Data),
            ..data_config.clone()
        };
        for split in [
            SplitConfig::Holdout {
                indices: vec![3, 6],
            }
            .resolve(data.len())?,
            SplitConfig::Forecast { n_train: 5 }.resolve(data.len())?,
        ] {
            let (e_data, p_data) = evaluate_with_predictions(&truth, &data, &split, &data_config)?;
            let (e_model, p_model) =
                evaluate_with_predictions(&truth, &data, &split, &model_config)?;
            assert_eq!(e_model, e_data);
            for ((h, a), (_, b)) in p_model.interpolations.iter().zip(&p_data.interpolations) {
                assert!(same(a, b)?, "interpolation of {h}");
            }
            if let (Some(a), Some(b)) = (&p_model.from_last, &p_data.from_last) {
                assert!(
                    same(&a.velocities[0], &b.velocities[0])?,
                    "restart velocities"
                );
            }
            assert_eq!(
                p_model.interpolations.len() + usize::from(p_model.from_last.is_some()),
                2 - usize::from(split.is_forecast()),
            );
        }
        // Carried velocities equal the true ones at every later snapshot.
        let known: Vec<usize> = (0..data.len()).collect();
        for start in 1..data.len() {
            let carried = initial_velocities(&truth, &data, start, &known, &model_config)?;
            let truth_v = data
                .velocities_tensor(start, DType::F64, &Device::Cpu)?
                .expect("velocities");
            assert!(same(&carried, &truth_v)?, "snapshot {start}");
        }
        // Another model: its own velocities are not the data's, and evaluation uses the
        // standalone rollout's.
        let wrong = model_f64(3.0);
        let split = SplitConfig::Holdout {
            indices: vec![3, 6],
        }
        .resolve(data.len())?;
        let (_, p) = evaluate_with_predictions(&wrong, &data, &split, &model_config)?;
        for (h, prediction) in &p.interpolations {
            let v = initial_velocities(&wrong, &data, h - 1, &split.train, &model_config)?;
            let truth_v = data
                .velocities_tensor(h - 1, DType::F64, &Device::Cpu)?
                .expect("velocities");
            assert!(!same(&v, &truth_v)?, "snapshot {}", h - 1);
            let fresh = interpolate_with_velocities(&wrong, &data, *h, &v, 5)?;
            assert!(same(prediction, &fresh)?, "interpolation of {h}");
        }
        // Without a start source, `Model` is an error naming the field.
        let unset = EvalConfig {
            model_start_velocities: None,
            ..model_config
        };
        let message = evaluate(&truth, &data, &split, &unset)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("eval.model_start_velocities"), "{message}");
        Ok(())
    }

    /// An interpolation's OT velocities never see the held-out snapshot: the forward
    /// difference at `h − 1` is taken with `h + 1`.
    #[test]
    fn ot_velocities_of_an_interpolation_skip_the_held_out_snapshot() -> anyhow::Result<()> {
        let (model, data) = (model_f64(1.0), data());
        let split = SplitConfig::Holdout { indices: vec![4] }.resolve(data.len())?;
        let config = EvalConfig {
            initial_velocities: VelocitySource::OtForward,
            w2: false,
            ..EvalConfig::default()
        };
        let (_, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
        let skipping = crate::ot_finite_difference(&data.select(&[3, 5])?, 0, Scheme::Forward)?;
        let leaking = crate::ot_finite_difference(&data, 3, Scheme::Forward)?;
        let expected = interpolate_with_velocities(&model, &data, 4, &skipping, 5)?;
        let leaked = interpolate_with_velocities(&model, &data, 4, &leaking, 5)?;
        assert!(same(&p.interpolations[0].1, &expected)?);
        assert!(!same(&p.interpolations[0].1, &leaked)?);
        // The bare `interpolate` also leaves the held-out snapshot out.
        let bare = interpolate(&model, &data, 4, VelocitySource::OtForward, 5)?;
        assert!(same(&bare, &expected)?);
        // OT estimates start the forecast from snapshot 0 with the next training snapshot.
        let v0 = crate::ot_finite_difference(&data, 0, Scheme::Forward)?;
        let fc = forecast_with_velocities(&model, &data, 0, &v0, 5)?;
        assert!(same(&p.forecast.positions[8], &fc.positions[8])?);
        Ok(())
    }
}

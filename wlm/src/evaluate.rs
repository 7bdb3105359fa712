//! Forecast, interpolation and their exact-W1/W2 evaluation, with the baselines computed by
//! the same code (SPEC 4).

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use wlm_data::Snapshots;

use crate::config::{EvalConfig, Split, VelocitySource};
use crate::model::Model;
use crate::trainer::Trainer;
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

fn initial_state(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    velocities: VelocitySource,
) -> Result<(Tensor, Tensor)> {
    let (dtype, device) = (model.dtype(), model.device());
    let x0 = snapshots.positions_tensor(start, dtype, device)?;
    let v0 = match velocities {
        VelocitySource::Zero => x0.zeros_like()?,
        VelocitySource::Data => snapshots
            .velocities_tensor(start, dtype, device)?
            .ok_or_else(|| {
                Error::config(
                    "eval.initial_velocities",
                    format!("Data was asked for but snapshot {start} has no velocities (use Zero)"),
                )
            })?,
    };
    Ok((x0, v0))
}

/// Rolls out from observed snapshot `start` (with its velocities, or zero) through every later
/// observed time, `steps_per_interval` integrator steps per interval (SPEC 4 uses 5).
///
/// # Shapes
/// Each prediction is `(n_particles(start), dim)`.
///
/// # Errors
/// [`Error::Config`] for a start index out of range, missing velocities or 0 steps; force
/// and tensor failures.
pub fn forecast(
    model: &Model,
    snapshots: &Snapshots,
    start: usize,
    velocities: VelocitySource,
    steps_per_interval: usize,
) -> Result<Forecast> {
    if start >= snapshots.len() {
        return Err(Error::config(
            "start",
            format!("snapshot {start} does not exist"),
        ));
    }
    let (x0, v0) = initial_state(model, snapshots, start, velocities)?;
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

/// Interpolation of held-out snapshot `held_out`: start from observed snapshot `held_out − 1`
/// with its velocities (or zero) and integrate to `t_{held_out}`.
///
/// # Shapes
/// → `(n_particles(held_out − 1), dim)`.
///
/// # Errors
/// [`Error::Config`] for `held_out` 0 or out of range, missing velocities or 0 steps.
pub fn interpolate(
    model: &Model,
    snapshots: &Snapshots,
    held_out: usize,
    velocities: VelocitySource,
    steps_per_interval: usize,
) -> Result<Tensor> {
    if held_out == 0 || held_out >= snapshots.len() {
        return Err(Error::config(
            "held_out",
            format!(
                "held-out snapshot must be in 1..{}, got {held_out}",
                snapshots.len()
            ),
        ));
    }
    let start = held_out - 1;
    let (x0, v0) = initial_state(model, snapshots, start, velocities)?;
    let t = snapshots.times();
    let states = model.simulate(&x0, &v0, t[start], &[t[held_out]], steps_per_interval)?;
    Ok(states[0].positions.clone())
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

/// Evaluation of a model on a split (SPEC 4).
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

/// Forecast from snapshot 0 (and interpolation of held-out snapshots), scored by exact W1
/// (and W2) against every observed snapshot, with the baselines.
///
/// # Errors
/// As [`forecast`], [`interpolate`]; W1/W2 failures (e.g. a problem too large for exact OT).
pub fn evaluate(
    model: &Model,
    snapshots: &Snapshots,
    split: &Split,
    config: &EvalConfig,
) -> Result<Evaluation> {
    config.validate()?;
    let is_forecast = split.is_forecast();
    let fc = forecast(
        model,
        snapshots,
        0,
        config.initial_velocities,
        config.steps_per_interval,
    )?;
    let mut scores = Vec::new();
    let score = |index: usize, role: Role, prediction: &Tensor| -> Result<SnapshotScore> {
        let y = snapshots.positions_tensor(index, DType::F64, &candle_core::Device::Cpu)?;
        let x = prediction
            .to_dtype(DType::F64)?
            .to_device(&candle_core::Device::Cpu)?;
        let w1 = wlm_ot::wasserstein_1(&x, &y)?;
        let w2 = if config.w2 {
            Some(wlm_ot::wasserstein_2(&x, &y)?)
        } else {
            None
        };
        Ok(SnapshotScore {
            index,
            time: snapshots.times()[index],
            role,
            w1,
            w2,
        })
    };
    for &index in &split.train {
        let role = if index == 0 { Role::Start } else { Role::Train };
        scores.push(score(index, role, &fc.positions[index])?);
    }
    for &index in &split.test {
        let prediction = if is_forecast {
            fc.positions[index].clone()
        } else {
            interpolate(
                model,
                snapshots,
                index,
                config.initial_velocities,
                config.steps_per_interval,
            )?
        };
        scores.push(score(index, Role::Test, &prediction)?);
    }
    scores.sort_by_key(|s| s.index);
    let mut from_last = Vec::new();
    if let (true, Some(&last)) = (is_forecast, split.train.last()) {
        if !split.test.is_empty() && last > 0 {
            let restart = forecast(
                model,
                snapshots,
                last,
                config.initial_velocities,
                config.steps_per_interval,
            )?;
            for &index in split.test.iter().filter(|&&h| h > last) {
                let s = score(index, Role::Test, &restart.positions[index - last])?;
                from_last.push((index, s.w1));
            }
        }
    }
    let from_last_values: Vec<f64> = from_last.iter().map(|(_, w)| *w).collect();
    let pick = |role: Role, w2: bool| -> Option<MeanSe> {
        let v: Vec<f64> = scores
            .iter()
            .filter(|s| s.role == role)
            .filter_map(|s| if w2 { s.w2 } else { Some(s.w1) })
            .collect();
        MeanSe::of(&v)
    };
    Ok(Evaluation {
        forecast: is_forecast,
        train_w1: pick(Role::Train, false),
        test_w1: pick(Role::Test, false),
        train_w2: pick(Role::Train, true),
        test_w2: pick(Role::Test, true),
        baselines: baselines(snapshots, split)?,
        scores,
        test_w1_from_last: MeanSe::of(&from_last_values),
        from_last,
    })
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

/// The baselines of SPEC 4 on the test snapshots. Forecast split: `repeat_last` (the last
/// training snapshot) and, when it has velocities, `constant_velocity`
/// (`x + (t_h − t_last) v`). Interpolation split: `repeat_previous` (observed snapshot `h − 1`)
/// and, when `h + 1` exists, `ot_midpoint` (displacement interpolation between snapshots
/// `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`).
///
/// # Errors
/// W1 failures.
pub fn baselines(snapshots: &Snapshots, split: &Split) -> Result<Vec<BaselineScore>> {
    let cpu = candle_core::Device::Cpu;
    let tensor = |k: usize| snapshots.positions_tensor(k, DType::F64, &cpu);
    let mut out = Vec::new();
    if split.is_forecast() {
        let last = *split
            .train
            .last()
            .ok_or_else(|| Error::config("split", "no training snapshots"))?;
        let x_last = tensor(last)?;
        let mut repeat = Vec::new();
        for &h in &split.test {
            repeat.push((h, wlm_ot::wasserstein_1(&x_last, &tensor(h)?)?));
        }
        out.push(baseline_score("repeat_last", repeat));
        if let Some(v) = snapshots.velocities_tensor(last, DType::F64, &cpu)? {
            let mut cv = Vec::new();
            for &h in &split.test {
                let dt = snapshots.times()[h] - snapshots.times()[last];
                let moved = (&x_last + (&v * dt)?)?;
                cv.push((h, wlm_ot::wasserstein_1(&moved, &tensor(h)?)?));
            }
            out.push(baseline_score("constant_velocity", cv));
        }
    } else {
        out.extend(interpolation_baselines(snapshots, &split.test)?);
    }
    Ok(out)
}

/// The interpolation baselines of held-out snapshots `test`: `repeat_previous` (observed
/// snapshot `h − 1`) and, where `h + 1` exists, `ot_midpoint` (displacement interpolation
/// between snapshots `h − 1` and `h + 1` along their exact W2 plan, at the time of `h`).
///
/// # Errors
/// A test index 0 or out of range; W1 failures.
pub fn interpolation_baselines(
    snapshots: &Snapshots,
    test: &[usize],
) -> Result<Vec<BaselineScore>> {
    if let Some(&h) = test.iter().find(|&&h| h == 0 || h >= snapshots.len()) {
        return Err(Error::config(
            "held_out",
            format!(
                "held-out snapshot must be in 1..{}, got {h}",
                snapshots.len()
            ),
        ));
    }
    let cpu = candle_core::Device::Cpu;
    let tensor = |k: usize| snapshots.positions_tensor(k, DType::F64, &cpu);
    let mut out = Vec::new();
    let mut previous = Vec::new();
    for &h in test {
        previous.push((h, wlm_ot::wasserstein_1(&tensor(h - 1)?, &tensor(h)?)?));
    }
    out.push(baseline_score("repeat_previous", previous));
    // The OT midpoint: displacement interpolation between the neighbours h − 1 and h + 1
    // along their exact W2 plan, at the held-out time.
    let mut midpoint = Vec::new();
    for &h in test.iter().filter(|&&h| h + 1 < snapshots.len()) {
        let times = snapshots.times();
        let s = (times[h] - times[h - 1]) / (times[h + 1] - times[h - 1]);
        let mid = wlm_ot::displacement_interpolation(
            &tensor(h - 1)?,
            &tensor(h + 1)?,
            s.clamp(0.0, 1.0),
        )?;
        midpoint.push((h, wlm_ot::wasserstein_1(&mid, &tensor(h)?)?));
    }
    if !midpoint.is_empty() {
        out.push(baseline_score("ot_midpoint", midpoint));
    }
    Ok(out)
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
        if config.use_ema {
            self.ema
                .with_shadows(|| evaluate(&self.model, snapshots, split, config))
        } else {
            evaluate(&self.model, snapshots, split, config)
        }
    }

    /// [`forecast`] from snapshot 0 with the EMA weights when `config.use_ema`.
    ///
    /// # Errors
    /// As [`forecast`].
    pub fn forecast(&self, snapshots: &Snapshots, config: &EvalConfig) -> Result<Forecast> {
        let run = || {
            forecast(
                &self.model,
                snapshots,
                0,
                config.initial_velocities,
                config.steps_per_interval,
            )
        };
        if config.use_ema {
            self.ema.with_shadows(run)
        } else {
            run()
        }
    }
}

//! Predictions from a start snapshot: the start velocities, the forecast, the interpolation of a
//! held-out snapshot.

use candle_core::{DType, Device, Tensor};
use wlm_data::Snapshots;

use crate::config::{EvalConfig, VelocitySource};
use crate::model::Model;
use crate::velocity::{carry_velocities, ot_difference, Scheme};
use crate::{Error, Result};

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
pub(super) fn carried(
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
pub(super) fn source_velocities(
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

pub(super) fn check_start(snapshots: &Snapshots, start: usize) -> Result<()> {
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
pub(super) fn rollout_config(velocities: VelocitySource, steps_per_interval: usize) -> EvalConfig {
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
pub(super) fn start_velocities(
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

pub(super) fn check_held_out(snapshots: &Snapshots, held_out: usize) -> Result<()> {
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

//! Multi-step rollouts that record selected states: [`rollout`] and its [`Trajectory`].

use candle_core::{bail, Result, Tensor};

use crate::force::ForceField;
use crate::integrator::{check_dt, check_friction, Integrator, State};

/// The recorded states of a rollout, in increasing step order.
///
/// `steps[k]` is the step index (0 = the initial state) of `states[k]`, and `times[k]` its
/// time (`states[k].time`).
#[derive(Clone, Debug)]
pub struct Trajectory {
    /// Step indices of the recorded states, strictly increasing.
    pub steps: Vec<usize>,
    /// Times of the recorded states (accumulated as `t + dt` per step).
    pub times: Vec<f64>,
    /// The recorded states, graphs intact.
    pub states: Vec<State>,
}

impl Trajectory {
    /// The recorded state at step index `step`, if it was recorded.
    pub fn state_at(&self, step: usize) -> Option<&State> {
        self.steps
            .binary_search(&step)
            .ok()
            .map(|idx| &self.states[idx])
    }

    /// Recorded positions stacked along a new leading axis.
    ///
    /// # Shapes
    /// → `(n_recorded, n_particles, dim)`.
    ///
    /// # Errors
    /// An empty trajectory; tensor failures.
    pub fn stacked_positions(&self) -> Result<Tensor> {
        if self.states.is_empty() {
            bail!("cannot stack the positions of an empty trajectory");
        }
        let positions: Vec<&Tensor> = self.states.iter().map(|s| &s.positions).collect();
        Tensor::stack(&positions, 0)
    }
}

/// Rolls out `n_steps` steps of size `dt` from `initial`, recording the states whose step
/// index (0 = `initial`) is in `record`.
///
/// `record` must be strictly increasing (sorted, no duplicates) with every index `≤ n_steps`;
/// it may be empty. Steps after the last recorded index are not computed (nothing would
/// observe them). Time accumulates as `t + dt` per step. Nothing is detached, so a loss on the
/// recorded states backpropagates to the initial state, the friction and the field's
/// parameters.
///
/// # Shapes
/// State tensors `(n_particles, dim)`; `friction` `()`.
///
/// # Errors
/// A record index `> n_steps`; a `record` that is not strictly increasing; a non-finite `dt`;
/// a bad friction tensor or state (see [`Integrator::step`]); failures of the field.
pub fn rollout(
    integrator: Integrator,
    field: &dyn ForceField,
    initial: State,
    dt: f64,
    n_steps: usize,
    friction: &Tensor,
    record: &[usize],
) -> Result<Trajectory> {
    check_dt(dt)?;
    if let Some(&bad) = record.iter().find(|&&idx| idx > n_steps) {
        bail!("record index {bad} is out of range: the rollout has only {n_steps} steps");
    }
    if let Some(pair) = record.windows(2).find(|pair| pair[0] >= pair[1]) {
        bail!(
            "record indices must be strictly increasing, got {} then {}",
            pair[0],
            pair[1]
        );
    }
    // Validates the state and the friction once; the loop below steps unchecked.
    let mut state = initial;
    state.validate()?;
    check_friction(friction, &state.positions)?;
    let last = match record.last() {
        Some(&last) => last,
        None => {
            return Ok(Trajectory {
                steps: Vec::new(),
                times: Vec::new(),
                states: Vec::new(),
            })
        }
    };
    let mut trajectory = Trajectory {
        steps: Vec::with_capacity(record.len()),
        times: Vec::with_capacity(record.len()),
        states: Vec::with_capacity(record.len()),
    };
    let mut wanted = record.iter().peekable();
    for step_idx in 0..=last {
        if step_idx > 0 {
            state = integrator.step_unchecked(field, &state, dt, friction)?;
        }
        if wanted.peek() == Some(&&step_idx) {
            wanted.next();
            trajectory.steps.push(step_idx);
            trajectory.times.push(state.time);
            trajectory.states.push(state.clone());
        }
    }
    Ok(trajectory)
}

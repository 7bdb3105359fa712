//! The training objective of one step (rollout + mean Sinkhorn divergence) and its gradients,
//! by the adjoint reverse sweep or by plain backprop.

use candle_core::{Tensor, Var};
use wlm_integrate::State;
use wlm_ot::SinkhornConfig;

use crate::config::GradientMethod;
use crate::model::Model;
use crate::{Error, Result};

/// One training objective (METHOD.md §4, steps 2–4): start at `(x0, v0)` at time `t0`, make one
/// integrator step of size `dts[m−1]` per interval, and average the Sinkhorn divergences
/// `S(x̂_m, targets[m−1])` over `m = 1..=k`.
///
/// # Shapes
/// `x0`, `v0`: `(n, dim)`; `targets[m]`: `(M_m, dim)`; `dts.len() == targets.len() == k ≥ 1`.
#[derive(Clone, Debug)]
pub struct RolloutLoss {
    /// Initial positions.
    pub x0: Tensor,
    /// Initial velocities.
    pub v0: Tensor,
    /// Initial time.
    pub t0: f64,
    /// Step sizes, one per interval.
    pub dts: Vec<f64>,
    /// Observed clouds at the end of each interval.
    pub targets: Vec<Tensor>,
    /// The Sinkhorn divergence's settings.
    pub sinkhorn: SinkhornConfig,
}

/// The loss and its gradients with respect to every parameter.
#[derive(Debug)]
pub struct LossGradients {
    /// `L = (1/k) Σ_m S_m`.
    pub loss: f64,
    /// `S_1 .. S_k`.
    pub per_step: Vec<f64>,
    /// Parameter names, as [`Model::named_parameters`].
    pub names: Vec<String>,
    /// `∂L/∂θ` per parameter; `None` for a parameter the loss does not depend on (e.g.
    /// `output_projection.bias`, which shifts the energy by a constant).
    pub grads: Vec<Option<Tensor>>,
}

impl RolloutLoss {
    /// Checks that there is at least one step and one target per step.
    pub(crate) fn check_horizon(&self) -> Result<()> {
        let k = self.dts.len();
        if k == 0 || self.targets.len() != k {
            return Err(Error::Data(format!(
                "a rollout loss needs k ≥ 1 step sizes and as many targets, got {} and {}",
                k,
                self.targets.len()
            )));
        }
        Ok(())
    }
}

impl LossGradients {
    /// The gradient of the parameter called `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.grads[i].as_ref())
    }
}

impl Model {
    /// Evaluates `problem`'s loss and its parameter gradients (in the model's
    /// position-gradient mode) by `method`. Does not touch any optimiser state.
    ///
    /// # Errors
    /// [`Error::Data`] for an empty horizon or mismatched lengths; Sinkhorn and tensor
    /// failures.
    pub fn loss_and_gradients(
        &self,
        problem: &RolloutLoss,
        method: GradientMethod,
    ) -> Result<LossGradients> {
        if method != GradientMethod::Backprop {
            // Every step's force record rebuilt in the sweep: memory independent of the horizon.
            let native = method == GradientMethod::ReverseSweep;
            return self.sweep_loss_and_gradients(problem, 0, native);
        }
        problem.check_horizon()?;
        let params = self.named_parameters();
        let x0 = self.prepare(&problem.x0)?;
        let v0 = self.prepare(&problem.v0)?;
        let targets = problem
            .targets
            .iter()
            .map(|y| self.prepare(y))
            .collect::<Result<Vec<_>>>()?;
        self.backprop_gradients(&params, &x0, &v0, problem, &targets)
    }

    fn backprop_gradients(
        &self,
        params: &[(String, Var)],
        x0: &Tensor,
        v0: &Tensor,
        problem: &RolloutLoss,
        targets: &[Tensor],
    ) -> Result<LossGradients> {
        let k = problem.dts.len();
        let field = self.force_field();
        let gamma = self.friction_tensor()?;
        let integrator = self.config().integrator;
        let mut state = State::new(&field, x0.clone(), v0.clone(), problem.t0)?;
        let mut terms = Vec::with_capacity(k);
        for (dt, target) in problem.dts.iter().zip(targets) {
            state = integrator.step(&field, &state, *dt, &gamma)?;
            check_finite(&state.positions, terms.len() + 1)?;
            terms.push(wlm_ot::sinkhorn_divergence(
                &state.positions,
                target,
                &problem.sinkhorn,
            )?);
        }
        let per_step = terms
            .iter()
            .map(|t| Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?))
            .collect::<Result<Vec<f64>>>()?;
        let loss_tensor = Tensor::stack(&terms, 0)?.mean_all()?;
        let loss = per_step.iter().sum::<f64>() / k as f64;
        let store = loss_tensor.backward()?;
        let grads = params
            .iter()
            .map(|(_, v)| store.get(v.as_tensor()).cloned())
            .collect();
        Ok(LossGradients {
            loss,
            per_step,
            names: params.iter().map(|(n, _)| n.clone()).collect(),
            grads,
        })
    }
}

/// [`Error::NonFinite`] (with step 0: the trainer fills in its step) when the simulated
/// positions at the end of interval `m` hold a NaN or an infinity.
fn check_finite(positions: &Tensor, m: usize) -> Result<()> {
    let total = positions
        .abs()?
        .sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?;
    if total.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite {
            step: 0,
            what: format!("simulated positions at interval {m}"),
        })
    }
}

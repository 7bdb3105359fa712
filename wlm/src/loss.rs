//! The training objective of one step (rollout + mean Sinkhorn divergence) and its gradients,
//! by the adjoint reverse sweep or by plain backprop.

use candle_core::{Tensor, Var};
use wlm_energy::{DetachedEnergyField, EnergyField};
use wlm_integrate::{ForceField, State};
use wlm_ot::SinkhornConfig;

use crate::adjoint::{
    forward_keeping, reverse_sweep, rollout_and_solve, ForceDerivatives, KeepGraphs,
    StepCoefficients,
};
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

impl Model {
    /// [`Model::loss_and_gradients`] by the reverse sweep, keeping the forward pass's force
    /// graphs within `keep_graphs_bytes` (0: rebuild every graph, as `loss_and_gradients`
    /// does). Same loss and, to rounding of nothing (the same ops on the same values), the
    /// same gradients.
    ///
    /// # Errors
    /// As [`Model::loss_and_gradients`].
    pub(crate) fn sweep_loss_and_gradients(
        &self,
        problem: &RolloutLoss,
        keep_graphs_bytes: u64,
        native: bool,
    ) -> Result<LossGradients> {
        problem.check_horizon()?;
        let k = problem.dts.len();
        let params = self.named_parameters();
        let x0 = self.prepare(&problem.x0)?;
        let v0 = self.prepare(&problem.v0)?;
        let gamma = self.friction()?;
        let integrator = self.config().integrator;
        let coefficients: Vec<StepCoefficients> = problem
            .dts
            .iter()
            .map(|&dt| StepCoefficients::new(integrator, gamma, dt))
            .collect();
        // The native route (graph-free forces and adjoints) where the energy has one.
        let native = native && self.energy().force_tape(&x0, problem.t0)?.is_some();
        let graph_field = EnergyField {
            energy: self.energy(),
            detach_positions: true,
        };
        let native_field = DetachedEnergyField {
            energy: self.energy(),
        };
        let forward_field: &dyn ForceField = if native { &native_field } else { &graph_field };
        let sweep_field = EnergyField {
            energy: self.energy(),
            detach_positions: false,
        };
        let exact = !self.config().detach_positions;
        let keep = KeepGraphs {
            field: &sweep_field,
            exact,
            budget_bytes: keep_graphs_bytes,
            hidden_bytes: self.energy().force_graph_hidden_bytes(x0.dim(0)?),
            native: native.then_some(self.energy()),
        };
        let targets = problem
            .targets
            .iter()
            .map(|y| self.prepare(y))
            .collect::<Result<Vec<_>>>()?;
        let (tape, solved) = rollout_and_solve(&targets, &problem.sinkhorn, |reached| {
            forward_keeping(
                integrator,
                forward_field,
                Some(keep),
                &x0,
                &v0,
                problem.t0,
                &coefficients,
                reached,
            )
        })?;
        let mut per_step = Vec::with_capacity(k);
        let mut loss_grads = Vec::with_capacity(k);
        for out in solved {
            per_step.push(out.value);
            loss_grads.push((out.grad_x.to_dtype(self.dtype())? / k as f64)?);
        }
        let loss = per_step.iter().sum::<f64>() / k as f64;
        let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let derivatives = ForceDerivatives {
            field: &sweep_field,
            native: native.then_some(self.energy()),
        };
        let mut sweep = reverse_sweep(derivatives, &tape, &loss_grads, &vars, exact)?;

        if let Some(theta) = self.friction_parameter() {
            if let Some(i) = vars
                .iter()
                .position(|v| v.as_tensor().id() == theta.as_tensor().id())
            {
                let g = Tensor::new(gamma * sweep.gamma, self.device())?.to_dtype(self.dtype())?;
                sweep.params[i] = Some(g);
            }
        }
        Ok(LossGradients {
            loss,
            per_step,
            names: params.iter().map(|(n, _)| n.clone()).collect(),
            grads: sweep.params,
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

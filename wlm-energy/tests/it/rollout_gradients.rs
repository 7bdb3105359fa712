//! Parameter gradients through a 5-step damped leapfrog rollout against central finite differences (f64).
//!
//! Exact mode (`detach_positions = false`): finite differences of the real rollout. Detached
//! mode (the reference's): the exact derivative of the rollout whose force *position* argument
//! is frozen at the unperturbed trajectory (parity README §6.2), so finite differences use that
//! frozen rollout.

use std::cell::Cell;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarMap;
use wlm_energy::{AttentionEnergy, Energy, EnergyField, Kernels};
use wlm_integrate::{rollout, ForceField, Integrator, State};

use crate::common::{random, seeded_model, small_config, sorted_vars};

const STEPS: usize = 5;
const DT: f64 = 0.1;
const FRICTION: f64 = 0.4;

/// The force at stored positions: the n-th call returns the force at `positions[n]`.
struct FrozenField<'a> {
    energy: &'a AttentionEnergy,
    positions: Vec<Tensor>,
    calls: Cell<usize>,
}

impl ForceField for FrozenField<'_> {
    fn acceleration(&self, _x: &Tensor, t: f64) -> Result<Tensor> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        self.energy.force(&self.positions[n], t)
    }
}

struct Problem {
    x0: Tensor,
    v0: Tensor,
    weight_x: Tensor,
    weight_v: Tensor,
    friction: Tensor,
}

impl Problem {
    fn new(n: usize, dim: usize) -> Result<Self> {
        Ok(Problem {
            x0: random(&[n, dim], 1, -1.5, 1.5, DType::F64)?,
            v0: random(&[n, dim], 2, -0.5, 0.5, DType::F64)?,
            weight_x: random(&[n, dim], 3, -1.0, 1.0, DType::F64)?,
            weight_v: random(&[n, dim], 4, -1.0, 1.0, DType::F64)?,
            friction: Tensor::new(FRICTION, &Device::Cpu)?,
        })
    }

    /// `L = ⟨G, x_5⟩ + ⟨H, v_5⟩` and the whole trajectory's positions.
    fn loss(&self, field: &dyn ForceField) -> Result<(Tensor, Vec<Tensor>)> {
        let initial = State::new(field, self.x0.clone(), self.v0.clone(), 0.0)?;
        let record: Vec<usize> = (0..=STEPS).collect();
        let traj = rollout(
            Integrator::ReferenceLeapfrog,
            field,
            initial,
            DT,
            STEPS,
            &self.friction,
            &record,
        )?;
        let end = &traj.states[STEPS];
        let loss = ((&end.positions * &self.weight_x)?.sum_all()?
            + (&end.velocities * &self.weight_v)?.sum_all()?)?;
        let positions = traj.states.iter().map(|s| s.positions.detach()).collect();
        Ok((loss, positions))
    }
}

fn check_mode(energy: &AttentionEnergy, varmap: &VarMap, detach: bool) -> anyhow::Result<()> {
    let problem = Problem::new(7, 2)?;
    let field = EnergyField {
        energy,
        detach_positions: detach,
    };
    let (loss, trajectory) = problem.loss(&field)?;
    let grads = loss.backward()?;
    let vars = sorted_vars(varmap);
    let grad_of = |var: &candle_core::Var| -> Result<Vec<f64>> {
        match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f64>(),
            None => Ok(vec![0.0; var.elem_count()]),
        }
    };
    let scale = vars
        .iter()
        .map(|(_, v)| grad_of(v).map(|g| g.iter().fold(0.0f64, |m, x| m.max(x.abs()))))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    assert!(scale > 1e-3, "gradients vanish: {scale}");

    let eval = |var: &candle_core::Var, values: &[f64]| -> anyhow::Result<f64> {
        let t = Tensor::from_vec(values.to_vec(), var.shape(), &Device::Cpu)?;
        var.set(&t)?;
        let value = if detach {
            let frozen = FrozenField {
                energy,
                positions: trajectory.clone(),
                calls: Cell::new(0),
            };
            problem.loss(&frozen)?.0
        } else {
            problem.loss(&field)?.0
        };
        Ok(value.to_scalar::<f64>()?)
    };
    let h = 1e-5;
    let mut worst = 0.0f64;
    for (name, var) in &vars {
        let analytic = grad_of(var)?;
        let base = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        let n = base.len();
        for idx in [0, n / 2, n - 1] {
            let mut plus = base.clone();
            plus[idx] += h;
            let mut minus = base.clone();
            minus[idx] -= h;
            let fd = (eval(var, &plus)? - eval(var, &minus)?) / (2.0 * h);
            let err = (fd - analytic[idx]).abs() / analytic[idx].abs().max(1e-2 * scale);
            worst = worst.max(err);
            assert!(
                err < 1e-6,
                "detach={detach} {name}[{idx}]: finite difference {fd} vs backward {}",
                analytic[idx]
            );
        }
        var.set(&Tensor::from_vec(base, var.shape(), &Device::Cpu)?)?;
    }
    eprintln!("detach={detach}: worst relative error {worst:.2e}");
    Ok(())
}

#[test]
fn exact_mode_parameter_gradients_match_finite_differences() -> anyhow::Result<()> {
    let (energy, varmap) = seeded_model(&small_config(2, true), 21, DType::F64)?;
    check_mode(&energy, &varmap, false)
}

#[test]
fn detached_mode_parameter_gradients_match_frozen_finite_differences() -> anyhow::Result<()> {
    let (energy, varmap) = seeded_model(&small_config(2, true), 22, DType::F64)?;
    check_mode(&energy, &varmap, true)
}

#[test]
fn fused_kernels_give_the_same_rollout_gradients() -> anyhow::Result<()> {
    let (mut energy, varmap) = seeded_model(&small_config(2, false), 23, DType::F64)?;
    let problem = Problem::new(9, 2)?;
    let mut per_kernel = Vec::new();
    for kernels in [Kernels::Plain, Kernels::Fused] {
        energy.set_kernels(kernels);
        let field = EnergyField::exact(&energy);
        let grads = problem.loss(&field)?.0.backward()?;
        let values: Vec<Option<Tensor>> = sorted_vars(&varmap)
            .iter()
            .map(|(_, v)| grads.get(v.as_tensor()).cloned())
            .collect();
        per_kernel.push(values);
    }
    for (plain, fused) in per_kernel[0].iter().zip(&per_kernel[1]) {
        assert_eq!(
            plain.is_some(),
            fused.is_some(),
            "a gradient on one path only"
        );
        if let (Some(p), Some(f)) = (plain, fused) {
            // Fused and plain kernels sum in other orders: f64 rounding, amplified by the
            // rollout, on O(1) gradients.
            crate::common::assert_close("fused vs plain parameter gradient", f, p, 1e-12, 1e-10);
        }
    }
    Ok(())
}

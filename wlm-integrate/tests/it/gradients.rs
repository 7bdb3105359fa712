//! Gradients of a loss on the end state w.r.t. friction, initial positions and velocities
//! match central finite differences (f64, relative error < 1e-7).

use candle_core::{Result, Tensor, Var};
use wlm_integrate::{rollout, Integrator, State};

use crate::common::{scalar, tensor2, Nonlinear};

const N_STEPS: usize = 6;
const DT: f64 = 0.1;

fn x0() -> Vec<Vec<f64>> {
    vec![vec![0.3, -1.1], vec![1.4, 0.25], vec![-0.7, 0.9]]
}

fn v0() -> Vec<Vec<f64>> {
    vec![vec![0.5, 0.1], vec![-0.2, 0.8], vec![0.0, -0.6]]
}

/// `L = Σ w ⊙ x_end + Σ (v_end)² / 2` after `N_STEPS` steps of the nonlinear field.
fn loss(integrator: Integrator, x: &Tensor, v: &Tensor, friction: &Tensor) -> Result<Tensor> {
    let initial = State::new(&Nonlinear, x.clone(), v.clone(), 0.2)?;
    let traj = rollout(
        integrator,
        &Nonlinear,
        initial,
        DT,
        N_STEPS,
        friction,
        &[N_STEPS],
    )?;
    let end = &traj.states[0];
    let weights = tensor2(&[vec![1.0, -2.0], vec![0.5, 3.0], vec![-1.5, 0.25]])?;
    let linear = (&end.positions * weights)?.sum_all()?;
    let quadratic = end.velocities.sqr()?.sum_all()?.affine(0.5, 0.0)?;
    linear + quadratic
}

fn loss_value(integrator: Integrator, x: &[Vec<f64>], v: &[Vec<f64>], gamma: f64) -> Result<f64> {
    loss(integrator, &tensor2(x)?, &tensor2(v)?, &scalar(gamma)?)?.to_scalar::<f64>()
}

fn assert_close(what: &str, autograd: f64, finite_diff: f64) {
    let rel = (autograd - finite_diff).abs() / finite_diff.abs().max(1e-3);
    assert!(
        rel < 1e-7,
        "{what}: autograd {autograd} vs finite differences {finite_diff} (rel {rel})"
    );
}

#[test]
fn gradients_wrt_friction_and_initial_state_match_central_differences() -> Result<()> {
    let gamma = 0.7;
    let eps = 1e-5;
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let x_var = Var::from_tensor(&tensor2(&x0())?)?;
        let v_var = Var::from_tensor(&tensor2(&v0())?)?;
        let gamma_var = Var::new(gamma, &candle_core::Device::Cpu)?;
        let grads = loss(
            integrator,
            x_var.as_tensor(),
            v_var.as_tensor(),
            gamma_var.as_tensor(),
        )?
        .backward()?;

        let grad_gamma = grads
            .get(gamma_var.as_tensor())
            .expect("friction gradient")
            .to_scalar::<f64>()?;
        let fd_gamma = (loss_value(integrator, &x0(), &v0(), gamma + eps)?
            - loss_value(integrator, &x0(), &v0(), gamma - eps)?)
            / (2.0 * eps);
        assert!(fd_gamma.abs() > 1e-2, "friction must matter: {fd_gamma}");
        assert_close(&format!("{integrator:?} dL/dγ"), grad_gamma, fd_gamma);

        let grad_x = grads
            .get(x_var.as_tensor())
            .expect("x gradient")
            .to_vec2::<f64>()?;
        let grad_v = grads
            .get(v_var.as_tensor())
            .expect("v gradient")
            .to_vec2::<f64>()?;
        for i in 0..3 {
            for k in 0..2 {
                let (mut xp, mut xm) = (x0(), x0());
                xp[i][k] += eps;
                xm[i][k] -= eps;
                let fd = (loss_value(integrator, &xp, &v0(), gamma)?
                    - loss_value(integrator, &xm, &v0(), gamma)?)
                    / (2.0 * eps);
                assert_close(&format!("{integrator:?} dL/dx[{i}][{k}]"), grad_x[i][k], fd);

                let (mut vp, mut vm) = (v0(), v0());
                vp[i][k] += eps;
                vm[i][k] -= eps;
                let fd = (loss_value(integrator, &x0(), &vp, gamma)?
                    - loss_value(integrator, &x0(), &vm, gamma)?)
                    / (2.0 * eps);
                assert_close(&format!("{integrator:?} dL/dv[{i}][{k}]"), grad_v[i][k], fd);
            }
        }
    }
    Ok(())
}

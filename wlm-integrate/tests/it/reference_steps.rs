//! The reference scheme against steps computed by hand in plain f64, and its large-friction limit.

use candle_core::Result;
use wlm_integrate::{reference_coefficients, Integrator, State};

use crate::common::{max_abs_diff, nonlinear_plain, scalar, tensor2, Nonlinear, Pendulums};

fn plain_reference_steps(
    x0: &[Vec<f64>],
    v0: &[Vec<f64>],
    t0: f64,
    dt: f64,
    gamma: f64,
    n_steps: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64) {
    let m = ((-0.5 * gamma) * dt).exp();
    let c = m * (dt / 2.0) + (1.0 - m) * 1.0;
    let (mut x, mut v, mut t) = (x0.to_vec(), v0.to_vec(), t0);
    let mut a = nonlinear_plain(&x, t);
    for _ in 0..n_steps {
        let v_half: Vec<Vec<f64>> = v
            .iter()
            .zip(&a)
            .map(|(vr, ar)| vr.iter().zip(ar).map(|(vi, ai)| m * vi + c * ai).collect())
            .collect();
        x = x
            .iter()
            .zip(&v_half)
            .map(|(xr, hr)| xr.iter().zip(hr).map(|(xi, hi)| xi + dt * hi).collect())
            .collect();
        t += dt;
        a = nonlinear_plain(&x, t);
        v = v_half
            .iter()
            .zip(&a)
            .map(|(hr, ar)| hr.iter().zip(ar).map(|(hi, ai)| m * hi + c * ai).collect())
            .collect();
    }
    (x, v, t)
}

#[test]
fn reference_scheme_reproduces_two_hand_computed_steps() -> Result<()> {
    let x0 = vec![vec![0.3, -1.1], vec![1.4, 0.25], vec![-0.7, 0.9]];
    let v0 = vec![vec![0.5, 0.1], vec![-0.2, 0.8], vec![0.0, -0.6]];
    let (t0, dt, gamma) = (0.4, 0.15, 0.8);
    let (x_hand, v_hand, t_hand) = plain_reference_steps(&x0, &v0, t0, dt, gamma, 2);

    let friction = scalar(gamma)?;
    let mut state = State::new(&Nonlinear, tensor2(&x0)?, tensor2(&v0)?, t0)?;
    for _ in 0..2 {
        state = Integrator::ReferenceLeapfrog.step(&Nonlinear, &state, dt, &friction)?;
    }
    let x = state.positions.to_vec2::<f64>()?;
    let v = state.velocities.to_vec2::<f64>()?;
    assert!(max_abs_diff(&x, &x_hand) < 1e-14, "x {x:?} vs {x_hand:?}");
    assert!(max_abs_diff(&v, &v_hand) < 1e-14, "v {v:?} vs {v_hand:?}");
    assert_eq!(state.time, t_hand);
    // The states actually moved (the comparison is not between two copies of the start).
    assert!(max_abs_diff(&x, &x0) > 1e-2 && max_abs_diff(&v, &v0) > 1e-2);
    // The carried acceleration is the field at the final state.
    let a = state.acceleration.to_vec2::<f64>()?;
    assert!(max_abs_diff(&a, &nonlinear_plain(&x, state.time)) < 1e-14);
    Ok(())
}

#[test]
fn reference_coefficients_follow_the_reference_formula() -> Result<()> {
    for (gamma, dt) in [(0.0, 0.1), (0.8, 0.15), (3.0, 0.01), (50.0, 0.2)] {
        let (m, c) = reference_coefficients(&scalar(gamma)?, dt)?;
        let m_hand = ((-0.5 * gamma) * dt).exp();
        let c_hand = m_hand * (dt / 2.0) + (1.0 - m_hand) * 1.0;
        assert_eq!(m.to_scalar::<f64>()?, m_hand, "m at γ={gamma}, dt={dt}");
        assert_eq!(c.to_scalar::<f64>()?, c_hand, "c at γ={gamma}, dt={dt}");
    }
    Ok(())
}

#[test]
fn reference_scheme_at_very_large_friction_is_a_gradient_flow_step() -> Result<()> {
    let x0 = vec![vec![0.3, -1.1], vec![1.4, 0.25], vec![-0.7, 0.9]];
    let v0 = vec![vec![5.0, -3.0], vec![2.0, 8.0], vec![-4.0, 6.0]];
    let dt = 0.1;
    let initial = State::new(&Pendulums, tensor2(&x0)?, tensor2(&v0)?, 0.0)?;
    let a0 = initial.acceleration.to_vec2::<f64>()?;
    let expected: Vec<Vec<f64>> = x0
        .iter()
        .zip(&a0)
        .map(|(xr, ar)| xr.iter().zip(ar).map(|(xi, ai)| xi + dt * ai).collect())
        .collect();
    for gamma in [1e3, 1e4] {
        let next = Integrator::ReferenceLeapfrog.step(&Pendulums, &initial, dt, &scalar(gamma)?)?;
        let x = next.positions.to_vec2::<f64>()?;
        assert!(
            max_abs_diff(&x, &expected) < 1e-14,
            "γ={gamma}: {x:?} vs {expected:?}"
        );
    }
    // The velocity still matters at moderate friction, so the check above can fail.
    let moderate = Integrator::ReferenceLeapfrog.step(&Pendulums, &initial, dt, &scalar(10.0)?)?;
    assert!(max_abs_diff(&moderate.positions.to_vec2::<f64>()?, &expected) > 1e-3);
    Ok(())
}

//! The reference scheme against checks that do not retype its recurrence: the PyTorch
//! reference's own rollout (parity fixtures), velocity Verlet at `γ = 0`, the ODE each scheme
//! converges to as the step shrinks (METHOD.md §2.2), and its large-friction limit.

use std::cell::Cell;

use candle_core::{Result, Tensor};
use serde_json::Value;
use wlm_integrate::{fields::Harmonic, reference_coefficients, ForceField, Integrator, State};

use crate::common::{
    assert_close, max_abs_diff, nonlinear_plain, scalar, tensor2, Nonlinear, Pendulums,
};

type Rows = Vec<Vec<f64>>;

/// Replays the accelerations that the PyTorch reference evaluated (`rollout_accel[n]` at the
/// `n`-th call), whatever the positions; the positions each call received are checked after the
/// rollout against the reference's `x0, rollout_x`.
struct Replay {
    accelerations: Vec<Rows>,
    calls: Cell<usize>,
}

impl ForceField for Replay {
    fn acceleration(&self, _x: &Tensor, _t: f64) -> Result<Tensor> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        tensor2(&self.accelerations[n])
    }
}

fn rows(v: &Value) -> Rows {
    serde_json::from_value(v.clone()).expect("a matrix in the fixture")
}

/// The reference's `leapfrog_auto` (`guanton/WLM`, fixtures `parity/{small, boids_like}`, float64,
/// γ = 0.3 and 0) fed with its own recorded accelerations: our step must reproduce its positions
/// and velocities after every step, and our `m`, `c` its `momentum_m`, `force_coeff_c`. Tolerance
/// `|Δ| ≤ 1e-14 + 1e-13·|reference|` per entry: a handful of f64 roundings per step (numpy's and
/// libm's `exp` may differ by an ulp, and the fixture may parse an ulp off) over at most 4 steps
/// of O(1) values.
#[test]
fn reference_scheme_reproduces_the_pytorch_rollout() -> Result<()> {
    for case in ["small", "boids_like"] {
        let Some(dir) = crate::shared_folder::shared(&format!("fixtures/parity/{case}")) else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join("case.json")).expect("readable case.json");
        let json: Value = serde_json::from_str(&text).expect("valid case.json");
        let config = &json["config"];
        let gamma = config["friction"]["gamma"].as_f64().expect("gamma");
        let dt = config["dt"].as_f64().expect("dt");
        let k = config["k"].as_u64().expect("k") as usize;
        let outputs = &json["outputs"];
        let accelerations: Vec<Rows> = outputs["rollout_accel"]
            .as_array()
            .expect("rollout_accel")
            .iter()
            .map(rows)
            .collect();
        assert_eq!(
            accelerations.len(),
            k + 1,
            "{case}: k + 1 force evaluations"
        );

        let friction = scalar(gamma)?;
        let (m, c) = reference_coefficients(&friction, dt)?;
        let torch_m = config["friction"]["momentum_m"].as_f64().expect("m");
        let torch_c = config["friction"]["force_coeff_c"].as_f64().expect("c");
        // Absolute 4 ulps of 1: `1 − m` cancels, so `c` is exact to an ulp of 1 rather than of
        // `c`, and this crate's serde_json may read a fixture float an ulp off.
        assert_close(
            &format!("{case}: m, c"),
            &[vec![m.to_scalar::<f64>()?, c.to_scalar::<f64>()?]],
            &[vec![torch_m, torch_c]],
            4.0 * f64::EPSILON,
            0.0,
        );

        let field = Replay {
            accelerations,
            calls: Cell::new(0),
        };
        let x0 = rows(&json["inputs"]["x0"]);
        let v0 = rows(&json["inputs"]["v0"]);
        let mut state = State::new(&field, tensor2(&x0)?, tensor2(&v0)?, 0.0)?;
        for s in 1..=k {
            state = Integrator::ReferenceLeapfrog.step(&field, &state, dt, &friction)?;
            let want_x = rows(&outputs["rollout_x"][s - 1]);
            let want_v = rows(&outputs["rollout_v"][s - 1]);
            let what = format!("{case}, step {s}");
            assert_close(
                &format!("{what}: x"),
                &state.positions.to_vec2::<f64>()?,
                &want_x,
                1e-14,
                1e-13,
            );
            assert_close(
                &format!("{what}: v"),
                &state.velocities.to_vec2::<f64>()?,
                &want_v,
                1e-14,
                1e-13,
            );
        }
        assert_eq!(field.calls.get(), k + 1, "{case}: one force call per step");
        // The fixture's time grid is accumulated as t + dt, like ours.
        let grid: Vec<f64> =
            serde_json::from_value(json["inputs"]["time_grid"].clone()).expect("time_grid");
        assert_eq!(state.time, grid[k], "{case}: time");
    }
    Ok(())
}

/// Velocity Verlet written in its position form, `x' = x + h v + (h²/2) a(x)`,
/// `v' = v + (h/2)(a(x) + a(x'))`, for `a = −k x` in 1-D.
fn verlet(k: f64, x0: f64, v0: f64, h: f64, n_steps: usize) -> Vec<(f64, f64)> {
    let (mut x, mut v) = (x0, v0);
    let mut path = vec![(x, v)];
    for _ in 0..n_steps {
        let a = -k * x;
        let x_next = x + h * v + 0.5 * h * h * a;
        v += 0.5 * h * (a - k * x_next);
        x = x_next;
        path.push((x, v));
    }
    path
}

/// `n_steps` of `integrator` on `a = −k x` in 1-D from `(x0, v0)`, every state.
fn run_1d(
    integrator: Integrator,
    k: f64,
    gamma: f64,
    x0: f64,
    v0: f64,
    h: f64,
    n_steps: usize,
) -> Result<Vec<(f64, f64)>> {
    let field = Harmonic { stiffness: k };
    let friction = scalar(gamma)?;
    let mut state = State::new(&field, tensor2(&[vec![x0]])?, tensor2(&[vec![v0]])?, 0.0)?;
    let mut path = vec![(x0, v0)];
    for _ in 0..n_steps {
        state = integrator.step(&field, &state, h, &friction)?;
        path.push((
            state.positions.to_vec2::<f64>()?[0][0],
            state.velocities.to_vec2::<f64>()?[0][0],
        ));
    }
    Ok(path)
}

/// At `γ = 0` both schemes are velocity Verlet: on `a = −2x` they follow the hand-rolled
/// position-form Verlet over 2000 steps to `1e-12` (rounding of differently ordered sums;
/// the motion is O(1)); the energy error is second order (bounded by `k h²/4` relative, and
/// quartered when `h` halves, ratio in [3.5, 4.5]); and 2000 steps, a velocity flip, 2000 steps
/// and a flip return to the start to `1e-11`.
#[test]
fn zero_friction_is_velocity_verlet_with_second_order_energy_error_and_reversibility() -> Result<()>
{
    let (k, x0, v0) = (2.0, 1.0, 0.3);
    let energy = |(x, v): (f64, f64)| 0.5 * v * v + 0.5 * k * x * x;
    let energy0 = energy((x0, v0));
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let mut max_errors = Vec::new();
        for h in [0.05, 0.025] {
            let n_steps = (100.0 / h) as usize;
            let path = run_1d(integrator, k, 0.0, x0, v0, h, n_steps)?;
            let hand = verlet(k, x0, v0, h, n_steps);
            for (step, (ours, theirs)) in path.iter().zip(&hand).enumerate().take(2001) {
                assert!(
                    (ours.0 - theirs.0).abs() < 1e-12 && (ours.1 - theirs.1).abs() < 1e-12,
                    "{integrator:?}, h {h}, step {step}: {ours:?} vs Verlet {theirs:?}"
                );
            }
            let max_error = path
                .iter()
                .map(|&z| (energy(z) - energy0).abs() / energy0)
                .fold(0.0, f64::max);
            assert!(
                max_error <= k * h * h / 4.0,
                "{integrator:?}, h {h}: energy error {max_error:e}"
            );
            max_errors.push(max_error);
        }
        let ratio = max_errors[0] / max_errors[1];
        assert!(
            (3.5..=4.5).contains(&ratio),
            "{integrator:?}: energy error fell {ratio}× when h halved, not 4×"
        );

        let h = 0.05;
        let forward = run_1d(integrator, k, 0.0, x0, v0, h, 2000)?;
        let (x1, v1) = *forward.last().expect("states");
        let back = run_1d(integrator, k, 0.0, x1, -v1, h, 2000)?;
        let (x2, v2) = *back.last().expect("states");
        assert!(
            (x2 - x0).abs() < 1e-11 && (-v2 - v0).abs() < 1e-11,
            "{integrator:?}: returned to ({x2}, {}) instead of ({x0}, {v0})",
            -v2
        );
    }
    Ok(())
}

/// RK4 for `x' = v`, `v' = force_factor·(−k x) − γ v` from `(x0, v0)` to `t_end` in `n_steps`.
fn rk4(
    k: f64,
    force_factor: f64,
    gamma: f64,
    x0: f64,
    v0: f64,
    t_end: f64,
    n_steps: usize,
) -> (f64, f64) {
    let rhs = |x: f64, v: f64| (v, -force_factor * k * x - gamma * v);
    let h = t_end / n_steps as f64;
    let (mut x, mut v) = (x0, v0);
    for _ in 0..n_steps {
        let k1 = rhs(x, v);
        let k2 = rhs(x + 0.5 * h * k1.0, v + 0.5 * h * k1.1);
        let k3 = rhs(x + 0.5 * h * k2.0, v + 0.5 * h * k2.1);
        let k4 = rhs(x + h * k3.0, v + h * k3.1);
        x += h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
        v += h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
    }
    (x, v)
}

/// Largest error on `(x, v)` at `T = 2` of `integrator` at step `h` against `exact`.
fn error_at_t2(
    integrator: Integrator,
    k: f64,
    gamma: f64,
    h: f64,
    exact: (f64, f64),
) -> Result<f64> {
    let n_steps = (2.0 / h).round() as usize;
    let (x, v) = *run_1d(integrator, k, gamma, 1.0, 0.3, h, n_steps)?
        .last()
        .expect("states");
    Ok((x - exact.0).abs().max((v - exact.1).abs()))
}

/// METHOD.md §2.2, "Which equation each scheme integrates": on `a = −k x` (`k = 2`,
/// `x(0) = 1`, `v(0) = 0.3`, `T = 2`), against RK4 solutions with 20 000 steps (error ~1e-15):
/// - for `γ > 0` the reference scheme converges to `dv/dt = (1 + γ) a − γ v` at first order
///   (the error falls 8–12× when `h` falls 10×, from `h = 0.02` to `0.002`) and stays ≥ 0.1
///   away from the paper's `dv/dt = a − γ v` (about 0.6 measured);
/// - the conformal scheme converges to `dv/dt = a − γ v` at second order (80–120×);
/// - at `γ = 0` the two equations coincide and both schemes are second order.
#[test]
fn reference_scheme_converges_to_one_plus_gamma_dynamics() -> Result<()> {
    let k = 2.0;
    let exact = |factor: f64, gamma: f64| rk4(k, factor, gamma, 1.0, 0.3, 2.0, 20_000);
    for gamma in [0.0, 0.5, 2.0] {
        let one_plus_gamma = exact(1.0 + gamma, gamma);
        let paper = exact(1.0, gamma);
        let errors = |integrator, target| -> Result<(f64, f64)> {
            Ok((
                error_at_t2(integrator, k, gamma, 0.02, target)?,
                error_at_t2(integrator, k, gamma, 0.002, target)?,
            ))
        };
        let (coarse, fine) = errors(Integrator::ReferenceLeapfrog, one_plus_gamma)?;
        let ratio = coarse / fine;
        eprintln!("γ {gamma}: reference vs (1+γ)a − γv: {coarse:.2e} → {fine:.2e}");
        let expected = if gamma == 0.0 {
            80.0..=120.0
        } else {
            8.0..=12.0
        };
        assert!(
            expected.contains(&ratio),
            "γ {gamma}: reference vs (1+γ)a − γv: {coarse:e} → {fine:e} (÷{ratio:.1}), expected ÷{expected:?}"
        );
        if gamma > 0.0 {
            let (_, off) = errors(Integrator::ReferenceLeapfrog, paper)?;
            eprintln!("γ {gamma}: reference vs a − γv at h = 0.002: {off:.2e}");
            assert!(
                off > 0.1,
                "γ {gamma}: the reference scheme is within {off:e} of a − γv"
            );
        }
        let (coarse, fine) = errors(Integrator::ConformalLeapfrog, paper)?;
        let ratio = coarse / fine;
        eprintln!("γ {gamma}: conformal vs a − γv: {coarse:.2e} → {fine:.2e}");
        assert!(
            (80.0..=120.0).contains(&ratio),
            "γ {gamma}: conformal vs a − γv: {coarse:e} → {fine:e} (÷{ratio:.1}), expected ÷100"
        );
    }
    Ok(())
}

/// The state after a step carries the field evaluated at its own positions and time (one force
/// evaluation per step, reused at the start of the next), and time advances by `dt`.
#[test]
fn a_step_carries_the_field_at_its_new_state() -> Result<()> {
    let x0 = vec![vec![0.3, -1.1], vec![1.4, 0.25], vec![-0.7, 0.9]];
    let v0 = vec![vec![0.5, 0.1], vec![-0.2, 0.8], vec![0.0, -0.6]];
    let (t0, dt, gamma) = (0.4, 0.15, 0.8);
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let mut state = State::new(&Nonlinear, tensor2(&x0)?, tensor2(&v0)?, t0)?;
        for _ in 0..2 {
            state = integrator.step(&Nonlinear, &state, dt, &scalar(gamma)?)?;
        }
        assert_eq!(state.time, (t0 + dt) + dt);
        let x = state.positions.to_vec2::<f64>()?;
        assert!(max_abs_diff(&x, &x0) > 1e-2, "{integrator:?}: did not move");
        assert_close(
            &format!("{integrator:?}: carried acceleration"),
            &state.acceleration.to_vec2::<f64>()?,
            &nonlinear_plain(&x, state.time),
            1e-15,
            1e-14,
        );
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

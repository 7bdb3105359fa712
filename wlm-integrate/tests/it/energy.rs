//! Energy behaviour on harmonic oscillators: bounded error at γ = 0 over 1e5 steps (both
//! schemes), and exact per-step decay of the conformal scheme's modified energy at γ > 0.
//!
//! For `a = −ω² x` one velocity-Verlet step is the linear map
//! `M = [[A, h], [C, A]]` on `(x, v)` with `A = 1 − ω²h²/2`, `C = −ω²h(1 − ω²h²/4)`, and the
//! conformal step is `S M S` with `S = diag(1, q)`, `q = e^{−γh/2}`. Since `det M = 1`,
//! `R = S M S / q` has determinant 1 and preserves the quadratic form `sym(J R)`, i.e.
//!
//! `E_h(x, v) = ½ v² + ½ ω²(1 − ω²h²/4) x² + A (1/q − q)/(2h) · x v`,
//!
//! so `E_h(z_{n+1}) = q² E_h(z_n) = e^{−γh} E_h(z_n)` exactly. As `h → 0`, `E_h` tends to
//! `½ v² + ½ ω² x² + (γ/2) x v`, which the continuous damped oscillator `v' = −ω²x − γv`
//! multiplies by exactly `e^{−γt}`: the discrete decay rate is the continuous one.

use candle_core::{Result, Tensor};
use wlm_integrate::{fields::Harmonic, Integrator, State};

use crate::common::{scalar, tensor2};

/// The modified energy `E_h` above, summed over all coordinates.
fn modified_energy(x: &Tensor, v: &Tensor, omega2: f64, h: f64, gamma: f64) -> Result<f64> {
    let a_coef = 1.0 - omega2 * h * h / 2.0;
    let q = (-0.5 * gamma * h).exp();
    let cross = a_coef * (1.0 / q - q) / (2.0 * h);
    let x = x.flatten_all()?.to_vec1::<f64>()?;
    let v = v.flatten_all()?.to_vec1::<f64>()?;
    Ok(x.iter()
        .zip(&v)
        .map(|(xi, vi)| {
            0.5 * vi * vi + 0.5 * omega2 * (1.0 - omega2 * h * h / 4.0) * xi * xi + cross * xi * vi
        })
        .sum())
}

#[test]
fn harmonic_energy_error_stays_bounded_over_1e5_steps_at_zero_friction() -> Result<()> {
    let (omega2, h, n_steps) = (1.0, 0.1, 100_000);
    let field = Harmonic { stiffness: omega2 };
    let friction = scalar(0.0)?;
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let mut state = State::new(&field, tensor2(&[vec![1.0]])?, tensor2(&[vec![0.0]])?, 0.0)?;
        let energy0 = 0.5; // ½ v² + ½ ω² x² at x = 1, v = 0.
        let shadow0 = modified_energy(&state.positions, &state.velocities, omega2, h, 0.0)?;
        let (mut max_energy_err, mut max_shadow_err) = (0.0f64, 0.0f64);
        for _ in 0..n_steps {
            state = integrator.step(&field, &state, h, &friction)?;
            let x = state.positions.to_vec2::<f64>()?[0][0];
            let v = state.velocities.to_vec2::<f64>()?[0][0];
            let energy = 0.5 * v * v + 0.5 * omega2 * x * x;
            max_energy_err = max_energy_err.max((energy - energy0).abs() / energy0);
            let shadow = 0.5 * v * v + 0.5 * omega2 * (1.0 - omega2 * h * h / 4.0) * x * x;
            max_shadow_err = max_shadow_err.max((shadow - shadow0).abs() / shadow0);
        }
        // Velocity Verlet: |H − H₀|/H₀ ≤ ω²h²/4 for all time (here 2.5e-3), no drift.
        assert!(
            max_energy_err <= omega2 * h * h / 4.0,
            "{integrator:?}: max relative energy error {max_energy_err}"
        );
        // The oscillation is real (the bound is not vacuous) …
        assert!(
            max_energy_err > omega2 * h * h / 8.0,
            "{integrator:?}: {max_energy_err}"
        );
        // … and the shadow energy is conserved up to accumulated rounding.
        assert!(
            max_shadow_err < 1e-11,
            "{integrator:?}: shadow error {max_shadow_err}"
        );
        assert!((state.time - n_steps as f64 * h).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn conformal_modified_energy_decays_by_exactly_exp_minus_gamma_h_per_step() -> Result<()> {
    let (omega2, h, gamma) = (2.0, 0.05, 0.3);
    let field = Harmonic { stiffness: omega2 };
    let friction = scalar(gamma)?;
    let x0 = tensor2(&[vec![1.0, -0.4], vec![0.3, 0.8]])?;
    let v0 = tensor2(&[vec![0.2, 0.9], vec![-1.1, 0.0]])?;
    let rate = (-gamma * h).exp();

    let mut state = State::new(&field, x0.clone(), v0.clone(), 0.0)?;
    let mut energy = modified_energy(&state.positions, &state.velocities, omega2, h, gamma)?;
    let energy0 = energy;
    for step in 1..=400 {
        state = Integrator::ConformalLeapfrog.step(&field, &state, h, &friction)?;
        let next = modified_energy(&state.positions, &state.velocities, omega2, h, gamma)?;
        assert!(next > 0.0);
        assert!(
            (next / energy - rate).abs() < 1e-12,
            "step {step}: ratio {} vs e^(-γh) = {rate}",
            next / energy
        );
        energy = next;
    }
    // Over the whole run: E_h(t) = E_h(0) e^{−γ t}, the continuous decay law.
    let predicted = energy0 * (-gamma * state.time).exp();
    assert!((energy - predicted).abs() < 1e-11 * energy0);

    // The reference scheme (different equation) does not decay at that rate, so this can fail.
    let mut state = State::new(&field, x0, v0, 0.0)?;
    let mut worst = 0.0f64;
    let mut energy = modified_energy(&state.positions, &state.velocities, omega2, h, gamma)?;
    for _ in 0..50 {
        state = Integrator::ReferenceLeapfrog.step(&field, &state, h, &friction)?;
        let next = modified_energy(&state.positions, &state.velocities, omega2, h, gamma)?;
        worst = worst.max((next / energy - rate).abs());
        energy = next;
    }
    assert!(worst > 1e-4, "reference ratio deviation {worst}");
    Ok(())
}

//! A hand-written harmonic `ForceField` rolled out with both damped leapfrog integrators.
//!
//! Shows the seam of `wlm-integrate`: anything that turns positions into accelerations
//! implements [`ForceField`], and [`rollout`] advances a [`State`] with either
//! [`Integrator`]. It checks that without friction both schemes are velocity Verlet (they
//! agree, the energy drift stays within the `O(h²)` bound and the positions follow the exact
//! `x₀ cos(ωt)`), and that with friction the conformal scheme loses energy like the
//! continuous flow (`E(t) ≤ E(0)`, decaying roughly like `e^{−γt}`).
//!
//! Run it with `cargo run -p wlm-integrate --example harmonic_rollout`; it exits non-zero if a
//! check fails.

use anyhow::ensure;
use candle_core::{DType, Device, Result, Tensor};
use wlm_integrate::{rollout, ForceField, Integrator, State, Trajectory};

/// The harmonic trap `a(x) = −k x` (potential `½ k |x|²` per particle), written by hand.
struct HarmonicTrap {
    /// Spring constant `k` (1/time²); the angular frequency is `ω = √k`.
    stiffness: f64,
}

impl ForceField for HarmonicTrap {
    fn acceleration(&self, x: &Tensor, _t: f64) -> Result<Tensor> {
        x.affine(-self.stiffness, 0.0)
    }
}

/// Total energy `Σ ½|v|² + ½ k |x|²` of a state.
fn total_energy(state: &State, stiffness: f64) -> anyhow::Result<f64> {
    let kinetic = state.velocities.sqr()?.sum_all()?.to_scalar::<f64>()?;
    let potential = state.positions.sqr()?.sum_all()?.to_scalar::<f64>()?;
    Ok(0.5 * kinetic + 0.5 * stiffness * potential)
}

/// The largest `|E(t) − E(0)| / E(0)` over the recorded states.
fn relative_drift(trajectory: &Trajectory, stiffness: f64) -> anyhow::Result<f64> {
    let initial = total_energy(&trajectory.states[0], stiffness)?;
    let mut worst = 0.0f64;
    for state in &trajectory.states {
        worst = worst.max((total_energy(state, stiffness)? - initial).abs() / initial);
    }
    Ok(worst)
}

fn main() -> anyhow::Result<()> {
    let device = Device::Cpu;
    let stiffness = 4.0; // ω = 2
    let field = HarmonicTrap { stiffness };
    let dt = 0.01;
    let n_steps = 1000; // t = 10, about three periods
    let record: Vec<usize> = (0..=n_steps).step_by(50).collect();

    // Three particles in 2-D starting at rest: x(t) = x₀ cos(ωt) exactly.
    let x0 = Tensor::new(&[[1.0f64, 0.0], [0.0, -0.5], [0.3, 0.4]], &device)?;
    let v0 = Tensor::zeros((3, 2), DType::F64, &device)?;
    let no_friction = Tensor::new(0.0f64, &device)?;

    let mut final_positions = Vec::new();
    for integrator in [Integrator::ReferenceLeapfrog, Integrator::ConformalLeapfrog] {
        let start = State::new(&field, x0.clone(), v0.clone(), 0.0)?;
        let trajectory = rollout(
            integrator,
            &field,
            start,
            dt,
            n_steps,
            &no_friction,
            &record,
        )?;
        let drift = relative_drift(&trajectory, stiffness)?;
        let last = trajectory.states.last().expect("record is not empty");
        let omega = stiffness.sqrt();
        let exact = x0.affine((omega * last.time).cos(), 0.0)?;
        let error = (&last.positions - &exact)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f64>()?;
        println!(
            "{integrator:?}, γ = 0: {} records up to t = {:.2}, energy drift {drift:.2e}, |x − x_exact| ≤ {error:.2e}",
            trajectory.states.len(),
            last.time
        );
        // Velocity Verlet's energy error is bounded by about (ω h)² / 8 relative.
        let bound = (omega * dt).powi(2);
        ensure!(
            drift < bound,
            "{integrator:?}: energy drift {drift:e} exceeds the O(h²) bound {bound:e}"
        );
        ensure!(
            error < 1e-3,
            "{integrator:?}: positions at t = {} are {error:e} away from x₀ cos(ωt)",
            last.time
        );
        final_positions.push(last.positions.clone());
    }
    let disagreement = (&final_positions[0] - &final_positions[1])?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()?;
    println!("without friction the two schemes agree to {disagreement:.1e}");
    ensure!(
        disagreement < 1e-12,
        "at γ = 0 both schemes are velocity Verlet, but they differ by {disagreement:e}"
    );

    // With friction the conformal scheme solves the damping exactly: the energy decays.
    let gamma = 0.5;
    let friction = Tensor::new(gamma, &device)?;
    let start = State::new(&field, x0.clone(), v0.clone(), 0.0)?;
    let trajectory = rollout(
        Integrator::ConformalLeapfrog,
        &field,
        start,
        dt,
        n_steps,
        &friction,
        &record,
    )?;
    let initial = total_energy(&trajectory.states[0], stiffness)?;
    let last = trajectory.states.last().expect("record is not empty");
    let final_energy = total_energy(last, stiffness)?;
    let expected = initial * (-gamma * last.time).exp();
    println!(
        "ConformalLeapfrog, γ = {gamma}: energy {initial:.4} → {final_energy:.3e} at t = {:.2} (e^(−γt) E(0) = {expected:.3e})",
        last.time
    );
    for (state, time) in trajectory.states.iter().zip(&trajectory.times) {
        let energy = total_energy(state, stiffness)?;
        ensure!(
            energy <= initial * (1.0 + 1e-12),
            "with friction the energy should not grow: {energy} > {initial} at t = {time}"
        );
    }
    ensure!(
        final_energy < 2.0 * expected && final_energy > 0.5 * expected,
        "with friction γ = {gamma} the energy should decay roughly like e^(−γt): got {final_energy}, expected about {expected}"
    );
    println!("all checks passed");
    Ok(())
}

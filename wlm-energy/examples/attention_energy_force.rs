//! An attention energy built from its config: energy and force of a cloud, checked by finite differences.
//!
//! Shows `wlm-energy`'s main entry point: [`AttentionEnergyConfig`] → [`AttentionEnergy`]
//! (seeded PyTorch-default initialisation), its scalar energy `E(x, t)` and its hand-written
//! force `−∇ₓE`, and the graph-free values used where no gradient is wanted. It checks that the
//! force matches a central finite difference of the energy in every coordinate, that the
//! graph-free energy and force equal the candle-graph ones, and that [`EnergyField`] hands the
//! force to the integrators unchanged.
//!
//! Run it with `cargo run -p wlm-energy --example attention_energy_force`; it exits non-zero if
//! a check fails.

use anyhow::ensure;
use candle_core::{DType, Device, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use wlm_energy::{AttentionEnergyConfig, Energy, EnergyField};
use wlm_integrate::ForceField;

/// Particles in the cloud.
const N_PARTICLES: usize = 12;
/// Dimension of the particles.
const DIM: usize = 2;

/// `max |a − b|` over all entries.
fn max_abs_difference(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?)
}

fn main() -> anyhow::Result<()> {
    let device = Device::Cpu;
    // A small network; the defaults are the reference's sizes (hidden 64, 4 blocks, ff 512).
    let config = AttentionEnergyConfig {
        dim: DIM,
        heads: 2,
        hidden: 16,
        blocks: 2,
        ff: 32,
        time_features: true,
        ..AttentionEnergyConfig::default()
    };
    let (energy, varmap) = config.init_seeded(3, DType::F64, &device)?;
    energy.set_training(false);
    println!(
        "attention energy: {} blocks, hidden {}, {} parameters in {} tensors",
        config.blocks,
        config.hidden,
        config.parameter_count(),
        varmap.all_vars().len()
    );

    let mut rng = StdRng::seed_from_u64(11);
    let values: Vec<f64> = (0..N_PARTICLES * DIM)
        .map(|_| 2.0 * rng.random::<f64>() - 1.0)
        .collect();
    let x = Tensor::from_vec(values.clone(), (N_PARTICLES, DIM), &device)?;
    let t = 0.3;
    let value = energy.energy(&x, t)?.to_scalar::<f64>()?;
    let force = energy.force(&x, t)?;
    ensure!(
        force.dims() == [N_PARTICLES, DIM],
        "force of shape {:?}, expected {:?}",
        force.dims(),
        [N_PARTICLES, DIM]
    );
    let force_values = force.flatten_all()?.to_vec1::<f64>()?;
    let scale = force_values.iter().fold(0.0f64, |m, f| m.max(f.abs()));
    println!("E(x, t = {t}) = {value:.6}, max |force| = {scale:.4}");

    // The force is −∂E/∂x: compare every coordinate with a central difference of the energy.
    let h = 1e-5;
    let mut worst = 0.0f64;
    for coordinate in 0..N_PARTICLES * DIM {
        let shifted_energy = |delta: f64| -> anyhow::Result<f64> {
            let mut moved = values.clone();
            moved[coordinate] += delta;
            let moved = Tensor::from_vec(moved, (N_PARTICLES, DIM), &device)?;
            Ok(energy.energy(&moved, t)?.to_scalar::<f64>()?)
        };
        let finite_difference = -(shifted_energy(h)? - shifted_energy(-h)?) / (2.0 * h);
        worst = worst.max((force_values[coordinate] - finite_difference).abs());
    }
    let relative = worst / scale;
    println!(
        "force vs central finite difference of the energy: max difference {worst:.1e} ({relative:.1e} of max |force|)"
    );
    ensure!(
        relative < 1e-7,
        "the force does not match −∂E/∂x by finite differences: {worst:e} against a scale of {scale:e}"
    );

    // The graph-free path (what forecasts and simulations use) computes the same numbers.
    let detached_value = energy.energy_detached(&x, t)?.to_scalar::<f64>()?;
    let detached_force = energy.force_detached(&x, t)?;
    let force_gap = max_abs_difference(&detached_force, &force)?;
    println!(
        "graph-free path: |ΔE| = {:.1e}, max |Δforce| = {force_gap:.1e}",
        (detached_value - value).abs()
    );
    ensure!(
        (detached_value - value).abs() <= 1e-10 * value.abs().max(1.0) && force_gap <= 1e-10 * scale,
        "the graph-free energy/force differ from the graph ones: {detached_value} vs {value}, force by {force_gap:e}"
    );

    // The integrators see the energy through the ForceField seam: acceleration = force.
    let field = EnergyField::new(&energy);
    let acceleration = field.acceleration(&x, t)?;
    let seam_gap = max_abs_difference(&acceleration, &force)?;
    ensure!(
        seam_gap <= 1e-12 * scale,
        "EnergyField's acceleration differs from the force by {seam_gap:e}"
    );
    println!("EnergyField acceleration equals the force; all checks passed");
    Ok(())
}

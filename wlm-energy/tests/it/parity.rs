//! Parity with the PyTorch reference on the shared fixtures `parity/{small,boids_like}` (f64).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Deserialize;
use wlm_energy::{load_weights, AttentionEnergyConfig, Energy, EnergyField, Kernels};
use wlm_integrate::{rollout, Integrator, State};

use crate::common::{assert_close, fixture_dir};

#[derive(Deserialize)]
struct Case {
    config: Config,
    inputs: Inputs,
    outputs: Outputs,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Config {
    N: usize,
    d: usize,
    heads: usize,
    hidden: usize,
    blocks: usize,
    ff: usize,
    dropout: f64,
    use_time: bool,
    dt: f64,
    k: usize,
    friction: Friction,
}

#[derive(Deserialize)]
struct Friction {
    gamma: f64,
    momentum_m: f64,
}

#[derive(Deserialize)]
struct Inputs {
    x0: Vec<Vec<f64>>,
    v0: Vec<Vec<f64>>,
    time_grid: Vec<f64>,
}

#[derive(Deserialize)]
struct Outputs {
    energy: f64,
    energy_per_particle: Vec<f64>,
    force_x0: Vec<Vec<f64>>,
    rollout_x: Vec<Vec<Vec<f64>>>,
    rollout_v: Vec<Vec<Vec<f64>>>,
    rollout_accel: Vec<Vec<Vec<f64>>>,
}

fn matrix(rows: &[Vec<f64>]) -> anyhow::Result<Tensor> {
    Ok(Tensor::new(rows.to_vec(), &Device::Cpu)?)
}

const TOL: f64 = 1e-10;
/// Absolute floor of the entry-wise comparisons (`|Δ| ≤ ATOL + TOL·|reference|`): f64 rounding of
/// O(1) energies, forces and states, for entries that are near zero.
const ATOL: f64 = 1e-13;

fn check_case(name: &str, kernels: Kernels) -> anyhow::Result<()> {
    let Some(dir) = fixture_dir(&format!("parity/{name}")) else {
        return Ok(());
    };
    let case: Case = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json"))?)?;
    let c = &case.config;
    let config = AttentionEnergyConfig {
        dim: c.d,
        heads: c.heads,
        hidden: c.hidden,
        blocks: c.blocks,
        ff: c.ff,
        time_features: c.use_time,
        dropout: c.dropout,
    };
    // Weights through the safetensors loading path, by state_dict name.
    let varmap = VarMap::new();
    let energy = config
        .init(VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu))?
        .with_kernels(kernels);
    let unused = load_weights(&varmap, dir.join("weights.safetensors"))?;
    assert!(unused.is_empty(), "{name}: unused tensors {unused:?}");

    let x0 = matrix(&case.inputs.x0)?;
    assert_eq!(x0.dims(), &[c.N, c.d]);
    let e = energy.energy(&x0, 0.0)?.to_scalar::<f64>()?;
    let rel = (e - case.outputs.energy).abs() / case.outputs.energy.abs();
    assert!(
        rel < TOL,
        "{name} {kernels:?}: energy {e} vs {}",
        case.outputs.energy
    );
    let per = energy.per_particle_energy(&x0, 0.0)?;
    let want = Tensor::new(case.outputs.energy_per_particle.as_slice(), &Device::Cpu)?;
    assert_close(
        &format!("{name}: energy_per_particle"),
        &per,
        &want,
        ATOL,
        TOL,
    );
    let force = energy.force(&x0, 0.0)?;
    let what = format!("{name} {kernels:?}: force_x0");
    assert_close(&what, &force, &matrix(&case.outputs.force_x0)?, ATOL, TOL);

    // The reference rollout: one leapfrog step per interval, k intervals.
    let field = EnergyField::new(&energy);
    let friction = Tensor::new(c.friction.gamma, &Device::Cpu)?;
    let (m, _) = wlm_integrate::reference_coefficients(&friction, c.dt)?;
    let m = m.to_scalar::<f64>()?;
    assert!((m - c.friction.momentum_m).abs() < 1e-15, "{name}: m = {m}");
    let initial = State::new(&field, x0, matrix(&case.inputs.v0)?, 0.0)?;
    let record: Vec<usize> = (0..=c.k).collect();
    let traj = rollout(
        Integrator::ReferenceLeapfrog,
        &field,
        initial,
        c.dt,
        c.k,
        &friction,
        &record,
    )?;
    for (step, state) in traj.states.iter().enumerate() {
        assert!((state.time - case.inputs.time_grid[step]).abs() < 1e-15);
        assert_close(
            &format!("{name}: rollout_accel[{step}]"),
            &state.acceleration,
            &matrix(&case.outputs.rollout_accel[step])?,
            ATOL,
            TOL,
        );
        if step >= 1 {
            assert_close(
                &format!("{name}: rollout_x[{}]", step - 1),
                &state.positions,
                &matrix(&case.outputs.rollout_x[step - 1])?,
                ATOL,
                TOL,
            );
            assert_close(
                &format!("{name}: rollout_v[{}]", step - 1),
                &state.velocities,
                &matrix(&case.outputs.rollout_v[step - 1])?,
                ATOL,
                TOL,
            );
        }
    }
    Ok(())
}

#[test]
fn small_fixture_matches_the_reference_with_plain_and_fused_kernels() -> anyhow::Result<()> {
    check_case("small", Kernels::Plain)?;
    check_case("small", Kernels::Fused)
}

#[test]
fn boids_like_fixture_matches_the_reference_with_plain_and_fused_kernels() -> anyhow::Result<()> {
    check_case("boids_like", Kernels::Plain)?;
    check_case("boids_like", Kernels::Fused)
}

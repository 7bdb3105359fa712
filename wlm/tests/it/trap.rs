//! End to end: data from a known harmonic trap with pairwise repulsion; a small mean-field
//! model trained on the first snapshots forecasts the rest better than both baselines.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use wlm::{
    EnergyConfig, EvalConfig, FrictionConfig, Model, ModelConfig, Precision, Run, RunConfig,
    SplitConfig, TrainConfig,
};
use wlm_energy::{AnalyticPotential, MeanFieldEnergyConfig};
use wlm_integrate::Integrator;

const GAMMA: f64 = 0.1;

/// 20 snapshots, Δt = 0.25 (γ = 0.1), of 48 particles in the trap `E = ½Σ|x|² + (0.5/N)Σ exp(−|r|²/0.5)`,
/// started off-centre with a tangential velocity (so the cloud orbits), simulated at 20 steps
/// per interval.
fn trap_data() -> anyhow::Result<wlm_data::Snapshots> {
    let dev = Device::Cpu;
    let truth = Model::new(
        ModelConfig {
            energy: EnergyConfig::Analytic {
                potential: AnalyticPotential::HarmonicRepulsion {
                    stiffness: 1.0,
                    repulsion: 0.5,
                    length: 0.5,
                },
                dim: 2,
            },
            friction: FrictionConfig {
                gamma: GAMMA,
                learnable: false,
            },
            integrator: Integrator::ReferenceLeapfrog,
            precision: Precision::F64,
            ..ModelConfig::default()
        },
        &dev,
    )?;
    let n = 48;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let noise = Normal::new(0.0, 0.25)?;
    let mut x = Vec::with_capacity(2 * n);
    let mut v = Vec::with_capacity(2 * n);
    for _ in 0..n {
        x.push(1.5 + noise.sample(&mut rng));
        x.push(noise.sample(&mut rng));
        v.push(0.2 * noise.sample(&mut rng));
        v.push(1.0 + 0.2 * noise.sample(&mut rng));
    }
    let x0 = Tensor::from_vec(x, (n, 2), &dev)?;
    let v0 = Tensor::from_vec(v, (n, 2), &dev)?;
    let times: Vec<f64> = (0..20).map(|k| 0.25 * k as f64).collect();
    let states = truth.simulate(&x0, &v0, 0.0, &times[1..], 20)?;
    let mut positions = vec![x0.clone()];
    let mut velocities = vec![Some(v0.clone())];
    for s in states {
        positions.push(s.positions.to_dtype(DType::F64)?);
        velocities.push(Some(s.velocities.to_dtype(DType::F64)?));
    }
    Ok(wlm_data::Snapshots::from_tensors(
        times,
        &positions,
        Some(&velocities),
    )?)
}

#[test]
fn trained_model_forecasts_a_harmonic_trap_better_than_both_baselines() -> anyhow::Result<()> {
    let data = trap_data()?;
    let config = RunConfig {
        model: ModelConfig {
            energy: EnergyConfig::MeanField(MeanFieldEnergyConfig {
                dim: 2,
                hidden: 16,
                layers: 1,
            }),
            friction: FrictionConfig {
                gamma: GAMMA,
                learnable: false,
            },
            ..ModelConfig::default()
        },
        train: TrainConfig {
            steps: 150,
            seed: 1,
            lr: 2e-2,
            fixed_horizon: true,
            weight_decay: 0.0,
            ema_decay: 0.9,
            checkpoint_every: 0,
            loss: wlm::LossConfig {
                p: 2,
                blur: Some(0.1),
                scaling: 0.9,
            },
            ..TrainConfig::default()
        },
        eval: EvalConfig {
            w2: false,
            ..EvalConfig::default()
        },
        split: SplitConfig::Forecast { n_train: 12 },
    };
    let dir = tempfile::tempdir()?;
    let mut run = Run::create(dir.path(), config, data, &Device::Cpu)?;
    let before = run.evaluate()?;
    run.train(&mut ())?;
    let after = run.evaluate()?;
    let model_w1 = after.test_w1.map(|m| m.mean).unwrap_or(f64::INFINITY);
    let untrained = before.test_w1.map(|m| m.mean).unwrap_or(0.0);
    assert_eq!(after.baselines.len(), 2);
    for b in &after.baselines {
        let base = b.test_w1.map(|m| m.mean).unwrap_or(0.0);
        assert!(
            model_w1 < 0.5 * base,
            "model W1 {model_w1} vs baseline {} {base}",
            b.name
        );
    }
    assert!(
        model_w1 < 0.5 * untrained,
        "trained {model_w1} vs untrained {untrained}"
    );
    Ok(())
}

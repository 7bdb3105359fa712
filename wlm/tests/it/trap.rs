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
    let truth = truth()?;
    trap_data_of(&truth, &dev)
}

/// The true model of [`trap_data`].
fn truth() -> anyhow::Result<Model> {
    Ok(Model::new(
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
        &Device::Cpu,
    )?)
}

fn trap_data_of(truth: &Model, dev: &Device) -> anyhow::Result<wlm_data::Snapshots> {
    let dev = dev.clone();
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

#[test]
fn the_true_model_restarted_from_the_last_training_snapshot_scores_zero() -> anyhow::Result<()> {
    // The data were simulated by `truth` at 20 steps per interval: restarted from an observed
    // snapshot with its velocities, it reproduces every later snapshot to rounding, while its
    // forecast from snapshot 0 does too. The baselines (which start at the last training
    // snapshot as well) do not.
    let truth = truth()?;
    let data = trap_data()?;
    let split = SplitConfig::Forecast { n_train: 12 }.resolve(data.len())?;
    let eval = EvalConfig {
        steps_per_interval: 20,
        ..EvalConfig::default()
    };
    let e = wlm::evaluate(&truth, &data, &split, &eval)?;
    let tests: Vec<usize> = split.test.clone();
    let indices: Vec<usize> = e.from_last.iter().map(|(k, _)| *k).collect();
    assert_eq!(indices, tests, "one restart score per test snapshot");
    for (k, w) in &e.from_last {
        assert!(*w < 1e-9, "restart W1 at {k}: {w}");
    }
    let m = e.test_w1_from_last.expect("mean");
    assert_eq!(m.n, tests.len());
    let last = e
        .baselines
        .iter()
        .find(|b| b.name == "repeat_last")
        .expect("baseline");
    assert!(last.test_w1.expect("mean").mean > 0.1, "the cloud moves");
    // A wrong model (3× the friction): the restart at snapshot 11 scores what interpolating
    // snapshot 12 from 11 scores, and drifts less than the forecast from snapshot 0.
    let mut config = truth.config().clone();
    config.friction.gamma = 3.0 * GAMMA;
    let wrong = Model::new(config, &Device::Cpu)?;
    let e = wlm::evaluate(&wrong, &data, &split, &eval)?;
    let first = split.test[0];
    let one_step = wlm::interpolate(&wrong, &data, first, eval.initial_velocities, 20)?;
    let y = data.positions_tensor(first, DType::F64, &Device::Cpu)?;
    let w = wlm_ot::wasserstein_1(&one_step.to_dtype(DType::F64)?, &y)?;
    assert!(
        (e.from_last[0].1 - w).abs() <= 1e-12 * (1.0 + w),
        "{:?} vs {w}",
        e.from_last[0]
    );
    let (restart, from_zero) = (e.test_w1_from_last.expect("mean"), e.test_w1.expect("mean"));
    assert!(restart.mean > 1e-4, "the wrong model is wrong: {restart:?}");
    assert!(
        restart.mean < from_zero.mean,
        "{restart:?} vs {from_zero:?}"
    );
    // An interpolation split has no restart scores (its test rows are restarts already).
    let holdout = SplitConfig::Holdout { indices: vec![5] }.resolve(data.len())?;
    let e = wlm::evaluate(&truth, &data, &holdout, &eval)?;
    assert!(e.from_last.is_empty() && e.test_w1_from_last.is_none());
    Ok(())
}

//! Training a tiny WLM model for a few steps on synthetic snapshots, then forecasting.
//!
//! Shows the learner's entry point, a [`Run`]: a [`RunConfig`] (model, training, evaluation,
//! split) and [`Snapshots`] go in, `train` runs the Sinkhorn-matched rollouts with AdamW and
//! `finish` writes the weights, the forecast and the exact-W1 evaluation; [`forecast`] then
//! rolls the trained model out from the first snapshot. The data are 32 particles in a harmonic
//! trap (`x(t) = x₀ cos t + v₀ sin t`), observed with their velocities at 6 times; the first 4
//! train and the last 2 are held out. It checks that the fixed-horizon loss at least halves,
//! that the held-out forecast beats repeating the last training snapshot, that the run
//! directory (a temporary one, removed at the end) holds every output with one metrics row per
//! step, that the forecast read back from `forecast.npz` is the one evaluated, and that
//! every score is finite.
//!
//! Run it with `cargo run -p wlm --example train_and_forecast`; it exits non-zero if a check
//! fails.

use std::cell::RefCell;

use anyhow::ensure;
use candle_core::Device;
use rand::{rngs::StdRng, Rng, SeedableRng};
use wlm::{
    forecast, EnergyConfig, EvalConfig, Run, RunConfig, SplitConfig, StepReport, TrainConfig,
    TrainObserver, VelocitySource,
};
use wlm_data::Snapshots;
use wlm_energy::AttentionEnergyConfig;

/// Particles per snapshot.
const N_PARTICLES: usize = 32;
/// Number of snapshots.
const N_SNAPSHOTS: usize = 6;
/// Training steps.
const N_STEPS: usize = 20;

/// Collects the loss of every step (libraries never print: progress comes through an observer).
#[derive(Default)]
struct Losses(RefCell<Vec<f64>>);

impl TrainObserver for Losses {
    fn on_step(&mut self, report: &StepReport) {
        self.0.borrow_mut().push(report.loss);
    }
}

/// Particles in the harmonic trap `ẍ = −x`, observed with velocities at `t = 0, 0.25, …`.
fn harmonic_snapshots(seed: u64) -> anyhow::Result<Snapshots> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |centre: f64| centre + 0.4 * (rng.random::<f64>() - 0.5);
    let starts: Vec<[f64; 4]> = (0..N_PARTICLES)
        .map(|_| [draw(1.0), draw(0.0), draw(0.0), draw(0.8)])
        .collect();
    let times: Vec<f64> = (0..N_SNAPSHOTS).map(|k| 0.25 * k as f64).collect();
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    for &t in &times {
        let (cos, sin) = (t.cos(), t.sin());
        let mut x = Vec::with_capacity(2 * N_PARTICLES);
        let mut v = Vec::with_capacity(2 * N_PARTICLES);
        for [x0, y0, vx0, vy0] in &starts {
            x.extend([x0 * cos + vx0 * sin, y0 * cos + vy0 * sin]);
            v.extend([-x0 * sin + vx0 * cos, -y0 * sin + vy0 * cos]);
        }
        positions.push(x);
        velocities.push(Some(v));
    }
    Ok(Snapshots::new(times, 2, positions, Some(velocities))?)
}

fn main() -> anyhow::Result<()> {
    let snapshots = harmonic_snapshots(1)?;

    let mut config = RunConfig::default();
    config.model.energy = EnergyConfig::Attention(AttentionEnergyConfig {
        dim: 2,
        heads: 2,
        hidden: 8,
        blocks: 1,
        ff: 16,
        ..AttentionEnergyConfig::default()
    });
    config.train = TrainConfig {
        steps: N_STEPS,
        seed: 3,
        lr: 1e-2,
        fixed_horizon: true, // every step rolls out to the last training snapshot
        ema_decay: 0.5,
        checkpoint_every: 10,
        ..TrainConfig::default()
    };
    config.eval = EvalConfig {
        w2: false,
        ..EvalConfig::default()
    };
    config.split = SplitConfig::Forecast { n_train: 4 };

    let dir = tempfile::tempdir()?;
    let run_dir = dir.path().join("run");
    let mut run = Run::create(&run_dir, config, snapshots.clone(), &Device::Cpu)?;
    let mut losses = Losses::default();
    run.train(&mut losses)?;
    let losses = losses.0.into_inner();
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    println!(
        "trained {} steps: loss {first:.5} → {last:.5}, friction {}",
        run.trainer().step_count(),
        run.trainer().model().friction()?
    );
    ensure!(
        losses.len() == N_STEPS && losses.iter().all(|l| l.is_finite()),
        "expected {N_STEPS} finite losses, got {losses:?}"
    );
    ensure!(
        last < 0.5 * first,
        "the fixed-horizon loss should at least halve in {N_STEPS} steps: {losses:?}"
    );

    let (evaluation, predictions) = run.finish()?;
    for file in [
        wlm::CONFIG_FILE,
        wlm::METRICS_FILE,
        wlm::CHECKPOINT_FILE,
        wlm::WEIGHTS_FILE,
        wlm::EMA_WEIGHTS_FILE,
        wlm::FORECAST_FILE,
        wlm::EVALUATION_FILE,
    ] {
        ensure!(
            run_dir.join(file).is_file(),
            "the run directory lacks {file}"
        );
    }
    let metrics = std::fs::read_to_string(run_dir.join(wlm::METRICS_FILE))?;
    ensure!(
        metrics.lines().count() == N_STEPS + 1,
        "metrics.csv should have a header and {N_STEPS} rows, got {} lines",
        metrics.lines().count()
    );

    // The written forecast is the one that was scored.
    let written =
        wlm_data::load_particles_npz(run_dir.join(wlm::FORECAST_FILE), Some(snapshots.times()))?;
    ensure!(
        written == predictions.forecast.to_snapshots()?,
        "forecast.npz differs from the evaluated forecast"
    );
    for score in &evaluation.scores {
        println!(
            "  snapshot {} (t = {:.2}, {:?}): W1 {:.4}",
            score.index, score.time, score.role, score.w1
        );
        ensure!(
            score.w1.is_finite(),
            "W1 at snapshot {} is not finite",
            score.index
        );
    }
    let test_w1 = evaluation
        .test_w1
        .ok_or_else(|| anyhow::anyhow!("a forecast split should have test scores"))?;
    println!("held-out W1 {:.4} ± {:.4}", test_w1.mean, test_w1.se);
    for baseline in &evaluation.baselines {
        if let Some(score) = baseline.test_w1 {
            println!("  baseline {}: W1 {:.4}", baseline.name, score.mean);
            if baseline.name == "repeat_last" {
                ensure!(
                    test_w1.mean < score.mean,
                    "the trained model (held-out W1 {}) should beat repeating the last training snapshot ({})",
                    test_w1.mean,
                    score.mean
                );
            }
        }
    }

    // A forecast with the trained (raw, not EMA) weights, from snapshot 0 with its velocities.
    let model = run.trainer().model();
    let rollout = forecast(model, &snapshots, 0, VelocitySource::Data, 5)?;
    ensure!(
        rollout.positions.len() == N_SNAPSHOTS
            && rollout.positions[N_SNAPSHOTS - 1].dims() == [N_PARTICLES, 2],
        "the forecast should hold {N_SNAPSHOTS} clouds of shape [{N_PARTICLES}, 2]"
    );
    let end = rollout.positions[N_SNAPSHOTS - 1]
        .flatten_all()?
        .to_vec1::<f32>()?;
    ensure!(
        end.iter().all(|v| v.is_finite()),
        "the forecast at t = {} is not finite",
        rollout.times[N_SNAPSHOTS - 1]
    );
    println!(
        "forecast from snapshot 0 to t = {:.2}: {} clouds; all checks passed",
        rollout.times[N_SNAPSHOTS - 1],
        rollout.positions.len()
    );
    Ok(())
}

//! Flow matching across a held-out snapshot: OT-CFM, I-CFM and harmonic LFM trained on
//! snapshots 0, 2 and 3 of a drifting, shrinking Gaussian, then asked for snapshot 1.
//!
//! Shows `wlm-flow` the way `wlm flow` uses it: a [`FlowTrainer`] on the training snapshots
//! (held-out ones removed from the chain), [`FlowModel::predict`] by RK4 from the snapshot
//! before the held-out one to its time, scored by exact W1. The mean moves on a parabola, so
//! the first-order interpolants, straight within an interval, cannot reach the held-out cloud:
//! the check is that every method beats repeating the previous snapshot by a wide margin and
//! that OT-CFM lands where its theory says, near the exact-OT (McCann) interpolation between
//! snapshots 0 and 2 at the held-out time.
//!
//! Run it with `cargo run -p wlm-flow --example interpolate_held_out`; it exits non-zero if a
//! check fails.

use anyhow::{ensure, Context};
use candle_core::{Device, Tensor};
use wlm_data::Snapshots;
use wlm_flow::{Coupling, FlowConfig, FlowTrainer, PathKind};
use wlm_numeric::SeedRng;

/// Points per snapshot.
const N_POINTS: usize = 400;

/// The population at time `t`: `N((3t, t²), (1 − 0.2t)² I)` in 2-D.
fn snapshot(rng: &mut SeedRng, t: f64) -> Vec<f64> {
    let s = 1.0 - 0.2 * t;
    (0..N_POINTS)
        .flat_map(|_| [3.0 * t + s * rng.normal(), t * t + s * rng.normal()])
        .collect()
}

fn tensor(x: &[f64]) -> candle_core::Result<Tensor> {
    Tensor::from_vec(x.to_vec(), (x.len() / 2, 2), &Device::Cpu)
}

fn w1(a: &[f64], b: &[f64]) -> anyhow::Result<f64> {
    Ok(wlm_ot::wasserstein_1(&tensor(a)?, &tensor(b)?)?)
}

fn main() -> anyhow::Result<()> {
    let mut rng = SeedRng::seed_from(0);
    let times = vec![0.0, 1.0, 2.0, 3.0];
    let clouds: Vec<Vec<f64>> = times.iter().map(|&t| snapshot(&mut rng, t)).collect();
    let snapshots = Snapshots::new(times, 2, clouds, None)?;
    let fresh = snapshot(&mut rng, 1.0);
    let floor = w1(&fresh, snapshots.positions(1))?;
    let repeat = w1(snapshots.positions(0), snapshots.positions(1))?;
    let midpoint = wlm_ot::displacement_interpolation_w1(
        &tensor(snapshots.positions(0))?,
        &tensor(snapshots.positions(2))?,
        0.5,
        &tensor(snapshots.positions(1))?,
    )?;
    println!(
        "held-out snapshot 1: sampling floor W1 {floor:.4}, repeat previous {repeat:.4}, OT midpoint {midpoint:.4}"
    );
    let methods = [
        ("OT-CFM", Coupling::ExactOt, PathKind::Linear),
        ("I-CFM", Coupling::Independent, PathKind::Linear),
        (
            "LFM ω=1",
            Coupling::ExactOt,
            PathKind::Harmonic { omega: 1.0 },
        ),
    ];
    for (name, coupling, path) in methods {
        let mut config = FlowConfig {
            coupling,
            path,
            ..FlowConfig::default()
        };
        config.train.steps = 400;
        config.train.lr = 3e-3;
        config.train.ema_decay = 0.99;
        let mut trainer = FlowTrainer::new(&config, &snapshots, &[0, 2, 3])?;
        trainer.train(&mut |_, _| {})?;
        let model = trainer.finish()?;
        let predicted = model
            .predict(snapshots.positions(0), 0.0, 1.0)
            .with_context(|| format!("{name}: prediction failed"))?;
        let score = w1(&predicted, snapshots.positions(1))?;
        println!("{name:8} W1 {score:.4}");
        ensure!(
            score < 0.5 * repeat,
            "{name}: W1 {score} is not well below repeating the previous snapshot ({repeat})"
        );
        if name == "OT-CFM" {
            ensure!(
                (score - midpoint).abs() < 2.0 * floor,
                "OT-CFM: W1 {score} is not within twice the sampling floor {floor} of the OT midpoint's {midpoint}"
            );
        }
    }
    println!("all checks passed");
    Ok(())
}

//! criterion benchmarks of `wlm`: one full training step (rollout, `k` Sinkhorn losses, reverse
//! sweep, AdamW, EMA) with the reference attention energy (heads 4, hidden 64, blocks 4,
//! FF 512), f32, on synthetic clouds of the reference experiments' shapes.
//!
//! Cases (`training_step/<name>`): `boids_n256_k10_p1`, `boids_n1000_k10_p1`,
//! `gfsde_n1000_k9_p2`, `boids_n256_k49_p1`, `boids_n1000_k49_p1`. Boids-like clouds are uniform
//! in `[−5, 5]²` with unit-speed velocities; GF-SDE-like clouds are `N(0, 0.2 I)` spreading
//! with time. The blur is estimated from the data, as in training. Peak memory: run one case
//! per process under `/usr/bin/time -v`, e.g.
//! `/usr/bin/time -v cargo bench -p wlm-benches --bench training -- boids_n1000_k10_p1`
//! (numbers in `notes/training.md`).

use std::time::Duration;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use wlm::{
    EnergyConfig, Model, ModelConfig, Precision, TrainConfig, Trainer, VelocitySource,
};
use wlm_data::Snapshots;
use wlm_energy::AttentionEnergyConfig;

/// `k + 1` snapshots of `n` points in 2-D, Boids-like or GF-SDE-like.
fn clouds(n: usize, k: usize, boids: bool, seed: u64) -> Snapshots {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    let dt = if boids { 0.5 } else { 0.01 };
    for step in 0..=k {
        let spread = if boids { 1.0 } else { (0.2 + 2.0 * dt * step as f64).sqrt() };
        let mut x = Vec::with_capacity(2 * n);
        let mut v = Vec::with_capacity(2 * n);
        for _ in 0..n {
            if boids {
                x.push(rng.random_range(-5.0..5.0));
                x.push(rng.random_range(-5.0..5.0));
                let angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                v.push(angle.cos());
                v.push(angle.sin());
            } else {
                let (a, b): (f64, f64) = (rng.random(), rng.random());
                let r = (-2.0 * (1.0 - a).ln()).sqrt() * spread;
                x.push(r * (std::f64::consts::TAU * b).cos());
                x.push(r * (std::f64::consts::TAU * b).sin());
                v.push(rng.random_range(-1.0..1.0));
                v.push(rng.random_range(-1.0..1.0));
            }
        }
        positions.push(x);
        velocities.push(Some(v));
    }
    let times = (0..=k).map(|s| dt * s as f64).collect();
    Snapshots::new(times, 2, positions, Some(velocities)).expect("snapshots")
}

fn trainer(n: usize, k: usize, p: u32, boids: bool) -> Trainer {
    let model = Model::new(
        ModelConfig {
            energy: EnergyConfig::Attention(AttentionEnergyConfig::default()),
            precision: Precision::F32,
            ..ModelConfig::default()
        },
        &Device::Cpu,
    )
    .expect("model");
    let mut config = TrainConfig {
        fixed_horizon: true,
        initial_velocities: VelocitySource::Data,
        ..TrainConfig::default()
    };
    config.loss.p = p;
    Trainer::new(model, config, &clouds(n, k, boids, 7)).expect("trainer")
}

fn training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("training_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let cases = [
        ("boids_n256_k10_p1", 256, 10, 1, true),
        ("boids_n1000_k10_p1", 1000, 10, 1, true),
        ("gfsde_n1000_k9_p2", 1000, 9, 2, false),
        ("boids_n256_k49_p1", 256, 49, 1, true),
        ("boids_n1000_k49_p1", 1000, 49, 1, true),
    ];
    for (name, n, k, p, boids) in cases {
        let mut t = trainer(n, k, p, boids);
        group.bench_function(name, |b| b.iter(|| t.step().expect("training step")));
    }
    group.finish();
}

criterion_group!(benches, training_step);
criterion_main!(benches);

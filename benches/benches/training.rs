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
//! (numbers in `notes/training.md`). The sweep keeps the forward graphs within the default
//! 2 GiB budget; `boids_n256_k10_p1_rebuild` rebuilds them (budget 0). `main` first applies
//! the `wlm` binary's process settings (malloc thresholds, candle spin limit).

use std::time::Duration;

use candle_core::Device;
use criterion::{criterion_group, Criterion};
use rand::{Rng, SeedableRng};
use wlm::{
    EnergyConfig, GradientMethod, Model, ModelConfig, Precision, TrainConfig, Trainer,
    VelocitySource,
};
use wlm_benches::{cpu_seconds, short_group};
use wlm_data::Snapshots;
use wlm_energy::AttentionEnergyConfig;

/// `k + 1` snapshots of `n` points in 2-D, Boids-like or GF-SDE-like.
fn clouds(n: usize, k: usize, boids: bool, seed: u64) -> Snapshots {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    let dt = if boids { 0.5 } else { 0.01 };
    for step in 0..=k {
        let spread = if boids {
            1.0
        } else {
            (0.2 + 2.0 * dt * step as f64).sqrt()
        };
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

fn trainer(
    n: usize,
    k: usize,
    p: u32,
    boids: bool,
    method: GradientMethod,
    keep_graphs_mib: u64,
) -> Trainer {
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
        gradient: method,
        keep_graphs_mib,
        ..TrainConfig::default()
    };
    config.loss.p = p;
    Trainer::new(model, config, &clouds(n, k, boids, 7)).expect("trainer")
}

fn training_step(c: &mut Criterion) {
    let mut group = short_group(
        c,
        "training_step",
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    for (name, n, k, p, boids) in CASES {
        let mut t = trainer(n, k, p, boids, GradientMethod::ReverseSweep, KEEP);
        group.bench_function(name, |b| b.iter(|| t.step().expect("training step")));
    }
    let mut t = trainer(256, 10, 1, true, GradientMethod::ReverseSweep, 0);
    group.bench_function("boids_n256_k10_p1_rebuild", |b| {
        b.iter(|| t.step().expect("training step"))
    });
    let mut t = trainer(256, 10, 1, true, GradientMethod::GraphSweep, KEEP);
    group.bench_function("boids_n256_k10_p1_graph", |b| {
        b.iter(|| t.step().expect("training step"))
    });
    let mut t = trainer(256, 10, 1, true, GradientMethod::Backprop, KEEP);
    group.bench_function("boids_n256_k10_p1_backprop", |b| {
        b.iter(|| t.step().expect("training step"))
    });
    group.finish();
}

/// The default graph budget of the reverse sweep (`TrainConfig::keep_graphs_mib`).
const KEEP: u64 = 2048;

/// `(name, N, k, p, Boids-like)`.
const CASES: [(&str, usize, usize, u32, bool); 5] = [
    ("boids_n256_k10_p1", 256, 10, 1, true),
    ("boids_n1000_k10_p1", 1000, 10, 1, true),
    ("gfsde_n1000_k9_p2", 1000, 9, 2, false),
    ("boids_n256_k49_p1", 256, 49, 1, true),
    ("boids_n1000_k49_p1", 1000, 49, 1, true),
];

/// `WLM_TRAINING_ONCE=<case>[:backprop|:rebuild|:graph]` runs 3 steps of one case outside
/// criterion and prints each step's wall and process CPU time (for `/usr/bin/time -v`
/// peak-memory runs); `:rebuild` is the reverse sweep without kept records
/// (`keep_graphs_mib = 0`), `:graph` the sweep over candle force graphs
/// (`GradientMethod::GraphSweep`, the path before the graph-free adjoint).
fn once(spec: &str) {
    let (name, method, keep) = if let Some(name) = spec.strip_suffix(":backprop") {
        (name, GradientMethod::Backprop, KEEP)
    } else if let Some(name) = spec.strip_suffix(":rebuild") {
        (name, GradientMethod::ReverseSweep, 0)
    } else if let Some(name) = spec.strip_suffix(":graph") {
        (name, GradientMethod::GraphSweep, KEEP)
    } else {
        (spec, GradientMethod::ReverseSweep, KEEP)
    };
    let Some(&(_, n, k, p, boids)) = CASES.iter().find(|c| c.0 == name) else {
        eprintln!("unknown case {name}");
        return;
    };
    let mut t = trainer(n, k, p, boids, method, keep);
    for _ in 0..3 {
        let cpu0 = cpu_seconds();
        let start = std::time::Instant::now();
        let report = t.step().expect("training step");
        eprintln!(
            "{spec}: step {} wall {:.3} s cpu {:.3} s loss {:.4}",
            report.step,
            start.elapsed().as_secs_f64(),
            cpu_seconds() - cpu0,
            report.loss
        );
    }
}

criterion_group!(benches, training_step);

fn main() {
    wlm_benches::main_with_once("WLM_TRAINING_ONCE", once, benches);
}

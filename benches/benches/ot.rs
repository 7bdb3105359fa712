//! criterion benchmarks of `wlm-ot`: the debiased Sinkhorn divergence (value and gradients, f32,
//! blur 0.05, scaling 0.9) for N = M in {1000, 4000, 20000}, d in {2, 5}, p in {1, 2}, and the
//! exact W1 for N = M = 1000, d in {2, 5}.
//!
//! Short settings (10 samples); the 20000-point cases take minutes each. Run one group with e.g.
//! `cargo bench -p wlm-benches --bench ot -- 'sinkhorn_f32/p2_d2/1000'`. Numbers and the
//! geomloss/POT comparison are in `notes/ot.md`.

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wlm_ot::{sinkhorn, wasserstein_1, SinkhornConfig};

/// `n` points uniform in the unit cube, the first coordinate shifted by `shift` (as in the
/// fixtures' "uniform_vs_shifted" clouds).
fn cloud(n: usize, dim: usize, shift: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * dim)
        .map(|k| rng.random_range(0.0..1.0) + if k.is_multiple_of(dim) { shift } else { 0.0 })
        .collect()
}

fn f32_tensor(v: &[f64], n: usize, dim: usize) -> Tensor {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_vec(v, (n, dim), &Device::Cpu).expect("tensor")
}

fn sinkhorn_value_and_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("sinkhorn_f32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [1000, 4000, 20000] {
        for dim in [2, 5] {
            for p in [2, 1] {
                let x = f32_tensor(&cloud(n, dim, 0.0, 1), n, dim);
                let y = f32_tensor(&cloud(n, dim, 0.5, 2), n, dim);
                let config = SinkhornConfig {
                    p,
                    blur: 0.05,
                    scaling: 0.9,
                    ..Default::default()
                };
                let id = BenchmarkId::new(format!("p{p}_d{dim}"), n);
                group.bench_with_input(id, &(x, y), |b, (x, y)| {
                    b.iter(|| sinkhorn(x, y, &config).expect("sinkhorn"))
                });
            }
        }
    }
    group.finish();
}

fn exact_w1(c: &mut Criterion) {
    let mut group = c.benchmark_group("wasserstein_1_f64");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 1000;
    for dim in [2, 5] {
        let x = Tensor::from_vec(cloud(n, dim, 0.0, 3), (n, dim), &Device::Cpu).expect("x");
        let y = Tensor::from_vec(cloud(n, dim, 0.5, 4), (n, dim), &Device::Cpu).expect("y");
        group.bench_with_input(
            BenchmarkId::new(format!("d{dim}"), n),
            &(x, y),
            |b, (x, y)| b.iter(|| wasserstein_1(x, y).expect("w1")),
        );
    }
    group.finish();
}

/// This machine's scalar `f32::exp` (libm) throughput, the yardstick for the kernel's
/// nanoseconds per evaluation (one exp per pair per pass): 2^16 calls per iteration.
fn scalar_exp(c: &mut Criterion) {
    let mut group = c.benchmark_group("scalar_expf");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let args: Vec<f32> = (0..1 << 16).map(|k| -(k as f32) * 1e-3).collect();
    group.bench_function("libm_65536_calls", |b| {
        b.iter(|| {
            args.iter()
                .map(|&t| std::hint::black_box(t).exp())
                .sum::<f32>()
        })
    });
    group.finish();
}

criterion_group!(benches, sinkhorn_value_and_gradient, exact_w1, scalar_exp);
criterion_main!(benches);

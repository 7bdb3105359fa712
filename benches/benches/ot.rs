//! criterion benchmarks of `wlm-ot`: the debiased Sinkhorn divergence (value and gradients, f32,
//! blur 0.05, scaling 0.9) for N = M in {1000, 4000, 20000}, d in {2, 5}, p in {1, 2}, and the
//! exact W1 for N = M = 1000, d in {2, 5}.
//!
//! Short settings (10 samples); the 20000-point cases take minutes each. Run one group with e.g.
//! `cargo bench -p wlm-benches --bench ot -- 'sinkhorn_f32/p2_d2/1000'`. Numbers and the
//! geomloss/POT comparison are in `notes/ot.md`.
//!
//! `WLM_OT_CPU_REPORT=1000,4000 cargo bench -p wlm-benches --bench ot` skips criterion and prints,
//! for those sizes, the process CPU time and wall time per call and the CPU nanoseconds per
//! kernel evaluation, next to the CPU time of one scalar `f32::exp` (set `RAYON_NUM_THREADS=1`
//! for the single-thread figure, which a busy machine disturbs least; `WLM_OT_CPU_FILTER=p1_d2`
//! keeps the matching cases).

use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{criterion_group, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wlm_benches::{process_cpu_time, short_group};
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

/// The benchmarked Sinkhorn case: `n` uniform points against `n` shifted by 0.5 (f32), exponent
/// `p`, blur 0.05, scaling 0.9.
fn sinkhorn_case(n: usize, dim: usize, p: u32) -> (Tensor, Tensor, SinkhornConfig) {
    let x = f32_tensor(&cloud(n, dim, 0.0, 1), n, dim);
    let y = f32_tensor(&cloud(n, dim, 0.5, 2), n, dim);
    let config = SinkhornConfig {
        p,
        blur: 0.05,
        scaling: 0.9,
        ..Default::default()
    };
    (x, y, config)
}

fn sinkhorn_value_and_gradient(c: &mut Criterion) {
    let mut group = short_group(
        c,
        "sinkhorn_f32",
        Duration::from_secs(1),
        Duration::from_secs(3),
    );
    for n in [1000, 4000, 20000] {
        for dim in [2, 5] {
            for p in [2, 1] {
                let (x, y, config) = sinkhorn_case(n, dim, p);
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
    let mut group = short_group(
        c,
        "wasserstein_1_f64",
        Duration::from_secs(1),
        Duration::from_secs(3),
    );
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
    let mut group = short_group(
        c,
        "scalar_expf",
        Duration::from_secs(1),
        Duration::from_secs(2),
    );
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

/// Runs `f` until at least `budget` of wall time has passed (at least `min_calls` times) and
/// returns `(calls, cpu per call, wall per call)`.
fn time_calls(
    budget: Duration,
    min_calls: usize,
    mut f: impl FnMut(),
) -> (usize, Duration, Duration) {
    f(); // warm-up
    let (cpu0, wall0) = (process_cpu_time(), std::time::Instant::now());
    let mut calls = 0;
    while calls < min_calls || wall0.elapsed() < budget {
        f();
        calls += 1;
    }
    let cpu = process_cpu_time() - cpu0;
    (calls, cpu / calls as u32, wall0.elapsed() / calls as u32)
}

/// The `WLM_OT_CPU_REPORT` mode: CPU ns per kernel evaluation of the Sinkhorn cases of
/// `sizes`, and of one scalar `f32::exp`.
fn cpu_report(sizes: &[usize]) {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("RAYON_NUM_THREADS={threads}");
    let args: Vec<f32> = (0..1 << 16).map(|k| -(k as f32) * 1e-3).collect();
    let expf = || {
        let (_, cpu, _) = time_calls(Duration::from_millis(500), 10, || {
            std::hint::black_box(
                args.iter()
                    .map(|&t| std::hint::black_box(t).exp())
                    .sum::<f32>(),
            );
        });
        cpu.as_secs_f64() * 1e9 / args.len() as f64
    };
    println!("scalar f32::exp: {:.2} ns CPU per call", expf());
    let filter = std::env::var("WLM_OT_CPU_FILTER").unwrap_or_default();
    for &n in sizes {
        for dim in [2, 5] {
            for p in [2, 1] {
                if !format!("p{p}_d{dim}").contains(&filter) {
                    continue;
                }
                let (x, y, config) = sinkhorn_case(n, dim, p);
                let steps = sinkhorn(&x, &y, &config).expect("sinkhorn").eps_list.len();
                let evals = ((steps + 2) * 4 * n * n) as f64;
                let (calls, cpu, wall) = time_calls(Duration::from_secs(3), 3, || {
                    std::hint::black_box(sinkhorn(&x, &y, &config).expect("sinkhorn"));
                });
                println!(
                    "N=M={n} d={dim} p={p}: {:.1} ms wall, {:.1} ms CPU per call ({calls} calls, {steps} eps), {:.3} ns CPU per evaluation",
                    wall.as_secs_f64() * 1e3,
                    cpu.as_secs_f64() * 1e3,
                    cpu.as_secs_f64() * 1e9 / evals
                );
            }
        }
    }
    println!("scalar f32::exp (again): {:.2} ns CPU per call", expf());
}

criterion_group!(benches, sinkhorn_value_and_gradient, exact_w1, scalar_exp);

fn main() {
    if let Ok(sizes) = std::env::var("WLM_OT_CPU_REPORT") {
        let sizes: Vec<usize> = sizes
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("WLM_OT_CPU_REPORT: comma-separated sizes")
            })
            .collect();
        cpu_report(&sizes);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

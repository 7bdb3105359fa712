//! GPU timings of the debiased Sinkhorn (value + gradients, f32, blur 0.05, scaling 0.9) for
//! N = M in {1000, 10⁴, 10⁵, 10⁶}, d in {2, 5}, p in {1, 2}, against the exp-throughput bound.
//!
//! A plain timing harness (criterion's repetitions are too slow at 10⁶ points). Needs the
//! `cuda` feature of wlm-ot and a device; otherwise it says so and exits 0:
//! `cargo bench -p wlm-benches --bench ot_cuda --features wlm-ot/cuda`.
//! Options (env): `WLM_BENCH_MAX_N` (default 1000000), `WLM_EXP_RATE` (exps per second of the
//! device, default 4.18e12 = H100 SXM: 132 SMs × 16 MUFU ex2/clk × 1.98 GHz).
//! The numbers and the geomloss comparison (`benches/geomloss_gpu.py`) go in `notes/cuda.md`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use wlm_ot::{cuda_available, sinkhorn, with_device_preference, DevicePreference, SinkhornConfig};

fn cloud(n: usize, dim: usize, shift: f64, seed: u64) -> Tensor {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * dim)
        .map(|k| {
            rng.random_range(0.0..1.0_f32)
                + if k.is_multiple_of(dim) {
                    shift as f32
                } else {
                    0.0
                }
        })
        .collect();
    Tensor::from_vec(v, (n, dim), &Device::Cpu).expect("tensor")
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probes
    }
    if !cuda_available() {
        println!("no CUDA device found (or wlm-ot built without `cuda`): skipping the GPU bench");
        return;
    }
    let max_n: usize = env_or("WLM_BENCH_MAX_N", 1_000_000);
    let exp_rate: f64 = env_or("WLM_EXP_RATE", 4.18e12);
    println!("| N = M | d | p | ε-steps | seconds (median) | pairs/s | exp bound (s) | ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        if n > max_n {
            continue;
        }
        for dim in [2, 5] {
            for p in [2u32, 1] {
                let x = cloud(n, dim, 0.0, 1);
                let y = cloud(n, dim, 0.5, 2);
                let config = SinkhornConfig {
                    p,
                    ..Default::default()
                };
                let solve = || {
                    with_device_preference(DevicePreference::Cuda, || sinkhorn(&x, &y, &config))
                        .expect("sinkhorn")
                };
                let first = solve(); // warm-up (NVRTC compile on the very first call)
                let reps = if n >= 1_000_000 {
                    1
                } else if n >= 100_000 {
                    3
                } else {
                    10
                };
                let mut times: Vec<f64> = (0..reps)
                    .map(|_| {
                        let t = Instant::now();
                        std::hint::black_box(solve());
                        t.elapsed().as_secs_f64()
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                let median = times[times.len() / 2];
                // Softmin passes: init + one per ε + the final gradient pass, each (N + M)² pairs.
                let steps = first.eps_list.len() + 2;
                let pairs = steps as f64 * ((2 * n) as f64).powi(2);
                let bound = pairs / exp_rate;
                println!(
                    "| {n} | {dim} | {p} | {} | {median:.4} | {:.3e} | {bound:.4} | {:.2} |",
                    first.eps_list.len(),
                    pairs / median,
                    median / bound
                );
            }
        }
    }
}

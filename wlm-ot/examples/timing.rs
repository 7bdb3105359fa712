//! Temporary timing harness (not shipped).
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use std::time::Instant;
use wlm_ot::*;

fn cloud(r: &mut rand::rngs::StdRng, n: usize, d: usize, shift: f64) -> Tensor {
    let v: Vec<f64> = (0..n * d)
        .map(|k| r.random_range(0.0..1.0) + if k.is_multiple_of(d) { shift } else { 0.0 })
        .collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
}

/// Total on-CPU nanoseconds of all threads of this process.
fn cpu_ns() -> f64 {
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = e.unwrap().path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s.split_whitespace().next().unwrap().parse::<f64>().unwrap();
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1000);
    let d: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(2);
    let p: u32 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(2);
    let reps: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(5);
    let mut r = rand::rngs::StdRng::seed_from_u64(1);
    let x = cloud(&mut r, n, d, 0.0).to_dtype(DType::F32).unwrap();
    let y = cloud(&mut r, n, d, 0.5).to_dtype(DType::F32).unwrap();
    let c = SinkhornConfig {
        p,
        ..Default::default()
    };
    let out = sinkhorn(&x, &y, &c).unwrap();
    let steps = out.eps_list.len() + 2;
    let t = Instant::now();
    let c0 = cpu_ns();
    for _ in 0..reps {
        std::hint::black_box(sinkhorn(&x, &y, &c).unwrap());
    }
    let cpu = (cpu_ns() - c0) / reps as f64;
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    let evals = (steps * 4 * n * n) as f64;
    println!(
        "sinkhorn f32 n {n} d {d} p {p}: wall {ms:.2} ms, cpu {:.2} ms, {} eps, {:.3} cpu-ns/eval",
        cpu / 1e6,
        out.eps_list.len(),
        cpu / evals
    );
    // scalar libm exp throughput
    let v: Vec<f32> = (0..1 << 20).map(|k| -(k as f32) * 1e-5).collect();
    let c0 = cpu_ns();
    let mut acc = 0.0f32;
    for _ in 0..20 {
        for &z in &v {
            acc += std::hint::black_box(z).exp();
        }
    }
    println!(
        "libm expf: {:.3} cpu-ns/call ({acc})",
        (cpu_ns() - c0) / (20.0 * v.len() as f64)
    );
    if n <= 2000 && args.get(5).is_some() {
        let x64 = x.to_dtype(DType::F64).unwrap();
        let y64 = y.to_dtype(DType::F64).unwrap();
        let t = Instant::now();
        let c0 = cpu_ns();
        let w = wasserstein_1(&x64, &y64).unwrap();
        println!(
            "W1 {w}: wall {:.2} ms cpu {:.2} ms",
            t.elapsed().as_secs_f64() * 1e3,
            (cpu_ns() - c0) / 1e6
        );
    }
}

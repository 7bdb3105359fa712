//! Temporary timing scratch (development only).
#![cfg(test)]
use super::attention::{attention, attention_vjp};
use candle_core::{DType, Device, Tensor};
use std::time::Instant;

fn cpu_ms() -> f64 {
    let mut ru: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    (ru.utime.0 as f64) * 1e3 + (ru.utime.1 as f64) / 1e3 + (ru.stime.0 as f64) * 1e3 + (ru.stime.1 as f64) / 1e3
}
#[repr(C)]
struct libc_rusage { utime: (i64, i64), stime: (i64, i64), rest: [i64; 14] }
extern "C" { fn getrusage(who: i32, usage: *mut libc_rusage) -> i32; }

#[test]
fn scratch_attention_timing() {
    for &(heads, n, c) in &[(4usize, 1000usize, 16usize), (4, 256, 16)] {
        let qkv = Tensor::randn(0f32, 1.0, (3, heads, n, c), &Device::Cpu).unwrap();
        let g = Tensor::randn(0f32, 1.0, (heads, n, c), &Device::Cpu).unwrap();
        let cot = Tensor::randn(0f32, 1.0, (3, heads, n, c), &Device::Cpu).unwrap();
        let reps = 20;
        let unit = (heads * n * n * c) as f64;
        for (name, units) in [("fwd", 2.0), ("vjp", 5.0), ("hvp", 13.0)] {
            let t = Instant::now();
            let c0 = cpu_ms();
            for _ in 0..reps {
                match name {
                    "fwd" => drop(attention(&qkv, 0.25).unwrap()),
                    "vjp" => drop(attention_vjp(&qkv, &g, 0.25).unwrap()),
                    _ => drop(super::attention_hvp::vjp_backward(&qkv, &g, &cot, 0.25).unwrap()),
                }
            }
            let wall = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
            let cpu = (cpu_ms() - c0) / reps as f64;
            let gfma = units * unit / (cpu * 1e-3) / 1e9;
            println!("heads {heads} n {n} {name}: wall {wall:.2} ms, cpu {cpu:.2} ms, {gfma:.1} GFMA/s per cpu-second");
        }
        // candle matmul for comparison: (heads, n, c) x (heads, c, n)
        let q = qkv.get(0).unwrap();
        let k = qkv.get(1).unwrap();
        let c0 = cpu_ms();
        let t = Instant::now();
        for _ in 0..reps { drop(q.matmul(&k.t().unwrap()).unwrap()); }
        let wall = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let cpu = (cpu_ms() - c0) / reps as f64;
        println!("candle QK^T: wall {wall:.2} ms cpu {cpu:.2} ms {:.1} GFMA/s", unit / (cpu * 1e-3) / 1e9);
        let p = Tensor::randn(0f32, 1.0, (heads, n, n), &Device::Cpu).unwrap();
        let v = qkv.get(2).unwrap();
        let c0 = cpu_ms();
        let t = Instant::now();
        for _ in 0..reps { drop(p.matmul(&v).unwrap()); }
        let wall = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let cpu = (cpu_ms() - c0) / reps as f64;
        println!("candle PV: wall {wall:.2} ms cpu {cpu:.2} ms {:.1} GFMA/s", unit / (cpu * 1e-3) / 1e9);
    }
    let _ = DType::F32;
}

#[test]
fn scratch_gemm_shapes() {
    use super::float::simd_dispatch;
    use super::float::Float;
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn body<T: Float>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T], reps: usize, acc: bool) {
        for _ in 0..reps {
            super::gemm::gemm(m, n, k, a, k, b, n, c, n, acc);
        }
    }
    simd_dispatch!(fn run<T: Float>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T], reps: usize, acc: bool) => body);
    for &(m, n, k, acc, name) in &[(32usize, 1000usize, 16usize, false, "S=QK^T"), (32, 16, 1000, false, "dQ=dS K"), (16, 1000, 32, true, "dK^T+=Q^T dS"), (256, 512, 64, false, "ffn-ish")] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let reps = (2e8 / (m * n * k) as f64) as usize + 1;
        let c0 = cpu_ms();
        run(m, n, k, &a, &b, &mut c, reps, acc);
        let cpu = cpu_ms() - c0;
        println!("{name}: {:.1} GFMA/s", (m * n * k * reps) as f64 / (cpu * 1e-3) / 1e9);
    }
}

#[test]
fn scratch_exp_speed() {
    use super::float::simd_dispatch;
    use super::float::Float;
    #[inline(always)]
    fn body<T: Float>(x: &mut [T], reps: usize) {
        for _ in 0..reps {
            for v in x.iter_mut() {
                *v = (*v * T::of(0.25) - T::of(3.0)).exp_v();
            }
        }
    }
    simd_dispatch!(fn run<T: Float>(x: &mut [T], reps: usize) => body);
    let mut x = vec![0.1f32; 32 * 1000];
    let c0 = cpu_ms();
    run(&mut x, 2000);
    let cpu = cpu_ms() - c0;
    println!("exp: {:.3} ns/elem", cpu * 1e6 / (32.0 * 1000.0 * 2000.0));
    let mut y = vec![0.1f32; 32 * 1000];
    let c0 = cpu_ms();
    for _ in 0..2000 { for v in y.iter_mut() { *v = *v * 0.25 + 1.0; } }
    let cpu = cpu_ms() - c0;
    println!("affine: {:.3} ns/elem {}", cpu * 1e6 / (32.0 * 1000.0 * 2000.0), y[3]);
}

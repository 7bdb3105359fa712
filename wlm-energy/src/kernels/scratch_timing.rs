//! Temporary timing scratch (development only).
#![cfg(test)]
use super::attention::{attention, attention_vjp};
use candle_core::{DType, Device, Tensor};
use std::time::Instant;

fn cpu_ms() -> f64 {
    let mut ru: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    (ru.utime.0 as f64) * 1e3
        + (ru.utime.1 as f64) / 1e3
        + (ru.stime.0 as f64) * 1e3
        + (ru.stime.1 as f64) / 1e3
}
#[repr(C)]
struct libc_rusage {
    utime: (i64, i64),
    stime: (i64, i64),
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

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
        for _ in 0..reps {
            drop(q.matmul(&k.t().unwrap()).unwrap());
        }
        let wall = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let cpu = (cpu_ms() - c0) / reps as f64;
        println!(
            "candle QK^T: wall {wall:.2} ms cpu {cpu:.2} ms {:.1} GFMA/s",
            unit / (cpu * 1e-3) / 1e9
        );
        let p = Tensor::randn(0f32, 1.0, (heads, n, n), &Device::Cpu).unwrap();
        let v = qkv.get(2).unwrap();
        let c0 = cpu_ms();
        let t = Instant::now();
        for _ in 0..reps {
            drop(p.matmul(&v).unwrap());
        }
        let wall = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        let cpu = (cpu_ms() - c0) / reps as f64;
        println!(
            "candle PV: wall {wall:.2} ms cpu {cpu:.2} ms {:.1} GFMA/s",
            unit / (cpu * 1e-3) / 1e9
        );
    }
    let _ = DType::F32;
}

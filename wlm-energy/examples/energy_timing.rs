//! Scratch timing of the attention energy (development only).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use wlm_energy::{AttentionEnergyConfig, Energy, Kernels};

fn random(n: usize, dim: usize, seed: u64) -> Tensor {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_vec(v, (n, dim), &Device::Cpu).unwrap()
}

#[repr(C)]
struct Rusage {
    utime: (i64, i64),
    stime: (i64, i64),
    rest: [i64; 14],
}
extern "C" {
    #[allow(improper_ctypes)]
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}
fn cpu_ms() -> f64 {
    let mut ru = Rusage {
        utime: (0, 0),
        stime: (0, 0),
        rest: [0; 14],
    };
    unsafe { getrusage(0, &mut ru) };
    (ru.utime.0 + ru.stime.0) as f64 * 1e3 + (ru.utime.1 + ru.stime.1) as f64 / 1e3
}

fn time<R>(reps: usize, mut f: impl FnMut() -> R) -> (f64, f64) {
    let _ = f();
    let mut best = f64::INFINITY;
    let c0 = cpu_ms();
    for _ in 0..reps {
        let t = Instant::now();
        let _ = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    (best, (cpu_ms() - c0) / reps as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kernels = if args.iter().any(|a| a == "plain") {
        Kernels::Plain
    } else {
        Kernels::Fused
    };
    let config = AttentionEnergyConfig::default();
    let (model, _varmap) = config.init_seeded(0, DType::F32, &Device::Cpu).unwrap();
    let model = model.with_kernels(kernels);
    model.set_training(false);
    if let Some(pos) = args.iter().position(|a| a == "loop") {
        let n: usize = args[pos + 1].parse().unwrap();
        let what = args[pos + 2].clone();
        let x = random(n, 2, 1);
        let w = random(n, 2, 2);
        for _ in 0..args[pos + 3].parse::<usize>().unwrap() {
            match what.as_str() {
                "energy" => drop(model.energy(&x, 0.0).unwrap()),
                "force" => drop(model.force(&x, 0.0).unwrap()),
                _ => {
                    let force = model.force(&x, 0.0).unwrap();
                    drop(
                        (&force * &w)
                            .unwrap()
                            .sum_all()
                            .unwrap()
                            .backward()
                            .unwrap(),
                    );
                }
            }
        }
        return;
    }
    for n in [256usize, 1000] {
        let x = random(n, 2, 1);
        let w = random(n, 2, 2);
        let reps = if n == 256 { 20 } else { 6 };
        let e = time(reps, || model.energy(&x, 0.0).unwrap());
        let f = time(reps, || model.force(&x, 0.0).unwrap());
        let b = time(reps, || {
            let force = model.force(&x, 0.0).unwrap();
            (&force * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        });
        println!(
            "{kernels:?} N={n}: energy {:.2} ms (cpu {:.2}), force {:.2} ms (cpu {:.2}), force+backward {:.2} ms (cpu {:.2})",
            e.0, e.1, f.0, f.1, b.0, b.1
        );
    }
}

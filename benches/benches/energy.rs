//! criterion benchmarks of the attention energy (f32, heads 4, hidden 64, blocks 4, FF 512, d 2):
//! energy forward, force (forward + VJP), and force followed by the parameter backward of
//! `(force ⊙ R).sum()`, at N = 256 and N = 1000, with the fused and the plain kernels; and the
//! graph-free energy and force (`Energy::energy_detached`, `force_detached`: the native path,
//! for rollouts that need no gradients).
//!
//! Short settings (10 samples, 2 s) so a release run takes about a minute: `cargo bench -p
//! wlm-benches --bench energy`. Numbers and the PyTorch comparison are in `notes/energy.md`.
//! `main` first applies the `wlm` binary's process settings (malloc thresholds, candle spin
//! limit); `WLM_BENCH_NO_TUNING=1` skips them.

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wlm_benches::{cpu_seconds, short_group};
use wlm_energy::{AttentionEnergyConfig, Energy, Kernels};

fn random(n: usize, dim: usize, seed: u64) -> Tensor {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_vec(v, (n, dim), &Device::Cpu).expect("tensor")
}

fn attention_energy(c: &mut Criterion) {
    let config = AttentionEnergyConfig::default();
    let (model, varmap) = config
        .init_seeded(0, DType::F32, &Device::Cpu)
        .expect("model");
    let mut model = model;
    model.set_training(false);
    let params = varmap.all_vars();
    let mut group = short_group(
        c,
        "attention_energy_f32",
        Duration::from_millis(500),
        Duration::from_secs(2),
    );
    for n in [256usize, 1000] {
        let x = random(n, 2, 1);
        let label = format!("Native/N={n}");
        group.bench_function(BenchmarkId::new("energy", &label), |b| {
            b.iter(|| model.energy_detached(&x, 0.0).expect("energy"))
        });
        group.bench_function(BenchmarkId::new("force", &label), |b| {
            b.iter(|| model.force_detached(&x, 0.0).expect("force"))
        });
    }
    // The same two benchmarks as the native loop above (`duplicates` pairs them) through the
    // graph-building `energy`/`force`: other methods, so kept as written.
    for kernels in [Kernels::Fused, Kernels::Plain] {
        model.set_kernels(kernels);
        for n in [256usize, 1000] {
            let x = random(n, 2, 1);
            let weight = random(n, 2, 2);
            let label = format!("{kernels:?}/N={n}");
            group.bench_function(BenchmarkId::new("energy", &label), |b| {
                b.iter(|| model.energy(&x, 0.0).expect("energy"))
            });
            group.bench_function(BenchmarkId::new("force", &label), |b| {
                b.iter(|| model.force(&x, 0.0).expect("force"))
            });
            group.bench_function(BenchmarkId::new("force_and_param_backward", &label), |b| {
                b.iter(|| {
                    let force = model.force(&x, 0.0).expect("force");
                    let grads = (&force * &weight)
                        .and_then(|p| p.sum_all())
                        .and_then(|l| l.backward())
                        .expect("backward");
                    assert!(params.iter().any(|v| grads.get(v.as_tensor()).is_some()));
                    grads
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, attention_energy);

/// `WLM_ENERGY_ONCE=<energy|force|backward|native_energy|native_force|native_tape|native_backward>:<N>[:<iterations>]`
/// runs one fused (or graph-free native) case outside criterion (`backward`: the force graph
/// and its parameter backward; `native_tape`: the native force with its record;
/// `native_backward`: that and its graph-free adjoint, the same work as `backward`)
/// and prints the median wall and process CPU time per call: on a shared machine
/// the CPU time is the steadier measure of the work.
fn once(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let (what, n) = (
        parts[0],
        parts.get(1).and_then(|v| v.parse().ok()).unwrap_or(1000),
    );
    let iterations: usize = parts.get(2).and_then(|v| v.parse().ok()).unwrap_or(20);
    let (mut model, varmap) = AttentionEnergyConfig::default()
        .init_seeded(0, DType::F32, &Device::Cpu)
        .expect("model");
    model.set_training(false);
    model.set_kernels(Kernels::Fused);
    let params = varmap.all_vars();
    let (x, weight) = (random(n, 2, 1), random(n, 2, 2));
    let call = || match what {
        "energy" => drop(model.energy(&x, 0.0).expect("energy")),
        "force" => drop(model.force(&x, 0.0).expect("force")),
        "native_energy" => drop(model.energy_detached(&x, 0.0).expect("energy")),
        "native_force" => drop(model.force_detached(&x, 0.0).expect("force")),
        "native_tape" => drop(model.force_tape(&x, 0.0).expect("tape")),
        "native_backward" => {
            let tape = model
                .force_tape(&x, 0.0)
                .expect("tape")
                .expect("a native tape");
            let adjoint = tape.adjoint(&weight, false).expect("adjoint");
            assert!(!adjoint.params.is_empty());
        }
        _ => {
            let force = model.force(&x, 0.0).expect("force");
            let grads = (&force * &weight)
                .and_then(|p| p.sum_all())
                .and_then(|l| l.backward())
                .expect("backward");
            assert!(params.iter().any(|v| grads.get(v.as_tensor()).is_some()));
        }
    };
    // WLM_ENERGY_PAIR=join runs two calls concurrently (rayon::join), =seq two in a row.
    let pair = std::env::var("WLM_ENERGY_PAIR").unwrap_or_default();
    let call = || match pair.as_str() {
        "join" => drop(rayon::join(call, call)),
        "seq" => {
            call();
            call()
        }
        _ => call(),
    };
    call();
    if what.starts_with("native_") {
        if let Ok(Some(tape)) = model.force_tape(&x, 0.0) {
            println!(
                "{what} N={n}: one native tape holds {:.1} MB",
                tape.bytes() as f64 / 1e6
            );
        }
    }
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let (cpu0, start) = (cpu_seconds(), std::time::Instant::now());
        call();
        walls.push(start.elapsed().as_secs_f64() * 1e3);
        cpus.push((cpu_seconds() - cpu0) * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // A finite checksum guards against timing a kernel that produces NaN.
    let checksum = model
        .force(&x, 0.0)
        .and_then(|f| f.abs()?.sum_all()?.to_scalar::<f32>())
        .expect("force");
    println!(
        "{what} N={n}: median wall {:.2} ms, median CPU {:.2} ms ({iterations} calls; Σ|force| {checksum:.6e})",
        median(&mut walls),
        median(&mut cpus)
    );
}

fn main() {
    wlm_benches::main_with_once("WLM_ENERGY_ONCE", once, benches);
}

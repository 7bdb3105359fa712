//! criterion benchmarks of the attention energy (f32, heads 4, hidden 64, blocks 4, FF 512, d 2):
//! energy forward, force (forward + VJP), and force followed by the parameter backward of
//! `(force ⊙ R).sum()`, at N = 256 and N = 1000, with the fused and the plain kernels.
//!
//! Short settings (10 samples, 2 s) so a release run takes about a minute: `cargo bench -p
//! wlm-benches --bench energy`. Numbers and the PyTorch comparison are in `notes/energy.md`.

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
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
    let mut group = c.benchmark_group("attention_energy_f32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
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
criterion_main!(benches);

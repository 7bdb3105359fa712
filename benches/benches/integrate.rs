//! criterion benchmarks: integrate — 100-step rollouts of a harmonic field (integrator overhead).

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, Rng, SeedableRng};
use wlm_integrate::{fields::Harmonic, rollout, Integrator, State};

const N_PARTICLES: usize = 1000;
const DIM: usize = 2;
const N_STEPS: usize = 100;

fn random_cloud(rng: &mut StdRng, device: &Device) -> Tensor {
    let values: Vec<f32> = (0..N_PARTICLES * DIM)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    Tensor::from_vec(values, (N_PARTICLES, DIM), device).expect("cloud")
}

fn rollout_harmonic(c: &mut Criterion) {
    let device = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(7);
    let field = Harmonic { stiffness: 1.0 };
    let x = random_cloud(&mut rng, &device);
    let v = random_cloud(&mut rng, &device);
    let friction = Tensor::new(0.1f32, &device).expect("friction");
    assert_eq!(x.dtype(), DType::F32);
    let initial = State::new(&field, x, v, 0.0).expect("state");

    let mut group = c.benchmark_group("integrate/rollout_harmonic_n1000_d2_f32_100steps");
    for (name, integrator) in [
        ("reference", Integrator::ReferenceLeapfrog),
        ("conformal", Integrator::ConformalLeapfrog),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rollout(
                    integrator,
                    &field,
                    initial.clone(),
                    0.01,
                    N_STEPS,
                    &friction,
                    &[N_STEPS],
                )
                .expect("rollout")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rollout_harmonic);
criterion_main!(benches);

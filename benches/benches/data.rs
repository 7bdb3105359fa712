//! criterion benchmarks: data (GF-SDE generation, owned by wlm-data) and the Boids step.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use wlm_benches::short_group;

// --- GF-SDE ---
// Owned by the wlm-data issue. METHOD.md §5's data set: N 1000, d 2, 21 snapshots, dt 0.01,
// 10 Euler–Maruyama sub-steps per interval.

use wlm_data::{GfSdeConfig, Pairing, VelocitySnapshots};

fn gf_sde(c: &mut Criterion) {
    let mut group = short_group(
        c,
        "gf_sde_generate_n1000_t21",
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    let cases = [
        (
            "paired_velocities_all",
            Pairing::Paired,
            VelocitySnapshots::All,
        ),
        (
            "paired_velocities_first",
            Pairing::Paired,
            VelocitySnapshots::First,
        ),
        (
            "paired_no_velocities",
            Pairing::Paired,
            VelocitySnapshots::None,
        ),
        (
            "unpaired_velocities_all",
            Pairing::Unpaired,
            VelocitySnapshots::All,
        ),
    ];
    for (name, pairing, velocities) in cases {
        let config = GfSdeConfig {
            pairing,
            velocities,
            ..GfSdeConfig::default()
        };
        group.bench_function(name, |b| b.iter(|| config.generate().unwrap()));
    }
    group.finish();
}

criterion_group!(gf_sde_benches, gf_sde);

// --- Boids ---

use wlm_boids::{Flock, FlockingConfig, NeighbourSearch, Start};

/// A flock at the reference density: the reference start (N 1000, `x ~ N(0, I)`, box ±5)
/// with positions and box half-width scaled by `√(N / 1000)`, so each boid has about as many
/// neighbours as in the reference experiment whatever `N`.
fn spread_flock(n_boids: usize, search: NeighbourSearch) -> Flock {
    let scale = (n_boids as f64 / 1000.0).sqrt();
    let (positions, velocities, dim) = Start::random_2d(n_boids, 1).realise().unwrap();
    let positions = positions.iter().map(|x| scale * x).collect();
    let config = FlockingConfig {
        box_half_width: 5.0 * scale,
        neighbour_search: search,
        ..FlockingConfig::default()
    };
    Flock::new(
        config,
        &Start::Given {
            positions,
            velocities,
            dim,
        },
    )
    .unwrap()
}

/// The reference start unscaled (`x ~ N(0, I)` whatever `N`): density grows with `N`.
fn reference_flock(n_boids: usize) -> Flock {
    Flock::new(FlockingConfig::default(), &Start::random_2d(n_boids, 1)).unwrap()
}

fn boids_step(c: &mut Criterion) {
    let mut group = short_group(
        c,
        "boids_step",
        Duration::from_secs(1),
        Duration::from_secs(3),
    );
    for n_boids in [1_000, 10_000, 100_000] {
        let mut flock = spread_flock(n_boids, NeighbourSearch::CellList);
        group.bench_function(
            BenchmarkId::new("cell_list_reference_density", n_boids),
            |b| b.iter(|| flock.step()),
        );
    }
    for n_boids in [1_000, 10_000] {
        let mut flock = reference_flock(n_boids);
        group.bench_function(BenchmarkId::new("cell_list_unscaled_start", n_boids), |b| {
            b.iter(|| flock.step())
        });
    }
    let mut flock = spread_flock(1_000, NeighbourSearch::AllPairs);
    group.bench_function(
        BenchmarkId::new("all_pairs_reference_density", 1_000),
        |b| b.iter(|| flock.step()),
    );
    group.finish();
}

criterion_group!(boids_benches, boids_step);

criterion_main!(gf_sde_benches, boids_benches);

//! Simulating a small Boids flock to `Snapshots` with velocities.
//!
//! Shows `wlm-boids`'s entry point, [`FlockingConfig::simulate`] from a seeded [`Start`]. It
//! checks the recording (snapshot `k` at time `k · dt`, every speed 1 after the normalising
//! update, `x_{k+1} = x_k + dt v_{k+1}`), that the cell-list neighbour search gives bitwise the
//! same flock as the all-pairs reference, and that a bad config is an error naming the field.
//!
//! Run it with `cargo run -p wlm-boids --example small_flock`; it exits non-zero if a check
//! fails.

use anyhow::ensure;
use wlm_boids::{Error, FlockingConfig, NeighbourSearch, Start};

/// Polarisation `|mean velocity|`: 0 for headings that cancel, 1 for a flock moving as one.
fn polarisation(velocities: &[f64]) -> f64 {
    let n_boids = (velocities.len() / 2) as f64;
    let (sum_x, sum_y) = velocities
        .chunks_exact(2)
        .fold((0.0, 0.0), |(sx, sy), v| (sx + v[0], sy + v[1]));
    (sum_x / n_boids).hypot(sum_y / n_boids)
}

fn main() -> anyhow::Result<()> {
    // The reference rules (dt 0.5, radii 1.0 and 0.3, box ±5); the reference experiment
    // has 1000 boids and 101 records.
    let config = FlockingConfig::default();
    let start = Start::random_2d(150, 42);
    let n_records = 41;
    let snapshots = config.simulate(&start, n_records, 1)?;
    ensure!(
        snapshots.len() == n_records && snapshots.has_all_velocities(),
        "expected {n_records} snapshots with velocities, got {}",
        snapshots.len()
    );
    for k in (0..n_records).step_by(10) {
        let velocities = snapshots.velocities(k).unwrap_or_default();
        println!(
            "t = {:5.1}: polarisation {:.3}",
            snapshots.times()[k],
            polarisation(velocities)
        );
    }

    for k in 0..n_records {
        let expected_time = k as f64 * config.dt;
        ensure!(
            snapshots.times()[k] == expected_time,
            "snapshot {k} is at time {}, expected {expected_time}",
            snapshots.times()[k]
        );
        let velocities = snapshots.velocities(k).unwrap_or_default();
        for (boid, v) in velocities.chunks_exact(2).enumerate() {
            let speed = v[0].hypot(v[1]);
            ensure!(
                (speed - 1.0).abs() < 1e-12,
                "boid {boid} at snapshot {k} has speed {speed}, expected 1"
            );
        }
        if k > 0 {
            let (before, after) = (snapshots.positions(k - 1), snapshots.positions(k));
            for (idx, ((x0, x1), v1)) in before.iter().zip(after).zip(velocities).enumerate() {
                let moved = x0 + config.dt * v1;
                ensure!(
                    (moved - x1).abs() <= 1e-12 * x1.abs().max(1.0),
                    "snapshot {k}, value {idx}: x = {x1} but x_prev + dt v = {moved}"
                );
            }
        }
    }
    println!("records at k · dt, unit speeds, x_(k+1) = x_k + dt v_(k+1): ok");

    // The cell list is an optimisation only: the all-pairs reference gives the same flock.
    let all_pairs = FlockingConfig {
        neighbour_search: NeighbourSearch::AllPairs,
        ..config.clone()
    }
    .simulate(&start, n_records, 1)?;
    ensure!(
        all_pairs == snapshots,
        "the cell list and the all-pairs search gave different flocks"
    );
    println!("cell list and all-pairs neighbour search agree bitwise");

    // Bad parameters are errors naming the field.
    let bad = FlockingConfig {
        dt: -0.5,
        ..FlockingConfig::default()
    };
    match bad.simulate(&start, 2, 1) {
        Err(err @ Error::Config { field: "dt", .. }) => println!("negative dt rejected: {err}"),
        other => anyhow::bail!("a negative dt should be a config error naming `dt`, got {other:?}"),
    }
    println!("all checks passed");
    Ok(())
}

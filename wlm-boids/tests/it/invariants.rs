//! Properties over many steps: unit speed, seeded reproducibility, the boundary pulls back.

use proptest::prelude::*;
use wlm_boids::{Flock, FlockingConfig, NeighbourSearch, Start};

fn given_start() -> impl Strategy<Value = Start> {
    (1..=4usize, 1..=60usize).prop_flat_map(|(dim, n_boids)| {
        let len = n_boids * dim;
        (
            prop::collection::vec(-8.0f64..8.0, len),
            prop::collection::vec(-3.0f64..3.0, len),
        )
            .prop_map(move |(positions, velocities)| Start::Given {
                positions,
                velocities,
                dim,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_step_leaves_unit_speeds(start in given_start(), all_pairs in any::<bool>()) {
        let neighbour_search =
            if all_pairs { NeighbourSearch::AllPairs } else { NeighbourSearch::CellList };
        let config = FlockingConfig { neighbour_search, ..FlockingConfig::default() };
        let mut flock = Flock::new(config, &start).unwrap();
        for step in 1..=10 {
            flock.step();
            for (boid, v) in flock.velocities().chunks_exact(flock.dim()).enumerate() {
                let speed = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                prop_assert!(
                    (speed - 1.0).abs() < 1e-12 || speed == 0.0,
                    "step {step}, boid {boid}: speed {speed}"
                );
            }
        }
    }
}

#[test]
fn random_start_has_mean_centred_directions_and_unit_speed() {
    let (_, v, _) = Start::random_2d(1000, 11).realise().unwrap();
    for row in v.chunks_exact(2) {
        assert!(((row[0] * row[0] + row[1] * row[1]).sqrt() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn the_same_seed_gives_the_same_snapshots_and_another_seed_does_not() {
    let config = FlockingConfig::default();
    let a = config.simulate(&Start::random_2d(300, 42), 6, 2).unwrap();
    let b = config.simulate(&Start::random_2d(300, 42), 6, 2).unwrap();
    let c = config.simulate(&Start::random_2d(300, 43), 6, 2).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.positions(0), c.positions(0));
    assert_ne!(a.positions(5), c.positions(5));
}

#[test]
fn simulate_records_the_start_then_every_steps_per_record_steps() {
    let config = FlockingConfig::default();
    let start = Start::random_2d(50, 1);
    let snapshots = config.simulate(&start, 4, 3).unwrap();
    assert_eq!(snapshots.times(), &[0.0, 1.5, 3.0, 4.5]);
    assert_eq!(snapshots.dim(), 2);
    let (x0, v0, _) = start.realise().unwrap();
    assert_eq!(snapshots.positions(0), &x0[..]);
    assert_eq!(snapshots.velocities(0), Some(&v0[..]));
    let mut flock = Flock::new(config, &start).unwrap();
    for _ in 0..6 {
        flock.step();
    }
    assert_eq!(snapshots.positions(2), flock.positions());
    assert_eq!(snapshots.velocities(2), Some(flock.velocities()));
}

/// One boid at `(6, 0)`, outside the default box `±5`, with velocity `velocity`.
fn lone_boid_at_x6(velocity: [f64; 2]) -> Flock {
    let start = Start::Given {
        positions: vec![6.0, 0.0],
        velocities: velocity.to_vec(),
        dim: 2,
    };
    Flock::new(FlockingConfig::default(), &start).unwrap()
}

#[test]
fn the_boundary_turns_a_boid_heading_out_of_the_box_back_in() {
    // Alone at x = 6 (outside ±5), heading outwards and upwards: the boundary must reduce the
    // outward component every step until it points inwards, and bring the boid back.
    let mut flock = lone_boid_at_x6([0.6, 0.8]);
    let mut outward = 0.6;
    let mut steps = 0;
    while flock.positions()[0] > 5.0 {
        flock.step();
        steps += 1;
        let vx = flock.velocities()[0];
        if flock.positions()[0] - 0.5 * vx > 5.0 {
            assert!(
                vx < outward,
                "step {steps}: v_x {vx} did not decrease from {outward}"
            );
        }
        outward = vx;
        assert!(
            steps < 20,
            "still outside after 20 steps: {:?}",
            flock.positions()
        );
    }
    assert!(
        flock.velocities()[0] < 0.0,
        "heading inwards when back inside"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_boundary_brings_back_a_lone_boid_leaving_at_any_slant(
        angle in prop_oneof![-1.5f64..-0.05, 0.05f64..1.5],
    ) {
        // At x = 5.5, heading out at `angle` from the outward normal (at least 0.05 rad off
        // it): back inside within 30 steps (27 needed at 0.05 rad, by hand iteration).
        let start = Start::Given {
            positions: vec![5.5, 0.0],
            velocities: vec![angle.cos(), angle.sin()],
            dim: 2,
        };
        let mut flock = Flock::new(FlockingConfig::default(), &start).unwrap();
        let mut steps = 0;
        while flock.positions()[0] > 5.0 {
            flock.step();
            steps += 1;
            prop_assert!(steps <= 30, "still outside: {:?}", flock.positions());
        }
    }
}

#[test]
fn a_boid_heading_exactly_outwards_is_not_turned_back() {
    // A documented quirk of the reference rules: the push dt · 0.5 = 0.25 is smaller than the
    // unit speed, so `normalise(v − 0.25 e_x)` points straight out again.
    let mut flock = lone_boid_at_x6([1.0, 0.0]);
    for _ in 0..10 {
        flock.step();
    }
    assert_eq!(flock.velocities(), &[1.0, 0.0]);
    assert_eq!(flock.positions(), &[11.0, 0.0]);
}

#[test]
fn a_flock_embedded_in_five_dimensions_moves_as_in_two() {
    // 2-D runs through the fixed-dimension code, 5-D through the generic one: padding with
    // zero coordinates adds exact zeros everywhere, so the first two coordinates must agree
    // bitwise.
    let (x2, v2, _) = Start::random_2d(300, 8).realise().unwrap();
    let pad = |values: &[f64]| -> Vec<f64> {
        values
            .chunks_exact(2)
            .flat_map(|r| [r[0], r[1], 0.0, 0.0, 0.0])
            .collect()
    };
    let start5 = Start::Given {
        positions: pad(&x2),
        velocities: pad(&v2),
        dim: 5,
    };
    let start2 = Start::Given {
        positions: x2,
        velocities: v2,
        dim: 2,
    };
    let mut flock2 = Flock::new(FlockingConfig::default(), &start2).unwrap();
    let mut flock5 = Flock::new(FlockingConfig::default(), &start5).unwrap();
    for _ in 0..5 {
        flock2.step();
        flock5.step();
    }
    assert_eq!(pad(flock2.positions()), flock5.positions());
    assert_eq!(pad(flock2.velocities()), flock5.velocities());
}

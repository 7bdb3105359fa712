//! The cell list and the all-pairs reference give bitwise identical trajectories.

use proptest::prelude::*;
use wlm_boids::{Flock, FlockingConfig, NeighbourSearch, Start};

/// Runs `steps` steps with both searches and asserts identical state after each.
fn assert_same_trajectories(config: &FlockingConfig, start: &Start, steps: usize) {
    let with = |search| FlockingConfig {
        neighbour_search: search,
        ..config.clone()
    };
    let mut cells = Flock::new(with(NeighbourSearch::CellList), start).unwrap();
    let mut pairs = Flock::new(with(NeighbourSearch::AllPairs), start).unwrap();
    for step in 1..=steps {
        cells.step();
        pairs.step();
        // Bitwise: compare the bit patterns, not within a tolerance.
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(cells.velocities()),
            bits(pairs.velocities()),
            "velocities, step {step}"
        );
        assert_eq!(
            bits(cells.positions()),
            bits(pairs.positions()),
            "positions, step {step}"
        );
    }
}

/// A given start whose positions lie on a lattice of spacing `spacing`, so that many pairs
/// sit exactly at a radius (the edge case of the strict `<`), plus the lattice-free part.
fn lattice_start(max_boids: usize) -> impl Strategy<Value = Start> {
    (
        1..=4usize,
        1..=max_boids,
        prop_oneof![Just(0.1), Just(0.3), Just(0.25)],
    )
        .prop_flat_map(|(dim, n_boids, spacing)| {
            let len = n_boids * dim;
            (
                prop::collection::vec(-12i32..=12, len),
                prop::collection::vec(-1.0f64..1.0, len),
                prop::collection::vec(-0.5f64..0.5, len),
                any::<bool>(),
            )
                .prop_map(move |(ticks, velocities, jitter, on_lattice)| {
                    let positions = ticks
                        .iter()
                        .zip(&jitter)
                        .map(|(&t, &j)| t as f64 * spacing + if on_lattice { 0.0 } else { j })
                        .collect();
                    Start::Given {
                        positions,
                        velocities,
                        dim,
                    }
                })
        })
}

fn small_config() -> impl Strategy<Value = FlockingConfig> {
    (0.05f64..2.0, 0.05f64..2.0, 0.1f64..1.0, 0.5f64..3.0).prop_map(|(outer, inner, dt, half)| {
        FlockingConfig {
            outer_radius: outer,
            inner_radius: inner,
            dt,
            box_half_width: half,
            ..FlockingConfig::default()
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cell_list_matches_all_pairs_bitwise_with_reference_rules(start in lattice_start(80)) {
        assert_same_trajectories(&FlockingConfig::default(), &start, 6);
    }

    #[test]
    fn cell_list_matches_all_pairs_bitwise_for_any_radii(
        config in small_config(),
        start in lattice_start(50),
    ) {
        assert_same_trajectories(&config, &start, 4);
    }
}

#[test]
fn cell_list_matches_all_pairs_bitwise_for_two_thousand_boids() {
    let config = FlockingConfig::default();
    assert_same_trajectories(&config, &Start::random_2d(2000, 2024), 4);
}

#[test]
fn cell_list_matches_all_pairs_bitwise_for_a_spread_flock_in_three_dimensions() {
    // Sparse: the grid has many cells, most of them empty.
    let (positions, velocities, dim) = Start::Random {
        n_boids: 1500,
        dim: 3,
        seed: 5,
    }
    .realise()
    .unwrap();
    let positions = positions.iter().map(|x| 4.0 * x).collect();
    let start = Start::Given {
        positions,
        velocities,
        dim,
    };
    assert_same_trajectories(&FlockingConfig::default(), &start, 3);
}

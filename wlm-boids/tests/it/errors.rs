//! Bad configs, starts and recordings are `Err`s naming what is wrong, never panics.

use proptest::prelude::*;
use wlm_boids::{Error, FlockingConfig, Start};

fn message(result: wlm_boids::Result<wlm_data::Snapshots>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn bad_inputs_give_messages_naming_the_problem() {
    let ok = FlockingConfig::default();
    let start = Start::random_2d(10, 0);
    let given = |positions: Vec<f64>, velocities: Vec<f64>| {
        let start = Start::Given {
            positions,
            velocities,
            dim: 2,
        };
        ok.simulate(&start, 2, 1)
    };
    let cases: Vec<(wlm_boids::Result<wlm_data::Snapshots>, &str)> = vec![
        (
            FlockingConfig {
                dt: -0.5,
                ..ok.clone()
            }
            .simulate(&start, 2, 1),
            "invalid flocking config: dt = -0.5 (must be positive and finite)",
        ),
        (
            FlockingConfig {
                cohesion_weight: f64::NAN,
                ..ok.clone()
            }
            .simulate(&start, 2, 1),
            "invalid flocking config: cohesion_weight = NaN (must be finite)",
        ),
        (
            ok.simulate(&start, 0, 1),
            "invalid recording: n_records must be at least 1, got 0",
        ),
        (
            ok.simulate(&start, 2, 0),
            "invalid recording: steps_per_record must be at least 1, got 0",
        ),
        (
            ok.simulate(&Start::random_2d(0, 0), 2, 1),
            "invalid start: n_boids must be at least 1",
        ),
        (
            ok.simulate(
                &Start::Random {
                    n_boids: 3,
                    dim: 0,
                    seed: 0,
                },
                2,
                1,
            ),
            "invalid start: dim must be at least 1",
        ),
        (
            given(vec![0.0; 6], vec![0.0; 4]),
            "invalid start: velocities have 4 values but positions have 6 (3 boids × 2)",
        ),
        (
            given(vec![0.0; 5], vec![0.0; 5]),
            "invalid start: 5 position values is not a multiple of dim 2",
        ),
        (
            given(vec![0.0, 1.0, f64::INFINITY, 0.0], vec![0.0; 4]),
            "invalid start: position of boid 1 (coordinate 0) is not finite (inf)",
        ),
    ];
    for (result, expected) in cases {
        let msg = message(result);
        assert!(
            msg.starts_with(expected),
            "{msg:?} should start with {expected:?}"
        );
    }
}

#[test]
fn config_errors_carry_the_field_and_value() {
    let bad = FlockingConfig {
        outer_radius: 0.0,
        ..FlockingConfig::default()
    };
    match bad.validate() {
        Err(Error::Config { field, value, .. }) => {
            assert_eq!((field, value), ("outer_radius", 0.0))
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        -10.0f64..10.0,
        Just(0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e300),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_inputs_give_ok_or_err_and_never_panic(
        fields in prop::collection::vec(any_f64(), 8),
        dim in 0..4usize,
        positions in prop::collection::vec(any_f64(), 0..12),
        velocities in prop::collection::vec(any_f64(), 0..12),
    ) {
        let config = FlockingConfig {
            dt: fields[0],
            outer_radius: fields[1],
            inner_radius: fields[2],
            cohesion_weight: fields[3],
            separation_weight: fields[4],
            alignment_weight: fields[5],
            boundary_weight: fields[6],
            box_half_width: fields[7],
            ..FlockingConfig::default()
        };
        let result = config.simulate(&Start::Given { positions, velocities, dim }, 3, 2);
        if let Ok(snapshots) = result {
            // Whatever was accepted produced finite snapshots (Snapshots::new checks).
            prop_assert_eq!(snapshots.len(), 3);
        }
    }
}

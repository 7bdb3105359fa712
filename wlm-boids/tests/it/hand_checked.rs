//! Single steps of 1-, 2- and 3-boid flocks against arithmetic done by hand in the test.

use wlm_boids::{Flock, FlockingConfig, Start};

const TOL: f64 = 1e-12;

fn one_step(positions: Vec<f64>, velocities: Vec<f64>) -> Flock {
    let mut flock = Flock::new(
        FlockingConfig::default(),
        &Start::Given {
            positions,
            velocities,
            dim: 2,
        },
    )
    .unwrap();
    flock.step();
    flock
}

fn unit(v: [f64; 2]) -> [f64; 2] {
    let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
    [v[0] / n, v[1] / n]
}

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() < TOL,
            "{what}: got {actual:?}, expected {expected:?}"
        );
    }
}

#[test]
fn two_boids_inside_both_radii_follow_the_reference_formula() {
    // x0 = (0, 0), x1 = (0.2, 0): distance 0.2 < 0.3 < 1, so each is the other's inner and
    // outer neighbour; n_outer = 2 (self included). dt = 0.5.
    let flock = one_step(vec![0.0, 0.0, 0.2, 0.0], vec![1.0, 0.0, 0.0, 1.0]);
    // Boid 0: coh = ((0,0) + (0.2,0)) / 2 = (0.1, 0); sep = −(0.2, 0);
    //         ali = ((0,0) + (0−1, 1−0)) / 2 = (−0.5, 0.5); bnd = 0.
    let v0 = [
        1.0 + 0.5 * (0.005 * 0.1 + 0.1 * -0.2 + 0.3 * -0.5),
        0.0 + 0.5 * (0.3 * 0.5),
    ];
    assert_close(&v0, &[0.91525, 0.075], "boid 0 before normalising");
    // Boid 1: coh = (−0.1, 0); sep = (0.2, 0); ali = (0.5, −0.5).
    let v1 = [
        0.0 + 0.5 * (0.005 * -0.1 + 0.1 * 0.2 + 0.3 * 0.5),
        1.0 + 0.5 * (0.3 * -0.5),
    ];
    assert_close(&v1, &[0.08475, 0.925], "boid 1 before normalising");
    let (v0, v1) = (unit(v0), unit(v1));
    assert_close(
        flock.velocities(),
        &[v0[0], v0[1], v1[0], v1[1]],
        "velocities",
    );
    let x = [0.5 * v0[0], 0.5 * v0[1], 0.2 + 0.5 * v1[0], 0.5 * v1[1]];
    assert_close(flock.positions(), &x, "positions");
}

#[test]
fn three_boids_with_one_pair_out_of_range_follow_the_reference_formula() {
    // x0 = (0,0), x1 = (0.5,0), x2 = (0,0.9): |x0−x1| = 0.5, |x0−x2| = 0.9 (outer only),
    // |x1−x2| = √1.06 > 1 (not neighbours). No inner pairs, so sep = 0 everywhere.
    let flock = one_step(
        vec![0.0, 0.0, 0.5, 0.0, 0.0, 0.9],
        vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0],
    );
    // Boid 0, n_outer = 3: coh = ((0.5,0) + (0,0.9)) / 3; ali = ((−1,1) + (−2,0)) / 3.
    let v0 = unit([
        1.0 + 0.5 * (0.005 * 0.5 / 3.0 + 0.3 * -3.0 / 3.0),
        0.0 + 0.5 * (0.005 * 0.9 / 3.0 + 0.3 * 1.0 / 3.0),
    ]);
    // Boid 1, n_outer = 2: coh = (−0.5, 0) / 2; ali = (1, −1) / 2.
    let v1 = unit([
        0.0 + 0.5 * (0.005 * -0.5 / 2.0 + 0.3 * 1.0 / 2.0),
        1.0 + 0.5 * (0.3 * (-1.0 / 2.0)),
    ]);
    // Boid 2, n_outer = 2: coh = (0, −0.9) / 2; ali = (2, 0) / 2.
    let v2 = unit([
        -1.0 + 0.5 * (0.3 * 2.0 / 2.0),
        0.0 + 0.5 * (0.005 * -0.9 / 2.0),
    ]);
    let expected_v = [v0[0], v0[1], v1[0], v1[1], v2[0], v2[1]];
    assert_close(flock.velocities(), &expected_v, "velocities");
    let start = [0.0, 0.0, 0.5, 0.0, 0.0, 0.9];
    let expected_x: Vec<f64> = start
        .iter()
        .zip(&expected_v)
        .map(|(x, v)| x + 0.5 * v)
        .collect();
    assert_close(flock.positions(), &expected_x, "positions");
}

#[test]
fn a_neighbour_at_exactly_the_radius_does_not_count() {
    // Distance exactly 1.0 (the outer radius): no interaction, velocities only normalised.
    let flock = one_step(vec![0.0, 0.0, 1.0, 0.0], vec![0.0, 2.0, 0.0, -3.0]);
    assert_eq!(flock.velocities(), &[0.0, 1.0, 0.0, -1.0]);
    // Distance exactly 0.3 (the inner radius): outer neighbours, but no separation.
    let flock = one_step(vec![0.0, 0.0, 0.3, 0.0], vec![0.0, 1.0, 0.0, 1.0]);
    // coh = (0.15, 0) for boid 0, ali = 0, sep = 0.
    let v0 = unit([0.5 * 0.005 * (0.3 / 2.0), 1.0]);
    assert_close(&flock.velocities()[..2], &v0, "boid 0");
}

#[test]
fn a_lone_boid_outside_the_box_is_steered_back_per_coordinate() {
    // x = (6, −7): both coordinates outside ±5, so bnd = (−1, +1).
    let flock = one_step(vec![6.0, -7.0], vec![1.0, 0.0]);
    let v = unit([1.0 - 0.5 * 0.5, 0.0 + 0.5 * 0.5]);
    assert_close(flock.velocities(), &v, "velocity");
    assert_close(
        flock.positions(),
        &[6.0 + 0.5 * v[0], -7.0 + 0.5 * v[1]],
        "position",
    );
}

#[test]
fn a_lone_still_boid_stays_still_without_nan() {
    let flock = one_step(vec![1.0, -2.0], vec![0.0, 0.0]);
    assert_eq!(flock.velocities(), &[0.0, 0.0]);
    assert_eq!(flock.positions(), &[1.0, -2.0]);
}

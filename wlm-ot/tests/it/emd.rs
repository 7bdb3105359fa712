//! Exact transport: POT `ot.emd2` fixtures, brute force over permutations, the 1-d closed form.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde::Deserialize;
use wlm_ot::{wasserstein_1, wasserstein_2};

use crate::common::{load_cases, rng, shifted_pair, tensor, tensor_from_rows, uniform_cloud};

#[derive(Deserialize)]
struct EmdCase {
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    w1: f64,
    w2_squared: f64,
}

#[test]
fn w1_and_w2_match_pot_emd2() {
    for (name, case) in load_cases::<EmdCase>("emd") {
        let (x, y) = (tensor_from_rows(&case.x), tensor_from_rows(&case.y));
        let w1 = wasserstein_1(&x, &y).expect("w1");
        let w2 = wasserstein_2(&x, &y).expect("w2");
        let e1 = ((w1 - case.w1) / case.w1).abs();
        let e2 = ((w2 * w2 - case.w2_squared) / case.w2_squared).abs();
        assert!(e1 < 1e-9, "{name}: W1 {w1} vs POT {} (rel {e1:e})", case.w1);
        assert!(
            e2 < 1e-9,
            "{name}: W2² {} vs POT {} (rel {e2:e})",
            w2 * w2,
            case.w2_squared
        );
    }
}

/// Minimum over permutations σ of `mean_i c(x_i, y_σ(i))` (Birkhoff: optimal for N = M).
fn brute_force(x: &[f64], y: &[f64], n: usize, d: usize, squared: bool) -> f64 {
    let cost = |i: usize, j: usize| {
        let sq: f64 = (0..d).map(|k| (x[i * d + k] - y[j * d + k]).powi(2)).sum();
        if squared {
            sq
        } else {
            sq.sqrt()
        }
    };
    fn search(
        i: usize,
        used: &mut [bool],
        acc: f64,
        best: &mut f64,
        cost: &dyn Fn(usize, usize) -> f64,
    ) {
        let n = used.len();
        if i == n {
            *best = best.min(acc);
            return;
        }
        for j in 0..n {
            if !used[j] {
                used[j] = true;
                search(i + 1, used, acc + cost(i, j), best, cost);
                used[j] = false;
            }
        }
    }
    let mut best = f64::INFINITY;
    search(0, &mut vec![false; n], 0.0, &mut best, &cost);
    best / n as f64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: RngSeed::Fixed(103), ..ProptestConfig::default() })]

    #[test]
    fn exact_transport_equals_the_best_permutation(
        (n, d, x, y) in (1usize..=6, 1usize..=3).prop_flat_map(|(n, d)| (
            Just(n), Just(d),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-1.0f64..2.0, n * d),
        ))
    ) {
        let (xt, yt) = (tensor(&x, n, d), tensor(&y, n, d));
        let w1 = wasserstein_1(&xt, &yt).expect("w1");
        let w2 = wasserstein_2(&xt, &yt).expect("w2");
        let b1 = brute_force(&x, &y, n, d, false);
        let b2 = brute_force(&x, &y, n, d, true);
        prop_assert!((w1 - b1).abs() <= 1e-12 * (1.0 + b1), "W1 {} vs brute force {}", w1, b1);
        prop_assert!((w2 * w2 - b2).abs() <= 1e-12 * (1.0 + b2), "W2² {} vs brute force {}", w2 * w2, b2);
    }
}

#[test]
fn one_dimensional_w1_is_the_mean_gap_of_sorted_samples() {
    let mut r = rng(31);
    for n in [10, 100, 400] {
        let mut x = uniform_cloud(&mut r, n, 1, 0.0, 1.0);
        let mut y = uniform_cloud(&mut r, n, 1, 0.3, 2.0);
        let w1 = wasserstein_1(&tensor(&x, n, 1), &tensor(&y, n, 1)).expect("w1");
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        let want = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
        assert!(((w1 - want) / want).abs() < 1e-12, "n {n}: {w1} vs {want}");
    }
}

#[test]
fn transport_between_identical_clouds_is_zero_and_w2_dominates_w1() {
    let (x, y) = shifted_pair(32, 50, 70);
    assert!(wasserstein_1(&x, &x).expect("w1").abs() < 1e-15);
    let (w1, w2) = (
        wasserstein_1(&x, &y).expect("w1"),
        wasserstein_2(&x, &y).expect("w2"),
    );
    assert!(w2 >= w1 - 1e-12, "W2 {w2} < W1 {w1}");
}

/// Row sums, column sums and the cost `Σ π_ij C_ij` of a plan, recomputed from its entries.
fn check_plan(plan: &wlm_ot::TransportPlan, x: &[f64], y: &[f64], d: usize, squared: bool) -> f64 {
    let (n, m) = (plan.n_x, plan.n_y);
    assert_eq!(plan.total_units % n, 0, "lcm divisible by n_x");
    assert_eq!(plan.total_units % m, 0, "lcm divisible by n_y");
    assert!(
        plan.entries.len() < n + m,
        "a basic plan has at most n + m − 1 entries"
    );
    let (mut rows, mut cols) = (vec![0usize; n], vec![0usize; m]);
    let mut cost = 0.0;
    for &(i, j, units) in &plan.entries {
        assert!(units >= 1, "entries carry mass");
        rows[i] += units;
        cols[j] += units;
        let sq: f64 = (0..d).map(|k| (x[i * d + k] - y[j * d + k]).powi(2)).sum();
        cost += plan.mass(units) * if squared { sq } else { sq.sqrt() };
    }
    assert!(
        rows.iter().all(|&r| r == plan.total_units / n),
        "row marginals {rows:?}"
    );
    assert!(
        cols.iter().all(|&c| c == plan.total_units / m),
        "column marginals {cols:?}"
    );
    cost
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn exact_plans_are_couplings_whose_cost_is_the_optimum(
        (n, m, d, x, y) in (1usize..=12, 1usize..=12, 1usize..=3).prop_flat_map(|(n, m, d)| (
            Just(n), Just(m), Just(d),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-1.0f64..2.0, m * d),
        ))
    ) {
        let (xt, yt) = (tensor(&x, n, d), tensor(&y, m, d));
        let p1 = wlm_ot::exact_plan(&xt, &yt, wlm_ot::GroundCost::Euclidean).expect("plan");
        let p2 = wlm_ot::exact_plan(&xt, &yt, wlm_ot::GroundCost::SquaredEuclidean).expect("plan");
        let c1 = check_plan(&p1, &x, &y, d, false);
        let c2 = check_plan(&p2, &x, &y, d, true);
        let w1 = wasserstein_1(&xt, &yt).expect("w1");
        let w2 = wasserstein_2(&xt, &yt).expect("w2");
        prop_assert!((c1 - w1).abs() <= 1e-12 * (1.0 + w1), "plan cost {} vs W1 {}", c1, w1);
        prop_assert!((p1.cost - w1).abs() <= 1e-12 * (1.0 + w1));
        prop_assert!((c2 - w2 * w2).abs() <= 1e-12 * (1.0 + w2 * w2), "plan cost {} vs W2² {}", c2, w2 * w2);
        if n == m && n <= 6 {
            let b2 = brute_force(&x, &y, n, d, true);
            prop_assert!((c2 - b2).abs() <= 1e-12 * (1.0 + b2), "plan cost {} vs brute force {}", c2, b2);
        }
    }

    #[test]
    fn displacement_interpolation_walks_the_w2_geodesic(
        (n, m, d, x, y, s) in (1usize..=10, 1usize..=10, 1usize..=3).prop_flat_map(|(n, m, d)| (
            Just(n), Just(m), Just(d),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-1.0f64..2.0, m * d),
            0.0f64..=1.0,
        ))
    ) {
        let (xt, yt) = (tensor(&x, n, d), tensor(&y, m, d));
        let mid = wlm_ot::displacement_interpolation(&xt, &yt, s).expect("interpolation");
        let lcm = n * m / (1..=n.min(m)).rev().find(|g| n % g == 0 && m % g == 0).unwrap_or(1);
        prop_assert_eq!(mid.dims2().expect("2-d"), (lcm, d));
        // On a geodesic, W2(x, m_s) = s W2(x, y) and W2(m_s, y) = (1 − s) W2(x, y).
        let w = wasserstein_2(&xt, &yt).expect("w2");
        let a = wasserstein_2(&xt, &mid).expect("w2");
        let b = wasserstein_2(&mid, &yt).expect("w2");
        prop_assert!((a - s * w).abs() <= 1e-9 * (1.0 + w), "W2(x, m) {} vs s W2 {}", a, s * w);
        prop_assert!((b - (1.0 - s) * w).abs() <= 1e-9 * (1.0 + w), "W2(m, y) {} vs (1 − s) W2 {}", b, (1.0 - s) * w);
    }
}

#[test]
fn midpoint_of_a_translated_cloud_is_the_half_translation() {
    let mut r = rng(7);
    let (n, d) = (40, 2);
    let x = uniform_cloud(&mut r, n, d, 0.0, 1.0);
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(k, v)| v + if k % 2 == 0 { 0.3 } else { -0.2 })
        .collect();
    let mid =
        wlm_ot::displacement_interpolation(&tensor(&x, n, d), &tensor(&y, n, d), 0.5).expect("mid");
    let expected: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(k, v)| v + if k % 2 == 0 { 0.15 } else { -0.1 })
        .collect();
    let w = wasserstein_2(&mid, &tensor(&expected, n, d)).expect("w2");
    assert!(w < 1e-7, "midpoint is off the half translation by W2 {w}");
}

#[test]
fn displacement_interpolation_rejects_fractions_outside_the_unit_interval() {
    let x = tensor(&[0.0, 1.0], 2, 1);
    for s in [-0.1, 1.5, f64::NAN] {
        let err = wlm_ot::displacement_interpolation(&x, &x, s).expect_err("bad fraction");
        assert!(err.to_string().contains("fraction"), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn weighted_midpoint_w1_equals_w1_of_the_expanded_cloud(
        (n, m, k, d, x, y, z, s) in (1usize..=9, 1usize..=9, 1usize..=9, 1usize..=3).prop_flat_map(|(n, m, k, d)| (
            Just(n), Just(m), Just(k), Just(d),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-1.0f64..2.0, m * d),
            prop::collection::vec(-1.0f64..2.0, k * d),
            0.0f64..=1.0,
        ))
    ) {
        let (xt, yt, zt) = (tensor(&x, n, d), tensor(&y, m, d), tensor(&z, k, d));
        let expanded = wlm_ot::displacement_interpolation(&xt, &yt, s).expect("mid");
        let want = wasserstein_1(&expanded, &zt).expect("w1");
        let got = wlm_ot::displacement_interpolation_w1(&xt, &yt, s, &zt).expect("weighted w1");
        prop_assert!((got - want).abs() <= 1e-12 * (1.0 + want), "weighted {} vs expanded {}", got, want);
    }
}

#[test]
fn weighted_midpoint_w1_of_coprime_sizes_matches_the_lcm_cloud() {
    // lcm(200, 201) = 40 200 points expanded; the weighted problem has at most 400.
    let mut r = rng(11);
    let (n, m, k, d) = (200, 201, 50, 2);
    let x = tensor(&uniform_cloud(&mut r, n, d, 0.0, 1.0), n, d);
    let y = tensor(&uniform_cloud(&mut r, m, d, 0.5, 1.5), m, d);
    let z = tensor(&uniform_cloud(&mut r, k, d, 0.2, 1.2), k, d);
    let expanded = wlm_ot::displacement_interpolation(&x, &y, 0.3).expect("mid");
    assert_eq!(expanded.dims(), &[40_200, 2]);
    let want = wasserstein_1(&expanded, &z).expect("w1");
    let got = wlm_ot::displacement_interpolation_w1(&x, &y, 0.3, &z).expect("weighted w1");
    assert!(
        (got - want).abs() <= 1e-12 * (1.0 + want),
        "{got} vs {want}"
    );
}

//! Exact minibatch plans against brute force over permutations: the harmonic action's plan is
//! the squared-Euclidean plan (isotropic ω), and the anisotropic plan minimises its own action.

use proptest::prelude::*;
use wlm_flow::{couple, optimal_plan, Coupling, Path, PathKind};
use wlm_numeric::SeedRng;

/// Every permutation of `0..n` (Heap's algorithm).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, p: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(p.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, p, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            p.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

/// The permutation minimising `Σ_i cost(x0_i, x1_σ(i))`, by enumeration.
fn brute_force(
    x0: &[f64],
    x1: &[f64],
    dim: usize,
    cost: impl Fn(&[f64], &[f64]) -> f64,
) -> Vec<usize> {
    let n = x0.len() / dim;
    permutations(n)
        .into_iter()
        .map(|p| {
            let total: f64 = (0..n)
                .map(|i| {
                    cost(
                        &x0[i * dim..(i + 1) * dim],
                        &x1[p[i] * dim..(p[i] + 1) * dim],
                    )
                })
                .sum();
            (total, p)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap()
        .1
}

/// The permutation of an equal-size exact plan (every row carries all its mass to one column).
fn as_permutation(entries: &[(usize, usize, usize)], n: usize) -> Vec<usize> {
    assert_eq!(entries.len(), n, "not a permutation: {entries:?}");
    let mut p = vec![usize::MAX; n];
    for &(i, j, _) in entries {
        p[i] = j;
    }
    p
}

fn cloud(rng: &mut SeedRng, len: usize, shift: f64) -> Vec<f64> {
    (0..len).map(|_| rng.normal() + shift).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn harmonic_action_plan_equals_squared_euclidean_plan(
        n in 2usize..=6,
        dim in 1usize..=3,
        omega in 0.05f64..3.1,
        shift in -2.0f64..2.0,
        seed in 0u64..1_000_000,
    ) {
        let mut rng = SeedRng::seed_from(seed);
        let (x0, x1) = (cloud(&mut rng, n * dim, 0.0), cloud(&mut rng, n * dim, shift));
        let harmonic = Path::Harmonic { omega };
        let by_action = brute_force(&x0, &x1, dim, |a, b| harmonic.action_cost(a, b));
        let by_sq = brute_force(&x0, &x1, dim, |a, b| {
            a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
        });
        prop_assert_eq!(&by_action, &by_sq);
        let exact = as_permutation(&optimal_plan(&x0, &x1, dim, &harmonic).unwrap(), n);
        prop_assert_eq!(&exact, &by_action);
        let linear = as_permutation(&optimal_plan(&x0, &x1, dim, &Path::Linear).unwrap(), n);
        prop_assert_eq!(&linear, &by_sq);
    }

    #[test]
    fn anisotropic_plan_minimises_the_anisotropic_action(
        n in 2usize..=6,
        omega_base in 0.1f64..1.5,
        omega_ratio in 1.0f64..2.0,
        seed in 0u64..1_000_000,
    ) {
        let dim = 2;
        let mut rng = SeedRng::seed_from(seed);
        let data: Vec<f64> = (0..100).map(|i| rng.normal() * (1.0 + 2.0 * (i % 2) as f64)).collect();
        let path = Path::new(&PathKind::Anisotropic { omega_base, omega_ratio }, &data, dim).unwrap();
        let (x0, x1) = (cloud(&mut rng, n * dim, 0.0), cloud(&mut rng, n * dim, 0.5));
        let by_action = brute_force(&x0, &x1, dim, |a, b| path.action_cost(a, b));
        let exact = as_permutation(&optimal_plan(&x0, &x1, dim, &path).unwrap(), n);
        prop_assert_eq!(exact, by_action);
    }
}

#[test]
fn anisotropic_plan_can_differ_from_the_squared_euclidean_plan() {
    // Not a property but a sanity check that the anisotropic coupling is its own: over many
    // random minibatches with strongly different frequencies, some plans differ.
    let dim = 2;
    let mut rng = SeedRng::seed_from(9);
    let data: Vec<f64> = (0..200)
        .map(|i| rng.normal() * (1.0 + 3.0 * (i % 2) as f64))
        .collect();
    let path = Path::new(
        &PathKind::Anisotropic {
            omega_base: 0.1,
            omega_ratio: 30.0,
        },
        &data,
        dim,
    )
    .unwrap();
    let differing = (0..50)
        .filter(|_| {
            let (x0, x1) = (cloud(&mut rng, 5 * dim, 0.0), cloud(&mut rng, 5 * dim, 0.0));
            optimal_plan(&x0, &x1, dim, &path).unwrap()
                != optimal_plan(&x0, &x1, dim, &Path::Linear).unwrap()
        })
        .count();
    assert!(differing > 0);
}

/// The optimal plan between uniform measures on sorted, distinct 1-D points for a strictly
/// convex cost: the monotone (north-west corner) coupling, as `(i, j, mass)` in units of
/// `1 / (n0 n1)` (row `i` holds `n1` units, column `j` holds `n0`).
fn monotone_plan(n0: usize, n1: usize) -> Vec<(usize, usize, usize)> {
    let (mut i, mut j, mut row, mut col) = (0, 0, n1, n0);
    let mut out = Vec::new();
    while i < n0 && j < n1 {
        let m = row.min(col);
        out.push((i, j, m));
        row -= m;
        col -= m;
        if row == 0 {
            i += 1;
            row = n1;
        }
        if col == 0 {
            j += 1;
            col = n0;
        }
    }
    out
}

/// Sorted, distinct 1-D points.
fn sorted_line(rng: &mut SeedRng, n: usize) -> Vec<f64> {
    let mut x: Vec<f64> = (0..n).map(|k| k as f64 + 0.9 * rng.uniform()).collect();
    x.sort_by(f64::total_cmp);
    x
}

#[test]
fn ot_pairs_are_drawn_with_the_plan_s_probabilities_on_unequal_sizes() {
    let mut rng = SeedRng::seed_from(17);
    for (n0, n1) in [(2, 3), (4, 6), (5, 3)] {
        let (x0, x1) = (sorted_line(&mut rng, n0), sorted_line(&mut rng, n1));
        let plan = optimal_plan(&x0, &x1, 1, &Path::Linear).unwrap();
        let total: usize = plan.iter().map(|e| e.2).sum();
        let mut got: Vec<(usize, usize, f64)> = plan
            .iter()
            .map(|&(i, j, m)| (i, j, m as f64 / total as f64))
            .collect();
        got.sort_by_key(|e| (e.0, e.1));
        let expected: Vec<(usize, usize, f64)> = monotone_plan(n0, n1)
            .into_iter()
            .map(|(i, j, m)| (i, j, m as f64 / (n0 * n1) as f64))
            .collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "{n0}x{n1}: {got:?} vs {expected:?}"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!((g.0, g.1), (e.0, e.1), "{n0}x{n1}");
            assert!((g.2 - e.2).abs() < 1e-12, "{n0}x{n1}: {g:?} vs {e:?}");
        }
        // Pairs drawn from the plan: each entry with its probability (5σ of the binomial).
        let draws = 60_000;
        let pairs = couple(
            &x0,
            &x1,
            1,
            Coupling::ExactOt,
            &Path::Linear,
            draws,
            &mut rng,
        )
        .unwrap();
        assert_eq!(pairs.len(), draws);
        for &(i, j, p) in &expected {
            let count = pairs.iter().filter(|&&q| q == (i, j)).count() as f64;
            let mean = draws as f64 * p;
            let sd = (mean * (1.0 - p)).sqrt();
            assert!(
                (count - mean).abs() <= 5.0 * sd + 1.0,
                "{n0}x{n1} pair ({i}, {j}): {count} draws, expected {mean:.0} ± {sd:.0}"
            );
        }
        let in_plan = |q: &(usize, usize)| expected.iter().any(|e| (e.0, e.1) == *q);
        assert!(
            pairs.iter().all(in_plan),
            "{n0}x{n1}: a pair outside the plan"
        );
    }
    // Independent pairs are the draws in order.
    let x: Vec<f64> = (0..8).map(f64::from).collect();
    let pairs = couple(&x, &x, 2, Coupling::Independent, &Path::Linear, 4, &mut rng).unwrap();
    assert_eq!(pairs, vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
}

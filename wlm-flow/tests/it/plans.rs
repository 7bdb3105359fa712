//! Exact minibatch plans against brute force over permutations: the harmonic action's plan is
//! the squared-Euclidean plan (isotropic ω), and the anisotropic plan minimises its own action.

use proptest::prelude::*;
use wlm_flow::{optimal_plan, Path, PathKind};
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

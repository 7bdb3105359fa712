//! The Sinkhorn blur estimated from the data (METHOD.md §4): half the typical pairwise distance.

use serde::{Deserialize, Serialize};
use wlm_numeric::SeedRng;

use crate::Snapshots;

/// Parameters of [`estimate_blur`]; the defaults are the WLM reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlurConfig {
    /// Number of snapshots drawn at random (without replacement; all if there are fewer).
    /// Default 8.
    pub n_snapshots: usize,
    /// Random pairs of distinct points drawn (with replacement) per snapshot. Default 4096.
    pub pairs_per_snapshot: usize,
    /// Factor applied to the median distance. Default 0.5.
    pub scale: f64,
    /// Lower clamp of the result. Default 1e-3.
    pub min: f64,
    /// Upper clamp of the result. Default 10.
    pub max: f64,
    /// Seed of the generator, SeedRng (xoshiro256++, wlm-numeric). Default 0.
    pub seed: u64,
}

impl Default for BlurConfig {
    fn default() -> Self {
        Self {
            n_snapshots: 8,
            pairs_per_snapshot: 4096,
            scale: 0.5,
            min: 1e-3,
            max: 10.0,
            seed: 0,
        }
    }
}

/// `scale ×` the median over `n_snapshots` random snapshots of the median Euclidean distance
/// between `pairs_per_snapshot` random pairs of distinct points, clamped to `[min, max]`.
///
/// A snapshot with a single point contributes a distance of 0. Deterministic for a given
/// seed: the snapshots are `SeedRng::sample_indices`, then per snapshot and pair
/// `i = below(n)` and `j = (i + 1 + below(n − 1)) mod n`, from one stream. Cost:
/// `O(n_snapshots · pairs_per_snapshot · dim)`.
pub fn estimate_blur(snapshots: &Snapshots, config: &BlurConfig) -> f64 {
    let mut rng = SeedRng::seed_from(config.seed);
    let dim = snapshots.dim();
    let chosen = rng.sample_indices(snapshots.len(), config.n_snapshots.min(snapshots.len()));
    let mut medians = Vec::with_capacity(chosen.len());
    for k in chosen {
        let x = snapshots.positions(k);
        let n = snapshots.n_particles(k);
        if n < 2 || config.pairs_per_snapshot == 0 {
            medians.push(0.0);
            continue;
        }
        let mut distances: Vec<f64> = (0..config.pairs_per_snapshot)
            .map(|_| {
                let i = rng.below(n as u64) as usize;
                // A second index uniform over the other n − 1 points.
                let j = (i + 1 + rng.below(n as u64 - 1) as usize) % n;
                let (a, b) = (&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim]);
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        medians.push(median(&mut distances));
    }
    let value = config.scale * median(&mut medians);
    value.clamp(config.min, config.max)
}

/// The median (mean of the two middle values for an even count; 0 for none).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        let lower = values[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, spacing: f64) -> Vec<f64> {
        (0..n).map(|i| i as f64 * spacing).collect()
    }

    #[test]
    fn median_handles_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn blur_is_half_the_median_distance_and_scales_with_the_data() {
        // Two points per snapshot: every pair is at distance `spacing`.
        let s = Snapshots::new(vec![0.0, 1.0], 1, vec![line(2, 3.0), line(2, 3.0)], None).unwrap();
        assert_eq!(estimate_blur(&s, &BlurConfig::default()), 1.5);
    }

    #[test]
    fn blur_is_clamped_and_seeded() {
        let tiny = Snapshots::new(vec![0.0], 1, vec![line(50, 1e-9)], None).unwrap();
        assert_eq!(estimate_blur(&tiny, &BlurConfig::default()), 1e-3);
        let huge = Snapshots::new(vec![0.0], 1, vec![line(50, 1e6)], None).unwrap();
        assert_eq!(estimate_blur(&huge, &BlurConfig::default()), 10.0);
        let s = Snapshots::new(vec![0.0], 1, vec![line(100, 0.1)], None).unwrap();
        let config = BlurConfig {
            seed: 7,
            ..BlurConfig::default()
        };
        assert_eq!(estimate_blur(&s, &config), estimate_blur(&s, &config));
    }
}

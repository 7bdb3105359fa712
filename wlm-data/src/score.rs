//! Gaussian-kernel estimate of the score `∇ log ρ` of a cloud, and the probability-flow
//! velocity built from it.

use serde::{Deserialize, Serialize};

use crate::blur::median;
use crate::Potential;

/// Pairs used for the bandwidth's median are those among the first `MEDIAN_POINTS` points
/// (all pairs for clouds up to this size), which bounds memory at about 16 MB.
const MEDIAN_POINTS: usize = 2048;

/// Which sign the entropic term of the velocity gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSign {
    /// `v = −∇ψ − (σ²/2) ∇log ρ`: the probability-flow velocity, whose continuity equation is
    /// the Fokker–Planck equation of `dX = −∇ψ dt + σ dW`. The correct one; the default.
    #[default]
    ProbabilityFlow,
    /// `v = −∇ψ + (σ²/2) ∇log ρ`: the WLM reference code's sign (a sign error there), for
    /// parity runs only.
    Reference,
}

/// Gaussian-kernel estimate of `∇ log ρ` at each point of a cloud (the WLM reference's
/// estimator).
///
/// With `K(x, y) = exp(−|x − y|² / h²)`, the score at `x_i` is
/// `Σ_j ∇_{x_i} K(x_i, x_j) / (Σ_j K(x_i, x_j) + 1e−10)`, `j` over all points including `i`.
/// Bandwidth rule: `h² = median_{i<j} |x_i − x_j|² / (2 ln(N + 1))`, clamped below at `1e−3`
/// (the reference takes the median over the full N×N matrix with the diagonal set to 1e6; we
/// take it over distinct pairs, among the first 2048 points for larger clouds). A cloud of
/// fewer than two points has score 0.
///
/// # Shapes
/// `positions`: `(n, dim)` row-major; returns `(n, dim)` row-major. Cost `O(n² · dim)` time,
/// `O(n + min(n, 2048)²)` memory.
pub fn kde_score(positions: &[f64], dim: usize) -> Vec<f64> {
    let n = positions.len().checked_div(dim).unwrap_or(0);
    let mut score = vec![0.0; n * dim];
    if n < 2 {
        return score;
    }
    let point = |i: usize| &positions[i * dim..(i + 1) * dim];
    let sq = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
    let m = n.min(MEDIAN_POINTS);
    let mut pairs = Vec::with_capacity(m * (m - 1) / 2);
    for i in 0..m {
        for j in i + 1..m {
            pairs.push(sq(point(i), point(j)));
        }
    }
    let h2 = (median(&mut pairs) / (2.0 * ((n + 1) as f64).ln())).max(1e-3);

    // Σ_j K(x_i, x_j) (starting with K(x_i, x_i) = 1) and Σ_j (x_i − x_j) K(x_i, x_j), each
    // pair visited once.
    let inv_h2 = 1.0 / h2;
    let mut sums = vec![1.0; n];
    let mut acc = vec![0.0; dim];
    for i in 0..n {
        let xi = point(i);
        let mut sum_i = 0.0;
        acc.fill(0.0);
        for j in i + 1..n {
            let xj = point(j);
            let d2: f64 = xi.iter().zip(xj).map(|(p, q)| (p - q) * (p - q)).sum();
            let k = (-d2 * inv_h2).exp();
            sum_i += k;
            sums[j] += k;
            let out_j = &mut score[j * dim..(j + 1) * dim];
            for ((a, o), (p, q)) in acc.iter_mut().zip(out_j).zip(xi.iter().zip(xj)) {
                let g = (p - q) * k;
                *a += g;
                *o -= g;
            }
        }
        sums[i] += sum_i;
        for (o, a) in score[i * dim..(i + 1) * dim].iter_mut().zip(&acc) {
            *o += a;
        }
    }
    // ∇_{x_i} K(x_i, x_j) = −2 (x_i − x_j) K / h².
    for (i, s) in score.iter_mut().enumerate() {
        *s *= -2.0 * inv_h2 / (sums[i / dim] + 1e-10);
    }
    score
}

/// Velocity `−∇ψ(x_i) ∓ (σ²/2) s(x_i)` of every point, `s` the [`kde_score`] of the cloud and
/// the sign chosen by `sign` (minus for [`ScoreSign::ProbabilityFlow`]).
///
/// # Shapes
/// `positions`: `(n, dim)` row-major; returns `(n, dim)`. Cost that of [`kde_score`].
pub fn probability_flow_velocity(
    positions: &[f64],
    dim: usize,
    potential: Potential,
    sigma: f64,
    sign: ScoreSign,
) -> Vec<f64> {
    let score = kde_score(positions, dim);
    let factor = match sign {
        ScoreSign::ProbabilityFlow => -0.5 * sigma * sigma,
        ScoreSign::Reference => 0.5 * sigma * sigma,
    };
    let mut grad = vec![0.0; dim];
    let mut velocity = Vec::with_capacity(positions.len());
    for (x, s) in positions.chunks_exact(dim).zip(score.chunks_exact(dim)) {
        potential.gradient(x, &mut grad);
        velocity.extend(grad.iter().zip(s).map(|(g, s)| -g + factor * s));
    }
    velocity
}

#[cfg(test)]
mod tests {
    use wlm_numeric::SeedRng;

    use super::*;

    #[test]
    fn score_of_a_gaussian_points_towards_the_mean() {
        // For N(0, s² I) the score is −x / s²; the kernel smooths it to −x / (s² + h²/2).
        let mut rng = SeedRng::seed_from(3);
        let n = 800;
        let x: Vec<f64> = (0..2 * n).map(|_| rng.normal()).collect();
        let s = kde_score(&x, 2);
        // Regress s on x: slope must be negative and near −1 / (1 + h²/2) ≈ −0.9.
        let (sx, xx): (f64, f64) = x
            .iter()
            .zip(&s)
            .fold((0.0, 0.0), |(a, b), (x, s)| (a + x * s, b + x * x));
        let slope = sx / xx;
        assert!((-1.05..-0.7).contains(&slope), "slope {slope}");
    }

    #[test]
    fn tiny_clouds_have_zero_score() {
        assert_eq!(kde_score(&[1.0, 2.0], 2), vec![0.0, 0.0]);
        assert!(kde_score(&[], 2).is_empty());
    }

    #[test]
    fn the_two_signs_differ_only_in_the_entropic_term() {
        let x = [0.0, 0.0, 1.0, 0.0, 0.0, 2.0];
        let a =
            probability_flow_velocity(&x, 2, Potential::Quadratic, 1.0, ScoreSign::ProbabilityFlow);
        let b = probability_flow_velocity(&x, 2, Potential::Quadratic, 1.0, ScoreSign::Reference);
        for i in 0..6 {
            // a + b = −2 ∇ψ = −2 x for the quadratic potential.
            assert!((a[i] + b[i] + 2.0 * x[i]).abs() < 1e-12);
        }
    }
}

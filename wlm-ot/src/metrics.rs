//! Kernel two-sample statistics: the energy distance and the RBF maximum mean discrepancy.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::input::{check_pair, read_pair, HostPair};

/// Below this many pairs, sums run on the calling thread.
const PARALLEL_MIN_PAIRS: usize = 1 << 16;

/// Reads two clouds as f64 (f32 inputs are widened exactly).
pub(crate) fn read_pair_f64(x: &Tensor, y: &Tensor) -> Result<HostPair<f64>> {
    check_pair(x, y)?;
    let (x, y) = (x.to_dtype(DType::F64)?, y.to_dtype(DType::F64)?);
    read_pair::<f64>(&x, &y)
}

/// `Σ_i Σ_j k(p_i, q_j) / (n_p n_q)` for row-major clouds of dimension `dim`.
fn mean_pairwise(p: &[f64], q: &[f64], dim: usize, k: impl Fn(f64) -> f64 + Sync) -> f64 {
    let n_q = q.len() / dim;
    let row = |pi: &[f64]| -> f64 {
        q.chunks_exact(dim)
            .map(|qj| {
                let sq: f64 = pi.iter().zip(qj).map(|(a, b)| (a - b) * (a - b)).sum();
                k(sq)
            })
            .sum()
    };
    let n_p = p.len() / dim;
    let total: f64 = if n_p * n_q >= PARALLEL_MIN_PAIRS {
        p.par_chunks_exact(dim).map(row).sum()
    } else {
        p.chunks_exact(dim).map(row).sum()
    };
    total / (n_p as f64 * n_q as f64)
}

/// The energy distance
/// `2/(NM) Σ_ij |x_i − y_j| − 1/N² Σ_ik |x_i − x_k| − 1/M² Σ_jl |y_j − y_l|` (V-statistic,
/// uniform weights, ≥ 0; zero iff the clouds are equal as measures). Computed in f64; cost
/// `O((N + M)² d)`.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64.
///
/// # Errors
/// Bad shapes, dtypes or non-finite coordinates.
pub fn energy_distance(x: &Tensor, y: &Tensor) -> Result<f64> {
    let pair = read_pair_f64(x, y)?;
    let d = pair.dim;
    let dist = |sq: f64| sq.sqrt();
    let xy = mean_pairwise(&pair.x, &pair.y, d, dist);
    let xx = mean_pairwise(&pair.x, &pair.x, d, dist);
    let yy = mean_pairwise(&pair.y, &pair.y, d, dist);
    Ok((2.0 * xy - xx - yy).max(0.0))
}

/// The squared maximum mean discrepancy with the Gaussian kernel
/// `k(u, v) = exp(−|u − v|² / (2 bandwidth²))`:
/// `MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y)` (biased V-statistic over all pairs,
/// clamped at 0). Computed in f64; cost `O((N + M)² d)`.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64.
///
/// # Errors
/// Bad shapes, dtypes, non-finite coordinates, or [`Error::InvalidBandwidth`].
pub fn mmd_rbf(x: &Tensor, y: &Tensor, bandwidth: f64) -> Result<f64> {
    if !(bandwidth.is_finite() && bandwidth > 0.0) {
        return Err(Error::InvalidBandwidth(bandwidth));
    }
    let pair = read_pair_f64(x, y)?;
    let d = pair.dim;
    let scale = -0.5 / (bandwidth * bandwidth);
    let rbf = |sq: f64| (scale * sq).exp();
    let xy = mean_pairwise(&pair.x, &pair.y, d, rbf);
    let xx = mean_pairwise(&pair.x, &pair.x, d, rbf);
    let yy = mean_pairwise(&pair.y, &pair.y, d, rbf);
    Ok((xx + yy - 2.0 * xy).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f64], n: usize, d: usize) -> Tensor {
        Tensor::from_slice(v, (n, d), &Device::Cpu).expect("tensor")
    }

    #[test]
    fn energy_distance_of_two_points_on_a_line_is_twice_their_gap() {
        // x = {0}, y = {3}: 2·3 − 0 − 0
        let e = energy_distance(&t(&[0.0], 1, 1), &t(&[3.0], 1, 1)).expect("ok");
        assert!((e - 6.0).abs() < 1e-15);
    }

    #[test]
    fn energy_distance_and_mmd_of_a_cloud_with_itself_are_zero() {
        let x = t(&[0.0, 1.0, 2.0, -1.0, 0.5, 0.5], 3, 2);
        assert!(energy_distance(&x, &x).expect("ok").abs() < 1e-14);
        assert!(mmd_rbf(&x, &x, 0.7).expect("ok").abs() < 1e-14);
    }

    #[test]
    fn mmd_of_two_single_points_matches_the_closed_form() {
        // 1 + 1 − 2 exp(−|u−v|²/(2σ²)), |u − v|² = 4, σ = 1
        let m = mmd_rbf(&t(&[0.0, 0.0], 1, 2), &t(&[2.0, 0.0], 1, 2), 1.0).expect("ok");
        assert!((m - (2.0 - 2.0 * (-2.0_f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn bad_bandwidth_is_an_error() {
        let x = t(&[0.0, 1.0], 1, 2);
        assert!(matches!(
            mmd_rbf(&x, &x, 0.0),
            Err(Error::InvalidBandwidth(_))
        ));
        assert!(matches!(
            mmd_rbf(&x, &x, f64::NAN),
            Err(Error::InvalidBandwidth(_))
        ));
    }
}

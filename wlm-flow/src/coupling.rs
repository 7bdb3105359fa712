//! Minibatch couplings: independent pairs (I-CFM) and pairs sampled from the exact optimal
//! plan of the minibatch (OT-CFM), with the path's own coupling cost.

use candle_core::{Device, Tensor};
use wlm_numeric::SeedRng;
use wlm_ot::{exact_plan, GroundCost};

use crate::config::Coupling;
use crate::error::Result;
use crate::path::Path;

/// `n_pairs` index pairs `(i, j)` into the row-major `(n0, dim)` minibatch `x0` and
/// `(n1, dim)` minibatch `x1`.
///
/// - [`Coupling::Independent`]: `(i, i)` for `i < n_pairs` (the minibatches are already
///   independent draws; needs `n0, n1 ≥ n_pairs`).
/// - [`Coupling::ExactOt`]: the exact optimal plan `π` of the uniform measures for the
///   squared-Euclidean cost on [`Path::coupling_coordinates`] (the path's action plan), then
///   `n_pairs` pairs drawn with replacement with probabilities `π_ij`, as TorchCFM's
///   `OTPlanSampler.sample_plan`.
///
/// # Errors
/// Exact-OT failures (non-finite values, too large a minibatch for memory).
pub fn couple(
    x0: &[f64],
    x1: &[f64],
    dim: usize,
    coupling: Coupling,
    path: &Path,
    n_pairs: usize,
    rng: &mut SeedRng,
) -> Result<Vec<(usize, usize)>> {
    match coupling {
        Coupling::Independent => Ok((0..n_pairs).map(|i| (i, i)).collect()),
        Coupling::ExactOt => {
            let plan = optimal_plan(x0, x1, dim, path)?;
            let mut cumulative = Vec::with_capacity(plan.len());
            let mut total = 0u64;
            for &(_, _, units) in &plan {
                total += units as u64;
                cumulative.push(total);
            }
            Ok((0..n_pairs)
                .map(|_| {
                    let u = rng.below(total);
                    let e = cumulative.partition_point(|&c| c <= u);
                    (plan[e].0, plan[e].1)
                })
                .collect())
        }
    }
}

/// The exact optimal plan of [`couple`] as `(i, j, units)` entries.
///
/// # Errors
/// As [`couple`].
pub fn optimal_plan(
    x0: &[f64],
    x1: &[f64],
    dim: usize,
    path: &Path,
) -> Result<Vec<(usize, usize, usize)>> {
    let (c0, c1) = (
        path.coupling_coordinates(x0, dim),
        path.coupling_coordinates(x1, dim),
    );
    let t0 = Tensor::from_vec(c0, (x0.len() / dim, dim), &Device::Cpu)?;
    let t1 = Tensor::from_vec(c1, (x1.len() / dim, dim), &Device::Cpu)?;
    Ok(exact_plan(&t0, &t1, GroundCost::SquaredEuclidean)?.entries)
}

//! Exact optimal transport between uniform clouds (W1, W2): a primal network simplex on the
//! complete bipartite graph, with masses scaled to integers.
//!
//! With uniform weights `1/N` and `1/M`, multiplying every mass by `NM/g` (`g = gcd(N, M)`)
//! gives integer supplies `M/g` at each `x_i` and demands `N/g` at each `y_j`; the transport
//! problem is then an integral min-cost flow, solved exactly (up to the rounding of the costs)
//! by the network simplex method: spanning-tree bases stored as parent/thread/successor arrays,
//! block-search pricing, an artificial root for the initial basis — the scheme of LEMON's
//! `NetworkSimplex`, which POT's `ot.emd2` also uses. Memory: the `N × M` cost matrix (f64) and
//! a second copy used for pricing (tree arcs priced at +∞), and one flow per arc.

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::input::{check_pair, HostPair};
use crate::metrics::read_pair_f64;

mod network_simplex;

use network_simplex::NetworkSimplex;

/// `n_x · n_y` above which the exact solver refuses to run (the cost matrix alone would need
/// 8 TB).
const MAX_ARCS: usize = 1 << 40;

/// Bytes the solver holds per arc of the complete bipartite graph: the cost, its pricing copy
/// and the flow (8 bytes each).
const BYTES_PER_ARC: u64 = 24;

/// Bytes the solver holds per node (tree arrays, potentials, supplies), an upper bound.
const BYTES_PER_NODE: u64 = 96;

/// Refuses a problem of `n_x × n_y` arcs that is too large for the solver ([`MAX_ARCS`]) or
/// whose arrays would not fit in `available` bytes (the memory the system reports as
/// available; `None` when it cannot tell, and then only [`MAX_ARCS`] applies). Checked before
/// anything of size `n_x · n_y` is allocated.
fn check_size(n_x: usize, n_y: usize, available: Option<u64>) -> Result<()> {
    let arcs = match n_x.checked_mul(n_y) {
        Some(arcs) if arcs < MAX_ARCS => arcs as u64,
        _ => return Err(Error::ProblemTooLarge { n_x, n_y }),
    };
    let needed = arcs * BYTES_PER_ARC + (n_x as u64 + n_y as u64 + 1) * BYTES_PER_NODE;
    match available {
        Some(available) if needed > available => Err(Error::OutOfMemory {
            n_x,
            n_y,
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

/// [`check_size`] against the memory available now.
fn check_fits(n_x: usize, n_y: usize) -> Result<()> {
    check_size(n_x, n_y, wlm_numeric::available_memory_bytes())
}

/// Exact 1-Wasserstein distance with Euclidean ground cost `|x − y|` between the uniform
/// measures on `x` and `y` (sizes may differ), as POT's `ot.emd2(a, b, M)` computes it.
/// Computed in f64.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64.
///
/// # Errors
/// Bad shapes, dtypes or non-finite coordinates; [`Error::ProblemTooLarge`];
/// [`Error::OutOfMemory`] when its `24·N·M` bytes exceed the memory available.
pub fn wasserstein_1(x: &Tensor, y: &Tensor) -> Result<f64> {
    let pair = read_pair_f64(x, y)?;
    check_fits(pair.n_x, pair.n_y)?;
    let cost = cost_matrix(&pair.x, &pair.y, pair.dim, |sq| sq.sqrt());
    emd_uniform(&cost, pair.n_x, pair.n_y)
}

/// Exact 2-Wasserstein distance `W2 = sqrt(emd2)` with ground cost `|x − y|²` (not halved)
/// between the uniform measures on `x` and `y`. Computed in f64.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64.
///
/// # Errors
/// As [`wasserstein_1`].
pub fn wasserstein_2(x: &Tensor, y: &Tensor) -> Result<f64> {
    let pair = read_pair_f64(x, y)?;
    check_fits(pair.n_x, pair.n_y)?;
    let cost = cost_matrix(&pair.x, &pair.y, pair.dim, |sq| sq);
    Ok(emd_uniform(&cost, pair.n_x, pair.n_y)?.max(0.0).sqrt())
}

/// The ground cost of an exact transport plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroundCost {
    /// `|x − y|` (the W1 problem).
    Euclidean,
    /// `|x − y|²` (the W2 problem; its plan gives displacement interpolation).
    SquaredEuclidean,
}

/// An optimal coupling of the uniform measures on `n_x` and `n_y` points, sparse.
///
/// Masses are exact integers in units of `1 / lcm(n_x, n_y)`: every `x_i` sends
/// `total_units / n_x` units and every `y_j` receives `total_units / n_y`.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportPlan {
    /// Points in `x`.
    pub n_x: usize,
    /// Points in `y`.
    pub n_y: usize,
    /// `lcm(n_x, n_y)`: the number of mass units in all.
    pub total_units: usize,
    /// `(i, j, units)` for every pair that carries mass (`units ≥ 1`), at most
    /// `n_x + n_y − 1` of them, sorted by `(i, j)`.
    pub entries: Vec<(usize, usize, usize)>,
    /// `Σ π_ij C_ij` with `π_ij = units / total_units`: W1, or W2² for the squared cost.
    pub cost: f64,
}

impl TransportPlan {
    /// The mass of entry `units`, as a fraction of the total.
    #[must_use]
    pub fn mass(&self, units: usize) -> f64 {
        units as f64 / self.total_units as f64
    }
}

/// An exact optimal transport plan between the uniform measures on `x` and `y` (sizes may
/// differ), by the same network simplex as [`wasserstein_1`]. Computed in f64.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64.
///
/// # Errors
/// As [`wasserstein_1`].
pub fn exact_plan(x: &Tensor, y: &Tensor, ground: GroundCost) -> Result<TransportPlan> {
    let pair = read_pair_f64(x, y)?;
    check_fits(pair.n_x, pair.n_y)?;
    let cost = match ground {
        GroundCost::Euclidean => cost_matrix(&pair.x, &pair.y, pair.dim, |sq| sq.sqrt()),
        GroundCost::SquaredEuclidean => cost_matrix(&pair.x, &pair.y, pair.dim, |sq| sq),
    };
    plan_uniform(&cost, pair.n_x, pair.n_y)
}

/// Displacement (McCann) interpolation at fraction `s ∈ [0, 1]` between the uniform measures
/// on `x` and `y`: every unit of mass of the exact W2 plan moves from `x_i` towards `y_j`,
/// giving the point `(1 − s) x_i + s y_j`. The result is the uniform cloud of
/// `lcm(N, M)` such points (`N` points when `N = M`), in f64; `s = 0` gives `x` and `s = 1`
/// gives `y` (as measures). It is the W2 geodesic between the two clouds, and the usual
/// "OT midpoint" baseline for interpolating a held-out snapshot.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, f32 or f64; returns `(lcm(N, M), d)` f64.
///
/// # Errors
/// Bad shapes, dtypes or non-finite coordinates; `s` outside `[0, 1]`
/// ([`Error::InvalidFraction`]); [`Error::ProblemTooLarge`] (also when `lcm(N, M)` exceeds
/// 2^24 points); [`Error::OutOfMemory`] (for the plan, or for the `lcm(N, M) · d` values of
/// the result). To score the interpolation against a cloud without building its `lcm(N, M)`
/// points, use [`displacement_interpolation_w1`].
pub fn displacement_interpolation(x: &Tensor, y: &Tensor, s: f64) -> Result<Tensor> {
    let (n_x, n_y, _, _) = check_pair(x, y)?;
    if (n_x / gcd(n_x, n_y))
        .checked_mul(n_y)
        .is_none_or(|l| l > 1 << 24)
    {
        return Err(Error::ProblemTooLarge { n_x, n_y });
    }
    let (pair, atoms) = interpolation_atoms(x, y, s)?;
    let dim = pair.dim;
    let lcm = atoms.total_units;
    let needed = (lcm as u64) * (dim as u64) * 8;
    if let Some(available) = wlm_numeric::available_memory_bytes().filter(|&a| needed > a) {
        return Err(Error::OutOfMemory {
            n_x,
            n_y,
            needed,
            available,
        });
    }
    let mut points = Vec::with_capacity(lcm * dim);
    for (point, &units) in atoms.points.chunks_exact(dim).zip(&atoms.units) {
        for _ in 0..units {
            points.extend_from_slice(point);
        }
    }
    Ok(Tensor::from_vec(
        points,
        (lcm, dim),
        &candle_core::Device::Cpu,
    )?)
}

/// Exact W1 (Euclidean ground cost) between the displacement interpolation of `x` and `y` at
/// fraction `s` (as [`displacement_interpolation`] builds it) and the uniform measure on
/// `target`, without expanding the interpolation into its `lcm(N, M)` points: each of the at
/// most `N + M − 1` pairs of the W2 plan is one weighted point. Equal, up to rounding, to
/// `wasserstein_1(&displacement_interpolation(x, y, s)?, target)`, for a
/// `(N + M − 1) × K` problem instead of an `lcm(N, M) × K` one. The `ot_midpoint` baseline's
/// score.
///
/// # Shapes
/// `x`: `(N, d)`, `y`: `(M, d)`, `target`: `(K, d)`, f32 or f64.
///
/// # Errors
/// As [`displacement_interpolation`] for `x` and `y` (without its bound on `lcm(N, M)`); bad
/// shape or non-finite coordinates of `target` (named `y`, the second cloud of the scoring
/// problem); [`Error::ProblemTooLarge`] when the integer masses of the weighted problem
/// overflow.
pub fn displacement_interpolation_w1(
    x: &Tensor,
    y: &Tensor,
    s: f64,
    target: &Tensor,
) -> Result<f64> {
    let (pair, atoms) = interpolation_atoms(x, y, s)?;
    let dim = pair.dim;
    let n_atoms = atoms.units.len();
    let atoms_tensor =
        Tensor::from_slice(&atoms.points, (n_atoms, dim), &candle_core::Device::Cpu)?;
    let target = target.to_dtype(candle_core::DType::F64)?;
    let scored = read_pair_f64(&atoms_tensor, &target)?;
    let n_target = scored.n_y;
    check_fits(n_atoms, n_target)?;
    // Masses in units of 1 / L, L = lcm(total_units, K): atom k supplies units_k · L / total,
    // every target point demands L / K.
    let too_large = || Error::ProblemTooLarge {
        n_x: atoms.total_units,
        n_y: n_target,
    };
    let total = atoms.total_units as u64;
    let big = (total / gcd(atoms.total_units, n_target) as u64)
        .checked_mul(n_target as u64)
        .filter(|&l| l <= i64::MAX as u64 / 2)
        .ok_or_else(too_large)?;
    let per_unit = (big / total) as i64;
    let mut supply = Vec::with_capacity(n_atoms + n_target);
    for &units in &atoms.units {
        supply.push((units as i64).checked_mul(per_unit).ok_or_else(too_large)?);
    }
    let demand = (big / n_target as u64) as i64;
    supply.extend(std::iter::repeat_n(-demand, n_target));
    let cost = cost_matrix(&scored.x, &scored.y, dim, |sq| sq.sqrt());
    let mut simplex = NetworkSimplex::new(&cost, n_atoms, n_target, supply);
    simplex.run();
    Ok(simplex.total_cost() / big as f64)
}

/// The displacement interpolation of `x` and `y` at `s` as weighted points: one per pair of
/// the exact W2 plan, `(1 − s) x_i + s y_j`, carrying the pair's units of mass.
struct Atoms {
    /// Row-major `(n_atoms, dim)`.
    points: Vec<f64>,
    /// Units of mass of every atom, out of `total_units`.
    units: Vec<usize>,
    /// `lcm(N, M)`.
    total_units: usize,
}

fn interpolation_atoms(x: &Tensor, y: &Tensor, s: f64) -> Result<(HostPair<f64>, Atoms)> {
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::InvalidFraction(s));
    }
    let pair = read_pair_f64(x, y)?;
    let (n_x, n_y, dim) = (pair.n_x, pair.n_y, pair.dim);
    check_fits(n_x, n_y)?;
    let cost = cost_matrix(&pair.x, &pair.y, dim, |sq| sq);
    let plan = plan_uniform(&cost, n_x, n_y)?;
    let mut points = Vec::with_capacity(plan.entries.len() * dim);
    let mut units = Vec::with_capacity(plan.entries.len());
    for &(i, j, u) in &plan.entries {
        let (xi, yj) = (
            &pair.x[i * dim..(i + 1) * dim],
            &pair.y[j * dim..(j + 1) * dim],
        );
        points.extend(xi.iter().zip(yj).map(|(a, b)| (1.0 - s) * a + s * b));
        units.push(u);
    }
    let atoms = Atoms {
        points,
        units,
        total_units: plan.total_units,
    };
    Ok((pair, atoms))
}

/// Row-major `N × M` matrix `f(|x_i − y_j|²)`.
fn cost_matrix(x: &[f64], y: &[f64], dim: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut cost = Vec::with_capacity(x.len() / dim * (y.len() / dim));
    for xi in x.chunks_exact(dim) {
        for yj in y.chunks_exact(dim) {
            let sq: f64 = xi.iter().zip(yj).map(|(a, b)| (a - b) * (a - b)).sum();
            cost.push(f(sq));
        }
    }
    cost
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Optimal transport cost `min Σ_ij π_ij C_ij` over couplings of the uniform measures on
/// `n_x` and `n_y` points; `cost` is row-major `n_x × n_y`.
pub(crate) fn emd_uniform(cost: &[f64], n_x: usize, n_y: usize) -> Result<f64> {
    Ok(plan_uniform(cost, n_x, n_y)?.cost)
}

/// The optimal plan of [`emd_uniform`]'s problem.
fn plan_uniform(cost: &[f64], n_x: usize, n_y: usize) -> Result<TransportPlan> {
    if n_x.checked_mul(n_y).is_none_or(|arcs| arcs >= MAX_ARCS) {
        return Err(Error::ProblemTooLarge { n_x, n_y });
    }
    let g = gcd(n_x, n_y);
    let (supply, demand) = ((n_y / g) as i64, (n_x / g) as i64);
    let supplies = (0..n_x + n_y)
        .map(|u| if u < n_x { supply } else { -demand })
        .collect();
    let mut simplex = NetworkSimplex::new(cost, n_x, n_y, supplies);
    simplex.run();
    let total_units = n_x / g * n_y;
    let mut entries: Vec<(usize, usize, usize)> = (0..simplex.root)
        .map(|u| simplex.pred[u])
        .filter(|&a| a < simplex.n_real && simplex.flow[a] > 0)
        .map(|a| (a / n_y, a % n_y, simplex.flow[a] as usize))
        .collect();
    entries.sort_unstable();
    Ok(TransportPlan {
        n_x,
        n_y,
        total_units,
        entries,
        cost: simplex.total_cost() / total_units as f64,
    })
}

#[cfg(test)]
mod tests;

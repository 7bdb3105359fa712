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
    check_size(n_x, n_y, crate::memory::available_bytes())
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
    if let Some(available) = crate::memory::available_bytes().filter(|&a| needed > a) {
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

const NONE: usize = usize::MAX;
/// Relative tolerance on negative reduced costs (rounding of the potentials).
const PRICING_TOLERANCE: f64 = 64.0 * f64::EPSILON;

/// Network simplex for the balanced transportation problem between `n_src` sources and
/// `n_dst` sinks with integer supplies (sinks negative, the total zero). Nodes: sources `0..n_src`, sinks
/// `n_src..n_src + n_dst`, root `n_src + n_dst`. Arcs: `i·n_dst + j` from source `i` to sink `j`
/// (implicit), then one artificial arc per node linking it to the root.
struct NetworkSimplex<'a> {
    n_src: usize,
    n_dst: usize,
    n_real: usize,
    root: usize,
    cost: &'a [f64],
    /// `cost` with the arcs of the spanning tree priced at `+∞` (what pricing scans).
    pricing_cost: Vec<f64>,
    art_cost: f64,
    /// Supply of every node (negative = demand), root excluded.
    supply: Vec<i64>,
    flow: Vec<i64>,
    parent: Vec<usize>,
    pred: Vec<usize>,
    /// `+1` when `pred[u]` points from `u` up to its parent, `−1` when down from the parent.
    pred_dir: Vec<i64>,
    thread: Vec<usize>,
    rev_thread: Vec<usize>,
    succ_num: Vec<usize>,
    last_succ: Vec<usize>,
    pi: Vec<f64>,
    dirty_revs: Vec<usize>,
    block_size: usize,
    next_arc: usize,
    // The current pivot.
    in_arc: usize,
    join: usize,
    u_in: usize,
    v_in: usize,
    u_out: usize,
    delta: i64,
}

impl<'a> NetworkSimplex<'a> {
    fn new(cost: &'a [f64], n_src: usize, n_dst: usize, supply: Vec<i64>) -> Self {
        let n_nodes = n_src + n_dst;
        let n_real = n_src * n_dst;
        let root = n_nodes;
        let max_cost = cost.iter().fold(0.0_f64, |m, &c| m.max(c.abs()));
        let art_cost = (max_cost + 1.0) * n_nodes as f64;
        let mut s = Self {
            n_src,
            n_dst,
            n_real,
            root,
            cost,
            pricing_cost: cost.to_vec(),
            art_cost,
            supply,
            flow: vec![0; n_real + n_nodes],
            parent: vec![NONE; n_nodes + 1],
            pred: vec![NONE; n_nodes + 1],
            pred_dir: vec![0; n_nodes + 1],
            thread: vec![0; n_nodes + 1],
            rev_thread: vec![0; n_nodes + 1],
            succ_num: vec![0; n_nodes + 1],
            last_succ: vec![0; n_nodes + 1],
            pi: vec![0.0; n_nodes + 1],
            dirty_revs: Vec::new(),
            block_size: ((n_real as f64).sqrt() as usize).max(10),
            next_arc: 0,
            in_arc: NONE,
            join: NONE,
            u_in: NONE,
            v_in: NONE,
            u_out: NONE,
            delta: 0,
        };
        // Initial basis: every node hangs from the root by its artificial arc.
        s.thread[root] = 0;
        s.rev_thread[0] = root;
        s.succ_num[root] = n_nodes + 1;
        s.last_succ[root] = root - 1;
        for u in 0..n_nodes {
            let e = n_real + u;
            s.parent[u] = root;
            s.pred[u] = e;
            s.thread[u] = u + 1;
            s.rev_thread[u + 1] = u;
            s.succ_num[u] = 1;
            s.last_succ[u] = u;
            if s.supply[u] >= 0 {
                s.pred_dir[u] = 1;
                s.flow[e] = s.supply[u];
            } else {
                s.pred_dir[u] = -1;
                s.pi[u] = art_cost;
                s.flow[e] = -s.supply[u];
            }
        }
        s
    }

    fn source(&self, arc: usize) -> usize {
        if arc < self.n_real {
            arc / self.n_dst
        } else if self.supply[arc - self.n_real] >= 0 {
            arc - self.n_real
        } else {
            self.root
        }
    }

    fn target(&self, arc: usize) -> usize {
        if arc < self.n_real {
            self.n_src + arc % self.n_dst
        } else if self.supply[arc - self.n_real] >= 0 {
            self.root
        } else {
            arc - self.n_real
        }
    }

    fn arc_cost(&self, arc: usize) -> f64 {
        if arc < self.n_real {
            self.cost[arc]
        } else if self.supply[arc - self.n_real] >= 0 {
            0.0
        } else {
            self.art_cost
        }
    }

    /// Block-search pricing over the real arcs: the most negative reduced cost
    /// `c_ij + π_i − π_j` of the first block (in cyclic order from `next_arc`) that has one.
    fn find_entering_arc(&mut self) -> bool {
        let mut best = (0.0, NONE);
        let mut arc = self.next_arc;
        let mut scanned = 0;
        while scanned < self.n_real {
            let block = self.block_size.min(self.n_real - scanned);
            let mut left = block;
            while left > 0 {
                let (i, j0) = (arc / self.n_dst, arc % self.n_dst);
                let len = left.min(self.n_dst - j0);
                self.scan_row_segment(i, j0, len, &mut best);
                arc += len;
                if arc == self.n_real {
                    arc = 0;
                }
                left -= len;
            }
            scanned += block;
            if best.1 != NONE && self.is_improving(best.1, best.0) {
                self.in_arc = best.1;
                self.next_arc = arc;
                return true;
            }
        }
        false
    }

    /// Lowers `best` (reduced cost, arc) with the non-basic arcs `(i, j0..j0 + len)`.
    fn scan_row_segment(&self, i: usize, j0: usize, len: usize, best: &mut (f64, usize)) {
        const L: usize = 8;
        let start = i * self.n_dst + j0;
        let cost = &self.pricing_cost[start..start + len];
        let pi_dst = &self.pi[self.n_src + j0..self.n_src + j0 + len];
        // Pass 1: the minimum of c_ij − π_j (vectorised; tree arcs priced at +∞).
        let mut lane_min = [f64::INFINITY; L];
        let body = len - len % L;
        for (c, p) in cost[..body]
            .chunks_exact(L)
            .zip(pi_dst[..body].chunks_exact(L))
        {
            for l in 0..L {
                let v = c[l] - p[l];
                lane_min[l] = if v < lane_min[l] { v } else { lane_min[l] };
            }
        }
        let mut min = lane_min
            .iter()
            .fold(f64::INFINITY, |m, &v| if v < m { v } else { m });
        for k in body..len {
            let v = cost[k] - pi_dst[k];
            min = if v < min { v } else { min };
        }
        let rc = min + self.pi[i];
        if rc < best.0 {
            // Pass 2: where it is.
            let k = (0..len)
                .find(|&k| cost[k] - pi_dst[k] == min)
                .expect("the minimum is attained");
            *best = (rc, start + k);
        }
    }

    /// A reduced cost counts as negative beyond the rounding of its terms.
    fn is_improving(&self, arc: usize, rc: f64) -> bool {
        let i = arc / self.n_dst;
        let j = self.n_src + arc % self.n_dst;
        let scale = self.cost[arc]
            .abs()
            .max(self.pi[i].abs())
            .max(self.pi[j].abs());
        rc < -PRICING_TOLERANCE * scale
    }

    fn find_join_node(&mut self) {
        let (mut u, mut v) = (self.source(self.in_arc), self.target(self.in_arc));
        while u != v {
            if self.succ_num[u] < self.succ_num[v] {
                u = self.parent[u];
            } else {
                v = self.parent[v];
            }
        }
        self.join = u;
    }

    /// The blocking arc of the cycle closed by the entering arc (strongly feasible rule).
    fn find_leaving_arc(&mut self) -> bool {
        let first = self.source(self.in_arc);
        let second = self.target(self.in_arc);
        let mut delta = i64::MAX;
        let mut result = 0;
        let mut u = first;
        while u != self.join {
            if self.pred_dir[u] == 1 && self.flow[self.pred[u]] < delta {
                delta = self.flow[self.pred[u]];
                self.u_out = u;
                result = 1;
            }
            u = self.parent[u];
        }
        let mut u = second;
        while u != self.join {
            if self.pred_dir[u] == -1 && self.flow[self.pred[u]] <= delta {
                delta = self.flow[self.pred[u]];
                self.u_out = u;
                result = 2;
            }
            u = self.parent[u];
        }
        if result == 1 {
            (self.u_in, self.v_in) = (first, second);
        } else {
            (self.u_in, self.v_in) = (second, first);
        }
        self.delta = delta;
        result != 0
    }

    fn change_flow(&mut self) {
        let delta = self.delta;
        if delta > 0 {
            self.flow[self.in_arc] += delta;
            let mut u = self.source(self.in_arc);
            while u != self.join {
                self.flow[self.pred[u]] -= self.pred_dir[u] * delta;
                u = self.parent[u];
            }
            let mut u = self.target(self.in_arc);
            while u != self.join {
                self.flow[self.pred[u]] += self.pred_dir[u] * delta;
                u = self.parent[u];
            }
        }
        self.pricing_cost[self.in_arc] = f64::INFINITY;
        let out_arc = self.pred[self.u_out];
        if out_arc < self.n_real {
            self.pricing_cost[out_arc] = self.cost[out_arc];
        }
    }

    /// Re-hangs the subtree cut off by the leaving arc below the entering arc, keeping the
    /// thread order, successor counts and last successors consistent.
    fn update_tree_structure(&mut self) {
        let (u_in, v_in, u_out, join) = (self.u_in, self.v_in, self.u_out, self.join);
        let old_rev_thread = self.rev_thread[u_out];
        let old_succ_num = self.succ_num[u_out];
        let old_last_succ = self.last_succ[u_out];
        let v_out = self.parent[u_out];
        let in_dir = if u_in == self.source(self.in_arc) {
            1
        } else {
            -1
        };

        if u_in == u_out {
            self.parent[u_in] = v_in;
            self.pred[u_in] = self.in_arc;
            self.pred_dir[u_in] = in_dir;
            if self.thread[v_in] != u_out {
                let after = self.thread[old_last_succ];
                self.thread[old_rev_thread] = after;
                self.rev_thread[after] = old_rev_thread;
                let after = self.thread[v_in];
                self.thread[v_in] = u_out;
                self.rev_thread[u_out] = v_in;
                self.thread[old_last_succ] = after;
                self.rev_thread[after] = old_last_succ;
            }
        } else {
            // When old_rev_thread == v_in, join and v_out coincide.
            let thread_continue = if old_rev_thread == v_in {
                self.thread[old_last_succ]
            } else {
                self.thread[v_in]
            };
            // Walk the stem from u_in up to u_out, reversing parent links.
            let mut stem = u_in;
            let mut par_stem = v_in;
            let mut last = self.last_succ[u_in];
            let mut after = self.thread[last];
            self.thread[v_in] = u_in;
            self.dirty_revs.clear();
            self.dirty_revs.push(v_in);
            while stem != u_out {
                let next_stem = self.parent[stem];
                self.thread[last] = next_stem;
                self.dirty_revs.push(last);
                // Unlink the subtree of stem from the thread list.
                let before = self.rev_thread[stem];
                self.thread[before] = after;
                self.rev_thread[after] = before;
                self.parent[stem] = par_stem;
                par_stem = stem;
                stem = next_stem;
                last = if self.last_succ[stem] == self.last_succ[par_stem] {
                    self.rev_thread[par_stem]
                } else {
                    self.last_succ[stem]
                };
                after = self.thread[last];
            }
            self.parent[u_out] = par_stem;
            self.thread[last] = thread_continue;
            self.rev_thread[thread_continue] = last;
            self.last_succ[u_out] = last;
            if old_rev_thread != v_in {
                self.thread[old_rev_thread] = after;
                self.rev_thread[after] = old_rev_thread;
            }
            for k in 0..self.dirty_revs.len() {
                let u = self.dirty_revs[k];
                let t = self.thread[u];
                self.rev_thread[t] = u;
            }
            // Shift pred, pred_dir, succ_num and last_succ along the reversed stem.
            let mut tmp_sc = 0usize;
            let tmp_ls = self.last_succ[u_out];
            let mut u = u_out;
            while u != u_in {
                let p = self.parent[u];
                self.pred[u] = self.pred[p];
                self.pred_dir[u] = -self.pred_dir[p];
                tmp_sc = tmp_sc + self.succ_num[u] - self.succ_num[p];
                self.succ_num[u] = tmp_sc;
                self.last_succ[p] = tmp_ls;
                u = p;
            }
            self.pred[u_in] = self.in_arc;
            self.pred_dir[u_in] = in_dir;
            self.succ_num[u_in] = old_succ_num;
        }

        // Last successors from v_in towards the root.
        let up_limit_out = if self.last_succ[join] == v_in {
            join
        } else {
            NONE
        };
        let last_succ_out = self.last_succ[u_out];
        let mut u = v_in;
        while u != NONE && self.last_succ[u] == v_in {
            self.last_succ[u] = last_succ_out;
            u = self.parent[u];
        }
        // Last successors from v_out towards the root.
        if join != old_rev_thread && v_in != old_rev_thread {
            let mut u = v_out;
            while u != up_limit_out && self.last_succ[u] == old_last_succ {
                self.last_succ[u] = old_rev_thread;
                u = self.parent[u];
            }
        } else if last_succ_out != old_last_succ {
            let mut u = v_out;
            while u != up_limit_out && self.last_succ[u] == old_last_succ {
                self.last_succ[u] = last_succ_out;
                u = self.parent[u];
            }
        }
        // Successor counts on both paths to the join node.
        let mut u = v_in;
        while u != join {
            self.succ_num[u] += old_succ_num;
            u = self.parent[u];
        }
        let mut u = v_out;
        while u != join {
            self.succ_num[u] -= old_succ_num;
            u = self.parent[u];
        }
    }

    /// Shifts the potentials of the re-hung subtree so the entering arc has reduced cost 0.
    fn update_potential(&mut self) {
        let u_in = self.u_in;
        let sigma = self.pi[self.v_in]
            - self.pi[u_in]
            - self.pred_dir[u_in] as f64 * self.arc_cost(self.in_arc);
        let end = self.thread[self.last_succ[u_in]];
        let mut u = u_in;
        while u != end {
            self.pi[u] += sigma;
            u = self.thread[u];
        }
    }

    fn run(&mut self) {
        while self.find_entering_arc() {
            self.find_join_node();
            let bounded = self.find_leaving_arc();
            // Every cycle through a real arc contains an artificial or real arc pointing
            // against it (the graph is bipartite and balanced), so the flow is bounded.
            debug_assert!(
                bounded,
                "unbounded pivot in a balanced transportation problem"
            );
            if !bounded {
                break;
            }
            self.change_flow();
            self.update_tree_structure();
            self.update_potential();
        }
    }

    /// `Σ flow · cost` over the real arcs (only tree arcs carry flow).
    fn total_cost(&self) -> f64 {
        (0..self.root)
            .map(|u| self.pred[u])
            .filter(|&a| a < self.n_real)
            .map(|a| self.flow[a] as f64 * self.cost[a])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_larger_than_the_memory_available_are_refused_up_front() {
        // 1000 × 1000 arcs need 24 MB and a little.
        assert!(check_size(1000, 1000, Some(30_000_000)).is_ok());
        assert!(check_size(1000, 1000, None).is_ok());
        let err = check_size(1000, 1000, Some(20_000_000)).expect_err("too big");
        let msg = err.to_string();
        assert!(matches!(err, Error::OutOfMemory { .. }), "{msg}");
        assert!(msg.contains("1000 and 1000 points"), "{msg}");
        assert!(matches!(
            check_size(1 << 20, 1 << 20, None),
            Err(Error::ProblemTooLarge { .. })
        ));
        assert!(matches!(
            check_size(usize::MAX, 2, None),
            Err(Error::ProblemTooLarge { .. })
        ));
    }

    #[test]
    fn single_points_cost_their_distance() {
        assert_eq!(emd_uniform(&[2.5], 1, 1).expect("ok"), 2.5);
    }

    #[test]
    fn two_by_two_picks_the_cheaper_matching() {
        // matching (0,1),(1,0) costs (1 + 2)/2, the identity (5 + 7)/2
        let c = [5.0, 1.0, 2.0, 7.0];
        assert!((emd_uniform(&c, 2, 2).expect("ok") - 1.5).abs() < 1e-15);
    }

    #[test]
    fn one_source_spreads_over_all_sinks() {
        let c = [1.0, 2.0, 6.0];
        assert!((emd_uniform(&c, 1, 3).expect("ok") - 3.0).abs() < 1e-15);
    }

    #[test]
    fn unequal_sizes_split_mass() {
        // 2 sources (mass 1/2), 3 sinks (mass 1/3) on a line: x = {0, 1}, y = {0, 0.5, 1}
        let x = [0.0_f64, 1.0];
        let y = [0.0_f64, 0.5, 1.0];
        let c: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| (a - b).abs()))
            .collect();
        // sorted 1-d coupling: quantile functions differ only on the middle third: 1/6 · 0.5 · 2
        let w = emd_uniform(&c, 2, 3).expect("ok");
        assert!((w - 1.0 / 6.0).abs() < 1e-15, "{w}");
    }
}

//! One softmin pass, `out_i = −ε log Σ_j exp(h_j − C(x_i, y_j)/ε)`, by online log-sum-exp over
//! column tiles; optionally also the gradient sums `Σ_j P_ij ∇₁C(x_i, y_j)`.
//!
//! Per row `i` the columns are visited in tiles of [`TILE`]: the logits of a tile are written to a
//! small buffer while their maximum is tracked, the running sum is rescaled when the maximum
//! grows, and `exp(z − max)` is summed with the polynomial exp. Memory is `O(TILE)` per thread on
//! top of the `O((N + M) d)` inputs. Everything runs on `LANES`-wide arrays that LLVM turns into
//! SIMD code.
//!
//! Logits. For `p = 2` (`C = ½|x − y|²`) the pass uses dot products:
//! `h_j − C_ij/ε = u_j + x_i · (y_j/ε) − |x_i|²/(2ε)` with `u_j = h_j − |y_j|²/(2ε)` prepared once
//! per pass and the row constant taken out of the log-sum-exp. For `p = 1`
//! (`C = sqrt(max(|x − y|², 1e-8))`, geomloss's guard) the squared distance is summed directly.

use super::Real;

/// SIMD-friendly lane count of every inner loop.
pub(crate) const LANES: usize = 16;
/// Columns per tile of the online log-sum-exp.
pub(crate) const TILE: usize = 1024;
/// geomloss's clamp of squared distances for `p = 1`.
pub(crate) const SQ_DIST_FLOOR: f64 = 1e-8;

/// The ground cost of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cost {
    /// `p = 1`: `C = sqrt(max(|x − y|², 1e-8))`.
    Euclidean,
    /// `p = 2`: `C = ½|x − y|²`.
    HalfSquaredEuclidean,
}

impl Cost {
    /// The cost of exponent `p` (1 or 2, validated by the caller).
    pub(crate) fn from_exponent(p: u32) -> Self {
        if p == 1 {
            Self::Euclidean
        } else {
            Self::HalfSquaredEuclidean
        }
    }
}

/// A point cloud prepared for the kernels: coordinates shifted by a common `center`, stored
/// row-major (for rows) and dimension-major padded to a multiple of [`LANES`] (for columns).
pub(crate) struct Cloud<T> {
    pub(crate) n_points: usize,
    pub(crate) dim: usize,
    pub(crate) n_pad: usize,
    /// `n_points × dim`, row-major.
    pub(crate) rows: Vec<T>,
    /// `dim × n_pad`, zero padding.
    pub(crate) columns: Vec<T>,
    /// `|x_i|²` of the shifted points.
    pub(crate) sq_norms: Vec<T>,
}

impl<T: Real> Cloud<T> {
    /// Prepares `points` (`n_points × dim`, row-major) shifted by `−center`.
    pub(crate) fn new(points: &[T], dim: usize, center: &[T]) -> Self {
        let n_points = points.len() / dim;
        let n_pad = n_points.div_ceil(LANES) * LANES;
        let mut rows = Vec::with_capacity(points.len());
        let mut columns = vec![T::ZERO; dim * n_pad];
        let mut sq_norms = Vec::with_capacity(n_points);
        for (i, p) in points.chunks_exact(dim).enumerate() {
            let mut sq = T::ZERO;
            for (k, (&v, &c)) in p.iter().zip(center).enumerate() {
                let s = v - c;
                rows.push(s);
                columns[k * n_pad + i] = s;
                sq += s * s;
            }
            sq_norms.push(sq);
        }
        Self {
            n_points,
            dim,
            n_pad,
            rows,
            columns,
            sq_norms,
        }
    }

    /// The shifted coordinates of point `i`.
    #[inline(always)]
    pub(crate) fn point(&self, i: usize) -> &[T] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }
}

/// What one softmin pass computes: rows `x`, columns `y` with log-weights and an optional
/// potential (`h_j = log w_j + g_j/ε`), written into `out` (and `grad`, `n_rows × dim`).
pub(crate) struct PassSpec<'a, T> {
    pub(crate) rows: &'a Cloud<T>,
    pub(crate) cols: &'a Cloud<T>,
    pub(crate) col_log_weights: &'a [T],
    pub(crate) col_potential: Option<&'a [T]>,
    pub(crate) out: &'a mut [T],
    pub(crate) grad: Option<&'a mut [T]>,
}

/// Column data of one pass at one ε, prepared once and shared by all row tasks.
pub(crate) struct Columns<'a, T> {
    pub(crate) cols: &'a Cloud<T>,
    /// `p = 2`: `h_j − |y_j|²/(2ε)`; `p = 1`: `h_j`; `−∞` in the padding.
    pub(crate) offset: Vec<T>,
    /// `p = 2`: coordinates divided by ε (`dim × n_pad`); `p = 1`: empty (use `cols.columns`).
    pub(crate) scaled: Vec<T>,
    pub(crate) eps: T,
    pub(crate) inv_eps: T,
    pub(crate) half_inv_eps: T,
    /// `p = 1`: the factor of `sqrt(D)` in the logits, `−1/ε` (or `−log2(e)/ε` in base 2).
    pub(crate) cost_scale: T,
    /// Base-2 kernels skip terms more than this many binary orders of magnitude below the row's
    /// running maximum: `−log2(machine ε) + 9 + log2(n_cols)`, so that all the terms a row can
    /// drop weigh less than `2^-9` ulp of its sum.
    pub(crate) skip_bits: T,
    /// One bit per column (8 per byte, little-endian), set where `offset` is finite (not
    /// padding, not a zero weight): the lanes the base-2 kernels exponentiate.
    pub(crate) finite: Vec<u8>,
    pub(crate) cost: Cost,
}

impl<'a, T: Real> Columns<'a, T> {
    /// Prepares the columns of `spec` at temperature `eps`; with `base2`, the offsets, scaled
    /// coordinates and `cost_scale` are multiplied by `log2(e)` (logits in base-2 units, for
    /// kernels that exponentiate with `exp2`).
    pub(crate) fn prepare(spec: &PassSpec<'a, T>, eps: f64, cost: Cost, base2: bool) -> Self {
        let cols = spec.cols;
        let eps_t = T::from_f64(eps);
        let inv_eps = T::from_f64(1.0 / eps);
        let half_inv_eps = T::from_f64(0.5 / eps);
        let unit = T::from_f64(if base2 { std::f64::consts::LOG2_E } else { 1.0 });
        let mut offset = vec![T::NEG_INFINITY; cols.n_pad];
        for (j, o) in offset.iter_mut().take(cols.n_points).enumerate() {
            let mut h = spec.col_log_weights[j];
            if let Some(g) = spec.col_potential {
                h += g[j] / eps_t;
            }
            let natural = match cost {
                Cost::HalfSquaredEuclidean => h - cols.sq_norms[j] * half_inv_eps,
                Cost::Euclidean => h,
            };
            *o = if base2 { natural * unit } else { natural };
        }
        let scaled = match cost {
            Cost::HalfSquaredEuclidean if base2 => {
                let s = T::from_f64(std::f64::consts::LOG2_E / eps);
                cols.columns.iter().map(|&v| v * s).collect()
            }
            Cost::HalfSquaredEuclidean => cols.columns.iter().map(|&v| v * inv_eps).collect(),
            Cost::Euclidean => Vec::new(),
        };
        let skip_bits = -T::EPSILON.to_f64().log2() + 9.0 + (cols.n_points.max(1) as f64).log2();
        let mut finite = vec![0u8; cols.n_pad.div_ceil(8)];
        for (j, o) in offset.iter().enumerate() {
            if o.is_finite() {
                finite[j / 8] |= 1 << (j % 8);
            }
        }
        Self {
            cols,
            offset,
            scaled,
            eps: eps_t,
            inv_eps,
            half_inv_eps,
            cost_scale: T::from_f64(-unit.to_f64() / eps),
            skip_bits: T::from_f64(skip_bits),
            finite,
            cost,
        }
    }
}

/// Per-task scratch space.
pub(crate) struct Scratch<T> {
    /// Logits, then weights, of one tile.
    pub(crate) buf: Vec<T>,
    /// `p = 1` with gradients: `1/|x_i − y_j|` of one tile (0 below the floor).
    pub(crate) psi: Vec<T>,
    /// Gradient sums of the current row.
    pub(crate) grad_acc: Vec<T>,
}

impl<T: Real> Scratch<T> {
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            buf: vec![T::ZERO; TILE],
            psi: vec![T::ZERO; TILE],
            grad_acc: vec![T::ZERO; dim],
        }
    }
}

#[inline(always)]
fn lanes<T>(s: &[T], start: usize) -> &[T; LANES] {
    s[start..start + LANES].try_into().expect("padded to LANES")
}

#[inline(always)]
fn hsum<T: Real>(v: [T; LANES]) -> T {
    let mut h = v;
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            h[l] += h[l + width];
        }
        width /= 2;
    }
    h[0]
}

#[inline(always)]
fn hmax<T: Real>(v: [T; LANES]) -> T {
    v.iter().fold(T::NEG_INFINITY, |m, &x| x.max_fast(m))
}

/// Softmin of rows `row_start..row_start + out.len()` of `rows` against `columns`.
///
/// `out[r] = −ε LSE_j(h_j − C(x_i, y_j)/ε)`; when `GRAD`, also
/// `grad[r·dim + k] = Σ_j P_ij ∂C(x_i, y_j)/∂x_ik` with `P_ij` the row's softmax.
/// `P2` selects the cost (`true`: half squared Euclidean), `FMA` fused multiply-adds.
#[inline(always)]
pub(crate) fn softmin_rows<T: Real, const FMA: bool, const P2: bool, const GRAD: bool>(
    columns: &Columns<'_, T>,
    rows: &Cloud<T>,
    row_start: usize,
    out: &mut [T],
    grad: &mut [T],
    scratch: &mut Scratch<T>,
) {
    let dim = rows.dim;
    let cols = columns.cols;
    let n_pad = cols.n_pad;
    let coords: &[T] = if P2 { &columns.scaled } else { &cols.columns };
    let raw = &cols.columns;
    let floor = T::from_f64(SQ_DIST_FLOOR);
    let Scratch { buf, psi, grad_acc } = scratch;
    for (r, out_r) in out.iter_mut().enumerate() {
        let i = row_start + r;
        let x_i = rows.point(i);
        let mut run_max = T::NEG_INFINITY;
        let mut run_sum = T::ZERO;
        if GRAD {
            grad_acc.fill(T::ZERO);
        }
        let mut j0 = 0;
        while j0 < n_pad {
            let len = TILE.min(n_pad - j0);
            // 1. logits of the tile and their maximum.
            if P2 {
                let tile = &mut buf[..len];
                tile.copy_from_slice(&columns.offset[j0..j0 + len]);
                for (k, &x_k) in x_i.iter().enumerate() {
                    let y_k = &coords[k * n_pad + j0..k * n_pad + j0 + len];
                    for (b, &y) in tile.iter_mut().zip(y_k) {
                        *b = x_k.madd::<FMA>(y, *b);
                    }
                }
            } else {
                let tile = &mut buf[..len];
                tile.fill(T::ZERO);
                for (k, &x_k) in x_i.iter().enumerate() {
                    let y_k = &coords[k * n_pad + j0..k * n_pad + j0 + len];
                    for (b, &y) in tile.iter_mut().zip(y_k) {
                        let diff = x_k - y;
                        *b = diff.madd::<FMA>(diff, *b);
                    }
                }
                if GRAD {
                    for (p, &sq) in psi[..len].iter_mut().zip(tile.iter()) {
                        *p = if sq >= floor {
                            T::ONE / sq.sqrt()
                        } else {
                            T::ZERO
                        };
                    }
                }
                let offset = &columns.offset[j0..j0 + len];
                for (b, &o) in tile.iter_mut().zip(offset) {
                    *b = (-(b.max_fast(floor).sqrt())).madd::<FMA>(columns.inv_eps, o);
                }
            }
            let mut lane_max = [T::NEG_INFINITY; LANES];
            for c in (0..len).step_by(LANES) {
                let z = lanes(buf, c);
                for l in 0..LANES {
                    lane_max[l] = z[l].max_fast(lane_max[l]);
                }
            }
            let tile_max = hmax(lane_max);
            if tile_max == T::NEG_INFINITY {
                j0 += len;
                continue;
            }
            if tile_max > run_max {
                let rescale = (run_max - tile_max).exp();
                run_sum *= rescale;
                if GRAD {
                    for g in grad_acc.iter_mut() {
                        *g *= rescale;
                    }
                }
                run_max = tile_max;
            }
            // 2. exp and sum.
            let mut lane_sum = [T::ZERO; LANES];
            for c in (0..len).step_by(LANES) {
                let z = lanes(buf, c);
                let mut w = [T::ZERO; LANES];
                for l in 0..LANES {
                    w[l] = (z[l] - run_max).exp_nonpositive::<FMA>();
                    lane_sum[l] += w[l];
                }
                if GRAD {
                    buf[c..c + LANES].copy_from_slice(&w);
                }
            }
            run_sum += hsum(lane_sum);
            // 3. gradient sums.
            if GRAD {
                for (k, g) in grad_acc.iter_mut().enumerate() {
                    let mut lane_acc = [T::ZERO; LANES];
                    for c in (0..len).step_by(LANES) {
                        let w = lanes(buf, c);
                        let y_k = lanes(raw, k * n_pad + j0 + c);
                        if P2 {
                            for l in 0..LANES {
                                lane_acc[l] = w[l].madd::<FMA>(y_k[l], lane_acc[l]);
                            }
                        } else {
                            let p = lanes(psi, c);
                            for l in 0..LANES {
                                lane_acc[l] =
                                    (w[l] * p[l]).madd::<FMA>(x_i[k] - y_k[l], lane_acc[l]);
                            }
                        }
                    }
                    *g += hsum(lane_acc);
                }
            }
            j0 += len;
        }
        let row_shift = if P2 {
            rows.sq_norms[i] * columns.half_inv_eps
        } else {
            T::ZERO
        };
        let lse = run_max + run_sum.ln() - row_shift;
        *out_r = -(columns.eps * lse);
        if GRAD {
            let g_r = &mut grad[r * dim..(r + 1) * dim];
            for k in 0..dim {
                g_r[k] = if P2 {
                    x_i[k] - grad_acc[k] / run_sum
                } else {
                    grad_acc[k] / run_sum
                };
            }
        }
    }
}

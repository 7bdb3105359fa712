//! The attention energy and its force without a graph: one pass over raw slices, for callers
//! that need no parameter gradients (rollouts to forecast, evaluate or simulate; benchmarks).
//!
//! Same arithmetic as the fused candle path ([`crate::Kernels::Fused`]): the same attention,
//! LayerNorm and GELU kernels and the same register-blocked products, but the token-wise work
//! of a block (LayerNorm, projections, residuals, feed-forward) runs as a few row-parallel
//! passes over contiguous row chunks instead of one candle op (and one thread-pool wake-up)
//! per operation, and no tensor or graph node is built. The weights (and the transposes the
//! forward products need) are copied once and kept by the model; each call compares the
//! copies bitwise with the parameters (about 1.3 MB for the reference size) and rebuilds
//! them on any difference, so an optimiser step between calls is always seen.
//!
//! Layouts: activations are row-major `(n, width)`; the attention kernels take the packed
//! projections `(3, heads, n, c)`.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::kernels::attention::{forward_all, vjp_all};
use crate::kernels::float::Float;
use crate::kernels::gelu::{gelu_kernel, vjp_kernel as gelu_vjp_kernel};
use crate::kernels::gemm::gemm;
use crate::kernels::layer_norm::{normalize_kernel, vjp_kernel as layer_norm_vjp_kernel};
use crate::layers::attention::KEEP_PROBABILITIES_MAX;
use crate::layers::layer_norm::LAYER_NORM_EPS;

mod adjoint;
mod weights;

pub(crate) use adjoint::NativeTape;
use weights::Block;
pub(crate) use weights::{NativeModel, NativeWeights};

/// A tensor's values, copied.
fn values<T: Float>(t: &Tensor) -> Result<Vec<T>> {
    t.flatten_all()?.to_vec1()
}

/// What a block's VJP needs from its forward pass.
struct BlockCache<T> {
    /// The block's input `h` (`n × H`), for LayerNorm 1's VJP.
    h: Vec<T>,
    /// After the attention residual (`n × H`), for LayerNorm 2's VJP.
    h1: Vec<T>,
    /// Packed projections `(3, heads, n, c)`.
    qkv: Vec<T>,
    /// Kept attention probabilities (`heads × n × n`), or empty.
    p: Vec<T>,
    /// Feed-forward pre-activations (`n × F`).
    z: Vec<T>,
    /// Attention outputs `O` (`heads × n × c`), for the parameter adjoint.
    o: Vec<T>,
}

/// The intermediates of one block's VJP ([`NativeNet::block_vjp_recorded`]), for the
/// parameter adjoint (`native/adjoint.rs`). `g` is the block's output gradient `∂E/∂h2`.
struct VjpRecord<T> {
    /// `∂E/∂h2` (`n × H`).
    g: Vec<T>,
    /// `d_a = g W_down` (`n × F`).
    d_a: Vec<T>,
    /// `d_z = gelu'(z) ⊙ d_a` (`n × F`).
    d_z: Vec<T>,
    /// `d_u2 = d_z W_up` (`n × H`).
    d_u2: Vec<T>,
    /// LayerNorm 2's input VJP `J(h1)(d_u2 ⊙ γ2)` (`n × H`).
    dx2: Vec<T>,
    /// `g1 = g + dx2` (`n × H`).
    g1: Vec<T>,
    /// `dO = g1 W_out`, packed (`heads × n × c`).
    d_o: Vec<T>,
    /// The attention VJP `(dQ, dK, dV)`, packed (`3 × heads × n × c`).
    d_qkv: Vec<T>,
    /// `d_u = dQKV W_qkv` (`n × H`).
    d_u: Vec<T>,
    /// LayerNorm 1's input VJP `J(h)(d_u ⊙ γ1)` (`n × H`).
    dx1: Vec<T>,
}

/// One evaluation: the weights, the sizes, and the input bias at this call's time.
pub(crate) struct NativeNet<'w, T> {
    weights: &'w NativeWeights<T>,
    n: usize,
    dim: usize,
    hidden: usize,
    heads: usize,
    ff: usize,
    /// Input bias plus the time features' contribution `W_in[:, dim:] τ(t)`.
    b_in: Vec<T>,
    /// Row chunks `[start, end)` of the row-parallel passes.
    chunks: Vec<(usize, usize)>,
}

/// Splits `0..n` into about two chunks per thread (work stealing evens out a preempted thread).
fn row_chunks(n: usize) -> Vec<(usize, usize)> {
    let parts = (2 * rayon::current_num_threads()).clamp(1, n.max(1));
    let size = n.div_ceil(parts).max(1);
    (0..n)
        .step_by(size)
        .map(|start| (start, (start + size).min(n)))
        .collect()
}

/// `buf` (`n × width`) carved into the row ranges of `chunks`.
fn split_rows<'a, T>(
    buf: &'a mut [T],
    width: usize,
    chunks: &[(usize, usize)],
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(chunks.len());
    let mut rest = buf;
    for &(start, end) in chunks {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut((end - start) * width);
        out.push(mine);
        rest = tail;
    }
    out
}

/// Rows `start..end` of packed `(groups, n, c)` values as row-major `(rows, groups · c)`
/// (the inverse of [`NativeNet::pack`] on those rows).
fn unpack_rows<T: Float>(
    packed: &[T],
    n: usize,
    c: usize,
    groups: usize,
    start: usize,
    end: usize,
) -> Vec<T> {
    let width = groups * c;
    let mut out = vec![T::ZERO; (end - start) * width];
    for (i, row) in out.chunks_exact_mut(width).enumerate() {
        for (g, dst) in row.chunks_exact_mut(c).enumerate() {
            let at = (g * n + start + i) * c;
            dst.copy_from_slice(&packed[at..at + c]);
        }
    }
    out
}

/// `y[r] += v` for every row `r` of `y` (rows of `v.len()`).
fn add_row<T: Float>(y: &mut [T], v: &[T]) {
    for row in y.chunks_exact_mut(v.len()) {
        for (a, &b) in row.iter_mut().zip(v) {
            *a += b;
        }
    }
}

/// LayerNorm with affine parameters: `u = x̂ ⊙ γ + β` for rows of `x`.
fn layer_norm<T: Float>(x: &[T], gamma: &[T], beta: &[T], u: &mut [T]) {
    normalize_kernel(x, u, gamma.len(), T::of(LAYER_NORM_EPS));
    for row in u.chunks_exact_mut(gamma.len()) {
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * g + b;
        }
    }
}

/// `out = J_LN(x)ᵀ (d ⊙ γ)`: LayerNorm's input VJP for the output gradient `d`.
fn layer_norm_input_vjp<T: Float>(x: &[T], gamma: &[T], d: &[T], out: &mut [T]) {
    let mut scaled = d.to_vec();
    for row in scaled.chunks_exact_mut(gamma.len()) {
        for (v, &g) in row.iter_mut().zip(gamma) {
            *v *= g;
        }
    }
    layer_norm_vjp_kernel(x, &scaled, out, gamma.len(), T::of(LAYER_NORM_EPS));
}

impl<'w, T: Float> NativeNet<'w, T> {
    /// An evaluation of `model` (whose parameters `weights` holds) for `n` particles at `t`.
    pub(crate) fn new(
        model: &NativeModel<'_>,
        weights: &'w NativeWeights<T>,
        n: usize,
        t: f64,
    ) -> Result<Self> {
        let (dim, in_dim) = (model.dim, model.input_dim);
        let mut b_in = weights.raw[1].clone();
        if let Some(mlp) = model.time_mlp {
            let w = model.parameters[0];
            let tau = values::<T>(&mlp.forward(t, w.dtype(), w.device())?)?;
            for (row, b) in weights.raw[0].chunks_exact(in_dim).zip(b_in.iter_mut()) {
                for (&w, &tj) in row[dim..].iter().zip(&tau) {
                    *b += w * tj;
                }
            }
        }
        Ok(NativeNet {
            weights,
            n,
            dim,
            hidden: model.hidden,
            heads: model.heads,
            ff: model.ff,
            b_in,
            chunks: row_chunks(n),
        })
    }

    fn raw(&self, i: usize) -> &'w [T] {
        &self.weights.raw[i]
    }

    /// The output projection: `w_out` (`H`) and `b_out` (the last two parameters).
    fn output(&self) -> (&'w [T], T) {
        let last = self.weights.raw.len() - 1;
        (self.raw(last - 1), self.raw(last)[0])
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// `h0 = x W[:, :dim]ᵀ + b_in` (`n × H`).
    fn input(&self, x: &[T]) -> Vec<T> {
        let (n, h) = (self.n, self.hidden);
        let mut out = vec![T::ZERO; n * h];
        let parts = split_rows(&mut out, h, &self.chunks);
        self.chunks
            .par_iter()
            .zip(parts)
            .for_each(|(&(start, end), out)| {
                let rows = end - start;
                let xs = &x[start * self.dim..end * self.dim];
                gemm(
                    rows,
                    h,
                    self.dim,
                    xs,
                    self.dim,
                    &self.weights.w_x_t,
                    h,
                    out,
                    h,
                    false,
                );
                add_row(out, &self.b_in);
            });
        out
    }

    /// Row-major `(n, groups · c)` values packed as `(groups, n, c)` (the projections:
    /// `groups = 3 · heads`).
    fn pack(&self, rows: &[T], groups: usize) -> Vec<T> {
        let (n, c) = (self.n, self.head_dim());
        let width = groups * c;
        let mut out = vec![T::ZERO; n * width];
        for (s, dst) in out.chunks_exact_mut(n * c).enumerate() {
            for (i, d) in dst.chunks_exact_mut(c).enumerate() {
                d.copy_from_slice(&rows[i * width + s * c..i * width + (s + 1) * c]);
            }
        }
        out
    }

    /// One block forward from `h`; with `keep`, the cache for [`Self::block_vjp`].
    fn block_forward(
        &self,
        b: &Block<T>,
        h: Vec<T>,
        keep: bool,
    ) -> (Vec<T>, Option<BlockCache<T>>) {
        let (n, hd, ff, heads, c) = (self.n, self.hidden, self.ff, self.heads, self.head_dim());
        // LayerNorm 1 and the packed Q, K, V projections.
        let mut qkv_rows = vec![T::ZERO; n * 3 * hd];
        let parts = split_rows(&mut qkv_rows, 3 * hd, &self.chunks);
        self.chunks
            .par_iter()
            .zip(parts)
            .for_each(|(&(start, end), out)| {
                let rows = end - start;
                let mut u = vec![T::ZERO; rows * hd];
                layer_norm(
                    &h[start * hd..end * hd],
                    self.raw(b.ln1[0]),
                    self.raw(b.ln1[1]),
                    &mut u,
                );
                gemm(
                    rows,
                    3 * hd,
                    hd,
                    &u,
                    hd,
                    &b.qkv.w_t,
                    3 * hd,
                    out,
                    3 * hd,
                    false,
                );
                add_row(out, self.raw(b.qkv.b));
            });
        let qkv = self.pack(&qkv_rows, 3 * heads);
        drop(qkv_rows);
        let keep_p = keep && heads * n * n <= KEEP_PROBABILITIES_MAX;
        let scale = (1.0 / c as f64).sqrt();
        let (o, p) = forward_all(&qkv, heads, n, c, scale, keep_p);
        // Output projection, residual, LayerNorm 2, feed-forward, residual.
        let mut h1 = vec![T::ZERO; n * hd];
        let mut h2 = vec![T::ZERO; n * hd];
        let mut z = vec![T::ZERO; n * ff];
        let parts = split_rows(&mut h1, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut h2, hd, &self.chunks))
            .zip(split_rows(&mut z, ff, &self.chunks));
        self.chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .for_each(|(&(start, end), ((h1, h2), z))| {
                let rows = end - start;
                // One product with inner dimension H, not one per head with inner dimension c.
                let o_rows = unpack_rows(&o, n, c, heads, start, end);
                gemm(rows, hd, hd, &o_rows, hd, &b.out.w_t, hd, h1, hd, false);
                add_row(h1, self.raw(b.out.b));
                for (v, &x) in h1.iter_mut().zip(&h[start * hd..end * hd]) {
                    *v += x;
                }
                let mut u = vec![T::ZERO; rows * hd];
                layer_norm(h1, self.raw(b.ln2[0]), self.raw(b.ln2[1]), &mut u);
                gemm(rows, ff, hd, &u, hd, &b.up.w_t, ff, z, ff, false);
                add_row(z, self.raw(b.up.b));
                let mut a = vec![T::ZERO; rows * ff];
                gelu_kernel(z, &mut a);
                gemm(rows, hd, ff, &a, ff, &b.down.w_t, hd, h2, hd, false);
                add_row(h2, self.raw(b.down.b));
                for (v, &x) in h2.iter_mut().zip(h1.iter()) {
                    *v += x;
                }
            });
        let cache = keep.then_some(BlockCache {
            h,
            h1,
            qkv,
            p,
            z,
            o,
        });
        (h2, cache)
    }

    /// `g ↦ (∂h2/∂h)ᵀ g` for one block.
    fn block_vjp(&self, b: &Block<T>, cache: &BlockCache<T>, g: Vec<T>) -> Vec<T> {
        self.block_vjp_recorded(b, cache, g).0
    }

    /// [`Self::block_vjp`] and the intermediates it computed.
    fn block_vjp_recorded(
        &self,
        b: &Block<T>,
        cache: &BlockCache<T>,
        g: Vec<T>,
    ) -> (Vec<T>, VjpRecord<T>) {
        let (n, hd, ff, heads, c) = (self.n, self.hidden, self.ff, self.heads, self.head_dim());
        // Feed-forward and LayerNorm 2 VJPs, then into the attention output.
        let mut d_a = vec![T::ZERO; n * ff];
        let mut d_z = vec![T::ZERO; n * ff];
        let mut d_u2 = vec![T::ZERO; n * hd];
        let mut dx2 = vec![T::ZERO; n * hd];
        let mut g1 = vec![T::ZERO; n * hd];
        let mut d_o_rows = vec![T::ZERO; n * hd];
        let parts = split_rows(&mut d_a, ff, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut d_z, ff, &self.chunks))
            .zip(split_rows(&mut d_u2, hd, &self.chunks))
            .zip(split_rows(&mut dx2, hd, &self.chunks))
            .zip(split_rows(&mut g1, hd, &self.chunks))
            .zip(split_rows(&mut d_o_rows, hd, &self.chunks));
        self.chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .for_each(|(&(start, end), (((((d_a, d_z), d_u2), dx2), g1), d_o))| {
                let rows = end - start;
                let g_rows = &g[start * hd..end * hd];
                gemm(
                    rows,
                    ff,
                    hd,
                    g_rows,
                    hd,
                    self.raw(b.down.w),
                    ff,
                    d_a,
                    ff,
                    false,
                );
                gelu_vjp_kernel(&cache.z[start * ff..end * ff], d_a, d_z);
                gemm(rows, hd, ff, d_z, ff, self.raw(b.up.w), hd, d_u2, hd, false);
                let h1 = &cache.h1[start * hd..end * hd];
                layer_norm_input_vjp(h1, self.raw(b.ln2[0]), d_u2, dx2);
                for ((o, &a), &b) in g1.iter_mut().zip(g_rows).zip(dx2.iter()) {
                    *o = a + b;
                }
                gemm(rows, hd, hd, g1, hd, self.raw(b.out.w), hd, d_o, hd, false);
            });
        let d_o = self.pack(&d_o_rows, heads);
        drop(d_o_rows);
        let scale = (1.0 / c as f64).sqrt();
        let d_qkv = vjp_all(&cache.qkv, &d_o, &cache.p, heads, n, c, scale);
        // Through the Q, K, V projections and LayerNorm 1.
        let mut out = vec![T::ZERO; n * hd];
        let mut d_u = vec![T::ZERO; n * hd];
        let mut dx1 = vec![T::ZERO; n * hd];
        let parts = split_rows(&mut out, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut d_u, hd, &self.chunks))
            .zip(split_rows(&mut dx1, hd, &self.chunks));
        self.chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .for_each(|(&(start, end), ((out, d_u), dx1))| {
                let rows = end - start;
                let d_rows = unpack_rows(&d_qkv, n, c, 3 * heads, start, end);
                let (w, k) = (self.raw(b.qkv.w), 3 * hd);
                gemm(rows, hd, k, &d_rows, k, w, hd, d_u, hd, false);
                let h = &cache.h[start * hd..end * hd];
                layer_norm_input_vjp(h, self.raw(b.ln1[0]), d_u, dx1);
                for ((o, &a), &b) in out
                    .iter_mut()
                    .zip(&g1[start * hd..end * hd])
                    .zip(dx1.iter())
                {
                    *o = a + b;
                }
            });
        let record = VjpRecord {
            g,
            d_a,
            d_z,
            d_u2,
            dx2,
            g1,
            d_o,
            d_qkv,
            d_u,
            dx1,
        };
        (out, record)
    }

    /// `Σ_i (h_L[i] · w_out + b_out)`.
    fn readout(&self, h: &[T]) -> T {
        let (w_out, b_out) = self.output();
        let mut total = T::ZERO;
        for row in h.chunks_exact(self.hidden) {
            let mut e = b_out;
            for (&a, &w) in row.iter().zip(w_out) {
                e += a * w;
            }
            total += e;
        }
        total
    }

    /// The total energy at positions `x` (`n × dim`, row-major).
    pub(crate) fn energy(&self, x: &[T]) -> T {
        let mut h = self.input(x);
        for b in &self.weights.blocks {
            h = self.block_forward(b, h, false).0;
        }
        self.readout(&h)
    }

    /// The force `−∇_x E` (`n × dim`, row-major).
    pub(crate) fn force(&self, x: &[T]) -> Vec<T> {
        self.force_with(x, false).0
    }

    /// The force and, when `record`, what its parameter adjoint needs: the blocks' forward
    /// caches and VJP intermediates (in block order) and `g_0 = ∂E/∂h0`. The force is the
    /// same, bit for bit, either way.
    fn force_with(&self, x: &[T], record: bool) -> (Vec<T>, Option<ForceRecord<T>>) {
        let mut h = self.input(x);
        let mut caches = Vec::with_capacity(self.weights.blocks.len());
        for b in &self.weights.blocks {
            let (next, cache) = self.block_forward(b, h, true);
            h = next;
            caches.extend(cache);
        }
        drop(h);
        let (w_out, _) = self.output();
        let mut g: Vec<T> = (0..self.n).flat_map(|_| w_out.iter().copied()).collect();
        let mut vjps = Vec::new();
        for (b, cache) in self.weights.blocks.iter().zip(&caches).rev() {
            if record {
                let (next, vjp) = self.block_vjp_recorded(b, cache, g);
                g = next;
                vjps.push(vjp);
            } else {
                g = self.block_vjp(b, cache, g);
            }
        }
        let mut force = vec![T::ZERO; self.n * self.dim];
        let (h, d) = (self.hidden, self.dim);
        gemm(
            self.n,
            d,
            h,
            &g,
            h,
            &self.weights.w_x,
            d,
            &mut force,
            d,
            false,
        );
        for v in force.iter_mut() {
            *v = -*v;
        }
        let record = record.then(|| {
            vjps.reverse();
            ForceRecord {
                x: x.to_vec(),
                blocks: caches.into_iter().zip(vjps).collect(),
                g0: g,
            }
        });
        (force, record)
    }
}

/// What [`NativeNet::force_with`] records for the parameter adjoint.
pub(crate) struct ForceRecord<T> {
    /// The positions (`n × dim`).
    x: Vec<T>,
    /// Per block, in order: the forward cache and the VJP's intermediates.
    blocks: Vec<(BlockCache<T>, VjpRecord<T>)>,
    /// `∂E/∂h0` (`n × H`), the gradient the input projection's VJP maps to `−force`.
    g0: Vec<T>,
}

impl<T> ForceRecord<T> {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        let mut count = self.x.len() + self.g0.len();
        for (c, v) in &self.blocks {
            count += c.h.len() + c.h1.len() + c.qkv.len() + c.p.len() + c.z.len() + c.o.len();
            count += v.g.len() + v.d_a.len() + v.d_z.len() + v.d_u2.len() + v.dx2.len();
            count += v.g1.len() + v.d_o.len() + v.d_qkv.len() + v.d_u.len() + v.dx1.len();
        }
        (count * std::mem::size_of::<T>()) as u64
    }
}

#[cfg(test)]
mod tests;

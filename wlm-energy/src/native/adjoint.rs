//! The native force's adjoint: `∂/∂θ ⟨ā, F_θ(x, t)⟩` and `J_F(x)ᵀ ā` by hand-written backward passes over slices, no graph.
//!
//! The force is `F = −g_0 W_x`, where `g_0 = ∂E/∂h_0` comes out of the VJP chain
//! `g_L = 1 ⊗ w_out → … → g_0` that runs through the blocks from the last to the first, and
//! every VJP reads values of the forward pass. The objective `Φ = ⟨ā, F⟩` is differentiated in
//! two sweeps:
//!
//! 1. **Back through the VJP chain** (blocks first to last), from `ḡ_0 = −ā W_xᵀ`. Each VJP
//!    op's backward (the second-order kernels: attention's `backward_all`, LayerNorm's and
//!    GELU's `vjp_bwd_kernel`, and the transposed products) gives the cotangent of its incoming
//!    gradient, the parameters' cotangents, and cotangents of the forward values it read
//!    (`h`, `h1`, `qkv`, `z`), which are set aside.
//! 2. **Back through the forward pass** (blocks last to first), an ordinary backward with
//!    parameter gradients into which those set-aside cotangents are injected, down to `h_0`,
//!    hence to the input projection, the time features and (exact mode) the positions.
//!
//! The per-block formulas, with `ĝ = d ⊙ γ` the input of a LayerNorm VJP and `J` its
//! Jacobian, are written out beside each pass. Products go through the one GEMM entry point
//! ([`gemm`]); the row-wise work runs in row-parallel passes over the same chunks as the
//! forward path, each chunk's parameter partials summed afterwards in chunk order, so the
//! result is deterministic for a given thread count.

use std::sync::Arc;

use candle_core::{bail, Result, Shape, Tensor, TensorId};
use rayon::prelude::*;

use super::{
    layer_norm_input_vjp, parameter_tensors, row_chunks, split_rows, unpack_rows, values, Block,
    BlockCache, ForceRecord, NativeNet, NativeWeights, VjpRecord,
};
use crate::attention_energy::AttentionEnergy;
use crate::kernels::attention::{transposed, vjp_all};
use crate::kernels::attention_vjp_backward;
use crate::kernels::float::Float;
use crate::kernels::gelu::{
    gelu_kernel, vjp_bwd_kernel as gelu_vjp_bwd_kernel, vjp_kernel as gelu_vjp_kernel,
};
use crate::kernels::gemm::gemm;
use crate::kernels::layer_norm::{normalize_kernel, vjp_bwd_kernel as layer_norm_vjp_bwd_kernel};
use crate::layers::layer_norm::LAYER_NORM_EPS;

/// The time features' values at one `t`: `z_1 = w_1 t + b_1`, `s = silu(z_1)`, `τ = W_2 s + b_2`
/// (the reference's `time_mlp`), with the parameters.
struct TimeRecord<T> {
    t: T,
    /// `W_2` (`16 × 16`).
    w2: Vec<T>,
    z1: Vec<T>,
    s: Vec<T>,
    tau: Vec<T>,
}

/// One native force evaluation with everything its adjoint needs.
pub(crate) struct NativeTape<T> {
    weights: Arc<NativeWeights<T>>,
    sizes: [usize; 5],
    b_in: Vec<T>,
    record: ForceRecord<T>,
    time: Option<TimeRecord<T>>,
    /// Ids and shapes of the parameters, in the order of the adjoint's gradients:
    /// [`parameter_tensors`], then the time MLP's (`0.weight`, `0.bias`, `2.weight`, `2.bias`).
    ids: Vec<TensorId>,
    shapes: Vec<Shape>,
    device: candle_core::Device,
}

/// A weight gradient `W̄ += Aᵀ B` over all `n` rows: `dst` (`m × k`) `+= a_t · b`, with
/// `a_t` the transpose (`m × n`) of the row operand `A` (`n × m`) and `b` (`n × k`), split
/// over row chunks of `dst` (no partial sums: each chunk's rows are its own).
fn add_weight_gradient<T: Float>(n: usize, m: usize, k: usize, a_t: &[T], b: &[T], dst: &mut [T]) {
    let parts = (2 * rayon::current_num_threads()).clamp(1, m.max(1));
    let rows = m.div_ceil(parts).max(1);
    dst.par_chunks_mut(rows * k)
        .zip(a_t.par_chunks(rows * n))
        .for_each(|(d, a)| {
            let rows = d.len() / k;
            gemm(rows, k, n, a, n, b, k, d, k, true);
        });
}

/// `Aᵀ` (`groups · c × n`) of the row-major `A` (`n × groups · c`) whose packed form
/// (`groups × n × c`) is `packed`: one transpose per group.
fn packed_transposed<T: Float>(packed: &[T], n: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; packed.len()];
    out.par_chunks_mut(n * c)
        .zip(packed.par_chunks(n * c))
        .for_each(|(o, p)| crate::kernels::gemm::transpose(p, n, c, c, o));
    out
}

/// `dst[j] += Σ_r a[r][j]`.
fn add_column_sums<T: Float>(a: &[T], dst: &mut [T]) {
    for row in a.chunks_exact(dst.len()) {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// `dst[j] += Σ_r a[r][j] b[r][j]`.
fn add_column_dots<T: Float>(a: &[T], b: &[T], dst: &mut [T]) {
    let w = dst.len();
    for (ra, rb) in a.chunks_exact(w).zip(b.chunks_exact(w)) {
        for ((d, &x), &y) in dst.iter_mut().zip(ra).zip(rb) {
            *d += x * y;
        }
    }
}

/// Rows of `a` scaled column-wise by `gamma`.
fn scaled_rows<T: Float>(a: &[T], gamma: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    for row in out.chunks_exact_mut(gamma.len()) {
        for (v, &g) in row.iter_mut().zip(gamma) {
            *v *= g;
        }
    }
    out
}

/// `x̂` of the rows of `x` and `u = x̂ ⊙ γ + β`.
fn layer_norm_values<T: Float>(x: &[T], gamma: &[T], beta: &[T]) -> (Vec<T>, Vec<T>) {
    let mut xhat = vec![T::ZERO; x.len()];
    normalize_kernel(x, &mut xhat, gamma.len(), T::of(LAYER_NORM_EPS));
    let mut u = xhat.clone();
    for row in u.chunks_exact_mut(gamma.len()) {
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * g + b;
        }
    }
    (xhat, u)
}

/// Parameter partials of one chunk: `(raw index, values)`, added in order afterwards.
type Partials<T> = Vec<(usize, Vec<T>)>;

/// Cotangents of the forward values one block's VJP read (step 1 → step 2).
struct Injected<T> {
    /// Of the block input `h` (`n × H`).
    h: Vec<T>,
    /// Of `h1` (`n × H`).
    h1: Vec<T>,
    /// Of the packed projections (`3 × heads × n × c`).
    qkv: Vec<T>,
    /// Of the feed-forward pre-activations (`n × F`).
    z: Vec<T>,
}

impl<T: Float> crate::energy::TapeAdjoint for NativeTape<T> {
    fn adjoint(
        &self,
        a_bar: &Tensor,
        positions: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
        NativeTape::adjoint(self, a_bar, positions)
    }

    fn parameter_ids(&self) -> &[TensorId] {
        &self.ids
    }
}

impl<T: Float> NativeTape<T> {
    /// Evaluates the force of `model` at `x` (`n × dim`, row-major) and time `t`, recording
    /// the tape; returns the force (as [`NativeNet::force`], bit for bit) and the tape.
    pub(crate) fn record(
        model: &AttentionEnergy,
        weights: Arc<NativeWeights<T>>,
        x: &Tensor,
        t: f64,
    ) -> Result<(Vec<T>, Self)> {
        let n = x.dim(0)?;
        let net = NativeNet::new(model, &weights, n, t)?;
        let xs = values::<T>(x)?;
        let (force, record) = rayon::scope(|_| net.force_with(&xs, true));
        let Some(record) = record else {
            bail!("native force: no record was made");
        };
        let mut tensors: Vec<&Tensor> = parameter_tensors(model);
        let time = match &model.time_mlp {
            Some(mlp) => {
                tensors.extend([
                    &mlp.first.weight,
                    &mlp.first.bias,
                    &mlp.second.weight,
                    &mlp.second.bias,
                ]);
                let (w1, b1) = (
                    values::<T>(&mlp.first.weight)?,
                    values::<T>(&mlp.first.bias)?,
                );
                let (w2, b2) = (
                    values::<T>(&mlp.second.weight)?,
                    values::<T>(&mlp.second.bias)?,
                );
                let tt = T::of(t);
                let z1: Vec<T> = w1.iter().zip(&b1).map(|(&w, &b)| w * tt + b).collect();
                let s: Vec<T> = z1.iter().map(|&z| z * sigmoid(z)).collect();
                let tau: Vec<T> = w2
                    .chunks_exact(s.len())
                    .zip(&b2)
                    .map(|(row, &b)| row.iter().zip(&s).fold(b, |acc, (&w, &v)| acc + w * v))
                    .collect();
                Some(TimeRecord {
                    t: tt,
                    w2,
                    z1,
                    s,
                    tau,
                })
            }
            None => None,
        };
        let tape = NativeTape {
            sizes: [net.n, net.dim, net.hidden, net.heads, net.ff],
            b_in: net.b_in.clone(),
            weights: weights.clone(),
            record,
            time,
            ids: tensors.iter().map(|t| t.id()).collect(),
            shapes: tensors.iter().map(|t| t.shape().clone()).collect(),
            device: x.device().clone(),
        };
        Ok((force, tape))
    }

    /// Bytes held by the tape's arrays.
    pub(crate) fn bytes(&self) -> u64 {
        self.record.bytes()
    }

    fn net(&self) -> NativeNet<'_, T> {
        let [n, dim, hidden, heads, ff] = self.sizes;
        NativeNet {
            weights: &self.weights,
            n,
            dim,
            hidden,
            heads,
            ff,
            b_in: self.b_in.clone(),
            chunks: row_chunks(n),
        }
    }

    /// `∂/∂θ ⟨ā, F⟩` for every parameter (`None` for the two the force never reads: the
    /// output bias and the last block's second feed-forward bias) and, when `positions`,
    /// `J_F(x)ᵀ ā` (`n × dim`).
    ///
    /// # Errors
    /// `a_bar` not of the positions' shape, dtype or device; tensor failures.
    pub(crate) fn adjoint(
        &self,
        a_bar: &Tensor,
        positions: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
        let [n, dim, ..] = self.sizes;
        if a_bar.dims() != [n, dim] || a_bar.dtype() != T::DTYPE {
            bail!(
                "force adjoint: the cotangent has shape {:?} and dtype {:?}, expected [{n}, {dim}] and {:?}",
                a_bar.dims(),
                a_bar.dtype(),
                T::DTYPE
            );
        }
        let a_bar = values::<T>(a_bar)?;
        let (grads, x_bar) = rayon::scope(|_| self.adjoint_slices(&a_bar, positions));
        let mut out = Vec::with_capacity(grads.len());
        for (i, (g, shape)) in grads.into_iter().zip(&self.shapes).enumerate() {
            out.push(match g {
                Some(g) => Some(Tensor::from_vec(g, shape, &self.device)?),
                None => {
                    debug_assert!(
                        i + 1 == self.weights.raw.len() || i + 3 == self.weights.raw.len()
                    );
                    None
                }
            });
        }
        let x_bar = x_bar
            .map(|v| Tensor::from_vec(v, (n, dim), &self.device))
            .transpose()?;
        Ok((out, x_bar))
    }

    /// [`Self::adjoint`] on slices.
    fn adjoint_slices(
        &self,
        a_bar: &[T],
        positions: bool,
    ) -> (Vec<Option<Vec<T>>>, Option<Vec<T>>) {
        let net = self.net();
        let w = &*self.weights;
        let (n, dim, hd) = (net.n, net.dim, net.hidden);
        let mut grads: Vec<Vec<T>> = w.raw.iter().map(|r| vec![T::ZERO; r.len()]).collect();
        let in_dim = w.raw[0].len() / hd;

        // Step 1, the VJP chain from the bottom: F = −g_0 W_x, so ḡ_0 = −ā W_xᵀ and
        // W̄_x = −g_0ᵀ ā.
        let neg_a_bar: Vec<T> = a_bar.iter().map(|&v| -v).collect();
        let mut g_bar = vec![T::ZERO; n * hd];
        gemm(
            n, hd, dim, &neg_a_bar, dim, &w.w_x_t, hd, &mut g_bar, hd, false,
        );
        let mut w_x_bar = vec![T::ZERO; hd * dim];
        let g0_t = transposed(&self.record.g0, n, hd);
        add_weight_gradient(n, hd, dim, &g0_t, &neg_a_bar, &mut w_x_bar);
        drop(g0_t);
        let mut injected = Vec::with_capacity(w.blocks.len());
        for (b, (cache, vjp)) in w.blocks.iter().zip(&self.record.blocks) {
            let (next, inj) = net.vjp_backward(b, cache, vjp, &g_bar, &mut grads);
            g_bar = next;
            injected.push(inj);
        }
        // g_L = 1 ⊗ w_out.
        let last = w.raw.len() - 1;
        add_column_sums(&g_bar, &mut grads[last - 1]);
        drop(g_bar);

        // Step 2, the forward pass from the top (h_L feeds only the readout's constant VJP,
        // so its cotangent is zero).
        let mut r = vec![T::ZERO; n * hd];
        for ((b, (cache, _)), inj) in w
            .blocks
            .iter()
            .zip(&self.record.blocks)
            .zip(&injected)
            .rev()
        {
            r = net.forward_backward(b, cache, inj, &r, &mut grads);
        }
        drop(injected);

        // h_0 = x W_xᵀ + τ W_τᵀ + b_in.
        let mut r_sum = vec![T::ZERO; hd];
        add_column_sums(&r, &mut r_sum);
        add_weight_gradient(
            n,
            hd,
            dim,
            &transposed(&r, n, hd),
            &self.record.x,
            &mut w_x_bar,
        );
        for (row, (wx, rs)) in grads[0]
            .chunks_exact_mut(in_dim)
            .zip(w_x_bar.chunks_exact(dim).zip(&r_sum))
        {
            for (g, &v) in row[..dim].iter_mut().zip(wx) {
                *g += v;
            }
            if let Some(time) = &self.time {
                for (g, &tau) in row[dim..].iter_mut().zip(&time.tau) {
                    *g += *rs * tau;
                }
            }
        }
        add_column_sums(&r_sum, &mut grads[1]);
        let x_bar = positions.then(|| {
            let mut x_bar = vec![T::ZERO; n * dim];
            gemm(n, dim, hd, &r, hd, &w.w_x, dim, &mut x_bar, dim, false);
            x_bar
        });

        let mut out: Vec<Option<Vec<T>>> = grads.into_iter().map(Some).collect();
        // Never read by the force: the output bias and the last block's down bias.
        out[last] = None;
        out[last - 2] = None;
        if let Some(time) = &self.time {
            // τ̄ = W_τᵀ Σ_i r_i, then back through the time MLP.
            let width = time.tau.len();
            let mut tau_bar = vec![T::ZERO; width];
            for (row, &rs) in w.raw[0].chunks_exact(in_dim).zip(&r_sum) {
                for (tb, &wv) in tau_bar.iter_mut().zip(&row[dim..]) {
                    *tb += rs * wv;
                }
            }
            let mut w2_bar = vec![T::ZERO; width * width];
            for (row, &tb) in w2_bar.chunks_exact_mut(width).zip(&tau_bar) {
                for (g, &s) in row.iter_mut().zip(&time.s) {
                    *g = tb * s;
                }
            }
            let mut s_bar = vec![T::ZERO; width];
            for (row, &tb) in time.w2.chunks_exact(width).zip(&tau_bar) {
                for (sb, &wv) in s_bar.iter_mut().zip(row) {
                    *sb += tb * wv;
                }
            }
            let z1_bar: Vec<T> = s_bar
                .iter()
                .zip(&time.z1)
                .map(|(&sb, &z)| {
                    let sg = sigmoid(z);
                    sb * sg * (T::ONE + z * (T::ONE - sg))
                })
                .collect();
            let w1_bar: Vec<T> = z1_bar.iter().map(|&v| v * time.t).collect();
            out.extend([Some(w1_bar), Some(z1_bar), Some(w2_bar), Some(tau_bar)]);
        }
        (out, x_bar)
    }
}

/// The logistic function.
fn sigmoid<T: Float>(z: T) -> T {
    T::ONE / (T::ONE + (-z).exp_v())
}

impl<T: Float> NativeNet<'_, T> {
    /// Sums chunk partials into `grads`, in chunk order.
    fn add_partials(grads: &mut [Vec<T>], partials: Vec<Partials<T>>) {
        for chunk in partials {
            for (i, part) in chunk {
                for (g, v) in grads[i].iter_mut().zip(part) {
                    *g += v;
                }
            }
        }
    }

    /// Step 1 for one block: given `ḡh`, the cotangent of the block VJP's output, returns
    /// the cotangent of its input gradient `g` and the injections of step 2, adding the
    /// parameter cotangents into `grads`.
    ///
    /// The VJP is `d_a = g W_d`, `d_z = gelu'(z) ⊙ d_a`, `d_u2 = d_z W_up`,
    /// `g1 = g + J(h1)(d_u2 ⊙ γ2)`, `dO = g1 W_o`, `dQKV = attn_vjp(qkv, dO)`,
    /// `d_u = dQKV W_qkv`, `gh = g1 + J(h)(d_u ⊙ γ1)`.
    fn vjp_backward(
        &self,
        b: &Block<T>,
        cache: &BlockCache<T>,
        vjp: &VjpRecord<T>,
        gh_bar: &[T],
        grads: &mut [Vec<T>],
    ) -> (Vec<T>, Injected<T>) {
        let (n, hd, ff, heads, c) = (self.n, self.hidden, self.ff, self.heads, self.head_dim());
        let scale = (1.0 / c as f64).sqrt();
        // Pass A: LayerNorm 1's VJP backward, then `d_u = dQKV W_qkv` backward:
        // d̄_u = ĝ̄ ⊙ γ1, γ̄1 += Σ ĝ̄ ⊙ d_u, d̄QKV = d̄_u W_qkvᵀ.
        let mut inj_h = vec![T::ZERO; n * hd];
        let mut d_u_bar = vec![T::ZERO; n * hd];
        let mut d_qkv_bar_rows = vec![T::ZERO; n * 3 * hd];
        let parts = split_rows(&mut inj_h, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut d_u_bar, hd, &self.chunks))
            .zip(split_rows(&mut d_qkv_bar_rows, 3 * hd, &self.chunks));
        let partials: Vec<Partials<T>> = self
            .chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .map(|(&(start, end), ((inj_h, d_u_bar), d_qkv_bar))| {
                let rows = end - start;
                let span = start * hd..end * hd;
                let gamma1 = self.raw(b.ln1[0]);
                let d_u = &vjp.d_u[span.clone()];
                let g_hat = scaled_rows(d_u, gamma1);
                let mut g_hat_bar = vec![T::ZERO; rows * hd];
                layer_norm_vjp_bwd_kernel(
                    &cache.h[span.clone()],
                    &g_hat,
                    &vjp.dx1[span.clone()],
                    &gh_bar[span],
                    inj_h,
                    &mut g_hat_bar,
                    hd,
                    T::of(LAYER_NORM_EPS),
                );
                let mut gamma1_bar = vec![T::ZERO; hd];
                add_column_dots(&g_hat_bar, d_u, &mut gamma1_bar);
                d_u_bar.copy_from_slice(&scaled_rows(&g_hat_bar, gamma1));
                gemm(
                    rows,
                    3 * hd,
                    hd,
                    d_u_bar,
                    hd,
                    &b.qkv.w_t,
                    3 * hd,
                    d_qkv_bar,
                    3 * hd,
                    false,
                );
                vec![(b.ln1[0], gamma1_bar)]
            })
            .collect();
        Self::add_partials(grads, partials);
        // W̄_qkv += dQKVᵀ d̄_u.
        let d_qkv_t = packed_transposed(&vjp.d_qkv, n, c);
        add_weight_gradient(n, 3 * hd, hd, &d_qkv_t, &d_u_bar, &mut grads[b.qkv.w]);
        drop((d_qkv_t, d_u_bar));
        // The attention VJP's backward: cotangents of `qkv` (injected) and of `dO`.
        let d_qkv_bar = self.pack(&d_qkv_bar_rows, 3 * heads);
        drop(d_qkv_bar_rows);
        let (inj_qkv, d_o_bar) = attention_vjp_backward(
            &cache.qkv, &vjp.d_o, &d_qkv_bar, &cache.p, heads, n, c, scale,
        );
        drop(d_qkv_bar);
        // Pass B: ḡ1 = ḡh + d̄O W_oᵀ; LayerNorm 2's VJP backward (ȳ = ḡ1); d̄_z = d̄_u2 W_upᵀ;
        // GELU's VJP backward; ḡ = ḡ1 + d̄_a W_dᵀ.
        let mut g_bar = vec![T::ZERO; n * hd];
        let mut inj_h1 = vec![T::ZERO; n * hd];
        let mut inj_z = vec![T::ZERO; n * ff];
        let mut d_o_bar_rows = vec![T::ZERO; n * hd];
        let mut d_u2_bar = vec![T::ZERO; n * hd];
        let mut d_a_bar = vec![T::ZERO; n * ff];
        let parts = split_rows(&mut g_bar, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut inj_h1, hd, &self.chunks))
            .zip(split_rows(&mut inj_z, ff, &self.chunks))
            .zip(split_rows(&mut d_o_bar_rows, hd, &self.chunks))
            .zip(split_rows(&mut d_u2_bar, hd, &self.chunks))
            .zip(split_rows(&mut d_a_bar, ff, &self.chunks));
        let partials: Vec<Partials<T>> = self
            .chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .map(
                |(
                    &(start, end),
                    (((((g_bar, inj_h1), inj_z), d_o_bar_rows), d_u2_bar), d_a_bar),
                )| {
                    let rows = end - start;
                    let span = start * hd..end * hd;
                    let span_f = start * ff..end * ff;
                    d_o_bar_rows.copy_from_slice(&unpack_rows(&d_o_bar, n, c, heads, start, end));
                    let mut g1_bar = gh_bar[span.clone()].to_vec();
                    gemm(
                        rows,
                        hd,
                        hd,
                        d_o_bar_rows,
                        hd,
                        &b.out.w_t,
                        hd,
                        &mut g1_bar,
                        hd,
                        true,
                    );
                    let gamma2 = self.raw(b.ln2[0]);
                    let d_u2 = &vjp.d_u2[span.clone()];
                    let g_hat = scaled_rows(d_u2, gamma2);
                    let mut g_hat_bar = vec![T::ZERO; rows * hd];
                    layer_norm_vjp_bwd_kernel(
                        &cache.h1[span.clone()],
                        &g_hat,
                        &vjp.dx2[span],
                        &g1_bar,
                        inj_h1,
                        &mut g_hat_bar,
                        hd,
                        T::of(LAYER_NORM_EPS),
                    );
                    let mut gamma2_bar = vec![T::ZERO; hd];
                    add_column_dots(&g_hat_bar, d_u2, &mut gamma2_bar);
                    d_u2_bar.copy_from_slice(&scaled_rows(&g_hat_bar, gamma2));
                    let mut d_z_bar = vec![T::ZERO; rows * ff];
                    gemm(
                        rows,
                        ff,
                        hd,
                        d_u2_bar,
                        hd,
                        &b.up.w_t,
                        ff,
                        &mut d_z_bar,
                        ff,
                        false,
                    );
                    gelu_vjp_bwd_kernel(
                        &cache.z[span_f.clone()],
                        &vjp.d_a[span_f],
                        &d_z_bar,
                        inj_z,
                        d_a_bar,
                    );
                    g_bar.copy_from_slice(&g1_bar);
                    gemm(rows, hd, ff, d_a_bar, ff, &b.down.w_t, hd, g_bar, hd, true);
                    vec![(b.ln2[0], gamma2_bar)]
                },
            )
            .collect();
        Self::add_partials(grads, partials);
        // W̄_o += g1ᵀ d̄O, W̄_up += d_zᵀ d̄_u2, W̄_d += gᵀ d̄_a.
        let g1_t = transposed(&vjp.g1, n, hd);
        add_weight_gradient(n, hd, hd, &g1_t, &d_o_bar_rows, &mut grads[b.out.w]);
        drop((g1_t, d_o_bar_rows));
        let d_z_t = transposed(&vjp.d_z, n, ff);
        add_weight_gradient(n, ff, hd, &d_z_t, &d_u2_bar, &mut grads[b.up.w]);
        drop((d_z_t, d_u2_bar));
        let g_t = transposed(&vjp.g, n, hd);
        add_weight_gradient(n, hd, ff, &g_t, &d_a_bar, &mut grads[b.down.w]);
        let injected = Injected {
            h: inj_h,
            h1: inj_h1,
            qkv: inj_qkv,
            z: inj_z,
        };
        (g_bar, injected)
    }

    /// Step 2 for one block: given `r`, the cotangent of the block's output `h2`, returns the
    /// cotangent of its input `h` (with `inj`, step 1's cotangents of the forward values,
    /// added where they enter), adding the parameter gradients into `grads`.
    ///
    /// The forward pass is `u = LN1(h)`, `qkv = u W_qkvᵀ + b`, `h1 = h + O W_oᵀ + b_o`,
    /// `u2 = LN2(h1)`, `z = u2 W_upᵀ + b`, `h2 = h1 + gelu(z) W_dᵀ + b_d`.
    fn forward_backward(
        &self,
        b: &Block<T>,
        cache: &BlockCache<T>,
        inj: &Injected<T>,
        r: &[T],
        grads: &mut [Vec<T>],
    ) -> Vec<T> {
        let (n, hd, ff, heads, c) = (self.n, self.hidden, self.ff, self.heads, self.head_dim());
        let scale = (1.0 / c as f64).sqrt();
        // Pass C: the feed-forward residual and LayerNorm 2, then the attention output
        // projection: ā = r W_d, z̄ = gelu'(z) ⊙ ā + inj, ū2 = z̄ W_up,
        // r1 = r + inj + J(h1)(ū2 ⊙ γ2), Ō = r1 W_o.
        let mut o_bar_rows = vec![T::ZERO; n * hd];
        let mut r0 = vec![T::ZERO; n * hd];
        let mut a = vec![T::ZERO; n * ff];
        let mut z_bar = vec![T::ZERO; n * ff];
        let mut u2 = vec![T::ZERO; n * hd];
        let mut r1 = vec![T::ZERO; n * hd];
        let parts = split_rows(&mut o_bar_rows, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut r0, hd, &self.chunks))
            .zip(split_rows(&mut a, ff, &self.chunks))
            .zip(split_rows(&mut z_bar, ff, &self.chunks))
            .zip(split_rows(&mut u2, hd, &self.chunks))
            .zip(split_rows(&mut r1, hd, &self.chunks));
        let partials: Vec<Partials<T>> = self
            .chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .map(|(&(start, end), (((((o_bar, r0), a), z_bar), u2), r1))| {
                let rows = end - start;
                let span = start * hd..end * hd;
                let span_f = start * ff..end * ff;
                let r_rows = &r[span.clone()];
                let z = &cache.z[span_f.clone()];
                gelu_kernel(z, a);
                let mut b_down_bar = vec![T::ZERO; hd];
                add_column_sums(r_rows, &mut b_down_bar);
                let mut a_bar = vec![T::ZERO; rows * ff];
                gemm(
                    rows,
                    ff,
                    hd,
                    r_rows,
                    hd,
                    self.raw(b.down.w),
                    ff,
                    &mut a_bar,
                    ff,
                    false,
                );
                gelu_vjp_kernel(z, &a_bar, z_bar);
                for (v, &i) in z_bar.iter_mut().zip(&inj.z[span_f]) {
                    *v += i;
                }
                let h1 = &cache.h1[span.clone()];
                let (gamma2, beta2) = (self.raw(b.ln2[0]), self.raw(b.ln2[1]));
                let (xhat2, u2_rows) = layer_norm_values(h1, gamma2, beta2);
                u2.copy_from_slice(&u2_rows);
                let mut b_up_bar = vec![T::ZERO; ff];
                add_column_sums(z_bar, &mut b_up_bar);
                let mut u2_bar = vec![T::ZERO; rows * hd];
                gemm(
                    rows,
                    hd,
                    ff,
                    z_bar,
                    ff,
                    self.raw(b.up.w),
                    hd,
                    &mut u2_bar,
                    hd,
                    false,
                );
                let mut gamma2_bar = vec![T::ZERO; hd];
                add_column_dots(&u2_bar, &xhat2, &mut gamma2_bar);
                let mut beta2_bar = vec![T::ZERO; hd];
                add_column_sums(&u2_bar, &mut beta2_bar);
                layer_norm_input_vjp(h1, gamma2, &u2_bar, r1);
                for ((v, &a), &i) in r1.iter_mut().zip(r_rows).zip(&inj.h1[span.clone()]) {
                    *v += a + i;
                }
                let mut b_o_bar = vec![T::ZERO; hd];
                add_column_sums(r1, &mut b_o_bar);
                gemm(
                    rows,
                    hd,
                    hd,
                    r1,
                    hd,
                    self.raw(b.out.w),
                    hd,
                    o_bar,
                    hd,
                    false,
                );
                for ((v, &a), &i) in r0.iter_mut().zip(r1.iter()).zip(&inj.h[span]) {
                    *v = a + i;
                }
                vec![
                    (b.down.b, b_down_bar),
                    (b.up.b, b_up_bar),
                    (b.ln2[0], gamma2_bar),
                    (b.ln2[1], beta2_bar),
                    (b.out.b, b_o_bar),
                ]
            })
            .collect();
        Self::add_partials(grads, partials);
        // W̄_d += rᵀ gelu(z), W̄_up += z̄ᵀ u2, W̄_o += r1ᵀ O.
        let r_t = transposed(r, n, hd);
        add_weight_gradient(n, hd, ff, &r_t, &a, &mut grads[b.down.w]);
        drop((r_t, a));
        let z_bar_t = transposed(&z_bar, n, ff);
        add_weight_gradient(n, ff, hd, &z_bar_t, &u2, &mut grads[b.up.w]);
        drop((z_bar_t, z_bar, u2));
        let r1_t = transposed(&r1, n, hd);
        let o_rows = unpack_rows(&cache.o, n, c, heads, 0, n);
        add_weight_gradient(n, hd, hd, &r1_t, &o_rows, &mut grads[b.out.w]);
        drop((r1_t, o_rows, r1));
        // The attention's VJP, plus the cotangent step 1 found for `qkv`.
        let o_bar = self.pack(&o_bar_rows, heads);
        drop(o_bar_rows);
        let mut qkv_bar = vjp_all(&cache.qkv, &o_bar, &cache.p, heads, n, c, scale);
        drop(o_bar);
        for (v, &i) in qkv_bar.iter_mut().zip(&inj.qkv) {
            *v += i;
        }
        // Pass D: the projections and LayerNorm 1: ū = Q̄KV W_qkv, r_prev = r0 + J(h)(ū ⊙ γ1).
        let mut out = vec![T::ZERO; n * hd];
        let mut u = vec![T::ZERO; n * hd];
        let parts = split_rows(&mut out, hd, &self.chunks)
            .into_iter()
            .zip(split_rows(&mut u, hd, &self.chunks));
        let partials: Vec<Partials<T>> = self
            .chunks
            .par_iter()
            .zip(parts.collect::<Vec<_>>())
            .map(|(&(start, end), (out, u))| {
                let rows = end - start;
                let span = start * hd..end * hd;
                let qkv_bar_rows = unpack_rows(&qkv_bar, n, c, 3 * heads, start, end);
                let h = &cache.h[span.clone()];
                let (gamma1, beta1) = (self.raw(b.ln1[0]), self.raw(b.ln1[1]));
                let (xhat1, u_rows) = layer_norm_values(h, gamma1, beta1);
                u.copy_from_slice(&u_rows);
                let mut b_qkv_bar = vec![T::ZERO; 3 * hd];
                add_column_sums(&qkv_bar_rows, &mut b_qkv_bar);
                let mut u_bar = vec![T::ZERO; rows * hd];
                let k = 3 * hd;
                gemm(
                    rows,
                    hd,
                    k,
                    &qkv_bar_rows,
                    k,
                    self.raw(b.qkv.w),
                    hd,
                    &mut u_bar,
                    hd,
                    false,
                );
                let mut gamma1_bar = vec![T::ZERO; hd];
                add_column_dots(&u_bar, &xhat1, &mut gamma1_bar);
                let mut beta1_bar = vec![T::ZERO; hd];
                add_column_sums(&u_bar, &mut beta1_bar);
                layer_norm_input_vjp(h, gamma1, &u_bar, out);
                for (v, &a) in out.iter_mut().zip(&r0[span]) {
                    *v += a;
                }
                vec![
                    (b.qkv.b, b_qkv_bar),
                    (b.ln1[0], gamma1_bar),
                    (b.ln1[1], beta1_bar),
                ]
            })
            .collect();
        Self::add_partials(grads, partials);
        // W̄_qkv += Q̄KVᵀ u.
        let qkv_bar_t = packed_transposed(&qkv_bar, n, c);
        add_weight_gradient(n, 3 * hd, hd, &qkv_bar_t, &u, &mut grads[b.qkv.w]);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::attention_energy::{AttentionEnergy, AttentionEnergyConfig};
    use crate::kernels::Kernels;
    use crate::layers::attention::KEEP_PROBABILITIES_MAX;
    use crate::testing::{max_rel, perturbed_model, random, small_configs};
    use crate::Energy;
    use candle_core::{DType, Result, Var};
    use candle_nn::VarMap;
    use proptest::prelude::*;

    fn model(config: &AttentionEnergyConfig, seed: u64, dtype: DType) -> (AttentionEnergy, VarMap) {
        let (energy, varmap) = perturbed_model(config, seed, dtype).expect("model");
        energy.set_training(false);
        (energy, varmap)
    }

    /// The native adjoint against candle's backward of `⟨ā, force⟩` through the force graph
    /// (fused and plain kernels), in f64: every parameter's gradient, which parameters have
    /// one, and the positions' cotangent. Returns the largest relative error.
    fn check_against_graph(config: &AttentionEnergyConfig, n: usize, seed: u64) -> Result<f64> {
        let (mut energy, varmap) = model(config, seed, DType::F64);
        let x = random(&[n, config.dim], seed + 1, -2.0, 2.0)?;
        let a_bar = random(&[n, config.dim], seed + 2, -1.0, 1.0)?;
        let t = 0.37;
        let tape = energy.force_tape(&x, t)?.expect("a native tape");
        // The tape's force is the native force, bit for bit.
        assert_eq!(max_rel(tape.force(), &energy.force_detached(&x, t)?)?, 0.0);
        let adjoint = tape.adjoint(&a_bar, true)?;
        let mut worst = 0.0f64;
        for kernels in [Kernels::Fused, Kernels::Plain] {
            energy.set_kernels(kernels);
            let x_var = Var::from_tensor(&x)?;
            let force = energy.force(x_var.as_tensor(), t)?;
            let store = (force * &a_bar)?.sum_all()?.backward()?;
            let vars = varmap.data().lock().expect("varmap").clone();
            let mut matched = 0;
            for (name, var) in &vars {
                let want = store.get(var.as_tensor());
                let got = adjoint
                    .params
                    .iter()
                    .find(|(id, _)| *id == var.as_tensor().id());
                match (got, want) {
                    (Some((_, got)), Some(want)) => {
                        let err = max_rel(got, want)?;
                        assert!(
                            err < 1e-10,
                            "{config:?} n={n} {kernels:?}: {name} error {err:e}"
                        );
                        worst = worst.max(err);
                        matched += 1;
                    }
                    (None, None) => {}
                    (got, want) => panic!(
                        "{config:?} {kernels:?}: {name}: native {} graph {}",
                        got.is_some(),
                        want.is_some()
                    ),
                }
            }
            assert_eq!(
                matched,
                adjoint.params.len(),
                "every native gradient is a parameter's"
            );
            let want_x = store.get(x_var.as_tensor()).expect("a position gradient");
            let err = max_rel(adjoint.positions.as_ref().expect("positions"), want_x)?;
            assert!(
                err < 1e-10,
                "{config:?} n={n} {kernels:?}: positions error {err:e}"
            );
            worst = worst.max(err);
        }
        Ok(worst)
    }

    #[test]
    fn native_adjoint_equals_the_graph_backward_in_f64() -> Result<()> {
        for (heads, time_features, dim, blocks) in [
            (1, false, 1, 1),
            (4, true, 2, 2),
            (2, false, 5, 2),
            (4, false, 2, 3),
            (2, true, 3, 1),
        ] {
            let config = AttentionEnergyConfig {
                dim,
                heads,
                hidden: 8,
                blocks,
                ff: 16,
                time_features,
                dropout: 0.0,
            };
            for n in [1, 2, 17, 64, 133] {
                check_against_graph(&config, n, 11 + n as u64)?;
            }
        }
        Ok(())
    }

    #[test]
    fn native_adjoint_without_kept_probabilities_equals_the_graph_backward() -> Result<()> {
        // heads · n² above KEEP_PROBABILITIES_MAX: every attention kernel recomputes P.
        let config = AttentionEnergyConfig {
            heads: 4,
            hidden: 8,
            blocks: 1,
            ff: 8,
            time_features: true,
            ..AttentionEnergyConfig::default()
        };
        let n = 2049;
        assert!(4 * n * n > KEEP_PROBABILITIES_MAX);
        check_against_graph(&config, n, 5).map(|_| ())
    }

    #[test]
    fn native_adjoint_in_f32_is_close_to_f64() -> Result<()> {
        let config = AttentionEnergyConfig {
            time_features: true,
            ..AttentionEnergyConfig::default()
        };
        let (e64, vars64) = model(&config, 2, DType::F64);
        let (e32, vars32) = model(&config, 2, DType::F32);
        let x = random(&[200, 2], 9, -2.0, 2.0)?;
        let a_bar = random(&[200, 2], 10, -1.0, 1.0)?;
        let cast = |t: &candle_core::Tensor| t.to_dtype(DType::F32);
        let g64 = e64
            .force_tape(&x, 0.3)?
            .expect("tape")
            .adjoint(&a_bar, true)?;
        let g32 = e32
            .force_tape(&cast(&x)?, 0.3)?
            .expect("tape")
            .adjoint(&cast(&a_bar)?, true)?;
        let (v64, v32) = (
            vars64.data().lock().expect("vars"),
            vars32.data().lock().expect("vars"),
        );
        let find = |params: &[(candle_core::TensorId, candle_core::Tensor)], var: &Var| {
            params
                .iter()
                .find(|(id, _)| *id == var.as_tensor().id())
                .map(|(_, g)| g.clone())
        };
        let mut compared = 0;
        for (name, var64) in v64.iter() {
            let (Some(a), Some(b)) = (find(&g32.params, &v32[name]), find(&g64.params, var64))
            else {
                continue;
            };
            let err = max_rel(&a, &b)?;
            assert!(err < 2e-3, "{name}: f32 vs f64 {err:e}");
            compared += 1;
        }
        assert_eq!(compared, g64.params.len());
        let err = max_rel(
            g32.positions.as_ref().expect("x"),
            g64.positions.as_ref().expect("x"),
        )?;
        assert!(err < 1e-3, "positions: f32 vs f64 {err:e}");
        Ok(())
    }

    #[test]
    fn a_cotangent_of_the_wrong_shape_is_an_error() -> Result<()> {
        let config = AttentionEnergyConfig {
            hidden: 8,
            ff: 8,
            blocks: 1,
            ..AttentionEnergyConfig::default()
        };
        let (energy, _) = model(&config, 1, DType::F64);
        let x = random(&[5, 2], 2, -1.0, 1.0)?;
        let tape = energy.force_tape(&x, 0.0)?.expect("tape");
        let err = tape
            .adjoint(&random(&[4, 2], 3, -1.0, 1.0)?, false)
            .unwrap_err();
        assert!(err.to_string().contains("[4, 2]"), "{err}");
        let err = tape.adjoint(&x.to_dtype(DType::F32)?, false).unwrap_err();
        assert!(err.to_string().contains("F32"), "{err}");
        // Dropout in training mode: no native tape (the caller differentiates the graph).
        let config = AttentionEnergyConfig {
            dropout: 0.5,
            ..config
        };
        let (energy, _) = model(&config, 1, DType::F64);
        energy.set_training(true);
        assert!(energy.force_tape(&x, 0.0)?.is_none());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10))]
        #[test]
        fn native_adjoint_equals_the_graph_backward_for_random_shapes(
            n in 1usize..60,
            config in small_configs(),
            seed in 0u64..1000,
        ) {
            check_against_graph(&config, n, seed).unwrap();
        }
    }
}

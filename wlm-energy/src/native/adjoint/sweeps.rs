//! The two backward sweeps of the native adjoint, on a [`NativeNet`]: back through the VJP
//! chain (step 1 of `native/adjoint.rs`'s header) and back through the forward pass with the
//! set-aside cotangents injected (step 2), with the small slice helpers they share.

use rayon::prelude::*;

use super::super::{
    layer_norm_input_vjp, split_rows, unpack_rows, Block, BlockCache, NativeNet, VjpRecord,
};
use crate::kernels::attention::{transposed, vjp_all};
use crate::kernels::attention_vjp_backward;
use crate::kernels::float::Float;
use crate::kernels::gelu::{
    gelu_kernel, vjp_bwd_kernel as gelu_vjp_bwd_kernel, vjp_kernel as gelu_vjp_kernel,
};
use crate::kernels::gemm::gemm;
use crate::kernels::layer_norm::{normalize_kernel, vjp_bwd_kernel as layer_norm_vjp_bwd_kernel};
use crate::layers::layer_norm::LAYER_NORM_EPS;

/// A weight gradient `W̄ += Aᵀ B` over all `n` rows: `dst` (`m × k`) `+= a_t · b`, with
/// `a_t` the transpose (`m × n`) of the row operand `A` (`n × m`) and `b` (`n × k`), split
/// over row chunks of `dst` (no partial sums: each chunk's rows are its own).
pub(super) fn add_weight_gradient<T: Float>(
    n: usize,
    m: usize,
    k: usize,
    a_t: &[T],
    b: &[T],
    dst: &mut [T],
) {
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
pub(super) fn packed_transposed<T: Float>(packed: &[T], n: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; packed.len()];
    out.par_chunks_mut(n * c)
        .zip(packed.par_chunks(n * c))
        .for_each(|(o, p)| crate::kernels::gemm::transpose(p, n, c, c, o));
    out
}

/// `dst[j] += Σ_r a[r][j]`.
pub(super) fn add_column_sums<T: Float>(a: &[T], dst: &mut [T]) {
    for row in a.chunks_exact(dst.len()) {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// `dst[j] += Σ_r a[r][j] b[r][j]`.
pub(super) fn add_column_dots<T: Float>(a: &[T], b: &[T], dst: &mut [T]) {
    let w = dst.len();
    for (ra, rb) in a.chunks_exact(w).zip(b.chunks_exact(w)) {
        for ((d, &x), &y) in dst.iter_mut().zip(ra).zip(rb) {
            *d += x * y;
        }
    }
}

/// Rows of `a` scaled column-wise by `gamma`.
pub(super) fn scaled_rows<T: Float>(a: &[T], gamma: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    for row in out.chunks_exact_mut(gamma.len()) {
        for (v, &g) in row.iter_mut().zip(gamma) {
            *v *= g;
        }
    }
    out
}

/// `x̂` of the rows of `x` and `u = x̂ ⊙ γ + β`.
pub(super) fn layer_norm_values<T: Float>(x: &[T], gamma: &[T], beta: &[T]) -> (Vec<T>, Vec<T>) {
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
pub(super) type Partials<T> = Vec<(usize, Vec<T>)>;

/// Cotangents of the forward values one block's VJP read (step 1 → step 2).
pub(super) struct Injected<T> {
    /// Of the block input `h` (`n × H`).
    h: Vec<T>,
    /// Of `h1` (`n × H`).
    h1: Vec<T>,
    /// Of the packed projections (`3 × heads × n × c`).
    qkv: Vec<T>,
    /// Of the feed-forward pre-activations (`n × F`).
    z: Vec<T>,
}

impl<T: Float> NativeNet<'_, T> {
    /// Sums chunk partials into `grads`, in chunk order.
    pub(super) fn add_partials(grads: &mut [Vec<T>], partials: Vec<Partials<T>>) {
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
    pub(super) fn vjp_backward(
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
    pub(super) fn forward_backward(
        &self,
        b: &Block<T>,
        cache: &BlockCache<T>,
        inj: &Injected<T>,
        r: &[T],
        grads: &mut [Vec<T>],
    ) -> Vec<T> {
        let (n, hd, ff, heads, c) = (self.n, self.hidden, self.ff, self.heads, self.head_dim());
        let scale = (1.0 / c as f64).sqrt();
        // Pass C mirrors Pass B above and the VJP pass of `native.rs` (`duplicates` pairs their
        // six-buffer row splits): each pass owns its buffers and reads as its formula; a shared
        // splitter over differing buffer sets would hide which rows each rayon task writes.
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

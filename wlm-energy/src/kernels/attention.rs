//! Fused multi-head attention `O = softmax(s Q Kᵀ) V`, its VJP and the VJP's backward, in cache-sized row blocks.
//!
//! Each op works on the packed projections `qkv` of shape `(3, heads, n, c)` (rows `0`, `1`,
//! `2` of the first axis are `Q`, `K`, `V`). Rows of `P` are formed a block at a time, so the
//! work stays in cache. Either they are recomputed in a task-local buffer wherever needed
//! (memory `O(n c)` per head), or [`attention_keeping_probabilities`] writes the normalised
//! `P` (`heads × n × n`) once and the VJP and both backward passes read it (one `N²c`
//! product and the softmax passes fewer each). Rayon runs one task per (head, row chunk); the
//! column accumulations (`dK`, `dV`, …) are summed over a head's chunks afterwards.
//!
//! * [`attention`] / [`attention_keeping_probabilities`]: `O` (`heads, n, c`); backward =
//!   [`attention_vjp`] without graph (with the kept `P`, if any).
//! * [`attention_vjp`]: with `G = ∂L/∂O`: `dP = G Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`,
//!   `dQ = s dS K`, `dK = s dSᵀ Q`, `dV = Pᵀ G`, packed as `(3, heads, n, c)`. Its backward
//!   (the second-order kernel in [`super::attention_hvp`]) makes it differentiable.

use candle_core::backend::BackendStorage;
use std::sync::{Arc, Mutex};

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

use super::attention_hvp::vjp_backward;
use super::float::{contiguous_slice, simd_dispatch, Float};
use super::gemm::{gemm, transpose};
use super::rows::{row_dot, row_max, row_sum};
use super::with_slices;

/// Query rows per block: `ROW_BLOCK × n` entries of each row buffer stay in L2.
pub(super) const ROW_BLOCK: usize = 32;

/// `softmax_rows(scale · Q Kᵀ) V` per head.
///
/// # Shapes
/// `qkv`: `(3, heads, n, c)` → `(heads, n, c)`.
pub(crate) fn attention(qkv: &Tensor, scale: f64) -> Result<Tensor> {
    qkv.contiguous()?
        .apply_op1(AttentionOp { scale, kept: None })
}

/// [`attention`] that also returns `P = softmax_rows(scale · Q Kᵀ)` (detached, `heads·n²`
/// values) for [`attention_vjp`] to reuse instead of recomputing it; the op's own backward
/// reuses it too.
///
/// # Shapes
/// `qkv`: `(3, heads, n, c)` → `(heads, n, c)` and `(heads, n, n)`.
pub(crate) fn attention_keeping_probabilities(
    qkv: &Tensor,
    scale: f64,
) -> Result<(Tensor, Tensor)> {
    let kept = KeptProbabilities::default();
    let o = qkv.contiguous()?.apply_op1(AttentionOp {
        scale,
        kept: Some(kept.clone()),
    })?;
    let p = lock_kept(&kept)?
        .clone()
        .ok_or_else(|| candle_core::Error::Msg("attention: probabilities not kept".into()))?;
    Ok((o, p))
}

/// The VJP of [`attention`] with respect to `qkv` for an output cotangent `g`, differentiable in
/// `qkv` and `g`. `p`: the `P` kept by [`attention_keeping_probabilities`] at the same `qkv`
/// (`None` recomputes it).
///
/// # Shapes
/// `qkv`: `(3, heads, n, c)`, `g`: `(heads, n, c)`, `p`: `(heads, n, n)` → `(3, heads, n, c)`.
pub(crate) fn attention_vjp(
    qkv: &Tensor,
    g: &Tensor,
    p: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let p = p.map(Tensor::contiguous).transpose()?;
    qkv.contiguous()?
        .apply_op2(&g.contiguous()?, AttentionVjpOp { scale, p })
}

/// `(heads, n, c)` from the layout of `qkv`, checked.
pub(super) fn qkv_dims(shape: &Shape, what: &str) -> Result<(usize, usize, usize)> {
    match shape.dims() {
        &[3, heads, n, c] if heads > 0 && n > 0 && c > 0 => Ok((heads, n, c)),
        dims => bail!("{what}: expected qkv of shape (3, heads, n, c), got {dims:?}"),
    }
}

/// One unit of work: rows `start..end` of head `head`.
#[derive(Clone, Copy)]
pub(super) struct Task {
    pub(super) head: usize,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Splits every head's rows into enough chunks to feed the thread pool.
pub(super) fn tasks(heads: usize, n: usize) -> Vec<Task> {
    let threads = rayon::current_num_threads().max(1);
    // Several tasks per thread, so work stealing evens out a thread that the OS preempts.
    let per_head = (4 * threads)
        .div_ceil(heads)
        .clamp(1, n.div_ceil(ROW_BLOCK).max(1));
    let chunk = n.div_ceil(per_head);
    let mut out = Vec::with_capacity(heads * per_head);
    for head in 0..heads {
        let mut start = 0;
        while start < n {
            let end = (start + chunk).min(n);
            out.push(Task { head, start, end });
            start = end;
        }
    }
    out
}

/// Splits `buf` (`heads × n × width`) into the disjoint row ranges of `tasks`, in order.
pub(super) fn carve<'a, T>(
    mut buf: &'a mut [T],
    tasks: &[Task],
    n: usize,
    width: usize,
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(tasks.len());
    let mut offset = 0;
    for task in tasks {
        let begin = (task.head * n + task.start) * width;
        let len = (task.end - task.start) * width;
        let rest = std::mem::take(&mut buf);
        let (_, rest) = rest.split_at_mut(begin - offset);
        let (mine, rest) = rest.split_at_mut(len);
        out.push(mine);
        buf = rest;
        offset = begin + len;
    }
    out
}

/// Row `r` of `P = softmax(scale · S)` in place (`s` holds unscaled logits).
#[inline(always)]
pub(super) fn softmax_in_place<T: Float>(s: &mut [T], n: usize, scale: T) {
    for row in s.chunks_exact_mut(n) {
        let max = row_max(row);
        for v in row.iter_mut() {
            *v = ((*v - max) * scale).exp_v();
        }
        let inv = T::ONE / row_sum(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The slices of one head: `q`, `k`, `v` rows `(n, c)`.
pub(super) fn head_slices<T>(
    qkv: &[T],
    heads: usize,
    n: usize,
    c: usize,
    head: usize,
) -> [&[T]; 3] {
    let size = n * c;
    std::array::from_fn(|which| {
        &qkv[(which * heads + head) * size..(which * heads + head + 1) * size]
    })
}

/// Rows of `E = exp(scale · (S − rowmax S))` in place; returns nothing, writes `1/rowsum(E)`
/// into `inv_sum` (so `P = E / rowsum(E)` without a normalisation pass).
#[inline(always)]
pub(super) fn exp_rows_in_place<T: Float>(s: &mut [T], n: usize, scale: T, inv_sum: &mut [T]) {
    for (row, inv) in s.chunks_exact_mut(n).zip(inv_sum.iter_mut()) {
        let max = row_max(row);
        for v in row.iter_mut() {
            *v = ((*v - max) * scale).exp_v();
        }
        *inv = T::ONE / row_sum(row);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_body<T: Float>(
    q: &[T],
    k_t: &[T],
    v: &[T],
    n: usize,
    c: usize,
    scale: T,
    start: usize,
    end: usize,
    out: &mut [T],
    p_out: &mut [T],
) {
    if !p_out.is_empty() {
        // Rows of P are formed in place in the kept output, normalised, then O = P V.
        let mut r0 = start;
        while r0 < end {
            let rows = ROW_BLOCK.min(end - r0);
            let p = &mut p_out[(r0 - start) * n..(r0 - start + rows) * n];
            gemm(rows, n, c, &q[r0 * c..], c, k_t, n, p, n, false);
            softmax_in_place(p, n, scale);
            let o = &mut out[(r0 - start) * c..(r0 - start + rows) * c];
            gemm(rows, c, n, p, n, v, c, o, c, false);
            r0 += rows;
        }
        return;
    }
    let block = ROW_BLOCK.min(end - start);
    let mut e = vec![T::ZERO; block * n];
    let mut inv_sum = vec![T::ZERO; block];
    let mut r0 = start;
    while r0 < end {
        let rows = ROW_BLOCK.min(end - r0);
        let e = &mut e[..rows * n];
        gemm(rows, n, c, &q[r0 * c..], c, k_t, n, e, n, false);
        exp_rows_in_place(e, n, scale, &mut inv_sum[..rows]);
        let o = &mut out[(r0 - start) * c..(r0 - start + rows) * c];
        gemm(rows, c, n, e, n, v, c, o, c, false);
        for (o_row, &inv) in o.chunks_exact_mut(c).zip(&inv_sum[..rows]) {
            for v in o_row.iter_mut() {
                *v *= inv;
            }
        }
        r0 += rows;
    }
}
simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn forward_kernel<T: Float>(
        q: &[T],
        k_t: &[T],
        v: &[T],
        n: usize,
        c: usize,
        scale: T,
        start: usize,
        end: usize,
        out: &mut [T],
        p_out: &mut [T],
    ) => forward_body
);

/// Per task: `dQ` rows into `dq`; partial `dKᵀ`, `dVᵀ` (`c × n`) accumulated into `dk_t`, `dv_t`.
/// `p` is the head's kept `P` (`n × n`), or empty to recompute it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn vjp_body<T: Float>(
    q: &[T],
    k: &[T],
    k_t: &[T],
    v_t: &[T],
    g: &[T],
    p: &[T],
    n: usize,
    c: usize,
    scale: T,
    start: usize,
    end: usize,
    dq: &mut [T],
    dk_t: &mut [T],
    dv_t: &mut [T],
) {
    let block = ROW_BLOCK.min(end - start);
    let mut e_buf = vec![T::ZERO; if p.is_empty() { block * n } else { 0 }];
    let mut ds = vec![T::ZERO; block * n];
    let mut inv_sum = vec![T::ONE; block];
    let mut lhs_t = vec![T::ZERO; c * block];
    let mut r0 = start;
    while r0 < end {
        let rows = ROW_BLOCK.min(end - r0);
        let (ds, lhs_t) = (&mut ds[..rows * n], &mut lhs_t[..c * rows]);
        let inv_sum = &mut inv_sum[..rows];
        let q_blk = &q[r0 * c..(r0 + rows) * c];
        let g_blk = &g[r0 * c..(r0 + rows) * c];
        // E = exp(s(S − max)) with 1/rowsum in `inv_sum`, or the kept P with `inv_sum` = 1.
        let e: &[T] = if p.is_empty() {
            let e = &mut e_buf[..rows * n];
            gemm(rows, n, c, q_blk, c, k_t, n, e, n, false);
            exp_rows_in_place(e, n, scale, inv_sum);
            e
        } else {
            &p[r0 * n..(r0 + rows) * n]
        };
        // dP = G Vᵀ, then dS' = s P ⊙ (dP − rowsum(dP ⊙ P)) in place, with P = E/l.
        gemm(rows, n, c, g_blk, c, v_t, n, ds, n, false);
        for ((e_row, ds_row), &inv) in e
            .chunks_exact(n)
            .zip(ds.chunks_exact_mut(n))
            .zip(inv_sum.iter())
        {
            let d = row_dot(e_row, ds_row) * inv;
            let coef = scale * inv;
            for (dsj, &ej) in ds_row.iter_mut().zip(e_row) {
                *dsj = coef * ej * (*dsj - d);
            }
        }
        let dq_blk = &mut dq[(r0 - start) * c..(r0 - start + rows) * c];
        gemm(rows, c, n, ds, n, k, c, dq_blk, c, false);
        transpose(q_blk, rows, c, c, lhs_t);
        gemm(c, n, rows, lhs_t, rows, ds, n, dk_t, n, true);
        // dVᵀ += Gᵀ P = (G/l)ᵀ E.
        for r in 0..rows {
            for col in 0..c {
                lhs_t[col * rows + r] = g_blk[r * c + col] * inv_sum[r];
            }
        }
        gemm(c, n, rows, lhs_t, rows, e, n, dv_t, n, true);
        r0 += rows;
    }
}
simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn vjp_kernel<T: Float>(
        q: &[T],
        k: &[T],
        k_t: &[T],
        v_t: &[T],
        g: &[T],
        p: &[T],
        n: usize,
        c: usize,
        scale: T,
        start: usize,
        end: usize,
        dq: &mut [T],
        dk_t: &mut [T],
        dv_t: &mut [T],
    ) => vjp_body
);

/// Head `head`'s rows of the kept `P` (`heads × n × n`), or empty when none is kept.
pub(super) fn head_probabilities<T>(p: &[T], n: usize, head: usize) -> &[T] {
    if p.is_empty() {
        p
    } else {
        &p[head * n * n..(head + 1) * n * n]
    }
}

/// `x (n × c)` transposed to `c × n`.
pub(crate) fn transposed<T: Float>(x: &[T], n: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; n * c];
    transpose(x, n, c, c, &mut out);
    out
}

/// Sums the `c × n` partials of each head's tasks and writes them transposed (`n × c`) into
/// `dst` (`heads × n × c`).
pub(super) fn reduce_columns<T: Float>(
    tasks: &[Task],
    partials: &[Vec<T>],
    n: usize,
    c: usize,
    dst: &mut [T],
) {
    let heads = dst.len() / (n * c);
    let mut sum = vec![T::ZERO; c * n];
    for head in 0..heads {
        sum.iter_mut().for_each(|v| *v = T::ZERO);
        for (task, part) in tasks.iter().zip(partials) {
            if task.head == head {
                for (s, &p) in sum.iter_mut().zip(part) {
                    *s += p;
                }
            }
        }
        transpose(&sum, c, n, n, &mut dst[head * n * c..(head + 1) * n * c]);
    }
}

/// `O` (`heads × n × c`) and, when `keep`, `P` (`heads × n × n`; empty otherwise).
pub(crate) fn forward_all<T: Float>(
    qkv: &[T],
    heads: usize,
    n: usize,
    c: usize,
    scale: f64,
    keep: bool,
) -> (Vec<T>, Vec<T>) {
    let tasks = tasks(heads, n);
    let k_t: Vec<Vec<T>> = (0..heads)
        .map(|h| transposed(head_slices(qkv, heads, n, c, h)[1], n, c))
        .collect();
    let mut out = vec![T::ZERO; heads * n * c];
    let mut p = vec![T::ZERO; if keep { heads * n * n } else { 0 }];
    let chunks = carve(&mut out, &tasks, n, c);
    let p_chunks = if keep {
        carve(&mut p, &tasks, n, n)
    } else {
        tasks.iter().map(|_| <&mut [T]>::default()).collect()
    };
    tasks
        .par_iter()
        .zip(chunks.into_par_iter().zip(p_chunks))
        .for_each(|(task, (chunk, p_chunk))| {
            let [q, _, v] = head_slices(qkv, heads, n, c, task.head);
            forward_kernel(
                q,
                &k_t[task.head],
                v,
                n,
                c,
                T::of(scale),
                task.start,
                task.end,
                chunk,
                p_chunk,
            )
        });
    (out, p)
}

/// `(dQ, dK, dV)` packed; `p` is the kept `P` (`heads × n × n`) or empty to recompute it.
pub(crate) fn vjp_all<T: Float>(
    qkv: &[T],
    g: &[T],
    p: &[T],
    heads: usize,
    n: usize,
    c: usize,
    scale: f64,
) -> Vec<T> {
    let tasks = tasks(heads, n);
    let transposes: Vec<[Vec<T>; 2]> = (0..heads)
        .map(|h| {
            let [_, k, v] = head_slices(qkv, heads, n, c, h);
            [transposed(k, n, c), transposed(v, n, c)]
        })
        .collect();
    let mut out = vec![T::ZERO; 3 * heads * n * c];
    let (dq_all, rest) = out.split_at_mut(heads * n * c);
    let chunks = carve(dq_all, &tasks, n, c);
    let partials: Vec<(Vec<T>, Vec<T>)> = tasks
        .par_iter()
        .zip(chunks)
        .map(|(task, dq)| {
            let [q, k, _] = head_slices(qkv, heads, n, c, task.head);
            let g_head = &g[task.head * n * c..(task.head + 1) * n * c];
            let [k_t, v_t] = &transposes[task.head];
            let p_head = head_probabilities(p, n, task.head);
            let mut dk_t = vec![T::ZERO; c * n];
            let mut dv_t = vec![T::ZERO; c * n];
            vjp_kernel(
                q,
                k,
                k_t,
                v_t,
                g_head,
                p_head,
                n,
                c,
                T::of(scale),
                task.start,
                task.end,
                dq,
                &mut dk_t,
                &mut dv_t,
            );
            (dk_t, dv_t)
        })
        .collect();
    let (dk_all, dv_all) = rest.split_at_mut(heads * n * c);
    let (dk_parts, dv_parts): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    reduce_columns(&tasks, &dk_parts, n, c, dk_all);
    reduce_columns(&tasks, &dv_parts, n, c, dv_all);
    out
}

struct AttentionOp {
    scale: f64,
    /// Where the op leaves `P` (`heads × n × n`) when asked to keep it; its own backward and
    /// the caller's VJP op read it from there.
    kept: Option<KeptProbabilities>,
}

/// The `P` of one [`AttentionOp`] call, filled by its forward pass.
type KeptProbabilities = Arc<Mutex<Option<Tensor>>>;

fn lock_kept(kept: &KeptProbabilities) -> Result<std::sync::MutexGuard<'_, Option<Tensor>>> {
    kept.lock()
        .map_err(|_| candle_core::Error::Msg("attention: poisoned lock".into()))
}

impl AttentionOp {
    fn run<T: Float>(&self, qkv: &[T], heads: usize, n: usize, c: usize) -> Result<Vec<T>> {
        let keep = self.kept.is_some();
        let (out, p) = forward_all(qkv, heads, n, c, self.scale, keep);
        if let Some(kept) = &self.kept {
            *lock_kept(kept)? = Some(Tensor::from_vec(p, (heads, n, n), &Device::Cpu)?);
        }
        Ok(out)
    }
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "wlm-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (heads, n, c) = qkv_dims(layout.shape(), "attention")?;
        let out = match storage.dtype() {
            DType::F32 => f32::storage(self.run(
                contiguous_slice::<f32>(storage, layout, "attention")?,
                heads,
                n,
                c,
            )?),
            DType::F64 => f64::storage(self.run(
                contiguous_slice::<f64>(storage, layout, "attention")?,
                heads,
                n,
                c,
            )?),
            other => bail!("attention: unsupported dtype {other:?}"),
        };
        Ok((out, Shape::from((heads, n, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let p = match &self.kept {
            Some(kept) => lock_kept(kept)?.clone(),
            None => None,
        };
        Ok(Some(arg.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &AttentionVjpOp {
                scale: self.scale,
                p,
            },
        )?))
    }
}

/// Runs `f` on the values of the kept `P`, or on an empty slice when there is none.
pub(super) fn with_probabilities<T: Float, R>(
    p: Option<&Tensor>,
    f: impl FnOnce(&[T]) -> Result<R>,
) -> Result<R> {
    match p {
        None => f(&[]),
        Some(p) => with_slices::<T, R>(&[p], |s| f(s[0])),
    }
}

struct AttentionVjpOp {
    scale: f64,
    /// The kept `P` of the forward pass (`heads × n × n`), if any; recomputed otherwise.
    p: Option<Tensor>,
}

impl CustomOp2 for AttentionVjpOp {
    fn name(&self) -> &'static str {
        "wlm-attention-vjp"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (heads, n, c) = qkv_dims(l1.shape(), "attention_vjp")?;
        if l2.shape().dims() != [heads, n, c] {
            bail!(
                "attention_vjp: cotangent has shape {:?}, expected {:?}",
                l2.shape().dims(),
                [heads, n, c]
            );
        }
        if let Some(p) = &self.p {
            if p.dims() != [heads, n, n] {
                bail!("attention_vjp: probabilities have shape {:?}", p.dims());
            }
        }
        let out = match (s1.dtype(), s2.dtype()) {
            (DType::F32, DType::F32) => with_probabilities::<f32, _>(self.p.as_ref(), |p| {
                Ok(f32::storage(vjp_all(
                    contiguous_slice::<f32>(s1, l1, "attention_vjp")?,
                    contiguous_slice::<f32>(s2, l2, "attention_vjp")?,
                    p,
                    heads,
                    n,
                    c,
                    self.scale,
                )))
            })?,
            (DType::F64, DType::F64) => with_probabilities::<f64, _>(self.p.as_ref(), |p| {
                Ok(f64::storage(vjp_all(
                    contiguous_slice::<f64>(s1, l1, "attention_vjp")?,
                    contiguous_slice::<f64>(s2, l2, "attention_vjp")?,
                    p,
                    heads,
                    n,
                    c,
                    self.scale,
                )))
            })?,
            (a, b) => bail!("attention_vjp: unsupported dtypes {a:?}, {b:?}"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        g: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (qkv_bar, g_bar) = vjp_backward(qkv, g, grad_res, self.p.as_ref(), self.scale)?;
        Ok((Some(qkv_bar), Some(g_bar)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel, random};
    use candle_core::{Var, D};

    /// The plain-op reference on `(3, heads, n, c)`.
    fn plain_attention(qkv: &Tensor, scale: f64) -> Result<Tensor> {
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let s = (q.matmul(&k.t()?)? * scale)?;
        let max = s.max_keepdim(D::Minus1)?.detach();
        let e = s.broadcast_sub(&max)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        p.matmul(&v)
    }

    fn plain_vjp(qkv: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let s = (q.matmul(&k.t()?)? * scale)?;
        let max = s.max_keepdim(D::Minus1)?.detach();
        let e = s.broadcast_sub(&max)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        let dp = g.matmul(&v.t()?)?;
        let r = (&dp * &p)?.sum_keepdim(D::Minus1)?;
        let ds = (&p * dp.broadcast_sub(&r)?)?;
        let dq = (ds.matmul(&k)? * scale)?;
        let dk = (ds.t()?.matmul(&q)? * scale)?;
        let dv = p.t()?.matmul(g)?;
        Tensor::stack(&[dq, dk, dv], 0)
    }

    #[test]
    fn tasks_cover_every_row_once() {
        for &(heads, n) in &[(1usize, 1usize), (4, 7), (1, 1000), (3, 65)] {
            let t = tasks(heads, n);
            for h in 0..heads {
                let mut rows: Vec<(usize, usize)> = t
                    .iter()
                    .filter(|x| x.head == h)
                    .map(|x| (x.start, x.end))
                    .collect();
                rows.sort();
                assert_eq!(rows.first().map(|r| r.0), Some(0));
                assert_eq!(rows.last().map(|r| r.1), Some(n));
                assert!(rows.windows(2).all(|w| w[0].1 == w[1].0));
            }
        }
    }

    #[test]
    fn fused_attention_and_vjp_equal_plain_ops_with_gradients() -> Result<()> {
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
            for &(heads, n, c) in &[
                (1usize, 1usize, 3usize),
                (2, 5, 4),
                (4, 70, 16),
                (1, 33, 24),
                (2, 150, 8),
            ] {
                let scale = 1.0 / (c as f64).sqrt();
                let qkv =
                    Var::from_tensor(&random(&[3, heads, n, c], 1, -1.5, 1.5)?.to_dtype(dtype)?)?;
                let g = Var::from_tensor(&random(&[heads, n, c], 2, -1.0, 1.0)?.to_dtype(dtype)?)?;
                let w_o = random(&[heads, n, c], 3, -1.0, 1.0)?.to_dtype(dtype)?;
                let w_d = random(&[3, heads, n, c], 4, -1.0, 1.0)?.to_dtype(dtype)?;
                let loss = |o: &Tensor, d: &Tensor| -> Result<Tensor> {
                    (o * &w_o)?.sum_all()? + (d * &w_d)?.sum_all()?
                };
                let po = plain_attention(qkv.as_tensor(), scale)?;
                let pd = plain_vjp(qkv.as_tensor(), g.as_tensor(), scale)?;
                let gp = loss(&po, &pd)?.backward()?;
                // With P recomputed, and with P kept from the forward pass.
                for keep in [false, true] {
                    let what = format!("{dtype:?} keep={keep} {heads} {n} {c}");
                    let (fo, p) = if keep {
                        let (o, p) = attention_keeping_probabilities(qkv.as_tensor(), scale)?;
                        (o, Some(p))
                    } else {
                        (attention(qkv.as_tensor(), scale)?, None)
                    };
                    assert!(max_rel(&fo, &po)? < tol, "O {what}");
                    if let Some(p) = &p {
                        let (q, k) = (qkv.as_tensor().get(0)?, qkv.as_tensor().get(1)?);
                        let s = (q.matmul(&k.t()?)? * scale)?;
                        let want = candle_nn::ops::softmax_last_dim(&s)?;
                        assert!(max_rel(p, &want)? < tol, "P {what}");
                    }
                    let fd = attention_vjp(qkv.as_tensor(), g.as_tensor(), p.as_ref(), scale)?;
                    assert!(max_rel(&fd, &pd)? < tol, "dqkv {what}");
                    let gf = loss(&fo, &fd)?.backward()?;
                    for var in [&qkv, &g] {
                        let a = gf.get(var.as_tensor()).expect("fused grad");
                        let b = gp.get(var.as_tensor()).expect("plain grad");
                        let err = max_rel(a, b)?;
                        assert!(err < 10.0 * tol, "grad {what}: {err}");
                    }
                }
            }
        }
        Ok(())
    }
}

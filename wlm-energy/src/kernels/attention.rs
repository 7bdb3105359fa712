//! Fused multi-head attention `O = softmax(s Q Kᵀ) V`, its VJP and the VJP's backward, without N×N tensors.
//!
//! Each op works on the packed projections `qkv` of shape `(3, heads, n, c)` (rows `0`, `1`,
//! `2` of the first axis are `Q`, `K`, `V`). Rows of `P` are formed a block at a time in a
//! task-local buffer (recomputed, never stored), so memory is `O(n c)` per head and the work
//! stays in cache. Rayon runs one task per (head, row chunk); the column accumulations
//! (`dK`, `dV`, …) are summed over a head's chunks afterwards.
//!
//! * [`attention`]: `O` (`heads, n, c`); backward = [`attention_vjp`] without graph.
//! * [`attention_vjp`]: with `G = ∂L/∂O`: `dP = G Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`,
//!   `dQ = s dS K`, `dK = s dSᵀ Q`, `dV = Pᵀ G`, packed as `(3, heads, n, c)`. Its backward
//!   (the second-order kernel in [`super::attention_hvp`]) makes it differentiable.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::attention_hvp::vjp_backward;
use super::float::{contiguous_slice, simd_dispatch, Float};
use super::gemm::{gemm, transpose};
use super::rows::{row_dot, row_max, row_sum};

/// Query rows per block: `ROW_BLOCK × n` entries of each row buffer stay in L2.
pub(super) const ROW_BLOCK: usize = 32;

/// `softmax_rows(scale · Q Kᵀ) V` per head.
///
/// # Shapes
/// `qkv`: `(3, heads, n, c)` → `(heads, n, c)`.
pub(crate) fn attention(qkv: &Tensor, scale: f64) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1(AttentionOp { scale })
}

/// The VJP of [`attention`] with respect to `qkv` for an output cotangent `g`, differentiable in
/// `qkv` and `g`.
///
/// # Shapes
/// `qkv`: `(3, heads, n, c)`, `g`: `(heads, n, c)` → `(3, heads, n, c)`.
pub(crate) fn attention_vjp(qkv: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
    qkv.contiguous()?
        .apply_op2(&g.contiguous()?, AttentionVjpOp { scale })
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
) {
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
    ) => forward_body
);

/// Per task: `dQ` rows into `dq`; partial `dKᵀ`, `dVᵀ` (`c × n`) accumulated into `dk_t`, `dv_t`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn vjp_body<T: Float>(
    q: &[T],
    k: &[T],
    k_t: &[T],
    v_t: &[T],
    g: &[T],
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
    let mut e = vec![T::ZERO; block * n];
    let mut ds = vec![T::ZERO; block * n];
    let mut inv_sum = vec![T::ZERO; block];
    let mut lhs_t = vec![T::ZERO; c * block];
    let mut r0 = start;
    while r0 < end {
        let rows = ROW_BLOCK.min(end - r0);
        let (e, ds, lhs_t) = (
            &mut e[..rows * n],
            &mut ds[..rows * n],
            &mut lhs_t[..c * rows],
        );
        let inv_sum = &mut inv_sum[..rows];
        let q_blk = &q[r0 * c..(r0 + rows) * c];
        let g_blk = &g[r0 * c..(r0 + rows) * c];
        gemm(rows, n, c, q_blk, c, k_t, n, e, n, false);
        exp_rows_in_place(e, n, scale, inv_sum);
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

/// `x (n × c)` transposed to `c × n`.
pub(super) fn transposed<T: Float>(x: &[T], n: usize, c: usize) -> Vec<T> {
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

fn forward_all<T: Float>(qkv: &[T], heads: usize, n: usize, c: usize, scale: f64) -> Vec<T> {
    let tasks = tasks(heads, n);
    let k_t: Vec<Vec<T>> = (0..heads)
        .map(|h| transposed(head_slices(qkv, heads, n, c, h)[1], n, c))
        .collect();
    let mut out = vec![T::ZERO; heads * n * c];
    let chunks = carve(&mut out, &tasks, n, c);
    tasks.par_iter().zip(chunks).for_each(|(task, chunk)| {
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
        )
    });
    out
}

pub(super) fn vjp_all<T: Float>(
    qkv: &[T],
    g: &[T],
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
            let mut dk_t = vec![T::ZERO; c * n];
            let mut dv_t = vec![T::ZERO; c * n];
            vjp_kernel(
                q,
                k,
                k_t,
                v_t,
                g_head,
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
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "wlm-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (heads, n, c) = qkv_dims(layout.shape(), "attention")?;
        let out = match storage.dtype() {
            DType::F32 => f32::storage(forward_all(
                contiguous_slice::<f32>(storage, layout, "attention")?,
                heads,
                n,
                c,
                self.scale,
            )),
            DType::F64 => f64::storage(forward_all(
                contiguous_slice::<f64>(storage, layout, "attention")?,
                heads,
                n,
                c,
                self.scale,
            )),
            other => bail!("attention: unsupported dtype {other:?}"),
        };
        Ok((out, Shape::from((heads, n, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &AttentionVjpOp { scale: self.scale },
        )?))
    }
}

struct AttentionVjpOp {
    scale: f64,
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
        let out = match (s1.dtype(), s2.dtype()) {
            (DType::F32, DType::F32) => f32::storage(vjp_all(
                contiguous_slice::<f32>(s1, l1, "attention_vjp")?,
                contiguous_slice::<f32>(s2, l2, "attention_vjp")?,
                heads,
                n,
                c,
                self.scale,
            )),
            (DType::F64, DType::F64) => f64::storage(vjp_all(
                contiguous_slice::<f64>(s1, l1, "attention_vjp")?,
                contiguous_slice::<f64>(s2, l2, "attention_vjp")?,
                heads,
                n,
                c,
                self.scale,
            )),
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
        let (qkv_bar, g_bar) = vjp_backward(qkv, g, grad_res, self.scale)?;
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
            ] {
                let scale = 1.0 / (c as f64).sqrt();
                let qkv =
                    Var::from_tensor(&random(&[3, heads, n, c], 1, -1.5, 1.5)?.to_dtype(dtype)?)?;
                let g = Var::from_tensor(&random(&[heads, n, c], 2, -1.0, 1.0)?.to_dtype(dtype)?)?;
                let w_o = random(&[heads, n, c], 3, -1.0, 1.0)?.to_dtype(dtype)?;
                let w_d = random(&[3, heads, n, c], 4, -1.0, 1.0)?.to_dtype(dtype)?;
                let fo = attention(qkv.as_tensor(), scale)?;
                let po = plain_attention(qkv.as_tensor(), scale)?;
                assert!(max_rel(&fo, &po)? < tol, "{dtype:?} O {heads} {n} {c}");
                let fd = attention_vjp(qkv.as_tensor(), g.as_tensor(), scale)?;
                let pd = plain_vjp(qkv.as_tensor(), g.as_tensor(), scale)?;
                assert!(max_rel(&fd, &pd)? < tol, "{dtype:?} dqkv {heads} {n} {c}");
                let loss = |o: &Tensor, d: &Tensor| -> Result<Tensor> {
                    (o * &w_o)?.sum_all()? + (d * &w_d)?.sum_all()?
                };
                let gf = loss(&fo, &fd)?.backward()?;
                let gp = loss(&po, &pd)?.backward()?;
                for var in [&qkv, &g] {
                    let a = gf.get(var.as_tensor()).expect("fused grad");
                    let b = gp.get(var.as_tensor()).expect("plain grad");
                    let err = max_rel(a, b)?;
                    assert!(err < 10.0 * tol, "{dtype:?} grad {heads} {n} {c}: {err}");
                }
            }
        }
        Ok(())
    }
}

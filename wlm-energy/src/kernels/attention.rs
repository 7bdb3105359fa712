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

use candle_core::{bail, Result, Shape, Tensor};
use rayon::prelude::*;

use super::float::{simd_dispatch, Float};
use super::gemm::{gemm, transpose};
use super::rows::{row_dot, row_max, row_sum};
use super::with_slices;

/// Query rows per block: `ROW_BLOCK × n` entries of each row buffer stay in L2.
pub(super) const ROW_BLOCK: usize = 32;

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

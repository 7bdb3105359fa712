//! Backward of the fused attention VJP: second derivatives of attention, so that the force is differentiable.
//!
//! For one head with `S = s Q Kᵀ`, `P = softmax(S)`, `dP = G Vᵀ`, `D = rowsum(P ⊙ dP)`,
//! `dS = P ⊙ (dP − D)` and outputs `dQ = s dS K`, `dK = s dSᵀ Q`, `dV = Pᵀ G`, given
//! cotangents `Q̃`, `K̃`, `Ṽ` of the outputs:
//!
//! * `R = s (Q̃ Kᵀ + Q K̃ᵀ)` (cotangent of `dS`), `σ = rowsum(R ⊙ P)`;
//! * `dP̄ = P ⊙ (R − σ)`, `P̄ = G Ṽᵀ + R ⊙ (dP − D) − σ dP`, `S̄ = P ⊙ (P̄ − rowsum(P̄ ⊙ P))`;
//! * `Q̄ = s dS K̃ + s S̄ K`, `K̄ = s dSᵀ Q̃ + s S̄ᵀ Q`, `V̄ = dP̄ᵀ G`, `Ḡ = P Ṽ + dP̄ V`.

use candle_core::{bail, Result, Tensor};
use rayon::prelude::*;

use super::attention::{
    carve, head_probabilities, head_slices, qkv_dims, reduce_columns, tasks, transposed,
    with_probabilities, ROW_BLOCK,
};
use super::float::{simd_dispatch, Float};
use super::gemm::{gemm, transpose};
use super::rows::row_dot;
use super::with_slices;

/// `(q̄kv, ḡ)` for the VJP op at `(qkv, g)` with output cotangent `cot` (`(3, heads, n, c)`);
/// `p` is the kept `P` (`(heads, n, n)`) or `None` to recompute it.
pub(super) fn vjp_backward(
    qkv: &Tensor,
    g: &Tensor,
    cot: &Tensor,
    p: Option<&Tensor>,
    scale: f64,
) -> Result<(Tensor, Tensor)> {
    let (heads, n, c) = qkv_dims(qkv.shape(), "attention_vjp backward")?;
    if cot.dims() != qkv.dims() || g.dims() != [heads, n, c] {
        bail!(
            "attention_vjp backward: shapes {:?}, {:?}, {:?} do not match",
            qkv.dims(),
            g.dims(),
            cot.dims()
        );
    }
    let dims = (heads, n, c);
    match qkv.dtype() {
        candle_core::DType::F32 => vjp_backward_typed::<f32>([qkv, g, cot], p, dims, scale),
        candle_core::DType::F64 => vjp_backward_typed::<f64>([qkv, g, cot], p, dims, scale),
        other => bail!("attention_vjp backward: unsupported dtype {other:?}"),
    }
}

/// [`vjp_backward`] for tensors of the float type `T`.
fn vjp_backward_typed<T: Float>(
    [qkv, g, cot]: [&Tensor; 3],
    p: Option<&Tensor>,
    (heads, n, c): (usize, usize, usize),
    scale: f64,
) -> Result<(Tensor, Tensor)> {
    let device = qkv.device().clone();
    with_slices::<T, _>(&[qkv, g, cot], |s| {
        let (a, b) = with_probabilities::<T, _>(p, |p| {
            Ok(backward_all(s[0], s[1], s[2], p, heads, n, c, scale))
        })?;
        Ok((
            Tensor::from_vec(a, (3, heads, n, c), &device)?,
            Tensor::from_vec(b, (heads, n, c), &device)?,
        ))
    })
}

/// Inputs of one head: `q`, `k`, `v`, `g`, `aq`, `ak`, `av` (`n × c`), the transposes
/// `k_t`, `v_t`, `ak_t`, `av_t` (`c × n`) and the kept `P` (`n × n`, or empty).
pub(super) struct HeadInputs<'a, T> {
    p: &'a [T],
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    g: &'a [T],
    aq: &'a [T],
    ak: &'a [T],
    av: &'a [T],
    k_t: &'a [T],
    v_t: &'a [T],
    ak_t: &'a [T],
    av_t: &'a [T],
}

/// Outputs of one task: rows of `Q̄` and `Ḡ`, partial `K̄ᵀ`, `V̄ᵀ`.
pub(super) struct TaskOutputs<'a, T> {
    q_bar: &'a mut [T],
    g_bar: &'a mut [T],
    k_bar_t: &'a mut [T],
    v_bar_t: &'a mut [T],
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_body<T: Float>(
    x: &HeadInputs<'_, T>,
    n: usize,
    c: usize,
    scale: T,
    start: usize,
    end: usize,
    out: &mut TaskOutputs<'_, T>,
) {
    let block = ROW_BLOCK.min(end - start);
    let mut p_buf = vec![T::ZERO; if x.p.is_empty() { block * n } else { 0 }];
    let mut dp = vec![T::ZERO; block * n];
    let mut rm = vec![T::ZERO; block * n];
    let mut p1 = vec![T::ZERO; block * n];
    let mut lhs_t = vec![T::ZERO; c * block];
    let mut r0 = start;
    while r0 < end {
        let rows = ROW_BLOCK.min(end - r0);
        let len = rows * n;
        let (dp, rm, p1) = (&mut dp[..len], &mut rm[..len], &mut p1[..len]);
        let lhs_t = &mut lhs_t[..c * rows];
        let range = r0 * c..(r0 + rows) * c;
        let (q_blk, g_blk) = (&x.q[range.clone()], &x.g[range.clone()]);
        let aq_blk = &x.aq[range];
        let p: &[T] = if x.p.is_empty() {
            let p = &mut p_buf[..len];
            gemm(rows, n, c, q_blk, c, x.k_t, n, p, n, false);
            super::attention::softmax_in_place(p, n, scale);
            p
        } else {
            &x.p[r0 * n..(r0 + rows) * n]
        };
        gemm(rows, n, c, g_blk, c, x.v_t, n, dp, n, false);
        gemm(rows, n, c, aq_blk, c, x.k_t, n, rm, n, false);
        gemm(rows, n, c, q_blk, c, x.ak_t, n, rm, n, true);
        gemm(rows, n, c, g_blk, c, x.av_t, n, p1, n, false);
        let row_iter = p
            .chunks_exact(n)
            .zip(dp.chunks_exact_mut(n))
            .zip(rm.chunks_exact_mut(n).zip(p1.chunks_exact_mut(n)));
        for ((p_row, dp_row), (rm_row, p1_row)) in row_iter {
            let d = row_dot(p_row, dp_row);
            let sigma = scale * row_dot(rm_row, p_row);
            for j in 0..n {
                let (pj, dpj, rj) = (p_row[j], dp_row[j], scale * rm_row[j]);
                let centred = dpj - d;
                dp_row[j] = scale * pj * centred; // s dS
                rm_row[j] = pj * (rj - sigma); // dP̄
                p1_row[j] += rj * centred - sigma * dpj; // P̄
            }
            let rho = row_dot(p1_row, p_row);
            for (p1j, &pj) in p1_row.iter_mut().zip(p_row) {
                *p1j = scale * pj * (*p1j - rho); // s S̄
            }
        }
        let rows_out = (r0 - start) * c..(r0 - start + rows) * c;
        let q_bar = &mut out.q_bar[rows_out.clone()];
        gemm(rows, c, n, dp, n, x.ak, c, q_bar, c, false);
        gemm(rows, c, n, p1, n, x.k, c, q_bar, c, true);
        let g_bar = &mut out.g_bar[rows_out];
        gemm(rows, c, n, p, n, x.av, c, g_bar, c, false);
        gemm(rows, c, n, rm, n, x.v, c, g_bar, c, true);
        transpose(aq_blk, rows, c, c, lhs_t);
        gemm(c, n, rows, lhs_t, rows, dp, n, out.k_bar_t, n, true);
        transpose(q_blk, rows, c, c, lhs_t);
        gemm(c, n, rows, lhs_t, rows, p1, n, out.k_bar_t, n, true);
        transpose(g_blk, rows, c, c, lhs_t);
        gemm(c, n, rows, lhs_t, rows, rm, n, out.v_bar_t, n, true);
        r0 += rows;
    }
}
simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn backward_kernel<T: Float>(
        x: &HeadInputs<'_, T>,
        n: usize,
        c: usize,
        scale: T,
        start: usize,
        end: usize,
        out: &mut TaskOutputs<'_, T>,
    ) => backward_body
);

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_all<T: Float>(
    qkv: &[T],
    g: &[T],
    cot: &[T],
    p: &[T],
    heads: usize,
    n: usize,
    c: usize,
    scale: f64,
) -> (Vec<T>, Vec<T>) {
    let tasks = tasks(heads, n);
    let size = n * c;
    let transposes: Vec<[Vec<T>; 4]> = (0..heads)
        .map(|h| {
            let [_, k, v] = head_slices(qkv, heads, n, c, h);
            let [_, ak, av] = head_slices(cot, heads, n, c, h);
            [
                transposed(k, n, c),
                transposed(v, n, c),
                transposed(ak, n, c),
                transposed(av, n, c),
            ]
        })
        .collect();
    let mut qkv_bar = vec![T::ZERO; 3 * heads * size];
    let mut g_bar = vec![T::ZERO; heads * size];
    let (q_bar_all, rest) = qkv_bar.split_at_mut(heads * size);
    let q_chunks = carve(q_bar_all, &tasks, n, c);
    let g_chunks = carve(&mut g_bar, &tasks, n, c);
    let partials: Vec<(Vec<T>, Vec<T>)> = tasks
        .par_iter()
        .zip(q_chunks.into_par_iter().zip(g_chunks))
        .map(|(task, (q_bar, g_bar))| {
            let h = task.head;
            let [q, k, v] = head_slices(qkv, heads, n, c, h);
            let [aq, ak, av] = head_slices(cot, heads, n, c, h);
            let [k_t, v_t, ak_t, av_t] = &transposes[h];
            let inputs = HeadInputs {
                p: head_probabilities(p, n, h),
                q,
                k,
                v,
                g: &g[h * size..(h + 1) * size],
                aq,
                ak,
                av,
                k_t,
                v_t,
                ak_t,
                av_t,
            };
            let mut k_bar_t = vec![T::ZERO; c * n];
            let mut v_bar_t = vec![T::ZERO; c * n];
            let mut outputs = TaskOutputs {
                q_bar,
                g_bar,
                k_bar_t: &mut k_bar_t,
                v_bar_t: &mut v_bar_t,
            };
            backward_kernel(
                &inputs,
                n,
                c,
                T::of(scale),
                task.start,
                task.end,
                &mut outputs,
            );
            (k_bar_t, v_bar_t)
        })
        .collect();
    let (k_bar_all, v_bar_all) = rest.split_at_mut(heads * size);
    let (k_parts, v_parts): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    reduce_columns(&tasks, &k_parts, n, c, k_bar_all);
    reduce_columns(&tasks, &v_parts, n, c, v_bar_all);
    (qkv_bar, g_bar)
}

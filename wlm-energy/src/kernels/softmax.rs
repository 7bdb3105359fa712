//! Fused row softmax (scale folded in) and the softmax VJP, as candle custom ops with backward passes.
//!
//! `P = softmax_rows(scale · S)`; `VJP(P, dP) = scale · P ⊙ (dP − rowsum(dP ⊙ P))` (the gradient
//! with respect to the *unscaled* logits). Rows are the last dimension; rayon over rows.

use candle_core::{Result, Tensor};

use super::float::{simd_dispatch, Float};
use super::rows::{par_chunked, row_dot, row_max, row_sum, rows_per_task};
use super::same_shape::{apply_same_shape, same_shape_ops};

/// `softmax_rows(scale · s)` over the last dimension, differentiable (its backward is
/// [`softmax_vjp`]).
pub(crate) fn softmax(s: &Tensor, scale: f64) -> Result<Tensor> {
    s.contiguous()?.apply_op1(SoftmaxOp { scale })
}

/// `scale · p ⊙ (dp − rowsum(dp ⊙ p))`, differentiable in both arguments.
pub(crate) fn softmax_vjp(p: &Tensor, dp: &Tensor, scale: f64) -> Result<Tensor> {
    apply_same_shape(p, dp, SoftmaxVjpOp { scale })
}

#[inline(always)]
fn softmax_body<T: Float>(s: &[T], p: &mut [T], n_cols: usize, scale: T) {
    for (srow, prow) in s.chunks_exact(n_cols).zip(p.chunks_exact_mut(n_cols)) {
        let max = row_max(srow);
        for (pj, &sj) in prow.iter_mut().zip(srow) {
            *pj = ((sj - max) * scale).exp_v();
        }
        let inv = T::ONE / row_sum(prow);
        for pj in prow.iter_mut() {
            *pj *= inv;
        }
    }
}
simd_dispatch!(fn softmax_kernel<T: Float>(s: &[T], p: &mut [T], n_cols: usize, scale: T) => softmax_body);

#[inline(always)]
fn vjp_body<T: Float>(p: &[T], dp: &[T], out: &mut [T], n_cols: usize, scale: T) {
    let rows = p.chunks_exact(n_cols).zip(dp.chunks_exact(n_cols));
    for ((prow, dprow), orow) in rows.zip(out.chunks_exact_mut(n_cols)) {
        let r = row_dot(dprow, prow);
        for ((o, &pj), &dpj) in orow.iter_mut().zip(prow).zip(dprow) {
            *o = scale * pj * (dpj - r);
        }
    }
}
simd_dispatch!(fn vjp_kernel<T: Float>(p: &[T], dp: &[T], out: &mut [T], n_cols: usize, scale: T) => vjp_body);

/// Backward of `y = scale · P ⊙ (dP − r)`, `r = rowsum(dP ⊙ P)`: with `ȳ' = scale · ȳ` and
/// `s = rowsum(ȳ' ⊙ P)`, `P̄ = ȳ' ⊙ (dP − r) − s dP` and `dP̄ = P ⊙ (ȳ' − s)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn vjp_bwd_body<T: Float>(
    p: &[T],
    dp: &[T],
    ybar: &[T],
    pbar: &mut [T],
    dpbar: &mut [T],
    n_cols: usize,
    scale: T,
) {
    let inputs = p
        .chunks_exact(n_cols)
        .zip(dp.chunks_exact(n_cols))
        .zip(ybar.chunks_exact(n_cols));
    let outputs = pbar
        .chunks_exact_mut(n_cols)
        .zip(dpbar.chunks_exact_mut(n_cols));
    for (((prow, dprow), yrow), (pbrow, dpbrow)) in inputs.zip(outputs) {
        let r = row_dot(dprow, prow);
        let s = scale * row_dot(yrow, prow);
        for j in 0..n_cols {
            let y = scale * yrow[j];
            pbrow[j] = y * (dprow[j] - r) - s * dprow[j];
            dpbrow[j] = prow[j] * (y - s);
        }
    }
}
simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn vjp_bwd_kernel<T: Float>(
        p: &[T],
        dp: &[T],
        ybar: &[T],
        pbar: &mut [T],
        dpbar: &mut [T],
        n_cols: usize,
        scale: T,
    ) => vjp_bwd_body
);

fn softmax_rows<T: Float>(s: &[T], n_cols: usize, scale: f64) -> Vec<T> {
    let chunk = rows_per_task(n_cols) * n_cols;
    let [p] = par_chunked(chunk, [s], |[sc], [pc]| {
        softmax_kernel(sc, pc, n_cols, T::of(scale))
    });
    p
}

fn vjp_rows<T: Float>(p: &[T], dp: &[T], n_cols: usize, scale: f64) -> Vec<T> {
    let chunk = rows_per_task(n_cols) * n_cols;
    let [out] = par_chunked(chunk, [p, dp], |[pc, dpc], [oc]| {
        vjp_kernel(pc, dpc, oc, n_cols, T::of(scale))
    });
    out
}

fn vjp_bwd_rows<T: Float>(
    p: &[T],
    dp: &[T],
    ybar: &[T],
    n_cols: usize,
    scale: f64,
) -> (Vec<T>, Vec<T>) {
    let chunk = rows_per_task(n_cols) * n_cols;
    let [pbar, dpbar] = par_chunked(chunk, [p, dp, ybar], |[pc, dpc, yc], [pbc, dpbc]| {
        vjp_bwd_kernel(pc, dpc, yc, pbc, dpbc, n_cols, T::of(scale))
    });
    (pbar, dpbar)
}

struct SoftmaxOp {
    scale: f64,
}

struct SoftmaxVjpOp {
    scale: f64,
}

same_shape_ops!(
    SoftmaxOp("wlm-softmax", "softmax") => SoftmaxVjpOp("wlm-softmax-vjp", "softmax_vjp"),
    rows: true,
    vjp: |op| SoftmaxVjpOp { scale: op.scale },
    vjp_of_result: true,
    forward: |op, n_cols, s| softmax_rows(s, n_cols, op.scale),
    vjp_forward: |op, n_cols, p, dp| vjp_rows(p, dp, n_cols, op.scale),
    vjp_backward: |op, n_cols, s| vjp_bwd_rows(s[0], s[1], s[2], n_cols, op.scale),
    backward_reads_result: false,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::entry_rel;
    use candle_core::DType;
    use candle_core::{Device, Var, D};

    fn plain_softmax(s: &Tensor, scale: f64) -> Result<Tensor> {
        let z = s.affine(scale, 0.0)?;
        let max = z.max_keepdim(D::Minus1)?.detach();
        let e = z.broadcast_sub(&max)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    }

    fn plain_vjp(p: &Tensor, dp: &Tensor, scale: f64) -> Result<Tensor> {
        let r = (dp * p)?.sum_keepdim(D::Minus1)?;
        (p * dp.broadcast_sub(&r)?)?.affine(scale, 0.0)
    }

    fn random(shape: (usize, usize, usize), seed: u64, dtype: DType) -> Result<Tensor> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = shape.0 * shape.1 * shape.2;
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
    }

    #[test]
    fn fused_softmax_and_vjp_equal_plain_ops_with_gradients() -> Result<()> {
        for (dtype, tol) in [(DType::F64, 1e-13), (DType::F32, 2e-5)] {
            for &n in &[1usize, 5, 37] {
                let shape = (3, n, n);
                let s = Var::from_tensor(&random(shape, 1, dtype)?)?;
                let dp = Var::from_tensor(&random(shape, 2, dtype)?)?;
                let w = random(shape, 3, dtype)?;
                let scale = 0.37;
                let fused_p = softmax(s.as_tensor(), scale)?;
                let plain_p = plain_softmax(s.as_tensor(), scale)?;
                assert!(entry_rel(&fused_p, &plain_p)? < tol);
                let fused_ds = softmax_vjp(&fused_p, dp.as_tensor(), scale)?;
                let plain_ds = plain_vjp(&plain_p, dp.as_tensor(), scale)?;
                assert!(entry_rel(&fused_ds, &plain_ds)? < tol);
                // A loss that uses P directly and through the VJP checks every backward.
                let loss = |p: &Tensor, ds: &Tensor| -> Result<Tensor> {
                    (ds * &w)?.sum_all()? + (p.sqr()? * &w)?.sum_all()?
                };
                let gf = loss(&fused_p, &fused_ds)?.backward()?;
                let gp = loss(&plain_p, &plain_ds)?.backward()?;
                for var in [&s, &dp] {
                    let a = gf.get(var.as_tensor()).expect("fused grad");
                    let b = gp.get(var.as_tensor()).expect("plain grad");
                    assert!(entry_rel(a, b)? < tol * 10.0, "{dtype:?} n={n}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn softmax_rows_sum_to_one_even_with_huge_logits() -> Result<()> {
        let s = Tensor::new(&[[1e4f32, -1e4, 0.0], [3.0, 3.0, 3.0]], &Device::Cpu)?;
        let p = softmax(&s, 1.0)?;
        let sums = p.sum(1)?.to_vec1::<f32>()?;
        assert!(sums.iter().all(|v| (v - 1.0).abs() < 1e-6), "{sums:?}");
        Ok(())
    }

    #[test]
    fn softmax_vjp_rejects_mismatched_shapes() -> Result<()> {
        let a = Tensor::zeros((2, 3), DType::F64, &Device::Cpu)?;
        let b = Tensor::zeros((3, 2), DType::F64, &Device::Cpu)?;
        let err = softmax_vjp(&a, &b, 1.0).unwrap_err();
        assert!(err.to_string().contains("shapes differ"), "{err}");
        Ok(())
    }
}

//! Fused LayerNorm normalisation and its VJP, as candle custom ops with backward passes.
//!
//! Per row of `H` features: `x̂ = (x − μ)/σ`, `σ = sqrt(var + eps)` (biased variance).
//! `VJP(x, ĝ) = (ĝ − mean(ĝ) − x̂ mean(ĝ ⊙ x̂)) / σ = J ĝ` with `J` symmetric. Its backward, for
//! a cotangent `ȳ` of the VJP's output `dx`: `ĝ̄ = J ȳ` and
//! `x̄ = −(⟨ȳ, dx⟩/(σH)) x̂ − J w`, `w = (⟨ĝ, x̂⟩/(σH)) ȳ + (⟨ȳ, x̂⟩/(σH)) ĝ`.

use candle_core::{Result, Tensor};

use super::float::{simd_dispatch, Float};
use super::rows::{par_chunked, row_dot, row_sum, rows_per_task};
use super::same_shape::{apply_same_shape, same_shape_ops};

/// `x̂` of every row (last dimension), differentiable (backward `J ȳ`).
pub(crate) fn normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(NormalizeOp { eps })
}

/// `J ĝ` of every row, differentiable in `x` and `ĝ`.
pub(crate) fn normalize_vjp(x: &Tensor, g_hat: &Tensor, eps: f64) -> Result<Tensor> {
    apply_same_shape(x, g_hat, NormalizeVjpOp { eps })
}

/// Writes `x̂` of `x` into `xhat` and returns `1/σ`.
#[inline(always)]
fn normalize_row<T: Float>(x: &[T], xhat: &mut [T], eps: T) -> T {
    let inv_h = T::ONE / T::of(x.len() as f64);
    let mean = row_sum(x) * inv_h;
    for (o, &v) in xhat.iter_mut().zip(x) {
        *o = v - mean;
    }
    let var = row_dot(xhat, xhat) * inv_h;
    let inv_sigma = T::ONE / T::of((var + eps).to_f64().sqrt());
    for o in xhat.iter_mut() {
        *o *= inv_sigma;
    }
    inv_sigma
}

/// `out = inv_sigma (g − mean(g) − x̂ mean(g ⊙ x̂))`.
#[inline(always)]
fn apply_j<T: Float>(xhat: &[T], g: &[T], inv_sigma: T, out: &mut [T]) {
    let inv_h = T::ONE / T::of(g.len() as f64);
    let mean_g = row_sum(g) * inv_h;
    let mean_gx = row_dot(g, xhat) * inv_h;
    for ((o, &gj), &xj) in out.iter_mut().zip(g).zip(xhat) {
        *o = inv_sigma * (gj - mean_g - xj * mean_gx);
    }
}

#[inline(always)]
fn normalize_body<T: Float>(x: &[T], out: &mut [T], h: usize, eps: T) {
    for (xrow, orow) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        normalize_row(xrow, orow, eps);
    }
}
simd_dispatch!(fn normalize_kernel<T: Float>(x: &[T], out: &mut [T], h: usize, eps: T) => normalize_body);

#[inline(always)]
fn vjp_body<T: Float>(x: &[T], g: &[T], out: &mut [T], h: usize, eps: T) {
    let mut xhat = vec![T::ZERO; h];
    let rows = x.chunks_exact(h).zip(g.chunks_exact(h));
    for ((xrow, grow), orow) in rows.zip(out.chunks_exact_mut(h)) {
        let inv_sigma = normalize_row(xrow, &mut xhat, eps);
        apply_j(&xhat, grow, inv_sigma, orow);
    }
}
simd_dispatch!(fn vjp_kernel<T: Float>(x: &[T], g: &[T], out: &mut [T], h: usize, eps: T) => vjp_body);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn vjp_bwd_body<T: Float>(
    x: &[T],
    g: &[T],
    dx: &[T],
    ybar: &[T],
    xbar: &mut [T],
    gbar: &mut [T],
    h: usize,
    eps: T,
) {
    let inv_h = T::ONE / T::of(h as f64);
    let mut xhat = vec![T::ZERO; h];
    let mut w = vec![T::ZERO; h];
    let inputs = x
        .chunks_exact(h)
        .zip(g.chunks_exact(h))
        .zip(dx.chunks_exact(h).zip(ybar.chunks_exact(h)));
    let outputs = xbar.chunks_exact_mut(h).zip(gbar.chunks_exact_mut(h));
    for (((xrow, grow), (dxrow, yrow)), (xbrow, gbrow)) in inputs.zip(outputs) {
        let inv_sigma = normalize_row(xrow, &mut xhat, eps);
        apply_j(&xhat, yrow, inv_sigma, gbrow);
        let coef_y = row_dot(grow, &xhat) * inv_sigma * inv_h;
        let coef_g = row_dot(yrow, &xhat) * inv_sigma * inv_h;
        let coef_x = row_dot(yrow, dxrow) * inv_sigma * inv_h;
        for ((wj, &yj), &gj) in w.iter_mut().zip(yrow).zip(grow) {
            *wj = coef_y * yj + coef_g * gj;
        }
        apply_j(&xhat, &w, inv_sigma, xbrow);
        for (xb, &xj) in xbrow.iter_mut().zip(&xhat) {
            *xb = -(*xb) - coef_x * xj;
        }
    }
}
simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn vjp_bwd_kernel<T: Float>(
        x: &[T],
        g: &[T],
        dx: &[T],
        ybar: &[T],
        xbar: &mut [T],
        gbar: &mut [T],
        h: usize,
        eps: T,
    ) => vjp_bwd_body
);

fn normalize_rows<T: Float>(x: &[T], h: usize, eps: f64) -> Vec<T> {
    let chunk = rows_per_task(h) * h;
    let [out] = par_chunked(chunk, [x], |[xc], [o]| {
        normalize_kernel(xc, o, h, T::of(eps))
    });
    out
}

fn vjp_rows<T: Float>(x: &[T], g: &[T], h: usize, eps: f64) -> Vec<T> {
    let chunk = rows_per_task(h) * h;
    let [out] = par_chunked(chunk, [x, g], |[xc, gc], [o]| {
        vjp_kernel(xc, gc, o, h, T::of(eps))
    });
    out
}

fn vjp_bwd_rows<T: Float>(
    x: &[T],
    g: &[T],
    dx: &[T],
    ybar: &[T],
    h: usize,
    eps: f64,
) -> (Vec<T>, Vec<T>) {
    let chunk = rows_per_task(h) * h;
    let [xbar, gbar] = par_chunked(chunk, [x, g, dx, ybar], |[xc, gc, dc, yc], [xb, gb]| {
        vjp_bwd_kernel(xc, gc, dc, yc, xb, gb, h, T::of(eps))
    });
    (xbar, gbar)
}

struct NormalizeOp {
    eps: f64,
}

struct NormalizeVjpOp {
    eps: f64,
}

same_shape_ops!(
    NormalizeOp("wlm-layer-norm", "layer_norm")
        => NormalizeVjpOp("wlm-layer-norm-vjp", "layer_norm_vjp"),
    rows: true,
    vjp: |op| NormalizeVjpOp { eps: op.eps },
    vjp_of_result: false,
    forward: |op, h, x| normalize_rows(x, h, op.eps),
    vjp_forward: |op, h, x, g| vjp_rows(x, g, h, op.eps),
    vjp_backward: |op, h, s| vjp_bwd_rows(s[0], s[1], s[2], s[3], h, op.eps),
    backward_reads_result: true,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::entry_rel;
    use candle_core::DType;
    use candle_core::{Device, Var, D};

    fn plain_normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
        let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let sigma = (xc.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
        xc.broadcast_div(&sigma)
    }

    fn plain_vjp(x: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
        let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let sigma = (xc.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
        let xhat = xc.broadcast_div(&sigma)?;
        let m1 = g.mean_keepdim(D::Minus1)?;
        let m2 = (g * &xhat)?.mean_keepdim(D::Minus1)?;
        g.broadcast_sub(&m1)?
            .sub(&xhat.broadcast_mul(&m2)?)?
            .broadcast_div(&sigma)
    }

    fn random(shape: (usize, usize), seed: u64, dtype: DType) -> Result<Tensor> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let v: Vec<f64> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
    }

    #[test]
    fn fused_layer_norm_and_vjp_equal_plain_ops_with_gradients() -> Result<()> {
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-4)] {
            for &(n, h) in &[(1usize, 3usize), (7, 8), (600, 13)] {
                let x = Var::from_tensor(&random((n, h), 1, dtype)?)?;
                let g = Var::from_tensor(&random((n, h), 2, dtype)?)?;
                let w = random((n, h), 3, dtype)?;
                let eps = 1e-5;
                let fx = normalize(x.as_tensor(), eps)?;
                let px = plain_normalize(x.as_tensor(), eps)?;
                assert!(entry_rel(&fx, &px)? < tol);
                let fd = normalize_vjp(x.as_tensor(), g.as_tensor(), eps)?;
                let pd = plain_vjp(x.as_tensor(), g.as_tensor(), eps)?;
                assert!(entry_rel(&fd, &pd)? < tol);
                let loss = |y: &Tensor, d: &Tensor| -> Result<Tensor> {
                    (y.sqr()? * &w)?.sum_all()? + (d * &w)?.sum_all()?
                };
                let gf = loss(&fx, &fd)?.backward()?;
                let gp = loss(&px, &pd)?.backward()?;
                for var in [&x, &g] {
                    let a = gf.get(var.as_tensor()).expect("fused grad");
                    let b = gp.get(var.as_tensor()).expect("plain grad");
                    assert!(entry_rel(a, b)? < tol * 10.0, "{dtype:?} n={n} h={h}");
                }
            }
        }
        Ok(())
    }
}

//! Fused exact (erf) GELU and its VJP, as candle custom ops with backward passes.
//!
//! `gelu(z) = z Φ(z)`, `gelu'(z) = Φ(z) + z φ(z)`, `gelu''(z) = φ(z) (2 − z²)`, with
//! `Φ(z) = ½(1 + erf(z/√2))` and `φ(z) = exp(−z²/2)/√(2π)`.

use candle_core::{Result, Tensor};

use super::float::{simd_dispatch, Float};
use super::rows::par_chunked;
use super::same_shape::{apply_same_shape, same_shape_ops};

const CHUNK: usize = 16_384;

/// `gelu(z)` elementwise, differentiable (backward `ȳ gelu'(z)`).
pub(crate) fn gelu(z: &Tensor) -> Result<Tensor> {
    z.contiguous()?.apply_op1(GeluOp)
}

/// `g ⊙ gelu'(z)`, differentiable in `z` and `g`.
pub(crate) fn gelu_vjp(z: &Tensor, g: &Tensor) -> Result<Tensor> {
    apply_same_shape(z, g, GeluVjpOp)
}

#[inline(always)]
fn phi_cdf<T: Float>(z: T) -> (T, T) {
    let pdf = T::of(0.398_942_280_401_432_7) * (T::of(-0.5) * z * z).exp_v();
    (cdf_only(z), pdf)
}

/// `Φ(z)` from `erf` (no `exp` for f32; absolute error < 5e-7 there).
#[inline(always)]
fn cdf_only<T: Float>(z: T) -> T {
    T::of(0.5) * (T::ONE + (z * T::of(std::f64::consts::FRAC_1_SQRT_2)).erf_v())
}

#[inline(always)]
fn gelu_body<T: Float>(z: &[T], out: &mut [T]) {
    for (o, &zi) in out.iter_mut().zip(z) {
        *o = zi * cdf_only(zi);
    }
}
simd_dispatch!(fn gelu_kernel<T: Float>(z: &[T], out: &mut [T]) => gelu_body);

#[inline(always)]
fn vjp_body<T: Float>(z: &[T], g: &[T], out: &mut [T]) {
    for ((o, &zi), &gi) in out.iter_mut().zip(z).zip(g) {
        let (cdf, pdf) = phi_cdf(zi);
        *o = gi * (cdf + zi * pdf);
    }
}
simd_dispatch!(fn vjp_kernel<T: Float>(z: &[T], g: &[T], out: &mut [T]) => vjp_body);

#[inline(always)]
fn vjp_bwd_body<T: Float>(z: &[T], g: &[T], ybar: &[T], zbar: &mut [T], gbar: &mut [T]) {
    let inputs = z.iter().zip(g).zip(ybar);
    for ((zb, gb), ((&zi, &gi), &yi)) in zbar.iter_mut().zip(gbar.iter_mut()).zip(inputs) {
        let (cdf, pdf) = phi_cdf(zi);
        *zb = yi * gi * pdf * (T::of(2.0) - zi * zi);
        *gb = yi * (cdf + zi * pdf);
    }
}
simd_dispatch!(fn vjp_bwd_kernel<T: Float>(z: &[T], g: &[T], ybar: &[T], zbar: &mut [T], gbar: &mut [T]) => vjp_bwd_body);

fn gelu_all<T: Float>(z: &[T]) -> Vec<T> {
    let [out] = par_chunked(CHUNK, [z], |[zc], [o]| gelu_kernel(zc, o));
    out
}

fn vjp_all<T: Float>(z: &[T], g: &[T]) -> Vec<T> {
    let [out] = par_chunked(CHUNK, [z, g], |[zc, gc], [o]| vjp_kernel(zc, gc, o));
    out
}

fn vjp_bwd_all<T: Float>(z: &[T], g: &[T], ybar: &[T]) -> (Vec<T>, Vec<T>) {
    let [zbar, gbar] = par_chunked(CHUNK, [z, g, ybar], |[zc, gc, yc], [zb, gb]| {
        vjp_bwd_kernel(zc, gc, yc, zb, gb)
    });
    (zbar, gbar)
}

struct GeluOp;

struct GeluVjpOp;

same_shape_ops!(
    GeluOp("wlm-gelu", "gelu") => GeluVjpOp("wlm-gelu-vjp", "gelu_vjp"),
    rows: false,
    vjp: |_op| GeluVjpOp,
    vjp_of_result: false,
    forward: |_op, _d, z| gelu_all(z),
    vjp_forward: |_op, _d, z, g| vjp_all(z, g),
    vjp_backward: |_op, _d, s| vjp_bwd_all(s[0], s[1], s[2]),
    backward_reads_result: false,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::within;
    use candle_core::DType;
    use candle_core::{Device, Var};

    fn plain_gelu(z: &Tensor) -> Result<Tensor> {
        let cdf = ((z * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5;
        z * cdf?
    }

    fn plain_gelu_vjp(z: &Tensor, g: &Tensor) -> Result<Tensor> {
        let cdf = (((z * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        let pdf = ((z.sqr()? * -0.5)?.exp()? * 0.398_942_280_401_432_7)?;
        g * (cdf + (z * pdf)?)?
    }

    #[test]
    fn fused_gelu_and_vjp_equal_plain_ops_with_gradients() -> Result<()> {
        let n = 40_000; // more than one rayon chunk
        let zs: Vec<f64> = (0..n)
            .map(|i| -9.0 + 18.0 * (i as f64) / (n as f64))
            .collect();
        let gs: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 101) as f64) / 50.0 - 1.0)
            .collect();
        let ws: Vec<f64> = (0..n)
            .map(|i| ((i * 53 % 97) as f64) / 48.0 - 1.0)
            .collect();
        for (dtype, tol) in [(DType::F64, 1e-14), (DType::F32, 3e-6)] {
            let z = Var::from_tensor(&Tensor::new(zs.as_slice(), &Device::Cpu)?.to_dtype(dtype)?)?;
            let g = Var::from_tensor(&Tensor::new(gs.as_slice(), &Device::Cpu)?.to_dtype(dtype)?)?;
            let w = Tensor::new(ws.as_slice(), &Device::Cpu)?.to_dtype(dtype)?;
            let fy = gelu(z.as_tensor())?;
            // The reference in f64: in f32, `1 + erf(z/√2)` cancels in the left tail.
            let z64 = z.as_tensor().to_dtype(DType::F64)?;
            let py = plain_gelu(&z64)?;
            // f32: `cdf_only` has an absolute error below 5e-7 (no `exp`), so gelu's error in
            // the left tail, where `z Φ(z)` is tiny, is absolute: 5e-7·|z| ≤ 4.5e-6 here.
            let atol = if dtype == DType::F32 { 5e-6 } else { 1e-15 };
            within(&fy, &py, atol, tol, &format!("gelu {dtype:?}"))?;
            let fd = gelu_vjp(z.as_tensor(), g.as_tensor())?;
            let pd = plain_gelu_vjp(&z64, &g.as_tensor().to_dtype(DType::F64)?)?;
            // `g (Φ + zφ)`: Φ's absolute error times |g| ≤ 1.
            let atol = if dtype == DType::F32 { 1e-6 } else { 1e-15 };
            within(&fd, &pd, atol, tol, &format!("gelu vjp {dtype:?}"))?;
            let loss = |y: &Tensor, d: &Tensor| -> Result<Tensor> {
                let w = w.to_dtype(y.dtype())?;
                (y * &w)?.sum_all()? + (d * &w)?.sum_all()?
            };
            let gf = loss(&fy, &fd)?.backward()?;
            let gp = loss(&py, &pd)?.backward()?;
            for var in [&z, &g] {
                let a = gf.get(var.as_tensor()).expect("fused grad");
                let b = gp.get(var.as_tensor()).expect("plain grad");
                // f32: two terms of Φ's absolute error times |w| ≤ 1; f64: the two terms cancel.
                let atol = if dtype == DType::F32 { 2e-6 } else { 1e-15 };
                within(a, b, atol, tol * 4.0, &format!("gelu gradients {dtype:?}"))?;
            }
        }
        Ok(())
    }
}

//! Row-broadcast `x + b` and `x ⊙ w` (a `(n, f)` matrix with an `(f,)` vector) whose backward passes sum columns fast.
//!
//! candle's own broadcast ops reduce the vector's gradient with a strided sum over rows, which
//! dominated the parameter backward of small layers; these ops sum columns in one contiguous pass.

use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::float::{simd_dispatch, Float};
use super::{run_kernel2, with_slices, Kernel2};

/// `x + b` with `b` broadcast over rows.
///
/// # Shapes
/// `x`: `(n, f)`, `b`: `(f,)` → `(n, f)`.
pub(crate) fn add_row(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, RowOp::Add)
}

/// `x ⊙ w` with `w` broadcast over rows.
///
/// # Shapes
/// `x`: `(n, f)`, `w`: `(f,)` → `(n, f)`.
pub(crate) fn mul_row(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RowOp::Mul)
}

#[derive(Clone, Copy)]
enum RowOp {
    Add,
    Mul,
}

#[inline(always)]
fn apply_body<T: Float>(x: &[T], v: &[T], out: &mut [T], add: bool) {
    let f = v.len();
    for (x_row, o_row) in x.chunks_exact(f).zip(out.chunks_exact_mut(f)) {
        if add {
            for ((o, &xi), &vi) in o_row.iter_mut().zip(x_row).zip(v) {
                *o = xi + vi;
            }
        } else {
            for ((o, &xi), &vi) in o_row.iter_mut().zip(x_row).zip(v) {
                *o = xi * vi;
            }
        }
    }
}
simd_dispatch!(fn apply_kernel<T: Float>(x: &[T], v: &[T], out: &mut [T], add: bool) => apply_body);

/// `out[j] = Σ_i a[i][j] (· b[i][j])`; `out_scaled[i][j] = a[i][j] · w[j]` when `w` is given.
#[inline(always)]
fn column_sums_body<T: Float>(a: &[T], b: &[T], out: &mut [T], with_b: bool) {
    let f = out.len();
    out.iter_mut().for_each(|o| *o = T::ZERO);
    if with_b {
        for (a_row, b_row) in a.chunks_exact(f).zip(b.chunks_exact(f)) {
            for ((o, &ai), &bi) in out.iter_mut().zip(a_row).zip(b_row) {
                *o += ai * bi;
            }
        }
    } else {
        for a_row in a.chunks_exact(f) {
            for (o, &ai) in out.iter_mut().zip(a_row) {
                *o += ai;
            }
        }
    }
}
simd_dispatch!(fn column_sums_kernel<T: Float>(a: &[T], b: &[T], out: &mut [T], with_b: bool) => column_sums_body);

fn check(l1: &Layout, l2: &Layout) -> Result<usize> {
    match (l1.shape().dims(), l2.shape().dims()) {
        (&[_, f], &[g]) if f == g && f > 0 => Ok(f),
        (a, b) => bail!("row broadcast: expected (n, f) and (f,), got {a:?} and {b:?}"),
    }
}

impl Kernel2 for RowOp {
    fn apply<T: Float>(&self, x: &[T], v: &[T]) -> Result<Vec<T>> {
        let mut out = vec![T::ZERO; x.len()];
        apply_kernel(x, v, &mut out, matches!(self, RowOp::Add));
        Ok(out)
    }
}

impl CustomOp2 for RowOp {
    fn name(&self) -> &'static str {
        match self {
            RowOp::Add => "wlm-add-row",
            RowOp::Mul => "wlm-mul-row",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        check(l1, l2)?;
        let out = run_kernel2(self, (s1, l1), (s2, l2), "row broadcast")?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let f = v.dim(0)?;
        let device = x.device().clone();
        fn sums<T: Float>(a: &[T], b: &[T], f: usize, with_b: bool) -> Vec<T> {
            let mut out = vec![T::ZERO; f];
            column_sums_kernel(a, b, &mut out, with_b);
            out
        }
        match self {
            RowOp::Add => {
                let v_bar = match grad.dtype() {
                    DType::F32 => with_slices::<f32, _>(&[grad], |s| {
                        Tensor::from_vec(sums(s[0], s[0], f, false), f, &device)
                    })?,
                    DType::F64 => with_slices::<f64, _>(&[grad], |s| {
                        Tensor::from_vec(sums(s[0], s[0], f, false), f, &device)
                    })?,
                    other => bail!("row broadcast backward: unsupported dtype {other:?}"),
                };
                Ok((Some(grad.clone()), Some(v_bar)))
            }
            RowOp::Mul => {
                let x_bar = grad
                    .contiguous()?
                    .apply_op2_no_bwd(&v.contiguous()?, &RowOp::Mul)?;
                let v_bar = match grad.dtype() {
                    DType::F32 => with_slices::<f32, _>(&[grad, x], |s| {
                        Tensor::from_vec(sums(s[0], s[1], f, true), f, &device)
                    })?,
                    DType::F64 => with_slices::<f64, _>(&[grad, x], |s| {
                        Tensor::from_vec(sums(s[0], s[1], f, true), f, &device)
                    })?,
                    other => bail!("row broadcast backward: unsupported dtype {other:?}"),
                };
                Ok((Some(x_bar), Some(v_bar)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{entry_rel, random};
    use candle_core::Var;

    #[test]
    fn row_ops_equal_candle_broadcasts_with_gradients() -> Result<()> {
        for dtype in [DType::F64, DType::F32] {
            let x = Var::from_tensor(&random(&[37, 13], 1, -1.0, 1.0)?.to_dtype(dtype)?)?;
            let v = Var::from_tensor(&random(&[13], 2, -1.0, 1.0)?.to_dtype(dtype)?)?;
            let w = random(&[37, 13], 3, -1.0, 1.0)?.to_dtype(dtype)?;
            let fused = add_row(&mul_row(x.as_tensor(), v.as_tensor())?, v.as_tensor())?;
            let plain = x
                .broadcast_mul(v.as_tensor())?
                .broadcast_add(v.as_tensor())?;
            let tol = if dtype == DType::F64 { 1e-15 } else { 1e-6 };
            assert!(entry_rel(&fused, &plain)? < tol);
            let gf = (fused.sqr()? * &w)?.sum_all()?.backward()?;
            let gp = (plain.sqr()? * &w)?.sum_all()?.backward()?;
            for var in [&x, &v] {
                let a = gf.get(var.as_tensor()).expect("fused grad");
                let b = gp.get(var.as_tensor()).expect("plain grad");
                assert!(entry_rel(a, b)? < 10.0 * tol, "{dtype:?}");
            }
        }
        let err = add_row(&random(&[3, 4], 1, 0.0, 1.0)?, &random(&[3], 1, 0.0, 1.0)?).unwrap_err();
        assert!(err.to_string().contains("(f,)"), "{err}");
        Ok(())
    }
}

//! The fused attention as candle custom ops: `O = softmax(s Q Kᵀ) V` ([`attention`],
//! [`attention_keeping_probabilities`]) and its VJP ([`attention_vjp`]), each differentiable
//! (the forward's backward is the VJP kernel; the VJP's backward is the second-order kernel of
//! [`super::attention_hvp`]). The kernels themselves are in [`super::attention`].

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Device, Layout, Result, Shape, Tensor};

use super::attention::*;
use super::attention_hvp::vjp_backward;
use super::float::Float;
use super::{run_kernel1, run_kernel2, Kernel1, Kernel2, Shaped};

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

impl Kernel1 for Shaped<'_, AttentionOp, (usize, usize, usize)> {
    fn apply<T: Float>(&self, qkv: &[T]) -> Result<Vec<T>> {
        let (op, (heads, n, c)) = (self.0, self.1);
        let keep = op.kept.is_some();
        let (out, p) = forward_all(qkv, heads, n, c, op.scale, keep);
        if let Some(kept) = &op.kept {
            *lock_kept(kept)? = Some(Tensor::from_vec(p, (heads, n, n), &Device::Cpu)?);
        }
        Ok(out)
    }
}

impl Kernel2 for Shaped<'_, AttentionVjpOp, (usize, usize, usize)> {
    fn apply<T: Float>(&self, qkv: &[T], g: &[T]) -> Result<Vec<T>> {
        let (op, (heads, n, c)) = (self.0, self.1);
        with_probabilities::<T, _>(op.p.as_ref(), |p| {
            Ok(vjp_all(qkv, g, p, heads, n, c, op.scale))
        })
    }
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "wlm-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (heads, n, c) = qkv_dims(layout.shape(), "attention")?;
        let out = run_kernel1(&Shaped(self, (heads, n, c)), storage, layout, "attention")?;
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
        let dims = Shaped(self, (heads, n, c));
        let out = run_kernel2(&dims, (s1, l1), (s2, l2), "attention_vjp")?;
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
    use crate::testing::{entry_rel, random, within};
    use candle_core::{DType, Var, D};

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
                    let (w_o, w_d) = (w_o.to_dtype(o.dtype())?, w_d.to_dtype(o.dtype())?);
                    (o * &w_o)?.sum_all()? + (d * &w_d)?.sum_all()?
                };
                // The reference is the plain graph in f64 for both precisions, so the f32 check
                // measures the fused kernel's own error.
                let (q64, g64) = (
                    qkv.as_tensor().to_dtype(DType::F64)?,
                    g.as_tensor().to_dtype(DType::F64)?,
                );
                let po = plain_attention(&q64, scale)?;
                let pd = plain_vjp(&q64, &g64, scale)?;
                let gp = loss(&po, &pd)?.backward()?;
                // f64: entry-wise relative error. f32: sums of up to 3n products of entries
                // below 1.5 round to about √(3n)·ε₃₂·1.5 absolutely, whatever the sum's size.
                let atol = 1e-7 * (3.0 * n as f64).sqrt();
                let check = |got: &Tensor, want: &Tensor, tol: f64, what: String| -> Result<()> {
                    if dtype == DType::F64 {
                        let err = entry_rel(got, want)?;
                        assert!(err < tol, "{what}: {err:e}");
                        Ok(())
                    } else {
                        within(got, want, atol, tol, &what)
                    }
                };
                // With P recomputed, and with P kept from the forward pass.
                for keep in [false, true] {
                    let what = format!("{dtype:?} keep={keep} {heads} {n} {c}");
                    let (fo, p) = if keep {
                        let (o, p) = attention_keeping_probabilities(qkv.as_tensor(), scale)?;
                        (o, Some(p))
                    } else {
                        (attention(qkv.as_tensor(), scale)?, None)
                    };
                    check(&fo, &po, tol, format!("O {what}"))?;
                    if let Some(p) = &p {
                        let (q, k) = (q64.get(0)?, q64.get(1)?);
                        let s = (q.matmul(&k.t()?)? * scale)?;
                        let want = candle_nn::ops::softmax_last_dim(&s)?;
                        check(p, &want, tol, format!("P {what}"))?;
                    }
                    let fd = attention_vjp(qkv.as_tensor(), g.as_tensor(), p.as_ref(), scale)?;
                    check(&fd, &pd, tol, format!("dqkv {what}"))?;
                    let gf = loss(&fo, &fd)?.backward()?;
                    for var in [&qkv, &g] {
                        let a = gf.get(var.as_tensor()).expect("fused grad");
                        let b = gp.get(var.as_tensor()).expect("plain grad");
                        check(a, b, 10.0 * tol, format!("grad {what}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

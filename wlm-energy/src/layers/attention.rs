//! Full multi-head self-attention (PyTorch's packed in-projection) with its input VJP.
//!
//! Head `j` of width `c = H/heads`: `S_j = Q_j K_jᵀ / √c`, `P_j = softmax_rows(S_j)`,
//! `O_j = P_j V_j`, `y = [O_1 … O_heads] Wₒᵀ + bₒ`. The VJP (METHOD.md Appendix A):
//! `dO = g Wₒ`, `dP = dO Vᵀ`, `dV = Pᵀ dO`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`,
//! `dQ = dS K/√c`, `dK = dSᵀ Q/√c`, `du = dQ W_q + dK W_k + dV W_v`.

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::linear::Linear;
use crate::dropout::{self, Dropout};
use crate::kernels::{attention_op as fused_attention, broadcast, softmax as fused, Kernels};
use crate::weights::{linear_init, xavier_uniform};

/// Largest `heads · n²` for which the fused forward pass keeps the attention probabilities for
/// the VJP (2²⁴ values: 64 MB per block in f32, `n` up to 2048 with 4 heads); above it the VJP
/// and its backward recompute them block by block.
pub(crate) const KEEP_PROBABILITIES_MAX: usize = 1 << 24;

/// `nn.MultiheadAttention(hidden, heads)` with biases, self-attention `q = k = v = u`.
#[derive(Clone, Debug)]
pub(crate) struct MultiHeadAttention {
    pub(crate) in_proj_weight: Tensor,
    pub(crate) in_proj_bias: Tensor,
    pub(crate) out_proj: Linear,
    heads: usize,
    hidden: usize,
}

/// What the VJP needs from the forward pass.
pub(crate) enum AttentionCache {
    /// The probabilities are kept (plain kernels, or dropout active).
    Materialized {
        /// `(heads, n, c)` each.
        q: Tensor,
        k: Tensor,
        v: Tensor,
        /// Softmax probabilities `(heads, n, n)` before dropout.
        p: Tensor,
        /// Dropout mask on `P`, if any.
        mask: Option<Tensor>,
    },
    /// Fused attention: the packed projections `(3, heads, n, c)` and, when kept, the
    /// probabilities `(heads, n, n)` (detached; otherwise the VJP recomputes them).
    Fused { qkv: Tensor, p: Option<Tensor> },
}

impl MultiHeadAttention {
    /// PyTorch's initialisation: in-projection Xavier-uniform with zero bias, out-projection
    /// weight like a Linear, zero out-projection bias.
    pub(crate) fn new(vb: VarBuilder, hidden: usize, heads: usize) -> Result<Self> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden size {hidden} is not divisible by heads {heads}");
        }
        let in_proj_weight = vb.get_with_hints(
            (3 * hidden, hidden),
            "in_proj_weight",
            xavier_uniform(hidden, 3 * hidden),
        )?;
        let in_proj_bias = vb.get_with_hints(3 * hidden, "in_proj_bias", Init::Const(0.0))?;
        let out_proj = Linear::with_init(
            vb.pp("out_proj"),
            hidden,
            hidden,
            linear_init(hidden),
            Init::Const(0.0),
        )?;
        Ok(MultiHeadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            heads,
            hidden,
        })
    }

    /// Whether the fused forward pass keeps `P` for a VJP at `n` particles (without dropout).
    pub(crate) fn keeps_probabilities(&self, n: usize) -> bool {
        self.heads * n * n <= KEEP_PROBABILITIES_MAX
    }

    /// Number of heads.
    pub(crate) fn heads(&self) -> usize {
        self.heads
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    fn scale(&self) -> f64 {
        (1.0 / self.head_dim() as f64).sqrt()
    }

    /// `keep_probabilities`: a VJP will follow, so the fused kernels keep `P` for it when it
    /// is small enough ([`KEEP_PROBABILITIES_MAX`]).
    ///
    /// # Shapes
    /// `u`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn forward(
        &self,
        u: &Tensor,
        kernels: Kernels,
        dropout: &Dropout,
        keep_probabilities: bool,
    ) -> Result<(Tensor, AttentionCache)> {
        let n = u.dim(0)?;
        let (heads, c) = (self.heads, self.head_dim());
        let qkv = u.matmul(&self.in_proj_weight.t()?)?;
        let qkv = match kernels {
            Kernels::Plain => qkv.broadcast_add(&self.in_proj_bias)?,
            Kernels::Fused => broadcast::add_row(&qkv, &self.in_proj_bias)?,
        };
        // (n, 3H) → (3, heads, n, c)
        let qkv = qkv
            .reshape((n, 3, heads, c))?
            .permute((1, 2, 0, 3))?
            .contiguous()?;
        if kernels == Kernels::Fused && !dropout.active() {
            let (o, p) = if keep_probabilities && self.keeps_probabilities(n) {
                let (o, p) = fused_attention::attention_keeping_probabilities(&qkv, self.scale())?;
                (o, Some(p))
            } else {
                (fused_attention::attention(&qkv, self.scale())?, None)
            };
            let o = o.transpose(0, 1)?.reshape((n, self.hidden))?;
            let y = self.out_proj.forward_with(&o, kernels)?;
            return Ok((y, AttentionCache::Fused { qkv, p }));
        }
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let p = match kernels {
            Kernels::Plain => {
                let s = q.affine(self.scale(), 0.0)?.matmul(&k.t()?)?;
                let max = s.max_keepdim(D::Minus1)?.detach();
                let e = s.broadcast_sub(&max)?.exp()?;
                e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?
            }
            Kernels::Fused => fused::softmax(&q.matmul(&k.t()?)?, self.scale())?,
        };
        let mask = dropout.mask(p.dims(), p.dtype(), p.device())?;
        let o = dropout::apply(&p, mask.as_ref())?.matmul(&v)?;
        let o = o.transpose(0, 1)?.reshape((n, self.hidden))?;
        let y = self.out_proj.forward_with(&o, kernels)?;
        Ok((y, AttentionCache::Materialized { q, k, v, p, mask }))
    }

    /// # Shapes
    /// `g`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn vjp(
        &self,
        cache: &AttentionCache,
        g: &Tensor,
        kernels: Kernels,
    ) -> Result<Tensor> {
        let n = g.dim(0)?;
        let (heads, c) = (self.heads, self.head_dim());
        let scale = self.scale();
        let d_o = self
            .out_proj
            .vjp(g)?
            .reshape((n, heads, c))?
            .transpose(0, 1)?
            .contiguous()?;
        let d_qkv = match cache {
            AttentionCache::Fused { qkv, p } => {
                fused_attention::attention_vjp(qkv, &d_o, p.as_ref(), scale)?
            }
            AttentionCache::Materialized { q, k, v, p, mask } => {
                let p_used = dropout::apply(p, mask.as_ref())?;
                let d_v = p_used.t()?.matmul(&d_o)?;
                let d_p = dropout::apply(&d_o.matmul(&v.t()?)?, mask.as_ref())?;
                let (d_q, d_k) = match kernels {
                    Kernels::Plain => {
                        let r = (&d_p * p)?.sum_keepdim(D::Minus1)?;
                        let d_s = (p * d_p.broadcast_sub(&r)?)?;
                        (
                            d_s.matmul(k)?.affine(scale, 0.0)?,
                            d_s.t()?.matmul(q)?.affine(scale, 0.0)?,
                        )
                    }
                    Kernels::Fused => {
                        let d_s = fused::softmax_vjp(p, &d_p, scale)?;
                        (d_s.matmul(k)?, d_s.t()?.matmul(q)?)
                    }
                };
                Tensor::stack(&[d_q, d_k, d_v], 0)?
            }
        };
        // (3, heads, n, c) → (n, 3H)
        let d_qkv = d_qkv.permute((2, 0, 1, 3))?.reshape((n, 3 * self.hidden))?;
        d_qkv.matmul(&self.in_proj_weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use crate::weights::seeded_var_builder;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    fn attention(hidden: usize, heads: usize, seed: u64) -> Result<MultiHeadAttention> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, seed, DType::F64, &Device::Cpu);
        let mut mha = MultiHeadAttention::new(vb, hidden, heads)?;
        // Move the zero-initialised biases away from zero so the check covers them.
        mha.in_proj_bias = random(&[3 * hidden], seed + 1, -0.3, 0.3)?;
        mha.out_proj.bias = random(&[hidden], seed + 2, -0.3, 0.3)?;
        Ok(mha)
    }

    #[test]
    fn attention_vjp_matches_autograd() -> Result<()> {
        let dropout = Dropout::new(0.0, 0)?;
        for &(n, hidden, heads) in &[(1usize, 8usize, 1usize), (2, 8, 4), (17, 12, 4), (33, 8, 1)] {
            let mha = attention(hidden, heads, 3)?;
            let u = Var::from_tensor(&random(&[n, hidden], 4, -2.0, 2.0)?)?;
            let (y, cache) = mha.forward(u.as_tensor(), Kernels::Plain, &dropout, true)?;
            let g = random(&[n, hidden], 5, -1.0, 1.0)?;
            let auto = autograd_vjp(&u, &y, &g)?;
            let hand = mha.vjp(&cache, &g, Kernels::Plain)?;
            assert!(entry_rel(&hand, &auto)? < 1e-12, "n={n} heads={heads}");
        }
        Ok(())
    }

    #[test]
    fn attention_vjp_with_a_dropout_mask_matches_autograd() -> Result<()> {
        let dropout = Dropout::new(0.3, 9)?;
        let mha = attention(8, 2, 7)?;
        let u = Var::from_tensor(&random(&[11, 8], 4, -2.0, 2.0)?)?;
        let (y, cache) = mha.forward(u.as_tensor(), Kernels::Plain, &dropout, true)?;
        assert!(matches!(
            cache,
            AttentionCache::Materialized { mask: Some(_), .. }
        ));
        let g = random(&[11, 8], 5, -1.0, 1.0)?;
        let auto = autograd_vjp(&u, &y, &g)?;
        assert!(entry_rel(&mha.vjp(&cache, &g, Kernels::Plain)?, &auto)? < 1e-12);
        Ok(())
    }

    #[test]
    fn fused_attention_equals_plain() -> Result<()> {
        let dropout = Dropout::new(0.0, 0)?;
        let mha = attention(16, 4, 3)?;
        let u = random(&[40, 16], 4, -2.0, 2.0)?;
        let g = random(&[40, 16], 5, -1.0, 1.0)?;
        let (yp, cp) = mha.forward(&u, Kernels::Plain, &dropout, true)?;
        let dp = mha.vjp(&cp, &g, Kernels::Plain)?;
        for keep in [true, false] {
            let (yf, cf) = mha.forward(&u, Kernels::Fused, &dropout, keep)?;
            assert!(
                matches!(&cf, AttentionCache::Fused { p, .. } if p.is_some() == keep),
                "keep={keep}"
            );
            assert!(entry_rel(&yf, &yp)? < 1e-13, "keep={keep}");
            let df = mha.vjp(&cf, &g, Kernels::Fused)?;
            assert!(entry_rel(&df, &dp)? < 1e-12, "keep={keep}");
        }
        Ok(())
    }

    #[test]
    fn fused_attention_with_dropout_equals_plain() -> Result<()> {
        let dropout = Dropout::new(0.3, 1)?;
        let mha = attention(16, 4, 3)?;
        let u = random(&[25, 16], 4, -2.0, 2.0)?;
        let g = random(&[25, 16], 5, -1.0, 1.0)?;
        dropout.reseed(8)?;
        let (yp, cp) = mha.forward(&u, Kernels::Plain, &dropout, true)?;
        dropout.reseed(8)?;
        let (yf, cf) = mha.forward(&u, Kernels::Fused, &dropout, true)?;
        assert!(matches!(
            cf,
            AttentionCache::Materialized { mask: Some(_), .. }
        ));
        assert!(entry_rel(&yf, &yp)? < 1e-13);
        let dp = mha.vjp(&cp, &g, Kernels::Plain)?;
        let df = mha.vjp(&cf, &g, Kernels::Fused)?;
        assert!(entry_rel(&df, &dp)? < 1e-12);
        Ok(())
    }

    #[test]
    fn indivisible_heads_are_an_error() {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 0, DType::F64, &Device::Cpu);
        let err = MultiHeadAttention::new(vb, 10, 4).unwrap_err();
        assert!(err.to_string().contains("not divisible"), "{err}");
    }
}

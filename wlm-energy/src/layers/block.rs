//! The pre-LayerNorm transformer block `h += MHA(LN1(h)); h += FFN(LN2(h))` and its VJP.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{AttentionCache, MultiHeadAttention};
use super::feed_forward::{FeedForward, FeedForwardCache};
use super::layer_norm::{LayerNorm, LayerNormCache};
use crate::dropout::Dropout;
use crate::kernels::Kernels;

/// One of the reference's `flow_layers`: `norm1`, `self_attn`, `norm2`, `ffn`.
#[derive(Clone, Debug)]
pub(crate) struct FlowBlock {
    pub(crate) norm1: LayerNorm,
    pub(crate) self_attn: MultiHeadAttention,
    pub(crate) norm2: LayerNorm,
    pub(crate) ffn: FeedForward,
}

/// What the VJP needs from the forward pass.
pub(crate) struct FlowBlockCache {
    norm1: LayerNormCache,
    attn: AttentionCache,
    norm2: LayerNormCache,
    ffn: FeedForwardCache,
}

impl FlowBlock {
    pub(crate) fn new(vb: VarBuilder, hidden: usize, heads: usize, ff: usize) -> Result<Self> {
        Ok(FlowBlock {
            norm1: LayerNorm::new(vb.pp("norm1"), hidden)?,
            self_attn: MultiHeadAttention::new(vb.pp("self_attn"), hidden, heads)?,
            norm2: LayerNorm::new(vb.pp("norm2"), hidden)?,
            ffn: FeedForward::new(vb.pp("ffn"), hidden, ff)?,
        })
    }

    /// `keep_probabilities`: a VJP will follow (see `MultiHeadAttention::forward`).
    ///
    /// # Shapes
    /// `h`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn forward(
        &self,
        h: &Tensor,
        kernels: Kernels,
        dropout: &Dropout,
        keep_probabilities: bool,
    ) -> Result<(Tensor, FlowBlockCache)> {
        let (u1, norm1) = self.norm1.forward(h, kernels)?;
        let (a, attn) = self
            .self_attn
            .forward(&u1, kernels, dropout, keep_probabilities)?;
        let h1 = (h + a)?;
        let (u2, norm2) = self.norm2.forward(&h1, kernels)?;
        let (f, ffn) = self.ffn.forward(&u2, kernels, dropout)?;
        let h2 = (h1 + f)?;
        Ok((
            h2,
            FlowBlockCache {
                norm1,
                attn,
                norm2,
                ffn,
            },
        ))
    }

    /// Residual VJPs: `g₁ = g + LN2ᵀ(FFNᵀ(g))`, `g₀ = g₁ + LN1ᵀ(MHAᵀ(g₁))`.
    ///
    /// # Shapes
    /// `g`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn vjp(
        &self,
        cache: &FlowBlockCache,
        g: &Tensor,
        kernels: Kernels,
    ) -> Result<Tensor> {
        let d_u2 = self.ffn.vjp(&cache.ffn, g, kernels)?;
        let g1 = (g + self.norm2.vjp(&cache.norm2, &d_u2)?)?;
        let d_u1 = self.self_attn.vjp(&cache.attn, &g1, kernels)?;
        g1 + self.norm1.vjp(&cache.norm1, &d_u1)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use crate::weights::{perturb_constant_parameters, seeded_var_builder};
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn flow_block_vjp_matches_autograd() -> Result<()> {
        for &(n, heads) in &[(1usize, 1usize), (17, 4), (64, 2)] {
            let varmap = VarMap::new();
            let vb = seeded_var_builder(&varmap, 1, DType::F64, &Device::Cpu);
            let block = FlowBlock::new(vb, 8, heads, 16)?;
            perturb_constant_parameters(&varmap, 0.1, 2)?;
            let dropout = Dropout::new(0.0, 0)?;
            let h = Var::from_tensor(&random(&[n, 8], 3, -2.0, 2.0)?)?;
            let (y, cache) = block.forward(h.as_tensor(), Kernels::Plain, &dropout, true)?;
            let g = random(&[n, 8], 4, -1.0, 1.0)?;
            let auto = autograd_vjp(&h, &y, &g)?;
            let hand = block.vjp(&cache, &g, Kernels::Plain)?;
            assert!(entry_rel(&hand, &auto)? < 1e-12, "n={n} heads={heads}");
        }
        Ok(())
    }
}

//! The position-wise feed-forward network `Linear(H,F) → GELU → Dropout → Linear(F,H) → Dropout` and its VJP.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::activation::{gelu, gelu_vjp};
use super::linear::Linear;
use crate::dropout::{self, Dropout};
use crate::kernels::Kernels;

/// The reference's `ffn` `Sequential`: `ffn.0` Linear, `ffn.1` GELU, `ffn.2` Dropout,
/// `ffn.3` Linear, `ffn.4` Dropout.
#[derive(Clone, Debug)]
pub(crate) struct FeedForward {
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

/// What the VJP needs from the forward pass.
pub(crate) struct FeedForwardCache {
    /// Pre-activation `(n, ff)`.
    z: Tensor,
    mask_hidden: Option<Tensor>,
    mask_out: Option<Tensor>,
}

impl FeedForward {
    pub(crate) fn new(vb: VarBuilder, hidden: usize, ff: usize) -> Result<Self> {
        Ok(FeedForward {
            up: Linear::new(vb.pp("0"), hidden, ff)?,
            down: Linear::new(vb.pp("3"), ff, hidden)?,
        })
    }

    /// # Shapes
    /// `u`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn forward(
        &self,
        u: &Tensor,
        kernels: Kernels,
        dropout: &Dropout,
    ) -> Result<(Tensor, FeedForwardCache)> {
        let z = self.up.forward_with(u, kernels)?;
        let a = gelu(&z, kernels)?;
        let mask_hidden = dropout.mask(a.dims(), a.dtype(), a.device())?;
        let y = self
            .down
            .forward_with(&dropout::apply(&a, mask_hidden.as_ref())?, kernels)?;
        let mask_out = dropout.mask(y.dims(), y.dtype(), y.device())?;
        let y = dropout::apply(&y, mask_out.as_ref())?;
        Ok((
            y,
            FeedForwardCache {
                z,
                mask_hidden,
                mask_out,
            },
        ))
    }

    /// # Shapes
    /// `g`: `(n, hidden)` → `(n, hidden)`.
    pub(crate) fn vjp(
        &self,
        cache: &FeedForwardCache,
        g: &Tensor,
        kernels: Kernels,
    ) -> Result<Tensor> {
        let g = dropout::apply(g, cache.mask_out.as_ref())?;
        let d_a = dropout::apply(&self.down.vjp(&g)?, cache.mask_hidden.as_ref())?;
        let d_z = gelu_vjp(&cache.z, &d_a, kernels)?;
        self.up.vjp(&d_z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use crate::weights::seeded_var_builder;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn feed_forward_vjp_matches_autograd_with_and_without_dropout() -> Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, DType::F64, &Device::Cpu);
        let ffn = FeedForward::new(vb, 8, 32)?;
        for p in [0.0, 0.4] {
            let dropout = Dropout::new(p, 5)?;
            let u = Var::from_tensor(&random(&[13, 8], 2, -2.0, 2.0)?)?;
            let (y, cache) = ffn.forward(u.as_tensor(), Kernels::Plain, &dropout)?;
            let g = random(&[13, 8], 3, -1.0, 1.0)?;
            let auto = autograd_vjp(&u, &y, &g)?;
            assert!(
                entry_rel(&ffn.vjp(&cache, &g, Kernels::Plain)?, &auto)? < 1e-12,
                "p={p}"
            );
        }
        Ok(())
    }
}

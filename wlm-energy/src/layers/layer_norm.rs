//! LayerNorm over features (eps 1e-5, biased variance, affine) with its input VJP.

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::kernels::{broadcast, layer_norm as fused, Kernels};

/// PyTorch's LayerNorm epsilon.
pub(crate) const LAYER_NORM_EPS: f64 = 1e-5;

/// `y = w ⊙ (x − μ)/σ + b` per row, `σ = sqrt(var + eps)`.
#[derive(Clone, Debug)]
pub(crate) struct LayerNorm {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
}

/// What the VJP needs from the forward pass.
pub(crate) struct LayerNormCache {
    x: Tensor,
    xhat: Tensor,
    /// `σ` per row `(n, 1)`; only the plain path keeps it.
    sigma: Option<Tensor>,
}

impl LayerNorm {
    /// PyTorch's initialisation: weight 1, bias 0.
    pub(crate) fn new(vb: VarBuilder, features: usize) -> Result<Self> {
        let weight = vb.get_with_hints(features, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(features, "bias", Init::Const(0.0))?;
        Ok(LayerNorm { weight, bias })
    }

    /// # Shapes
    /// `x`: `(n, features)` → `(n, features)`.
    pub(crate) fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<(Tensor, LayerNormCache)> {
        let (xhat, sigma) = match kernels {
            Kernels::Plain => {
                let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                let sigma = (xc.sqr()?.mean_keepdim(D::Minus1)? + LAYER_NORM_EPS)?.sqrt()?;
                (xc.broadcast_div(&sigma)?, Some(sigma))
            }
            Kernels::Fused => (fused::normalize(x, LAYER_NORM_EPS)?, None),
        };
        let y = match kernels {
            Kernels::Plain => xhat
                .broadcast_mul(&self.weight)?
                .broadcast_add(&self.bias)?,
            Kernels::Fused => {
                broadcast::add_row(&broadcast::mul_row(&xhat, &self.weight)?, &self.bias)?
            }
        };
        let cache = LayerNormCache {
            x: x.clone(),
            xhat,
            sigma,
        };
        Ok((y, cache))
    }

    /// With `ĝ = g ⊙ w`: `dx = (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂)) / σ`.
    ///
    /// # Shapes
    /// `g`: `(n, features)` → `(n, features)`.
    pub(crate) fn vjp(&self, cache: &LayerNormCache, g: &Tensor) -> Result<Tensor> {
        match &cache.sigma {
            Some(sigma) => {
                let g_hat = g.broadcast_mul(&self.weight)?;
                let m1 = g_hat.mean_keepdim(D::Minus1)?;
                let m2 = (&g_hat * &cache.xhat)?.mean_keepdim(D::Minus1)?;
                g_hat
                    .broadcast_sub(&m1)?
                    .sub(&cache.xhat.broadcast_mul(&m2)?)?
                    .broadcast_div(sigma)
            }
            None => {
                let g_hat = broadcast::mul_row(g, &self.weight)?;
                fused::normalize_vjp(&cache.x, &g_hat, LAYER_NORM_EPS)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use candle_core::Var;

    fn perturbed(features: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: (random(&[features], 11, -0.3, 0.3)? + 1.0)?,
            bias: random(&[features], 12, -0.3, 0.3)?,
        })
    }

    #[test]
    fn layer_norm_vjp_matches_autograd() -> Result<()> {
        for &(n, h) in &[(1usize, 4usize), (17, 8), (64, 64)] {
            let ln = perturbed(h)?;
            let x = Var::from_tensor(&random(&[n, h], 1, -2.0, 2.0)?)?;
            let (y, cache) = ln.forward(x.as_tensor(), Kernels::Plain)?;
            let g = random(&[n, h], 2, -1.0, 1.0)?;
            let auto = autograd_vjp(&x, &y, &g)?;
            assert!(
                entry_rel(&ln.vjp(&cache, &g)?, &auto)? < 1e-12,
                "n={n} h={h}"
            );
        }
        Ok(())
    }

    #[test]
    fn fused_layer_norm_layer_equals_plain() -> Result<()> {
        let ln = perturbed(16)?;
        let x = random(&[33, 16], 1, -2.0, 2.0)?;
        let g = random(&[33, 16], 2, -1.0, 1.0)?;
        let (yp, cp) = ln.forward(&x, Kernels::Plain)?;
        let (yf, cf) = ln.forward(&x, Kernels::Fused)?;
        assert!(entry_rel(&yf, &yp)? < 1e-13);
        assert!(entry_rel(&ln.vjp(&cf, &g)?, &ln.vjp(&cp, &g)?)? < 1e-12);
        Ok(())
    }
}

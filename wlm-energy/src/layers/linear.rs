//! Linear layer `y = x Wᵀ + b` (PyTorch layout and initialisation) with its input VJP `dx = g W`.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::kernels::{broadcast, Kernels};
use crate::weights::linear_init;

/// `y = x Wᵀ + b`, `W` stored `(out, in)` as in PyTorch.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
}

impl Linear {
    /// PyTorch's default initialisation: weight and bias `U(±1/sqrt(in_dim))`.
    pub(crate) fn new(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Self::with_init(
            vb,
            in_dim,
            out_dim,
            linear_init(in_dim),
            linear_init(in_dim),
        )
    }

    /// Explicit initialisations, for layers that PyTorch initialises differently.
    pub(crate) fn with_init(
        vb: VarBuilder,
        in_dim: usize,
        out_dim: usize,
        weight_init: Init,
        bias_init: Init,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", weight_init)?;
        let bias = vb.get_with_hints(out_dim, "bias", bias_init)?;
        Ok(Linear { weight, bias })
    }

    /// # Shapes
    /// `x`: `(n, in)` → `(n, out)`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, Kernels::Plain)
    }

    /// [`Linear::forward`] with the bias added by the chosen kernels.
    ///
    /// # Shapes
    /// `x`: `(n, in)` → `(n, out)`.
    pub(crate) fn forward_with(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let xw = x.matmul(&self.weight.t()?)?;
        match kernels {
            Kernels::Plain => xw.broadcast_add(&self.bias),
            Kernels::Fused => broadcast::add_row(&xw, &self.bias),
        }
    }

    /// `dx = g W`.
    ///
    /// # Shapes
    /// `g`: `(n, out)` → `(n, in)`.
    pub(crate) fn vjp(&self, g: &Tensor) -> Result<Tensor> {
        g.matmul(&self.weight)
    }

    /// The first `cols` columns of `g W`.
    ///
    /// # Shapes
    /// `g`: `(n, out)` → `(n, cols)`.
    pub(crate) fn vjp_leading_columns(&self, g: &Tensor, cols: usize) -> Result<Tensor> {
        if cols == self.weight.dim(1)? {
            self.vjp(g)
        } else {
            g.matmul(&self.weight.narrow(1, 0, cols)?.contiguous()?)
        }
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
    fn linear_vjp_matches_autograd() -> Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, DType::F64, &Device::Cpu);
        let layer = Linear::new(vb, 5, 7)?;
        let x = Var::from_tensor(&random(&[9, 5], 2, -1.0, 1.0)?)?;
        let y = layer.forward(x.as_tensor())?;
        let g = random(&[9, 7], 3, -1.0, 1.0)?;
        let auto = autograd_vjp(&x, &y, &g)?;
        assert!(entry_rel(&layer.vjp(&g)?, &auto)? < 1e-13);
        let fused = layer.forward_with(x.as_tensor(), Kernels::Fused)?;
        assert!(entry_rel(&fused, &y)? < 1e-15);
        let lead = layer.vjp_leading_columns(&g, 2)?;
        assert!(entry_rel(&lead, &auto.narrow(1, 0, 2)?)? < 1e-13);
        Ok(())
    }

    #[test]
    fn linear_parameters_follow_pytorch_bounds() -> Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, DType::F64, &Device::Cpu);
        let layer = Linear::new(vb, 16, 64)?;
        let bound = 0.25;
        let w = layer
            .weight
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f64>()?;
        let b = layer.bias.abs()?.max(0)?.to_scalar::<f64>()?;
        assert!(w <= bound && w > 0.9 * bound, "{w}");
        assert!(b <= bound, "{b}");
        Ok(())
    }
}

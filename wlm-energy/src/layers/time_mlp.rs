//! Time features `τ(t) = Linear(16,16)(SiLU(Linear(1,16)(t)))` on the raw scalar `t`.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::activation::silu;
use super::linear::Linear;

/// Width of the time features (the reference's `d_time`).
pub(crate) const TIME_FEATURES: usize = 16;

/// The reference's `time_mlp` `Sequential`: `.0` Linear(1,16), `.1` SiLU, `.2` Linear(16,16).
#[derive(Clone, Debug)]
pub(crate) struct TimeMlp {
    pub(crate) first: Linear,
    pub(crate) second: Linear,
}

impl TimeMlp {
    pub(crate) fn new(vb: VarBuilder) -> Result<Self> {
        Ok(TimeMlp {
            first: Linear::new(vb.pp("0"), 1, TIME_FEATURES)?,
            second: Linear::new(vb.pp("2"), TIME_FEATURES, TIME_FEATURES)?,
        })
    }

    /// `τ(t)` as a `(1, 16)` tensor.
    pub(crate) fn forward(&self, t: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        let t = Tensor::full(t, (1, 1), device)?.to_dtype(dtype)?;
        self.forward_tensor(&t)
    }

    /// # Shapes
    /// `t`: `(m, 1)` → `(m, 16)`.
    pub(crate) fn forward_tensor(&self, t: &Tensor) -> Result<Tensor> {
        self.second.forward(&silu(&self.first.forward(t)?)?)
    }

    /// `∂⟨τ(t), g⟩/∂t`, only used to check the layer; the force never needs it.
    ///
    /// # Shapes
    /// `t`: `(m, 1)`, `g`: `(m, 16)` → `(m, 1)`.
    #[cfg(test)]
    pub(crate) fn vjp(&self, t: &Tensor, g: &Tensor) -> Result<Tensor> {
        let z = self.first.forward(t)?;
        let d_z = super::activation::silu_vjp(&z, &self.second.vjp(g)?)?;
        self.first.vjp(&d_z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{autograd_vjp, entry_rel, random};
    use crate::weights::seeded_var_builder;
    use candle_core::Var;
    use candle_nn::VarMap;

    #[test]
    fn time_mlp_vjp_matches_autograd() -> Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, DType::F64, &Device::Cpu);
        let mlp = TimeMlp::new(vb)?;
        let t = Var::from_tensor(&random(&[5, 1], 2, -3.0, 3.0)?)?;
        let y = mlp.forward_tensor(t.as_tensor())?;
        let g = random(&[5, TIME_FEATURES], 3, -1.0, 1.0)?;
        let auto = autograd_vjp(&t, &y, &g)?;
        assert!(entry_rel(&mlp.vjp(t.as_tensor(), &g)?, &auto)? < 1e-13);
        let single = mlp.forward(0.7, DType::F64, &Device::Cpu)?;
        assert_eq!(single.dims(), &[1, TIME_FEATURES]);
        Ok(())
    }
}

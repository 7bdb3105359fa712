//! Simple analytic force fields, for tests, benchmarks and users: harmonic, constant, closure.

use candle_core::{bail, Result, Tensor};

use crate::force::ForceField;

/// Isotropic harmonic trap centred at the origin: `a(x, t) = −k x` (energy `½ k |x|²` per
/// particle; angular frequency `ω = √k`).
///
/// # Shapes
/// `x`: any shape (usually `(n_particles, dim)`) → same shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Harmonic {
    /// Spring constant `k` (per unit mass), in 1/time²; `k > 0` is a trap, `k < 0` repels.
    pub stiffness: f64,
}

impl ForceField for Harmonic {
    fn acceleration(&self, x: &Tensor, _t: f64) -> Result<Tensor> {
        x.affine(-self.stiffness, 0.0)
    }
}

/// The same acceleration for every particle, independent of position and time: `a_i = g`
/// (gravity-like). Its graph does not reach `x`.
///
/// # Shapes
/// `x`: `(n_particles, dim)` with `dim = acceleration.len()` → `(n_particles, dim)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantField {
    /// The acceleration `g`, one entry per spatial dimension.
    pub acceleration: Vec<f64>,
}

impl ForceField for ConstantField {
    fn acceleration(&self, x: &Tensor, _t: f64) -> Result<Tensor> {
        let (n_particles, dim) = x.dims2()?;
        if dim != self.acceleration.len() {
            bail!(
                "constant field has {} components but positions have dimension {dim}",
                self.acceleration.len()
            );
        }
        Tensor::new(self.acceleration.as_slice(), x.device())?
            .to_dtype(x.dtype())?
            .unsqueeze(0)?
            .broadcast_as((n_particles, dim))?
            .contiguous()
    }
}

/// A force field from a closure `|x, t| -> Result<Tensor>`, for quick experiments and tests.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use wlm_integrate::{fields::FnField, ForceField};
/// let pendulum = FnField(|x: &Tensor, _t: f64| x.sin()?.neg());
/// let x = Tensor::new(&[[0.5f64]], &Device::Cpu)?;
/// let a = pendulum.acceleration(&x, 0.0)?;
/// assert_eq!(a.to_vec2::<f64>()?, vec![vec![-(0.5f64).sin()]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FnField<F>(pub F);

impl<F: Fn(&Tensor, f64) -> Result<Tensor>> ForceField for FnField<F> {
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (self.0)(x, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn harmonic_acceleration_is_minus_stiffness_times_position() -> Result<()> {
        let x = Tensor::new(&[[1.0f64, -2.0], [0.5, 3.0]], &Device::Cpu)?;
        let a = Harmonic { stiffness: 4.0 }.acceleration(&x, 7.0)?;
        assert_eq!(
            a.to_vec2::<f64>()?,
            vec![vec![-4.0, 8.0], vec![-2.0, -12.0]]
        );
        Ok(())
    }

    #[test]
    fn constant_field_tiles_its_vector_over_particles() -> Result<()> {
        let x = Tensor::zeros((3, 2), candle_core::DType::F32, &Device::Cpu)?;
        let field = ConstantField {
            acceleration: vec![0.0, -9.81],
        };
        let a = field.acceleration(&x, 0.0)?;
        assert_eq!(a.dtype(), candle_core::DType::F32);
        assert_eq!(a.to_vec2::<f32>()?, vec![vec![0.0, -9.81f32]; 3]);
        Ok(())
    }

    #[test]
    fn constant_field_rejects_a_dimension_mismatch() -> Result<()> {
        let x = Tensor::zeros((3, 3), candle_core::DType::F64, &Device::Cpu)?;
        let field = ConstantField {
            acceleration: vec![0.0, 1.0],
        };
        let err = field.acceleration(&x, 0.0).unwrap_err().to_string();
        assert!(
            err.contains("2 components") && err.contains("dimension 3"),
            "{err}"
        );
        Ok(())
    }
}

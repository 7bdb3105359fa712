//! The seam between integrators and whatever produces accelerations.

use candle_core::{Result, Tensor};

/// Accelerations of a population.
///
/// # Shapes
/// `x`: `(n_particles, dim)` → `(n_particles, dim)`, same dtype and device as `x`.
///
/// The returned tensor may carry a candle graph back to parameters (and to `x`, when the
/// implementation chooses to keep it): integrators never detach it, so an ordinary
/// `backward()` of a loss on a rollout reaches whatever the field depends on.
pub trait ForceField {
    /// Acceleration `a(x, t)` of every particle at positions `x` and time `t`.
    ///
    /// # Errors
    /// Any tensor failure (shape, dtype, device) of the implementation.
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor>;
}

impl<F: ForceField + ?Sized> ForceField for &F {
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (**self).acceleration(x, t)
    }
}

/// Evaluates `field` at `(x, t)` and checks that the acceleration matches `x` in shape and dtype.
pub(crate) fn evaluate(field: &dyn ForceField, x: &Tensor, t: f64) -> Result<Tensor> {
    let acceleration = field.acceleration(x, t)?;
    if acceleration.dims() != x.dims() {
        candle_core::bail!(
            "force field returned an acceleration of shape {:?} for positions of shape {:?}",
            acceleration.dims(),
            x.dims()
        );
    }
    if acceleration.dtype() != x.dtype() {
        candle_core::bail!(
            "force field returned an acceleration of dtype {:?} for positions of dtype {:?}",
            acceleration.dtype(),
            x.dtype()
        );
    }
    Ok(acceleration)
}

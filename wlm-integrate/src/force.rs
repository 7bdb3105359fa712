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

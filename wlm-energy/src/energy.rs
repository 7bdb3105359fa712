//! The [`Energy`] trait, the [`EnergyField`] adapter to `wlm_integrate::ForceField`, and input checks.

use candle_core::{bail, DType, Result, Tensor, TensorId};

/// A population potential energy with a hand-written force.
///
/// Implementations compute the force `−∇_x E` as an explicit vector-Jacobian product written in
/// candle ops, so that one ordinary `backward()` of a loss on the force reaches the parameters
/// (and `x`, when `x` carries a graph).
///
/// # Shapes
/// `x`: `(n_particles, dim)`; [`Energy::energy`] → rank 0; [`Energy::force`] →
/// `(n_particles, dim)`, same dtype and device as `x`.
pub trait Energy {
    /// Scalar total energy `E(x, t)` (sum pooling over particles), a rank-0 tensor.
    ///
    /// # Errors
    /// `x` not of rank 2, of the wrong `dim`, dtype or device, or with no particles; any tensor
    /// failure.
    fn energy(&self, x: &Tensor, t: f64) -> Result<Tensor>;

    /// Force `−∇_x E(x, t)`, `(n_particles, dim)`, by explicit VJPs in candle ops.
    ///
    /// # Errors
    /// As [`Energy::energy`].
    fn force(&self, x: &Tensor, t: f64) -> Result<Tensor>;

    /// [`Energy::energy`] with no graph: a value for callers that need no gradients, which an
    /// implementation may compute by a faster path that builds no graph (the attention energy
    /// does). Default: the energy at `x.detach()`, detached.
    ///
    /// # Shapes
    /// `x`: `(n_particles, dim)` → rank 0.
    ///
    /// # Errors
    /// As [`Energy::energy`].
    fn energy_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        Ok(self.energy(&x.detach(), t)?.detach())
    }

    /// [`Energy::force`] with no graph (detached from the parameters and from `x`), possibly by
    /// a faster path, as [`Energy::energy_detached`]. Default: the force at `x.detach()`,
    /// detached.
    ///
    /// # Shapes
    /// `x`: `(n_particles, dim)` → `(n_particles, dim)`.
    ///
    /// # Errors
    /// As [`Energy::force`].
    fn force_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        Ok(self.force(&x.detach(), t)?.detach())
    }

    /// The force at `x` by a graph-free path, with the record ([`ForceTape`]) from which its
    /// adjoint `∂/∂θ ⟨ā, F_θ(x, t)⟩` (and `J_F(x)ᵀ ā`) is computed later without a graph:
    /// the adjoint reverse sweep's fast path. `Ok(None)` where the energy has no such path
    /// (the default; the attention energy has one with the fused kernels, no active dropout,
    /// on the CPU in f32 or f64), and callers then differentiate [`Energy::force`]'s graph.
    ///
    /// # Shapes
    /// `x`: `(n_particles, dim)`; the tape's force: `(n_particles, dim)`.
    ///
    /// # Errors
    /// As [`Energy::force`].
    fn force_tape(&self, x: &Tensor, t: f64) -> Result<Option<ForceTape>> {
        let _ = (x, t);
        Ok(None)
    }

    /// Bytes that one [`Energy::force`] graph at `n_particles` holds outside candle's graph
    /// nodes (tensors kept inside custom ops, such as the fused attention's probabilities),
    /// for callers that budget memory by walking the graph. Default 0.
    fn force_graph_hidden_bytes(&self, n_particles: usize) -> u64 {
        let _ = n_particles;
        0
    }
}

impl<E: Energy + ?Sized> Energy for &E {
    fn energy(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (**self).energy(x, t)
    }

    fn force(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (**self).force(x, t)
    }

    fn energy_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (**self).energy_detached(x, t)
    }

    fn force_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        (**self).force_detached(x, t)
    }

    fn force_tape(&self, x: &Tensor, t: f64) -> Result<Option<ForceTape>> {
        (**self).force_tape(x, t)
    }

    fn force_graph_hidden_bytes(&self, n_particles: usize) -> u64 {
        (**self).force_graph_hidden_bytes(n_particles)
    }
}

/// A force computed without a graph, with what its adjoint needs ([`Energy::force_tape`]).
pub struct ForceTape {
    force: Tensor,
    bytes: u64,
    adjoint: Box<dyn TapeAdjoint>,
}

/// The implementation behind a [`ForceTape`].
pub(crate) trait TapeAdjoint: Send + Sync {
    /// Gradients in the order of `parameter_ids` (`None`: not read by the force), and the
    /// positions' cotangent when asked.
    fn adjoint(
        &self,
        a_bar: &Tensor,
        positions: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)>;

    /// The ids of the parameters, in the order of `adjoint`'s gradients.
    fn parameter_ids(&self) -> &[TensorId];
}

/// The adjoint of a force evaluation ([`ForceTape::adjoint`]).
#[derive(Debug)]
pub struct ForceAdjoint {
    /// `∂/∂θ ⟨ā, F_θ(x, t)⟩` for every parameter the force reads, by the id of the parameter
    /// tensor (as a `Var` of the model's `VarMap` has it), each of the parameter's shape.
    pub params: Vec<(TensorId, Tensor)>,
    /// `J_F(x)ᵀ ā` (`(n_particles, dim)`), when asked for.
    pub positions: Option<Tensor>,
}

impl ForceTape {
    pub(crate) fn new(force: Tensor, bytes: u64, adjoint: Box<dyn TapeAdjoint>) -> Self {
        Self {
            force,
            bytes,
            adjoint,
        }
    }

    /// The force `F_θ(x, t)`, `(n_particles, dim)`, with no graph.
    pub fn force(&self) -> &Tensor {
        &self.force
    }

    /// Bytes the tape holds (for callers that keep tapes within a memory budget).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `∂/∂θ ⟨ā, F_θ(x, t)⟩` and, when `positions`, `J_F(x)ᵀ ā`, without a graph.
    ///
    /// # Shapes
    /// `a_bar`: `(n_particles, dim)`, the force's shape and dtype.
    ///
    /// # Errors
    /// `a_bar` of another shape or dtype; tensor failures.
    pub fn adjoint(&self, a_bar: &Tensor, positions: bool) -> Result<ForceAdjoint> {
        let (grads, x_bar) = self.adjoint.adjoint(a_bar, positions)?;
        let params = self
            .adjoint
            .parameter_ids()
            .iter()
            .zip(grads)
            .filter_map(|(&id, g)| g.map(|g| (id, g)))
            .collect();
        Ok(ForceAdjoint {
            params,
            positions: x_bar,
        })
    }
}

impl std::fmt::Debug for ForceTape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForceTape")
            .field("shape", &self.force.dims())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Adapter: a `wlm_integrate::ForceField` whose acceleration is an [`Energy`]'s force.
///
/// `detach_positions = true` (the reference's default): the force is computed at `x.detach()`,
/// so backpropagation through a rollout reaches the parameters through each force value but
/// ignores `∂a/∂x`. `false` (exact mode): the graph is kept through `x`, and backpropagation
/// includes the Hessian-vector products `J_a(x)ᵀ ā`.
pub struct EnergyField<'a> {
    /// The energy whose force is the acceleration.
    pub energy: &'a dyn Energy,
    /// Compute the force at `x.detach()` (reference semantics, default `true`).
    pub detach_positions: bool,
}

impl<'a> EnergyField<'a> {
    /// The reference configuration: `detach_positions = true`.
    pub fn new(energy: &'a dyn Energy) -> Self {
        EnergyField {
            energy,
            detach_positions: true,
        }
    }

    /// Exact mode: `detach_positions = false`.
    pub fn exact(energy: &'a dyn Energy) -> Self {
        EnergyField {
            energy,
            detach_positions: false,
        }
    }
}

impl std::fmt::Debug for EnergyField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyField")
            .field("detach_positions", &self.detach_positions)
            .finish_non_exhaustive()
    }
}

impl wlm_integrate::ForceField for EnergyField<'_> {
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        if self.detach_positions {
            self.energy.force(&x.detach(), t)
        } else {
            self.energy.force(x, t)
        }
    }
}

/// Adapter: a `wlm_integrate::ForceField` whose acceleration is an [`Energy`]'s
/// [`Energy::force_detached`]: no graph at all, for rollouts that need no gradients
/// (forecasts, evaluation, simulation). Faster than [`EnergyField`] where the energy has a
/// graph-free path.
#[derive(Clone, Copy)]
pub struct DetachedEnergyField<'a> {
    /// The energy whose force is the acceleration.
    pub energy: &'a dyn Energy,
}

impl std::fmt::Debug for DetachedEnergyField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedEnergyField")
            .finish_non_exhaustive()
    }
}

impl wlm_integrate::ForceField for DetachedEnergyField<'_> {
    fn acceleration(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        self.energy.force_detached(x, t)
    }
}

/// Checks that `x` is `(n_particles, dim)` with `n_particles ≥ 1`, a float dtype equal to
/// `dtype`, and returns `n_particles`.
pub(crate) fn check_positions(x: &Tensor, dim: usize, dtype: DType, what: &str) -> Result<usize> {
    let dims = x.dims();
    if dims.len() != 2 {
        bail!("{what}: positions must have shape (n_particles, {dim}), got shape {dims:?}");
    }
    if dims[1] != dim {
        bail!(
            "{what}: positions have dim {} but the energy was built for dim {dim}",
            dims[1]
        );
    }
    if dims[0] == 0 {
        bail!("{what}: positions have no particles (shape {dims:?})");
    }
    if x.dtype() != dtype {
        bail!(
            "{what}: positions have dtype {:?} but the parameters have dtype {dtype:?}",
            x.dtype()
        );
    }
    Ok(dims[0])
}

/// Checks that `t` is finite.
pub(crate) fn check_time(t: f64, what: &str) -> Result<()> {
    if !t.is_finite() {
        bail!("{what}: time must be finite, got {t}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn check_positions_names_the_offending_shape_and_dtype() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((3, 2), DType::F64, &dev)?;
        assert_eq!(check_positions(&x, 2, DType::F64, "e")?, 3);
        let err = check_positions(&x, 5, DType::F64, "e").unwrap_err();
        assert!(err.to_string().contains("dim 2"), "{err}");
        let err = check_positions(&x, 2, DType::F32, "e").unwrap_err();
        assert!(err.to_string().contains("F32"), "{err}");
        let err = check_positions(&x.flatten_all()?, 2, DType::F64, "e").unwrap_err();
        assert!(err.to_string().contains("[6]"), "{err}");
        let empty = Tensor::zeros((0, 2), DType::F64, &dev)?;
        let err = check_positions(&empty, 2, DType::F64, "e").unwrap_err();
        assert!(err.to_string().contains("no particles"), "{err}");
        assert!(check_time(f64::NAN, "e").is_err());
        Ok(())
    }
}

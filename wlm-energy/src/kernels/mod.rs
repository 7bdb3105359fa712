//! Fused CPU kernels (candle custom ops with backward passes) for the attention energy's hot spots.
//!
//! Each kernel has a plain-candle-op twin in the layer that uses it; [`Kernels`] selects which
//! runs, and the tests check that both agree in value and in parameter gradients.

pub(crate) mod attention;
mod attention_hvp;
pub(crate) mod attention_op;
pub(crate) mod broadcast;
pub(crate) mod float;
pub(crate) mod gelu;
pub(crate) mod gemm;
pub(crate) mod layer_norm;
mod rows;
pub(crate) mod softmax;

pub(crate) use attention_hvp::backward_all as attention_vjp_backward;

use candle_core::{bail, Result, Shape, Storage, Tensor};

use float::{contiguous_slice, Float};

/// Which implementation of the attention energy's row softmax, softmax VJP, GELU and
/// LayerNorm (and their backward passes) runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kernels {
    /// Plain candle ops only: the reference path, differentiable by candle's own autograd
    /// (so `−grad` of the energy can be checked against the hand-written force).
    Plain,
    /// Fused multi-threaded custom ops (default, CPU only; much faster at large `N`).
    #[default]
    Fused,
}

/// The last dimension of `shape`, which must be non-empty.
pub(crate) fn row_len(shape: &Shape, what: &str) -> Result<usize> {
    match shape.dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => bail!("{what}: expected a tensor with a non-empty last dimension, got {shape:?}"),
    }
}

/// Runs `f` on contiguous slices of the (CPU) tensors' values.
pub(crate) fn with_slices<T: Float, R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&[&[T]]) -> Result<R>,
) -> Result<R> {
    let owned = tensors
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let cpu = match &**storage {
            Storage::Cpu(cpu) => cpu,
            _ => bail!("fused kernels run on the CPU only"),
        };
        slices.push(contiguous_slice::<T>(cpu, layout, "backward")?);
    }
    f(&slices)
}

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
mod same_shape;
pub(crate) mod softmax;

pub(crate) use attention_hvp::backward_all as attention_vjp_backward;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Layout, Result, Shape, Storage, Tensor};

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

/// A fused kernel on one input, generic over the float type so that [`run_kernel1`] can pick
/// f32 or f64 from the storage.
pub(crate) trait Kernel1 {
    fn apply<T: Float>(&self, x: &[T]) -> Result<Vec<T>>;
}

/// A fused kernel on two inputs of one float type; see [`run_kernel2`].
pub(crate) trait Kernel2 {
    fn apply<T: Float>(&self, a: &[T], b: &[T]) -> Result<Vec<T>>;
}

/// An op with the dimensions it reads from its input's shape (a row length by default), as a
/// [`Kernel1`] or [`Kernel2`].
pub(crate) struct Shaped<'a, Op, D = usize>(pub &'a Op, pub D);

/// The `cpu_fwd` dtype dispatch of a [`candle_core::CustomOp1`]: runs `kernel` on the
/// contiguous f32 or f64 values of `storage`; `what` names the op in errors.
pub(crate) fn run_kernel1(
    kernel: &impl Kernel1,
    storage: &CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<CpuStorage> {
    Ok(match storage.dtype() {
        DType::F32 => f32::storage(kernel.apply(contiguous_slice::<f32>(storage, layout, what)?)?),
        DType::F64 => f64::storage(kernel.apply(contiguous_slice::<f64>(storage, layout, what)?)?),
        other => bail!("{what}: unsupported dtype {other:?}"),
    })
}

/// The `cpu_fwd` dtype dispatch of a [`candle_core::CustomOp2`]: both inputs f32 or both f64.
pub(crate) fn run_kernel2(
    kernel: &impl Kernel2,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    what: &str,
) -> Result<CpuStorage> {
    Ok(match (s1.dtype(), s2.dtype()) {
        (DType::F32, DType::F32) => f32::storage(kernel.apply(
            contiguous_slice::<f32>(s1, l1, what)?,
            contiguous_slice::<f32>(s2, l2, what)?,
        )?),
        (DType::F64, DType::F64) => f64::storage(kernel.apply(
            contiguous_slice::<f64>(s1, l1, what)?,
            contiguous_slice::<f64>(s2, l2, what)?,
        )?),
        (a, b) => bail!("{what}: unsupported dtypes {a:?}, {b:?}"),
    })
}

/// A VJP op's backward pass with two outputs of its first input's shape, generic over the float
/// type; see [`run_backward2`].
pub(crate) trait Backward2 {
    fn apply<T: Float>(&self, inputs: &[&[T]]) -> (Vec<T>, Vec<T>);
}

/// The f32/f64 dispatch of a VJP op's backward pass: runs `kernel` on the values of `inputs`
/// (of the first one's dtype) and returns its outputs as tensors of the first one's shape.
pub(crate) fn run_backward2(
    kernel: &impl Backward2,
    inputs: &[&Tensor],
    what: &str,
) -> Result<(Tensor, Tensor)> {
    fn typed<T: Float>(kernel: &impl Backward2, inputs: &[&Tensor]) -> Result<(Tensor, Tensor)> {
        let shape = inputs[0].shape().clone();
        let device = inputs[0].device().clone();
        with_slices::<T, _>(inputs, |s| {
            let (a, b) = kernel.apply(s);
            Ok((
                Tensor::from_vec(a, &shape, &device)?,
                Tensor::from_vec(b, &shape, &device)?,
            ))
        })
    }
    match inputs[0].dtype() {
        DType::F32 => typed::<f32>(kernel, inputs),
        DType::F64 => typed::<f64>(kernel, inputs),
        other => bail!("{what}: unsupported dtype {other:?}"),
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

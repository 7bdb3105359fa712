//! Test helpers shared by the unit tests: seeded tensors, relative errors, autograd VJPs.

#[path = "../../testing/close.rs"]
mod close;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::weights::{perturb_constant_parameters, seeded_var_builder};
use crate::{AttentionEnergy, AttentionEnergyConfig, Energy};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

/// Uniform values in `[lo, hi)` from a seeded generator, as an f64 tensor.
pub(crate) fn random(dims: &[usize], seed: u64, lo: f64, hi: f64) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
}

/// The largest entry-wise relative error of `a` against `b` (`close::entry_rel`: each entry's
/// error over its own size, floored at 1% of the RMS of `b`), in f64.
pub(crate) fn entry_rel(a: &Tensor, b: &Tensor) -> Result<f64> {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let flat = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
    Ok(close::entry_rel(&flat(a)?, &flat(b)?))
}

/// `Err` naming the worst entry unless every `|a_k − b_k| ≤ atol + rtol·|b_k|` (in f64).
pub(crate) fn within(a: &Tensor, b: &Tensor, atol: f64, rtol: f64, what: &str) -> Result<()> {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let flat = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
    close::check_close(&flat(a)?, &flat(b)?, atol, rtol)
        .map_err(|msg| candle_core::Error::Msg(format!("{what}: {msg}")))
}

/// `∂⟨y, g⟩/∂x` by candle's autograd.
pub(crate) fn autograd_vjp(x: &Var, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    let grads = (y * g)?.sum_all()?.backward()?;
    Ok(grads
        .get(x.as_tensor())
        .cloned()
        .unwrap_or(x.as_tensor().zeros_like()?))
}

/// The entry-wise relative error ([`entry_rel`]) of `energy`'s hand-written force at `x`, time
/// `t`, against `−∇ₓE` by candle's autograd.
pub(crate) fn force_vs_autograd(energy: &impl Energy, x: &Tensor, t: f64) -> Result<f64> {
    let x = Var::from_tensor(x)?;
    let grads = energy.energy(x.as_tensor(), t)?.backward()?;
    let minus_grad = grads.get(x.as_tensor()).expect("grad").neg()?;
    let force = energy.force(x.as_tensor(), t)?;
    entry_rel(&force, &minus_grad)
}

/// A seeded attention energy whose constant-initialised parameters (biases, LayerNorm) are
/// perturbed, so every term of the force is exercised; with its `VarMap`.
pub(crate) fn perturbed_model(
    config: &AttentionEnergyConfig,
    seed: u64,
    dtype: DType,
) -> Result<(AttentionEnergy, VarMap)> {
    let varmap = VarMap::new();
    let energy = config.init(seeded_var_builder(&varmap, seed, dtype, &Device::Cpu))?;
    perturb_constant_parameters(&varmap, 0.1, seed + 100)?;
    Ok((energy, varmap))
}

/// A small model (`hidden` 8, `ff` 16, no dropout) for unit tests.
pub(crate) fn small_config(
    dim: usize,
    heads: usize,
    blocks: usize,
    time_features: bool,
) -> AttentionEnergyConfig {
    AttentionEnergyConfig {
        dim,
        heads,
        hidden: 8,
        blocks,
        ff: 16,
        time_features,
        dropout: 0.0,
    }
}

/// Small attention configurations for property tests: `dim` 1–3, heads 1/2/4, 1–2 blocks,
/// with or without time features; hidden 8, FF 12, no dropout.
pub(crate) fn small_configs() -> impl Strategy<Value = AttentionEnergyConfig> {
    (
        1usize..4,
        prop::sample::select(vec![1usize, 2, 4]),
        1usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(dim, heads, blocks, time_features)| AttentionEnergyConfig {
                dim,
                heads,
                hidden: 8,
                blocks,
                ff: 12,
                time_features,
                dropout: 0.0,
            },
        )
}

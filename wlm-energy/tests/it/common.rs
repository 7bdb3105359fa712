//! Shared helpers: fixture folders, seeded models and tensors, relative errors.

use std::path::PathBuf;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use wlm_energy::{
    perturb_constant_parameters, seeded_var_builder, AttentionEnergy, AttentionEnergyConfig,
    Kernels,
};

/// `../../shared/fixtures/<sub>` relative to this crate, or `WLM_FIXTURES/<sub>`; `None` (with a
/// message) when absent on a developer's checkout, a failure under `CI=true`.
pub(crate) fn fixture_dir(sub: &str) -> Option<PathBuf> {
    crate::shared_folder::shared(&format!("fixtures/{sub}"))
}

/// Uniform values in `[lo, hi)` from a seeded generator.
pub(crate) fn random(dims: &[usize], seed: u64, lo: f64, hi: f64, dtype: DType) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu)?.to_dtype(dtype)
}

/// `max|a − b| / max|b|`, in f64.
pub(crate) fn max_rel(a: &Tensor, b: &Tensor) -> Result<f64> {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F64)?.flatten_all()?;
    let b = b.to_dtype(DType::F64)?.flatten_all()?;
    let diff = (&a - &b)?.abs()?.max(0)?.to_scalar::<f64>()?;
    let scale = b.abs()?.max(0)?.to_scalar::<f64>()?;
    Ok(diff / scale.max(1e-300))
}

/// A seeded model with its constant-initialised parameters perturbed (as the parity fixtures
/// do), plain kernels.
pub(crate) fn seeded_model(
    config: &AttentionEnergyConfig,
    seed: u64,
    dtype: DType,
) -> Result<(AttentionEnergy, VarMap)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, dtype, &Device::Cpu);
    let energy = config.init(vb)?.with_kernels(Kernels::Plain);
    perturb_constant_parameters(&varmap, 0.1, seed.wrapping_add(1000))?;
    Ok((energy, varmap))
}

/// A small configuration for fast tests.
pub(crate) fn small_config(dim: usize, time_features: bool) -> AttentionEnergyConfig {
    AttentionEnergyConfig {
        dim,
        heads: 2,
        hidden: 8,
        blocks: 2,
        ff: 16,
        time_features,
        dropout: 0.0,
    }
}

/// The variables of a `VarMap`, sorted by name.
pub(crate) fn sorted_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut vars: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

//! Shared helpers: fixture folders, seeded models and tensors, entry-wise comparisons.

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

/// Entry-wise closeness in f64: `Ok` when every `|got_k − want_k| ≤ atol + rtol·|want_k|`, else
/// a message naming the worst entry (largest ratio of error to its bound), its flat index and
/// both values. A wrong small entry is not hidden behind the largest one.
pub(crate) fn check_close(
    got: &Tensor,
    want: &Tensor,
    atol: f64,
    rtol: f64,
) -> std::result::Result<(), String> {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let flat = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .expect("f64 values")
    };
    crate::close::check_close(&flat(got), &flat(want), atol, rtol)
}

/// [`check_close`] that panics with `what` and the worst entry.
#[track_caller]
pub(crate) fn assert_close(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    if let Err(msg) = check_close(got, want, atol, rtol) {
        panic!("{what}: {msg}");
    }
}

/// A seeded model with its constant-initialised parameters perturbed (as the parity fixtures
/// do), plain kernels.
///
/// The twin of the unit tests' `testing::perturbed_model` (`duplicates` pairs them), kept apart:
/// an integration test cannot reach that `cfg(test)` module, and the perturbation seeds differ
/// (`seed + 1000` here, as the parity fixtures were made; `seed + 100` there).
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

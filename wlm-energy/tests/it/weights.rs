//! Weights on disk: save → load round trips, and candle's own `VarMap::load` reads our files.

use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use wlm_energy::{load_weights, AttentionEnergy, AttentionEnergyConfig, Energy, Kernels};

use crate::common::{random, seeded_model, small_config};

/// The seed-1 f64 model of `config` saved to `energy.safetensors` in a temporary folder: the
/// model, the folder (removed when dropped) and the file's path.
fn saved_model(
    config: &AttentionEnergyConfig,
) -> anyhow::Result<(AttentionEnergy, tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("energy.safetensors");
    let (model, varmap) = seeded_model(config, 1, DType::F64)?;
    varmap.save(&path)?;
    Ok((model, dir, path))
}

#[test]
fn save_then_load_gives_identical_energies() -> anyhow::Result<()> {
    let config = small_config(2, true);
    let (original, _dir, path) = saved_model(&config)?;
    let x = random(&[10, 2], 3, -2.0, 2.0, DType::F64)?;
    let want = original.energy(&x, 0.4)?.to_scalar::<f64>()?;

    // A differently seeded model, then our loader.
    let (loaded, other) = seeded_model(&config, 2, DType::F64)?;
    assert_ne!(loaded.energy(&x, 0.4)?.to_scalar::<f64>()?, want);
    assert!(load_weights(&other, &path)?.is_empty());
    assert_eq!(loaded.energy(&x, 0.4)?.to_scalar::<f64>()?, want);
    let force_diff = (loaded.force(&x, 0.4)? - original.force(&x, 0.4)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()?;
    assert_eq!(force_diff, 0.0);

    // candle's VarMap::load reads the same file.
    let mut third = VarMap::new();
    let model = config
        .init(VarBuilder::from_varmap(&third, DType::F64, &Device::Cpu))?
        .with_kernels(Kernels::Plain);
    third.load(&path)?;
    assert_eq!(model.energy(&x, 0.4)?.to_scalar::<f64>()?, want);
    Ok(())
}

#[test]
fn f64_weights_load_into_an_f32_model() -> anyhow::Result<()> {
    let config = small_config(2, false);
    let (original, _dir, path) = saved_model(&config)?;
    let (model32, varmap32) = seeded_model(&config, 2, DType::F32)?;
    load_weights(&varmap32, &path)?;
    let x = random(&[10, 2], 3, -2.0, 2.0, DType::F64)?;
    let want = original.energy(&x, 0.0)?.to_scalar::<f64>()?;
    let got = model32
        .energy(&x.to_dtype(DType::F32)?, 0.0)?
        .to_scalar::<f32>()? as f64;
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    Ok(())
}

//! Tests of the native energy and force against the candle graph path.
use super::*;
use crate::attention_energy::AttentionEnergy;
use crate::attention_energy::AttentionEnergyConfig;
use crate::kernels::Kernels;
use crate::testing::{entry_rel, perturbed_model, random, small_config, small_configs};
use crate::weights::{perturb_constant_parameters, seeded_var_builder};
use crate::Energy;
use candle_core::{DType, Device};
use candle_nn::VarMap;
use proptest::prelude::*;

fn model(config: &AttentionEnergyConfig, seed: u64, dtype: DType) -> Result<AttentionEnergy> {
    let (energy, _) = perturbed_model(config, seed, dtype)?;
    energy.set_training(false);
    Ok(energy)
}

/// The native energy and force against the candle graph path (fused and plain) in f64.
fn check_against_graph(config: &AttentionEnergyConfig, n: usize, seed: u64) -> Result<()> {
    let mut energy = model(config, seed, DType::F64)?;
    let x = random(&[n, config.dim], seed + 1, -2.0, 2.0)?;
    let t = 0.37;
    let native_e = energy.energy_detached(&x, t)?;
    let native_f = energy.force_detached(&x, t)?;
    assert_eq!(native_f.dims(), x.dims());
    for kernels in [Kernels::Fused, Kernels::Plain] {
        energy.set_kernels(kernels);
        let e = energy.energy(&x, t)?;
        let f = energy.force(&x, t)?;
        let (err_e, err_f) = (entry_rel(&native_e, &e)?, entry_rel(&native_f, &f)?);
        assert!(
            err_e < 1e-12,
            "{config:?} n={n} {kernels:?}: energy error {err_e}"
        );
        assert!(
            err_f < 1e-11,
            "{config:?} n={n} {kernels:?}: force error {err_f}"
        );
    }
    Ok(())
}

#[test]
fn native_energy_and_force_equal_the_graph_path_in_f64() -> Result<()> {
    for (heads, time_features, dim) in [(1, false, 1), (4, true, 2), (2, false, 5), (4, false, 2)] {
        let config = small_config(dim, heads, 2, time_features);
        for n in [1, 2, 17, 64, 133] {
            check_against_graph(&config, n, 3 + n as u64)?;
        }
    }
    Ok(())
}

#[test]
fn native_force_without_kept_probabilities_equals_the_graph_path() -> Result<()> {
    // heads · n² above KEEP_PROBABILITIES_MAX: the VJP recomputes P.
    let config = AttentionEnergyConfig {
        heads: 4,
        hidden: 8,
        blocks: 1,
        ff: 8,
        ..AttentionEnergyConfig::default()
    };
    let n = 2049;
    assert!(4 * n * n > KEEP_PROBABILITIES_MAX);
    check_against_graph(&config, n, 5)
}

#[test]
fn native_f32_is_close_to_f64() -> Result<()> {
    let config = AttentionEnergyConfig::default();
    let e64 = model(&config, 2, DType::F64)?;
    let e32 = model(&config, 2, DType::F32)?;
    let x = random(&[300, 2], 9, -2.0, 2.0)?;
    let x32 = x.to_dtype(DType::F32)?;
    let f64_ = e64.force_detached(&x, 0.0)?;
    let f32_ = e32.force_detached(&x32, 0.0)?;
    let err = entry_rel(&f32_, &f64_)?;
    assert!(err < 1e-4, "force f32 vs f64: {err}");
    let err = entry_rel(
        &e32.energy_detached(&x32, 0.0)?,
        &e64.energy_detached(&x, 0.0)?,
    )?;
    assert!(err < 1e-5, "energy f32 vs f64: {err}");
    // And the f32 graph path is as close to the f64 force as the native path.
    let err = entry_rel(&e32.force(&x32, 0.0)?, &f64_)?;
    assert!(err < 1e-4, "force graph f32 vs f64: {err}");
    Ok(())
}

#[test]
fn cached_weights_follow_parameter_updates() -> Result<()> {
    let config = AttentionEnergyConfig {
        hidden: 8,
        ff: 8,
        blocks: 2,
        time_features: true,
        ..AttentionEnergyConfig::default()
    };
    let varmap = VarMap::new();
    let energy = config.init(seeded_var_builder(&varmap, 4, DType::F64, &Device::Cpu))?;
    energy.set_training(false);
    let x = random(&[19, 2], 3, -1.0, 1.0)?;
    let before = energy.force_detached(&x, 0.2)?;
    assert!(entry_rel(&energy.force_detached(&x, 0.2)?, &before)? == 0.0);
    // In-place updates (as an optimiser makes): the biases and LayerNorm parameters, then
    // one weight matrix.
    perturb_constant_parameters(&varmap, 0.1, 8)?;
    let after = energy.force_detached(&x, 0.2)?;
    assert!(
        entry_rel(&after, &before)? > 1e-6,
        "the update was not seen"
    );
    assert!(entry_rel(&after, &energy.force(&x, 0.2)?)? < 1e-11);
    let data = varmap.data().lock().expect("varmap");
    let w = data.get("flow_layers.1.ffn.3.weight").expect("weight");
    w.set(&(w.as_tensor() * 1.5)?)?;
    drop(data);
    let again = energy.force_detached(&x, 0.2)?;
    assert!(entry_rel(&again, &after)? > 1e-6, "the update was not seen");
    assert!(entry_rel(&again, &energy.force(&x, 0.2)?)? < 1e-11);
    let e = energy.energy_detached(&x, 0.7)?;
    assert!(entry_rel(&e, &energy.energy(&x, 0.7)?)? < 1e-12);
    Ok(())
}

#[test]
fn detached_results_carry_no_graph_and_dropout_falls_back() -> Result<()> {
    let config = AttentionEnergyConfig {
        hidden: 8,
        ff: 8,
        blocks: 1,
        dropout: 0.5,
        ..AttentionEnergyConfig::default()
    };
    let energy = model(&config, 1, DType::F64)?;
    let x = candle_core::Var::from_tensor(&random(&[7, 2], 2, -1.0, 1.0)?)?;
    let f = energy.force_detached(x.as_tensor(), 0.0)?;
    assert!(!f.track_op());
    // Training mode with dropout: the graph path runs (and is detached), still a force.
    energy.set_training(true);
    let f = energy.force_detached(x.as_tensor(), 0.0)?;
    assert!(!f.track_op());
    assert_eq!(f.dims(), &[7, 2]);
    let err = energy
        .force_detached(&random(&[7, 3], 2, -1.0, 1.0)?, 0.0)
        .unwrap_err();
    assert!(err.to_string().contains("dim 3"), "{err}");
    let err = energy.energy_detached(x.as_tensor(), f64::NAN).unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn native_force_equals_the_graph_path_for_random_shapes(
        n in 1usize..80,
        config in small_configs(),
        seed in 0u64..1000,
    ) {
        check_against_graph(&config, n, seed).unwrap();
    }
}

//! Fused kernels against the plain candle path for the whole network: values and parameter
//! gradients of a loss on the force, in f64 and f32.

use candle_core::{DType, Tensor};
use wlm_energy::{AttentionEnergyConfig, Energy, Kernels};

use crate::common::{assert_close, random, seeded_model, sorted_vars};

/// Fused vs plain, entry by entry: energy within `rtol` relative, force entries within
/// `atol + rtol·|plain|`, parameter-gradient entries within `10·atol + 10·rtol·|plain|` (a
/// loss on the force, summed over 150 particles). Inputs in [−2, 2]², forces O(1).
fn compare(dtype: DType, atol: f64, rtol: f64) -> anyhow::Result<()> {
    let config = AttentionEnergyConfig {
        dim: 2,
        heads: 4,
        hidden: 16,
        blocks: 2,
        ff: 32,
        time_features: true,
        dropout: 0.0,
    };
    let (mut energy, varmap) = seeded_model(&config, 31, dtype)?;
    let x = random(&[150, 2], 1, -2.0, 2.0, dtype)?;
    let weight = random(&[150, 2], 2, -1.0, 1.0, dtype)?;
    let mut results = Vec::new();
    for kernels in [Kernels::Plain, Kernels::Fused] {
        energy.set_kernels(kernels);
        let e = energy.energy(&x, 0.3)?;
        let force = energy.force(&x, 0.3)?;
        let grads = (&force * &weight)?.sum_all()?.backward()?;
        let param_grads: Vec<Option<Tensor>> = sorted_vars(&varmap)
            .iter()
            .map(|(_, v)| grads.get(v.as_tensor()).cloned())
            .collect();
        results.push((e, force, param_grads));
    }
    let (plain, fused) = (&results[0], &results[1]);
    assert_close(&format!("{dtype:?} energy"), &fused.0, &plain.0, 0.0, rtol);
    assert_close(&format!("{dtype:?} force"), &fused.1, &plain.1, atol, rtol);
    for ((name, _), (p, f)) in sorted_vars(&varmap)
        .iter()
        .zip(plain.2.iter().zip(&fused.2))
    {
        assert_eq!(
            p.is_some(),
            f.is_some(),
            "{name}: a gradient on one path only"
        );
        if let (Some(p), Some(f)) = (p, f) {
            let what = format!("{dtype:?} {name}: gradient");
            assert_close(&what, f, p, 10.0 * atol, 10.0 * rtol);
        }
    }
    Ok(())
}

#[test]
fn fused_kernels_equal_plain_values_and_gradients_in_f64() -> anyhow::Result<()> {
    compare(DType::F64, 1e-13, 1e-11)
}

#[test]
fn fused_kernels_equal_plain_values_and_gradients_in_f32() -> anyhow::Result<()> {
    compare(DType::F32, 1e-5, 1e-4)
}

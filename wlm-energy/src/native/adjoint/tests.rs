//! Tests of the native adjoint against the candle graph backward.
use crate::attention_energy::{AttentionEnergy, AttentionEnergyConfig};
use crate::kernels::Kernels;
use crate::layers::attention::KEEP_PROBABILITIES_MAX;
use crate::testing::{entry_rel, perturbed_model, random, small_config, small_configs};
use crate::Energy;
use candle_core::{DType, Result, Var};
use candle_nn::VarMap;
use proptest::prelude::*;

fn model(config: &AttentionEnergyConfig, seed: u64, dtype: DType) -> (AttentionEnergy, VarMap) {
    let (energy, varmap) = perturbed_model(config, seed, dtype).expect("model");
    energy.set_training(false);
    (energy, varmap)
}

/// The native adjoint against candle's backward of `⟨ā, force⟩` through the force graph
/// (fused and plain kernels), in f64: every parameter's gradient, which parameters have
/// one, and the positions' cotangent. Returns the largest relative error.
fn check_against_graph(config: &AttentionEnergyConfig, n: usize, seed: u64) -> Result<f64> {
    let (mut energy, varmap) = model(config, seed, DType::F64);
    let x = random(&[n, config.dim], seed + 1, -2.0, 2.0)?;
    let a_bar = random(&[n, config.dim], seed + 2, -1.0, 1.0)?;
    let t = 0.37;
    let tape = energy.force_tape(&x, t)?.expect("a native tape");
    // The tape's force is the native force, bit for bit.
    assert_eq!(
        entry_rel(tape.force(), &energy.force_detached(&x, t)?)?,
        0.0
    );
    let adjoint = tape.adjoint(&a_bar, true)?;
    let mut worst = 0.0f64;
    for kernels in [Kernels::Fused, Kernels::Plain] {
        energy.set_kernels(kernels);
        let x_var = Var::from_tensor(&x)?;
        let force = energy.force(x_var.as_tensor(), t)?;
        let store = (force * &a_bar)?.sum_all()?.backward()?;
        let vars = varmap.data().lock().expect("varmap").clone();
        let mut matched = 0;
        for (name, var) in &vars {
            let want = store.get(var.as_tensor());
            let got = adjoint
                .params
                .iter()
                .find(|(id, _)| *id == var.as_tensor().id());
            match (got, want) {
                (Some((_, got)), Some(want)) => {
                    let err = entry_rel(got, want)?;
                    assert!(
                        err < 1e-10,
                        "{config:?} n={n} {kernels:?}: {name} error {err:e}"
                    );
                    worst = worst.max(err);
                    matched += 1;
                }
                (None, None) => {}
                (got, want) => panic!(
                    "{config:?} {kernels:?}: {name}: native {} graph {}",
                    got.is_some(),
                    want.is_some()
                ),
            }
        }
        assert_eq!(
            matched,
            adjoint.params.len(),
            "every native gradient is a parameter's"
        );
        let want_x = store.get(x_var.as_tensor()).expect("a position gradient");
        let err = entry_rel(adjoint.positions.as_ref().expect("positions"), want_x)?;
        assert!(
            err < 1e-10,
            "{config:?} n={n} {kernels:?}: positions error {err:e}"
        );
        worst = worst.max(err);
    }
    Ok(worst)
}

#[test]
fn native_adjoint_equals_the_graph_backward_in_f64() -> Result<()> {
    for (heads, time_features, dim, blocks) in [
        (1, false, 1, 1),
        (4, true, 2, 2),
        (2, false, 5, 2),
        (4, false, 2, 3),
        (2, true, 3, 1),
    ] {
        let config = small_config(dim, heads, blocks, time_features);
        for n in [1, 2, 17, 64, 133] {
            check_against_graph(&config, n, 11 + n as u64)?;
        }
    }
    Ok(())
}

#[test]
fn native_adjoint_without_kept_probabilities_equals_the_graph_backward() -> Result<()> {
    // heads · n² above KEEP_PROBABILITIES_MAX: every attention kernel recomputes P.
    let config = AttentionEnergyConfig {
        heads: 4,
        hidden: 8,
        blocks: 1,
        ff: 8,
        time_features: true,
        ..AttentionEnergyConfig::default()
    };
    let n = 2049;
    assert!(4 * n * n > KEEP_PROBABILITIES_MAX);
    check_against_graph(&config, n, 5).map(|_| ())
}

#[test]
fn native_adjoint_in_f32_is_close_to_f64() -> Result<()> {
    let config = AttentionEnergyConfig {
        time_features: true,
        ..AttentionEnergyConfig::default()
    };
    let (e64, vars64) = model(&config, 2, DType::F64);
    let (e32, vars32) = model(&config, 2, DType::F32);
    let x = random(&[200, 2], 9, -2.0, 2.0)?;
    let a_bar = random(&[200, 2], 10, -1.0, 1.0)?;
    let cast = |t: &candle_core::Tensor| t.to_dtype(DType::F32);
    let g64 = e64
        .force_tape(&x, 0.3)?
        .expect("tape")
        .adjoint(&a_bar, true)?;
    let g32 = e32
        .force_tape(&cast(&x)?, 0.3)?
        .expect("tape")
        .adjoint(&cast(&a_bar)?, true)?;
    let (v64, v32) = (
        vars64.data().lock().expect("vars"),
        vars32.data().lock().expect("vars"),
    );
    let find = |params: &[(candle_core::TensorId, candle_core::Tensor)], var: &Var| {
        params
            .iter()
            .find(|(id, _)| *id == var.as_tensor().id())
            .map(|(_, g)| g.clone())
    };
    let mut compared = 0;
    for (name, var64) in v64.iter() {
        let (Some(a), Some(b)) = (find(&g32.params, &v32[name]), find(&g64.params, var64)) else {
            continue;
        };
        let err = entry_rel(&a, &b)?;
        assert!(err < 2e-3, "{name}: f32 vs f64 {err:e}");
        compared += 1;
    }
    assert_eq!(compared, g64.params.len());
    let err = entry_rel(
        g32.positions.as_ref().expect("x"),
        g64.positions.as_ref().expect("x"),
    )?;
    assert!(err < 1e-3, "positions: f32 vs f64 {err:e}");
    Ok(())
}

#[test]
fn a_cotangent_of_the_wrong_shape_is_an_error() -> Result<()> {
    let config = AttentionEnergyConfig {
        hidden: 8,
        ff: 8,
        blocks: 1,
        ..AttentionEnergyConfig::default()
    };
    let (energy, _) = model(&config, 1, DType::F64);
    let x = random(&[5, 2], 2, -1.0, 1.0)?;
    let tape = energy.force_tape(&x, 0.0)?.expect("tape");
    let err = tape
        .adjoint(&random(&[4, 2], 3, -1.0, 1.0)?, false)
        .unwrap_err();
    assert!(err.to_string().contains("[4, 2]"), "{err}");
    let err = tape.adjoint(&x.to_dtype(DType::F32)?, false).unwrap_err();
    assert!(err.to_string().contains("F32"), "{err}");
    // Dropout in training mode: no native tape (the caller differentiates the graph).
    let config = AttentionEnergyConfig {
        dropout: 0.5,
        ..config
    };
    let (energy, _) = model(&config, 1, DType::F64);
    energy.set_training(true);
    assert!(energy.force_tape(&x, 0.0)?.is_none());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn native_adjoint_equals_the_graph_backward_for_random_shapes(
        n in 1usize..60,
        config in small_configs(),
        seed in 0u64..1000,
    ) {
        check_against_graph(&config, n, seed).unwrap();
    }
}

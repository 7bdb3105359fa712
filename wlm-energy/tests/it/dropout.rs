//! Dropout: one force evaluation uses the same masks in its forward pass and its VJP.

use candle_core::{DType, Var};
use wlm_energy::{AttentionEnergyConfig, Energy};

use crate::common::{assert_close, check_close, random, seeded_model};

#[test]
fn force_with_dropout_is_minus_the_gradient_of_the_same_masked_energy() -> anyhow::Result<()> {
    let config = AttentionEnergyConfig {
        dropout: 0.3,
        ..crate::common::small_config(2, true)
    };
    let (energy, _varmap) = seeded_model(&config, 5, DType::F64)?;
    assert!(energy.is_training());
    let x = Var::from_tensor(&random(&[13, 2], 1, -2.0, 2.0, DType::F64)?)?;
    // Reseeding before each call makes the energy and the force draw identical masks.
    energy.seed_dropout(77)?;
    let grads = energy.energy(x.as_tensor(), 0.2)?.backward()?;
    let minus_grad = grads.get(x.as_tensor()).expect("grad").neg()?;
    energy.seed_dropout(77)?;
    let force = energy.force(x.as_tensor(), 0.2)?;
    // f64 forces of O(1) inputs: the hand-written VJPs and autograd differ by rounding only.
    assert_close("force vs −∇E", &force, &minus_grad, 1e-13, 1e-10);
    // Another seed gives other masks, hence another force.
    energy.seed_dropout(78)?;
    assert!(check_close(&energy.force(x.as_tensor(), 0.2)?, &force, 1e-3, 1e-3).is_err());
    Ok(())
}

#[test]
fn eval_mode_switches_dropout_off() -> anyhow::Result<()> {
    let with = AttentionEnergyConfig {
        dropout: 0.3,
        ..crate::common::small_config(2, false)
    };
    let (energy, _) = seeded_model(&with, 5, DType::F64)?;
    let (plain, _) = seeded_model(&crate::common::small_config(2, false), 5, DType::F64)?;
    let x = random(&[9, 2], 1, -2.0, 2.0, DType::F64)?;
    energy.set_training(false);
    assert!(!energy.is_training());
    let a = energy.force(&x, 0.0)?;
    assert_close(
        "eval mode vs no dropout",
        &a,
        &plain.force(&x, 0.0)?,
        0.0,
        1e-15,
    );
    assert_close("eval mode twice", &energy.force(&x, 0.0)?, &a, 0.0, 0.0);
    Ok(())
}

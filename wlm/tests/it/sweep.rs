//! The adjoint reverse sweep equals plain backprop through the rollout and the Sinkhorn custom
//! op, on a small attention network with learned friction, in both position-gradient modes.

use candle_core::{Device, Tensor};
use wlm::{
    EnergyConfig, FrictionConfig, GradientMethod, Model, ModelConfig, Precision, RolloutLoss,
};
use wlm_energy::{AttentionEnergyConfig, MeanFieldEnergyConfig};
use wlm_integrate::Integrator;
use wlm_ot::SinkhornConfig;

use crate::common::entry_rel;

fn cloud(n: usize, shift: f64, seed: f64) -> anyhow::Result<Tensor> {
    let v: Vec<f64> = (0..2 * n)
        .map(|i| ((i as f64) * 1.37 + seed).sin() + shift)
        .collect();
    Ok(Tensor::from_vec(v, (n, 2), &Device::Cpu)?)
}

fn problem() -> anyhow::Result<RolloutLoss> {
    Ok(RolloutLoss {
        x0: cloud(9, 0.0, 0.1)?,
        v0: (cloud(9, 0.0, 2.0)? * 0.4)?,
        t0: 0.5,
        dts: vec![0.1, 0.2, 0.15],
        targets: vec![
            cloud(8, 0.1, 3.0)?,
            cloud(10, 0.2, 4.0)?,
            cloud(7, 0.3, 5.0)?,
        ],
        sinkhorn: SinkhornConfig {
            p: 2,
            blur: 0.3,
            scaling: 0.9,
            converge_final: None,
        },
    })
}

fn compare(energy: EnergyConfig, integrator: Integrator, detach: bool) -> anyhow::Result<()> {
    let config = ModelConfig {
        energy,
        friction: FrictionConfig {
            gamma: 0.7,
            learnable: true,
        },
        integrator,
        detach_positions: detach,
        precision: Precision::F64,
        init_seed: 3,
    };
    let model = Model::new(config, &Device::Cpu)?;
    let p = problem()?;
    let sweep = model.loss_and_gradients(&p, GradientMethod::ReverseSweep)?;
    let plain = model.loss_and_gradients(&p, GradientMethod::Backprop)?;
    assert!((sweep.loss - plain.loss).abs() < 1e-13 * plain.loss.abs());
    assert_eq!(sweep.names, plain.names);
    for ((name, a), b) in sweep.names.iter().zip(&sweep.grads).zip(&plain.grads) {
        match (a, b) {
            (Some(a), Some(b)) => {
                let err = entry_rel(a, b)?;
                assert!(
                    err < 1e-10,
                    "{integrator:?} detach={detach}: {name} rel error {err:e}"
                );
            }
            (None, None) => {}
            _ => panic!("{name}: gradient present in only one method"),
        }
    }
    assert!(sweep.get(wlm::FRICTION_PARAMETER).is_some());
    Ok(())
}

fn attention() -> EnergyConfig {
    EnergyConfig::Attention(AttentionEnergyConfig {
        dim: 2,
        heads: 2,
        hidden: 8,
        blocks: 2,
        ff: 16,
        time_features: true,
        dropout: 0.0,
    })
}

#[test]
fn reverse_sweep_equals_backprop_attention_detached() -> anyhow::Result<()> {
    compare(attention(), Integrator::ReferenceLeapfrog, true)
}

#[test]
fn reverse_sweep_equals_backprop_attention_exact() -> anyhow::Result<()> {
    compare(attention(), Integrator::ReferenceLeapfrog, false)
}

#[test]
fn reverse_sweep_equals_backprop_conformal_mean_field_both_modes() -> anyhow::Result<()> {
    let mf = EnergyConfig::MeanField(MeanFieldEnergyConfig {
        dim: 2,
        hidden: 8,
        layers: 2,
    });
    compare(mf.clone(), Integrator::ConformalLeapfrog, true)?;
    compare(mf, Integrator::ConformalLeapfrog, false)
}

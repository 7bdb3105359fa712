//! One training step on the parity fixtures reproduces the PyTorch reference's loss and
//! parameter gradients (`grads`, `grads_full`) in f64, by the reverse sweep and by backprop.

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use wlm::{
    EnergyConfig, FrictionConfig, GradientMethod, Model, ModelConfig, Precision, RolloutLoss,
    TrainConfig, Trainer, VelocitySource,
};
use wlm_energy::AttentionEnergyConfig;
use wlm_ot::SinkhornConfig;

use crate::common::entry_rel;

fn matrix(v: &Value) -> anyhow::Result<Tensor> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone())?;
    Ok(Tensor::new(rows, &Device::Cpu)?)
}

fn nested(v: &Value, shape: &[usize]) -> anyhow::Result<Tensor> {
    fn flat(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
            Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
            _ => out.push(f64::NAN),
        }
    }
    let mut out = Vec::new();
    flat(v, &mut out);
    Ok(Tensor::from_vec(out, shape, &Device::Cpu)?)
}

struct Case {
    json: Value,
    model: Model,
    problem: RolloutLoss,
}

fn load(case: &str, detach_positions: bool) -> anyhow::Result<Option<Case>> {
    let Some(dir) = crate::shared_folder::shared(&format!("fixtures/parity/{case}")) else {
        return Ok(None);
    };
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json"))?)?;
    let c = &json["config"];
    let get = |k: &str| {
        c[k].as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| anyhow::anyhow!("{k}"))
    };
    let energy = AttentionEnergyConfig {
        dim: get("d")?,
        heads: get("heads")?,
        hidden: get("hidden")?,
        blocks: get("blocks")?,
        ff: get("ff")?,
        time_features: c["use_time"].as_bool().unwrap_or(false),
        dropout: 0.0,
    };
    let config = ModelConfig {
        energy: EnergyConfig::Attention(energy),
        friction: FrictionConfig {
            gamma: c["friction"]["gamma"].as_f64().unwrap_or(0.0),
            learnable: c["friction"]["learnable"].as_bool().unwrap_or(false),
        },
        detach_positions,
        precision: Precision::F64,
        ..ModelConfig::default()
    };
    let model = Model::new(config, &Device::Cpu)?;
    model.load_weights(dir.join("weights.safetensors"))?;
    let inputs = &json["inputs"];
    let targets = inputs["targets"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("targets"))?
        .iter()
        .map(matrix)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let k = get("k")?;
    let dt = c["dt"].as_f64().ok_or_else(|| anyhow::anyhow!("dt"))?;
    let sinkhorn = SinkhornConfig {
        p: c["geomloss"]["p"].as_u64().unwrap_or(2) as u32,
        blur: c["geomloss"]["blur"].as_f64().unwrap_or(0.05),
        scaling: c["geomloss"]["scaling"].as_f64().unwrap_or(0.9),
        converge_final: None,
    };
    let problem = RolloutLoss {
        x0: matrix(&inputs["x0"])?,
        v0: matrix(&inputs["v0"])?,
        t0: 0.0,
        dts: vec![dt; k],
        targets,
        sinkhorn,
    };
    Ok(Some(Case {
        json,
        model,
        problem,
    }))
}

/// Loss to 1e-12 relative and every gradient to 1e-8 relative (to the max |value| of its tensor).
fn check(case: &str, detach_positions: bool, method: GradientMethod) -> anyhow::Result<()> {
    let Some(Case {
        json,
        model,
        problem,
    }) = load(case, detach_positions)?
    else {
        return Ok(());
    };
    let out = model.loss_and_gradients(&problem, method)?;
    let want_loss = json["outputs"]["loss"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("loss"))?;
    let rel = (out.loss - want_loss).abs() / want_loss.abs();
    assert!(
        rel < 1e-12,
        "{case} {method:?}: loss {} vs {want_loss} (rel {rel:e})",
        out.loss
    );
    let key = if detach_positions {
        "grads"
    } else {
        "grads_full"
    };
    let names: Vec<String> = serde_json::from_value(json["param_names"].clone())?;
    let shapes: std::collections::HashMap<String, Vec<usize>> =
        serde_json::from_value(json["param_shapes"].clone())?;
    let mut checked = 0;
    for name in &names {
        let want = nested(&json["outputs"][key][name], &shapes[name])?;
        let got = match out.get(name) {
            Some(g) => g.to_dtype(DType::F64)?,
            None => want.zeros_like()?,
        };
        let err = entry_rel(&got, &want)?;
        assert!(
            err < 1e-10,
            "{case} {key} {method:?}: {name} rel error {err:e}"
        );
        checked += 1;
    }
    assert_eq!(checked, names.len());
    Ok(())
}

#[test]
fn reverse_sweep_matches_reference_grads_small() -> anyhow::Result<()> {
    check("small", true, GradientMethod::ReverseSweep)
}

#[test]
fn reverse_sweep_matches_reference_grads_full_small() -> anyhow::Result<()> {
    check("small", false, GradientMethod::ReverseSweep)
}

#[test]
fn reverse_sweep_matches_reference_grads_boids_like() -> anyhow::Result<()> {
    check("boids_like", true, GradientMethod::ReverseSweep)
}

#[test]
fn reverse_sweep_matches_reference_grads_full_boids_like() -> anyhow::Result<()> {
    check("boids_like", false, GradientMethod::ReverseSweep)
}

#[test]
fn backprop_matches_reference_grads_both_modes() -> anyhow::Result<()> {
    for case in ["small", "boids_like"] {
        check(case, true, GradientMethod::Backprop)?;
        check(case, false, GradientMethod::Backprop)?;
    }
    Ok(())
}

/// A full `Trainer` step (fixed horizon, no subsampling, fixed blur) reports the reference loss.
#[test]
fn trainer_step_reports_the_reference_loss() -> anyhow::Result<()> {
    let Some(Case {
        json,
        model,
        problem,
    }) = load("small", true)?
    else {
        return Ok(());
    };
    let times: Vec<f64> = serde_json::from_value(json["inputs"]["time_grid"].clone())?;
    let mut clouds = vec![problem.x0.clone()];
    clouds.extend(problem.targets.iter().cloned());
    let mut velocities = vec![Some(problem.v0.clone())];
    velocities.extend(problem.targets.iter().map(|_| None));
    let snapshots = wlm_data::Snapshots::from_tensors(times, &clouds, Some(&velocities))?;
    let config = TrainConfig {
        fixed_horizon: true,
        subsample_targets: false,
        initial_velocities: VelocitySource::Data,
        loss: wlm::LossConfig {
            p: 2,
            blur: Some(problem.sinkhorn.blur),
            scaling: 0.9,
        },
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config, &snapshots)?;
    let report = trainer.step()?;
    let want = json["outputs"]["loss"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("loss"))?;
    // The snapshot times differ from k·dt by an ulp, hence 1e-12 rather than exact.
    assert!(
        (report.loss - want).abs() < 1e-12 * want,
        "{} vs {want}",
        report.loss
    );
    assert_eq!(report.horizon, 3);
    Ok(())
}

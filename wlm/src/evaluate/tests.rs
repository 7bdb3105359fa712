//! Tests of forecasts, interpolations, their scores and the baselines.
use super::*;
use crate::config::SplitConfig;
use crate::model::{EnergyConfig, ModelConfig, Precision};
use crate::velocity::Scheme;
use rand::{Rng, SeedableRng};
use wlm_energy::AnalyticPotential;

/// 9 snapshots, Δt = 0.25, of 24, 28 or 32 points in 2-D with velocities: the sizes differ
/// so that predictions and observations do too.
fn data() -> Snapshots {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n_snapshots = 9;
    let times: Vec<f64> = (0..n_snapshots).map(|k| 0.25 * k as f64).collect();
    let mut positions = Vec::new();
    let mut velocities = Vec::new();
    for k in 0..n_snapshots {
        let n = 24 + 4 * (k % 3);
        let drift = 0.3 * k as f64;
        let x: Vec<f64> = (0..2 * n)
            .map(|i| rng.random_range(-1.0..1.0) + if i % 2 == 0 { drift } else { 0.0 })
            .collect();
        let v: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-0.5..0.5)).collect();
        positions.push(x);
        velocities.push(Some(v));
    }
    Snapshots::new(times, 2, positions, Some(velocities)).expect("valid snapshots")
}

/// An f32 model with an interacting analytic energy (no parameters).
fn model() -> Model {
    let config = ModelConfig {
        energy: EnergyConfig::Analytic {
            potential: AnalyticPotential::HarmonicRepulsion {
                stiffness: 1.0,
                repulsion: 0.5,
                length: 0.5,
            },
            dim: 2,
        },
        precision: Precision::F32,
        ..ModelConfig::default()
    };
    Model::new(config, &Device::Cpu).expect("model")
}

fn observed(data: &Snapshots, k: usize) -> Tensor {
    data.positions_tensor(k, DType::F64, &Device::Cpu)
        .expect("observed")
}

/// Plain sequential W1 (or W2) of a prediction (any dtype) against observed snapshot `k`.
fn w(data: &Snapshots, prediction: &Tensor, k: usize, w2: bool) -> f64 {
    let x = prediction.to_dtype(DType::F64).expect("f64");
    let y = observed(data, k);
    if w2 {
        wlm_ot::wasserstein_2(&x, &y).expect("w2")
    } else {
        wlm_ot::wasserstein_1(&x, &y).expect("w1")
    }
}

fn baseline<'a>(e: &'a Evaluation, name: &str) -> &'a BaselineScore {
    e.baselines
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no baseline {name}"))
}

#[test]
fn parallel_forecast_evaluation_equals_sequential_scoring() -> anyhow::Result<()> {
    let (model, data) = (model(), data());
    let split = SplitConfig::Forecast { n_train: 5 }.resolve(data.len())?;
    let config = EvalConfig::default();
    let (e, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
    // The forecast kept is the rollout `forecast` gives.
    let fresh = forecast(&model, &data, 0, config.initial_velocities, 5)?;
    assert_eq!(p.forecast.times, fresh.times);
    for (a, b) in p.forecast.positions.iter().zip(&fresh.positions) {
        assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
    }
    assert!(p.interpolations.is_empty());
    // Model scores, W1 and W2, at every snapshot, in index order.
    let indices: Vec<usize> = e.scores.iter().map(|s| s.index).collect();
    assert_eq!(indices, (0..data.len()).collect::<Vec<_>>());
    for s in &e.scores {
        let prediction = &p.forecast.positions[s.index];
        assert_eq!(
            s.w1,
            w(&data, prediction, s.index, false),
            "W1 at {}",
            s.index
        );
        assert_eq!(
            s.w2,
            Some(w(&data, prediction, s.index, true)),
            "W2 at {}",
            s.index
        );
        assert_eq!(s.time, data.times()[s.index]);
    }
    assert_eq!(e.scores[0].role, Role::Start);
    let train: Vec<f64> = e.scores[1..5].iter().map(|s| s.w1).collect();
    assert_eq!(e.train_w1, MeanSe::of(&train));
    // The restart from the last training snapshot.
    let restart = p.from_last.as_ref().expect("restart");
    assert_eq!(restart.start, 4);
    let expected: Vec<(usize, f64)> = (5..data.len())
        .map(|h| (h, w(&data, &restart.positions[h - 4], h, false)))
        .collect();
    assert_eq!(e.from_last, expected);
    // The baselines.
    let x_last = observed(&data, 4);
    let v_last = data
        .velocities_tensor(4, DType::F64, &Device::Cpu)?
        .expect("velocities");
    let repeat: Vec<(usize, f64)> = (5..data.len())
        .map(|h| (h, w(&data, &x_last, h, false)))
        .collect();
    assert_eq!(baseline(&e, "repeat_last").w1, repeat);
    let mut moved = Vec::new();
    for h in 5..data.len() {
        let dt = data.times()[h] - data.times()[4];
        moved.push((h, w(&data, &(&x_last + (&v_last * dt)?)?, h, false)));
    }
    assert_eq!(baseline(&e, "constant_velocity").w1, moved);
    assert_eq!(e.baselines, baselines(&data, &split)?);
    // Without W2 the W1s are the same.
    let no_w2 = EvalConfig {
        w2: false,
        ..config
    };
    let e1 = evaluate(&model, &data, &split, &no_w2)?;
    assert!(e1.scores.iter().all(|s| s.w2.is_none()) && e1.test_w2.is_none());
    for (a, b) in e1.scores.iter().zip(&e.scores) {
        assert_eq!(a.w1, b.w1);
    }
    Ok(())
}

#[test]
fn parallel_interpolation_evaluation_equals_sequential_scoring() -> anyhow::Result<()> {
    let (model, data) = (model(), data());
    let held_out = vec![2, 3, 6, 8];
    let split = SplitConfig::Holdout {
        indices: held_out.clone(),
    }
    .resolve(data.len())?;
    let config = EvalConfig::default();
    let (e, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
    assert!(!e.forecast && p.from_last.is_none() && e.from_last.is_empty());
    let kept: Vec<usize> = p.interpolations.iter().map(|(h, _)| *h).collect();
    assert_eq!(kept, held_out);
    for s in &e.scores {
        let prediction = if s.role == Role::Test {
            let fresh = interpolate(&model, &data, s.index, config.initial_velocities, 5)?;
            let (_, kept) = &p.interpolations[held_out
                .iter()
                .position(|&h| h == s.index)
                .expect("held out")];
            assert_eq!(kept.to_vec2::<f32>()?, fresh.to_vec2::<f32>()?);
            fresh
        } else {
            p.forecast.positions[s.index].clone()
        };
        assert_eq!(
            s.w1,
            w(&data, &prediction, s.index, false),
            "W1 at {}",
            s.index
        );
        assert_eq!(
            s.w2,
            Some(w(&data, &prediction, s.index, true)),
            "W2 at {}",
            s.index
        );
    }
    let roles: Vec<(usize, Role)> = e.scores.iter().map(|s| (s.index, s.role)).collect();
    let expected_roles: Vec<(usize, Role)> = (0..data.len())
        .map(|k| match k {
            0 => (k, Role::Start),
            k if held_out.contains(&k) => (k, Role::Test),
            k => (k, Role::Train),
        })
        .collect();
    assert_eq!(roles, expected_roles);
    let previous: Vec<(usize, f64)> = held_out
        .iter()
        .map(|&h| (h, w(&data, &observed(&data, h - 1), h, false)))
        .collect();
    assert_eq!(baseline(&e, "repeat_previous").w1, previous);
    let times = data.times();
    let mut midpoint = Vec::new();
    for &h in held_out.iter().filter(|&&h| h + 1 < data.len()) {
        let s = (times[h] - times[h - 1]) / (times[h + 1] - times[h - 1]);
        let mid = wlm_ot::displacement_interpolation(
            &observed(&data, h - 1),
            &observed(&data, h + 1),
            s,
        )?;
        midpoint.push((h, w(&data, &mid, h, false)));
    }
    assert_eq!(midpoint.len(), 3, "snapshot 8 is the last: no midpoint");
    // The baseline weights the interpolation's points instead of repeating them: the same
    // W1 up to rounding.
    let scored = &baseline(&e, "ot_midpoint").w1;
    assert_eq!(scored.len(), midpoint.len());
    for (&(k, got), &(h, want)) in scored.iter().zip(&midpoint) {
        assert_eq!(k, h);
        assert!(
            (got - want).abs() <= 1e-12 * (1.0 + want),
            "{got} vs {want}"
        );
    }
    assert_eq!(e.baselines, interpolation_baselines(&data, &held_out)?);
    Ok(())
}

#[test]
fn scores_do_not_depend_on_the_number_of_threads() -> anyhow::Result<()> {
    let (model, data) = (model(), data());
    let fc = forecast(&model, &data, 0, VelocitySource::Data, 5)?;
    let pairs: Vec<(usize, &Tensor)> = (0..data.len())
        .rev()
        .map(|k| (k, &fc.positions[k]))
        .collect();
    let sequential: Vec<f64> = pairs.iter().map(|&(k, x)| w(&data, x, k, false)).collect();
    let forecast_split = SplitConfig::Forecast { n_train: 3 }.resolve(data.len())?;
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let (scores, forecast_baselines, interpolation) = pool.install(|| {
            Ok::<_, Error>((
                w1_scores(&data, &pairs)?,
                baselines(&data, &forecast_split)?,
                interpolation_baselines(&data, &[1, 4, 7])?,
            ))
        })?;
        assert_eq!(scores, sequential, "{threads} threads: the order given");
        assert_eq!(forecast_baselines, baselines(&data, &forecast_split)?);
        assert_eq!(interpolation, interpolation_baselines(&data, &[1, 4, 7])?);
    }
    Ok(())
}

#[test]
fn a_split_index_the_data_lack_is_an_error_naming_the_split() -> anyhow::Result<()> {
    let (model, data) = (model(), data());
    let split = Split {
        train: vec![0, 1, 2],
        test: vec![3, 12],
        validation: Vec::new(),
    };
    for message in [
        evaluate(&model, &data, &split, &EvalConfig::default())
            .err()
            .map(|e| e.to_string()),
        baselines(&data, &split).err().map(|e| e.to_string()),
        w1_scores(&data, &[(12, &observed(&data, 0))])
            .err()
            .map(|e| e.to_string()),
    ] {
        let message = message.expect("an error");
        assert!(message.contains("snapshot 12 does not exist"), "{message}");
        assert!(message.contains("9 snapshots"), "{message}");
    }
    let message = evaluate(&model, &data, &split, &EvalConfig::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("`split`"), "{message}");
    Ok(())
}

/// An f64 harmonic-repulsion model with stiffness `stiffness`.
fn model_f64(stiffness: f64) -> Model {
    let config = ModelConfig {
        energy: EnergyConfig::Analytic {
            potential: AnalyticPotential::HarmonicRepulsion {
                stiffness,
                repulsion: 0.5,
                length: 0.5,
            },
            dim: 2,
        },
        precision: Precision::F64,
        ..ModelConfig::default()
    };
    Model::new(config, &Device::Cpu).expect("model")
}

/// 9 snapshots (Δt = 0.25) of 20 particles simulated by `truth` at 5 steps per interval,
/// each snapshot's rows shuffled (unpaired), with their true velocities.
fn simulated_data(truth: &Model) -> anyhow::Result<Snapshots> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let n = 20;
    let x0: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v0: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-0.5..0.5)).collect();
    let x0 = Tensor::from_vec(x0, (n, 2), &Device::Cpu)?;
    let v0 = Tensor::from_vec(v0, (n, 2), &Device::Cpu)?;
    let times: Vec<f64> = (0..9).map(|k| 0.25 * k as f64).collect();
    let states = truth.simulate(&x0, &v0, 0.0, &times[1..], 5)?;
    let mut positions = vec![x0];
    let mut velocities = vec![Some(v0)];
    for s in states {
        let mut order: Vec<u32> = (0..n as u32).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        let order = Tensor::new(order.as_slice(), &Device::Cpu)?;
        positions.push(s.positions.index_select(&order, 0)?);
        velocities.push(Some(s.velocities.index_select(&order, 0)?));
    }
    Ok(Snapshots::from_tensors(
        times,
        &positions,
        Some(&velocities),
    )?)
}

fn same(a: &Tensor, b: &Tensor) -> anyhow::Result<bool> {
    Ok(a.to_vec2::<f64>()? == b.to_vec2::<f64>()?)
}

/// On data the model itself simulated (rows shuffled at every snapshot), the model's own
/// velocities carried onto the observed restarts are the true ones, so `Model` restarts
/// reproduce the `Data` restarts exactly; with another model they differ, and they are the
/// standalone `initial_velocities` rollout's.
#[test]
fn model_velocities_restart_from_the_models_own_rollout() -> anyhow::Result<()> {
    let truth = model_f64(1.0);
    let data = simulated_data(&truth)?;
    let data_config = EvalConfig {
        w2: false,
        ..EvalConfig::default()
    };
    let model_config = EvalConfig {
        initial_velocities: VelocitySource::Model,
        model_start_velocities: Some(VelocitySource::Data),
        ..data_config.clone()
    };
    for split in [
        SplitConfig::Holdout {
            indices: vec![3, 6],
        }
        .resolve(data.len())?,
        SplitConfig::Forecast { n_train: 5 }.resolve(data.len())?,
    ] {
        let (e_data, p_data) = evaluate_with_predictions(&truth, &data, &split, &data_config)?;
        let (e_model, p_model) = evaluate_with_predictions(&truth, &data, &split, &model_config)?;
        assert_eq!(e_model, e_data);
        for ((h, a), (_, b)) in p_model.interpolations.iter().zip(&p_data.interpolations) {
            assert!(same(a, b)?, "interpolation of {h}");
        }
        if let (Some(a), Some(b)) = (&p_model.from_last, &p_data.from_last) {
            assert!(
                same(&a.velocities[0], &b.velocities[0])?,
                "restart velocities"
            );
        }
        assert_eq!(
            p_model.interpolations.len() + usize::from(p_model.from_last.is_some()),
            2 - usize::from(split.is_forecast()),
        );
    }
    // Carried velocities equal the true ones at every later snapshot.
    let known: Vec<usize> = (0..data.len()).collect();
    for start in 1..data.len() {
        let carried = initial_velocities(&truth, &data, start, &known, &model_config)?;
        let truth_v = data
            .velocities_tensor(start, DType::F64, &Device::Cpu)?
            .expect("velocities");
        assert!(same(&carried, &truth_v)?, "snapshot {start}");
    }
    // Another model: its own velocities are not the data's, and evaluation uses the
    // standalone rollout's.
    let wrong = model_f64(3.0);
    let split = SplitConfig::Holdout {
        indices: vec![3, 6],
    }
    .resolve(data.len())?;
    let (_, p) = evaluate_with_predictions(&wrong, &data, &split, &model_config)?;
    for (h, prediction) in &p.interpolations {
        let v = initial_velocities(&wrong, &data, h - 1, &split.train, &model_config)?;
        let truth_v = data
            .velocities_tensor(h - 1, DType::F64, &Device::Cpu)?
            .expect("velocities");
        assert!(!same(&v, &truth_v)?, "snapshot {}", h - 1);
        let fresh = interpolate_with_velocities(&wrong, &data, *h, &v, 5)?;
        assert!(same(prediction, &fresh)?, "interpolation of {h}");
    }
    // Without a start source, `Model` is an error naming the field.
    let unset = EvalConfig {
        model_start_velocities: None,
        ..model_config
    };
    let message = evaluate(&truth, &data, &split, &unset)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("eval.model_start_velocities"), "{message}");
    Ok(())
}

/// An interpolation's OT velocities never see the held-out snapshot: the forward
/// difference at `h − 1` is taken with `h + 1`.
#[test]
fn ot_velocities_of_an_interpolation_skip_the_held_out_snapshot() -> anyhow::Result<()> {
    let (model, data) = (model_f64(1.0), data());
    let split = SplitConfig::Holdout { indices: vec![4] }.resolve(data.len())?;
    let config = EvalConfig {
        initial_velocities: VelocitySource::OtForward,
        w2: false,
        ..EvalConfig::default()
    };
    let (_, p) = evaluate_with_predictions(&model, &data, &split, &config)?;
    let skipping = crate::ot_finite_difference(&data.select(&[3, 5])?, 0, Scheme::Forward)?;
    let leaking = crate::ot_finite_difference(&data, 3, Scheme::Forward)?;
    let expected = interpolate_with_velocities(&model, &data, 4, &skipping, 5)?;
    let leaked = interpolate_with_velocities(&model, &data, 4, &leaking, 5)?;
    assert!(same(&p.interpolations[0].1, &expected)?);
    assert!(!same(&p.interpolations[0].1, &leaked)?);
    // The bare `interpolate` also leaves the held-out snapshot out.
    let bare = interpolate(&model, &data, 4, VelocitySource::OtForward, 5)?;
    assert!(same(&bare, &expected)?);
    // OT estimates start the forecast from snapshot 0 with the next training snapshot.
    let v0 = crate::ot_finite_difference(&data, 0, Scheme::Forward)?;
    let fc = forecast_with_velocities(&model, &data, 0, &v0, 5)?;
    assert!(same(&p.forecast.positions[8], &fc.positions[8])?);
    Ok(())
}

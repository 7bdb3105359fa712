//! Tests of the trainer: horizons, starts, batches, steps and their reports.
use super::*;
use crate::model::{EnergyConfig, FrictionConfig, ModelConfig, Precision};
use candle_core::Device;
use wlm_energy::AttentionEnergyConfig;
use wlm_integrate::Integrator;

fn cloud(n: usize, shift: f64, seed: f64) -> Tensor {
    let v: Vec<f64> = (0..2 * n)
        .map(|i| ((i as f64) * 1.37 + seed).sin() + shift)
        .collect();
    Tensor::from_vec(v, (n, 2), &Device::Cpu).expect("cloud")
}

/// Losses, friction and final parameters of `steps` training steps.
fn train(keep_graphs_mib: u64, detach_positions: bool, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let clouds: Vec<Tensor> = (0..4)
        .map(|m| cloud(12, 0.1 * m as f64, m as f64))
        .collect();
    let mut velocities = vec![Some((cloud(12, 0.0, 9.0) * 0.3).expect("v"))];
    velocities.extend((1..4).map(|_| None));
    let snapshots = Snapshots::from_tensors(vec![0.0, 0.1, 0.2, 0.3], &clouds, Some(&velocities))
        .expect("snapshots");
    let model = Model::new(
        ModelConfig {
            energy: EnergyConfig::Attention(AttentionEnergyConfig {
                dim: 2,
                heads: 2,
                hidden: 8,
                blocks: 1,
                ff: 16,
                time_features: false,
                dropout: 0.0,
            }),
            friction: FrictionConfig {
                gamma: 0.5,
                learnable: true,
            },
            integrator: Integrator::ReferenceLeapfrog,
            detach_positions,
            precision: Precision::F64,
            init_seed: 1,
        },
        &Device::Cpu,
    )
    .expect("model");
    let config = TrainConfig {
        batch_size: Some(10),
        lr: 1e-2,
        keep_graphs_mib,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config, &snapshots).expect("trainer");
    let losses = (0..steps)
        .map(|_| trainer.step().expect("step").loss)
        .collect();
    let params = trainer
        .model()
        .named_parameters()
        .iter()
        .flat_map(|(_, v)| {
            v.as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f64>())
                .expect("values")
        })
        .collect();
    (losses, params)
}

/// Keeping the forward graphs (the default budget) and rebuilding them (budget 0) train
/// identically, step for step, in both position-gradient modes.
#[test]
fn keeping_graphs_trains_exactly_like_rebuilding_them() {
    for detach_positions in [true, false] {
        let kept = train(TrainConfig::default().keep_graphs_mib, detach_positions, 4);
        let rebuilt = train(0, detach_positions, 4);
        assert_eq!(kept.0, rebuilt.0, "losses, detach={detach_positions}");
        assert_eq!(kept.1, rebuilt.1, "parameters, detach={detach_positions}");
        assert!(kept.0.iter().all(|l| l.is_finite()));
    }
}

/// A one-block, f64 attention model in 2-D, small enough for many training steps.
fn tiny_attention_model() -> Model {
    Model::new(
        ModelConfig {
            energy: EnergyConfig::Attention(AttentionEnergyConfig {
                dim: 2,
                heads: 1,
                hidden: 4,
                blocks: 1,
                ff: 8,
                time_features: false,
                dropout: 0.0,
            }),
            precision: Precision::F64,
            ..ModelConfig::default()
        },
        &Device::Cpu,
    )
    .expect("model")
}

/// Data without velocities train from the OT estimate at snapshot 0: the forward
/// difference to training snapshot 1 (central has no backward neighbour there), row for
/// row; a few steps give finite losses. `Model` velocities are refused, naming the field.
#[test]
fn ot_velocities_start_training_on_data_without_velocities() {
    let clouds: Vec<Tensor> = (0..4)
        .map(|m| cloud(12, 0.1 * m as f64, m as f64))
        .collect();
    let snapshots =
        Snapshots::from_tensors(vec![0.0, 0.1, 0.2, 0.3], &clouds, None).expect("snapshots");
    let model = tiny_attention_model;
    let config = |source| TrainConfig {
        initial_velocities: source,
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    let mut trainer =
        Trainer::new(model(), config(VelocitySource::OtCentral), &snapshots).expect("trainer");
    let expected = ot_finite_difference(&snapshots, 0, Scheme::Forward).expect("estimate");
    let v0 = trainer.data.start_velocities[0]
        .as_ref()
        .expect("velocities");
    assert_eq!(
        v0.to_vec2::<f64>().expect("v0"),
        expected.to_vec2::<f64>().expect("expected")
    );
    assert!(
        v0.abs()
            .expect("abs")
            .sum_all()
            .expect("sum")
            .to_scalar::<f64>()
            .expect("s")
            > 0.0
    );
    for _ in 0..3 {
        assert!(trainer.step().expect("step").loss.is_finite());
    }
    let message = Trainer::new(model(), config(VelocitySource::Model), &snapshots)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("train.initial_velocities"), "{message}");
    let message = Trainer::new(model(), config(VelocitySource::Data), &snapshots)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("OtCentral"), "{message}");
}
/// Over many draws, multiple-shooting starts take every training snapshot but the last
/// (and nothing else), horizons stay within `1..=min(cap, K − s)` so `s + k ≤ K`, and a
/// fixed horizon is that maximum. Without `random_start` the start is 0 and the horizon is
/// a single `range_inclusive` draw `U{1..min(cap, K)}` from the same stream.
#[test]
fn random_starts_cover_every_eligible_snapshot_and_stay_in_range() {
    for n_snapshots in [2, 5, 9] {
        let last = n_snapshots - 1;
        for cap in [None, Some(2)] {
            for fixed in [false, true] {
                let mut rng = TrainRng::seed_from(7);
                let mut seen = vec![0usize; n_snapshots];
                for _ in 0..2000 {
                    let (s, k) = draw_start_and_horizon(&mut rng, n_snapshots, cap, fixed, true);
                    let longest = cap.map_or(last - s, |c| c.min(last - s));
                    assert!(s < last, "start {s} of {n_snapshots}");
                    assert!(k >= 1 && k <= longest, "k {k}, s {s}, cap {cap:?}");
                    assert!(s + k <= last);
                    if fixed {
                        assert_eq!(k, longest);
                    }
                    seen[s] += 1;
                }
                assert!(seen[..last].iter().all(|&c| c > 0), "{seen:?}");
                assert_eq!(seen[last], 0);
                let mut rng = TrainRng::seed_from(7);
                let mut reference = TrainRng::seed_from(7);
                for _ in 0..200 {
                    let (s, k) = draw_start_and_horizon(&mut rng, n_snapshots, cap, fixed, false);
                    let big_k = cap.map_or(last, |c| c.min(last));
                    let expected = if fixed {
                        big_k
                    } else {
                        reference.range_inclusive(1, big_k as u64) as usize
                    };
                    assert_eq!((s, k), (0, expected));
                }
                assert_eq!(rng.state(), reference.state());
            }
        }
    }
}

/// A multiple-shooting run on data without velocities starts from several snapshots,
/// never past `K`; each start's OT estimate is made once and is the central difference
/// at that training snapshot (forward at 0). `Data` starts need velocities at every
/// eligible snapshot: the error names the first that lacks them.
#[test]
fn random_starts_train_from_cached_ot_estimates_and_data_needs_every_start() {
    let clouds: Vec<Tensor> = (0..5)
        .map(|m| cloud(10, 0.1 * m as f64, m as f64))
        .collect();
    let times = vec![0.0, 0.1, 0.2, 0.3, 0.4];
    let snapshots = Snapshots::from_tensors(times.clone(), &clouds, None).expect("snapshots");
    let model = tiny_attention_model;
    let config = |source| TrainConfig {
        initial_velocities: source,
        random_start: true,
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    let mut trainer =
        Trainer::new(model(), config(VelocitySource::OtCentral), &snapshots).expect("trainer");
    assert!(trainer.data.start_velocities[1..]
        .iter()
        .all(Option::is_none));
    let mut starts = Vec::new();
    for _ in 0..12 {
        let report = trainer.step().expect("step");
        assert!(report.loss.is_finite());
        assert!(report.start + report.horizon <= 4, "{report:?}");
        starts.push(report.start);
    }
    starts.sort_unstable();
    starts.dedup();
    assert!(starts.len() >= 3, "starts {starts:?}");
    for s in 0..5 {
        let cached = &trainer.data.start_velocities[s];
        if s == 0 || starts.contains(&s) {
            let scheme = if s == 0 {
                Scheme::Forward
            } else {
                Scheme::Central
            };
            let expected = ot_finite_difference(&snapshots, s, scheme).expect("estimate");
            assert_eq!(
                cached
                    .as_ref()
                    .expect("cached")
                    .to_vec2::<f64>()
                    .expect("v"),
                expected.to_vec2::<f64>().expect("expected"),
                "snapshot {s}"
            );
        } else {
            assert!(cached.is_none(), "snapshot {s} was never drawn");
        }
    }
    let mut velocities: Vec<Option<Tensor>> = vec![None; 5];
    velocities[0] = Some(cloud(10, 0.0, 3.0));
    velocities[1] = Some(cloud(10, 0.0, 4.0));
    let partial = Snapshots::from_tensors(times, &clouds, Some(&velocities)).expect("data");
    let message = Trainer::new(model(), config(VelocitySource::Data), &partial)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("training snapshot 2 has none"),
        "{message}"
    );
    let fixed = TrainConfig {
        random_start: false,
        ..config(VelocitySource::Data)
    };
    assert!(Trainer::new(model(), fixed, &partial).is_ok());
}

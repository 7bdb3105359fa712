//! Training runs on disk: exact resume, the non-finite stop, and config errors naming the field.

use std::cell::RefCell;

use candle_core::{Device, Tensor};
use wlm::{
    EnergyConfig, Error, EvalConfig, ModelSelection, Run, RunConfig, SplitConfig, StepReport,
    TrainConfig, TrainObserver, VelocitySource,
};
use wlm_energy::MeanFieldEnergyConfig;

use crate::common::drifting_clouds;

#[derive(Default)]
struct Losses(RefCell<Vec<(usize, f64)>>);

impl TrainObserver for Losses {
    fn on_step(&mut self, report: &StepReport) {
        self.0.borrow_mut().push((report.step, report.loss));
    }
}

/// The minibatch size of every step.
#[derive(Default)]
struct Batches(Vec<usize>);

impl TrainObserver for Batches {
    fn on_step(&mut self, report: &StepReport) {
        self.0.push(report.batch);
    }
}

fn config(steps: usize) -> RunConfig {
    let mut config = RunConfig::default();
    config.model.energy = EnergyConfig::MeanField(MeanFieldEnergyConfig {
        dim: 2,
        hidden: 8,
        layers: 1,
    });
    config.model.friction.learnable = true;
    config.model.friction.gamma = 0.5;
    config.train = TrainConfig {
        steps,
        seed: 11,
        lr: 1e-2,
        batch_size: Some(16),
        checkpoint_every: 5,
        eval_every: 0,
        ..TrainConfig::default()
    };
    config.eval = EvalConfig {
        w2: false,
        ..EvalConfig::default()
    };
    config.split = SplitConfig::Forecast { n_train: 4 };
    config
}

fn params(run: &Run) -> anyhow::Result<Vec<Vec<f32>>> {
    run.trainer()
        .model()
        .named_parameters()
        .iter()
        .map(|(_, v)| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
        .collect()
}

#[test]
fn resumed_run_repeats_the_uninterrupted_losses_step_for_step() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 5)?;
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;

    let mut whole = Losses::default();
    let mut a = Run::create(dir.path().join("a"), config(12), data.clone(), &dev)?;
    a.train(&mut whole)?;

    let mut first = Losses::default();
    let mut b = Run::create(dir.path().join("b"), config(12), data.clone(), &dev)?;
    b.train_for(7, &mut first)?; // checkpoint at step 5; steps 6 and 7 are lost
    drop(b);
    let mut b = Run::resume(dir.path().join("b"), data, &dev)?;
    assert_eq!(b.trainer().step_count(), 5);
    let mut second = Losses::default();
    b.train(&mut second)?;

    let whole = whole.0.into_inner();
    let mut resumed = first.0.into_inner()[..5].to_vec();
    resumed.extend(second.0.into_inner());
    assert_eq!(whole.len(), 12);
    assert_eq!(resumed, whole, "losses must be bit-identical step for step");
    assert_eq!(params(&a)?, params(&b)?);
    let metrics = std::fs::read_to_string(dir.path().join("b").join(wlm::METRICS_FILE))?;
    let steps: Vec<usize> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").parse())
        .collect::<Result<_, _>>()?;
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    assert!(dir.path().join("b").join(wlm::CONFIG_FILE).exists());
    Ok(())
}

#[test]
fn non_finite_gradient_stops_with_the_step_and_keeps_the_checkpoint() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 6)?;
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let mut run = Run::create(dir.path(), config(20), data.clone(), &dev)?;
    run.train_for(5, &mut ())?;
    let (_, var) = run.trainer().model().named_parameters().remove(0);
    let nan = Tensor::full(f32::NAN, var.as_tensor().shape(), &dev)?;
    var.set(&nan)?;
    let err = run.train_for(3, &mut ()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { step: 6, .. }), "{err}");
    assert!(err.to_string().contains("step 6"), "{err}");
    // The first interval's positions are already NaN: the Sinkhorn solver (which runs beside
    // the rollout) reports that interval, before anything else.
    assert!(
        err.to_string()
            .contains("non-finite simulated positions at interval 1"),
        "{err}"
    );
    drop(run);
    let resumed = Run::resume(dir.path(), data, &dev)?;
    assert_eq!(resumed.trainer().step_count(), 5);
    for p in params(&resumed)? {
        assert!(p.iter().all(|v| v.is_finite()));
    }
    Ok(())
}

fn create_error(config: RunConfig, data: wlm_data::Snapshots) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    match Run::create(dir.path(), config, data, &Device::Cpu) {
        Ok(_) => anyhow::bail!("expected an error"),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn bad_configs_give_errors_naming_the_field() -> anyhow::Result<()> {
    let data = drifting_clouds(5, 10, 7)?;
    let mut c = config(3);
    c.train.lr = 0.0;
    assert!(create_error(c, data.clone())?.contains("train.lr"));
    let mut c = config(3);
    c.train.ema_decay = 1.5;
    assert!(create_error(c, data.clone())?.contains("train.ema_decay"));
    let mut c = config(3);
    c.model.friction.gamma = -1.0;
    assert!(create_error(c, data.clone())?.contains("model.friction.gamma"));
    let mut c = config(3);
    c.split = SplitConfig::Forecast { n_train: 1 };
    assert!(create_error(c, data.clone())?.contains("split.n_train"));
    let mut c = config(3);
    c.split = SplitConfig::Holdout { indices: vec![9] };
    assert!(create_error(c, data.clone())?.contains("split.indices"));
    let mut c = config(3);
    c.eval.steps_per_interval = 0;
    assert!(create_error(c, data.clone())?.contains("eval.steps_per_interval"));
    let mut c = config(3);
    c.model.energy = EnergyConfig::MeanField(MeanFieldEnergyConfig {
        dim: 3,
        hidden: 8,
        layers: 1,
    });
    assert!(create_error(c, data.clone())?.contains("model.energy.dim"));
    let no_velocities = wlm_data::Snapshots::new(
        data.times().to_vec(),
        2,
        (0..data.len())
            .map(|k| data.positions(k).to_vec())
            .collect(),
        None,
    )?;
    let c = config(3);
    assert!(create_error(c, no_velocities.clone())?.contains("train.initial_velocities"));
    let mut c = config(3);
    c.train.initial_velocities = VelocitySource::Zero;
    c.eval.initial_velocities = VelocitySource::Zero;
    let dir = tempfile::tempdir()?;
    Run::create(dir.path(), c.clone(), no_velocities.clone(), &Device::Cpu)?;
    let again = Run::create(dir.path(), c, no_velocities, &Device::Cpu);
    assert!(
        again.is_ok(),
        "no checkpoint yet, so a fresh create is allowed"
    );
    Ok(())
}

#[test]
fn batch_larger_than_the_cloud_is_clamped() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 10, 8)?;
    let mut c = config(2);
    c.train.batch_size = Some(1000);
    let dir = tempfile::tempdir()?;
    let mut run = Run::create(dir.path(), c.clone(), data.clone(), &Device::Cpu)?;
    let mut seen = Batches::default();
    run.train(&mut seen)?;
    assert_eq!(
        seen.0,
        [10, 10],
        "a batch of 1000 on 10-point clouds is clamped to 10"
    );
    // A batch below the cloud size is kept, so the check above sees the clamp, not a default.
    let mut small = c.clone();
    small.train.batch_size = Some(4);
    let other = tempfile::tempdir()?;
    let mut seen_small = Batches::default();
    Run::create(other.path(), small, data, &Device::Cpu)?.train(&mut seen_small)?;
    assert_eq!(seen_small.0, [4, 4]);
    let evaluation = wlm::Run::evaluate(&run)?;
    assert!(evaluation.test_w1.is_some());
    let (out, _) = run.finish()?;
    assert!(out.forecast);
    for f in [
        wlm::WEIGHTS_FILE,
        wlm::EMA_WEIGHTS_FILE,
        wlm::FORECAST_FILE,
        wlm::EVALUATION_FILE,
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    Ok(())
}

#[derive(Default)]
struct Evaluations(Vec<(usize, wlm::Evaluation)>);

impl TrainObserver for Evaluations {
    fn on_evaluation(&mut self, step: usize, evaluation: &wlm::Evaluation) {
        self.0.push((step, evaluation.clone()));
    }
}

/// Scales every parameter of the run's model in place, through the shared handles (so the
/// run is not told).
fn perturb_in_place(run: &Run, factor: f64) -> anyhow::Result<()> {
    for (_, var) in run.trainer().model().named_parameters() {
        var.set(&(var.as_tensor() * factor)?)?;
    }
    Ok(())
}

#[test]
fn finish_reuses_the_last_steps_evaluation_and_scores_again_after_a_change() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 9)?;
    for split in [
        SplitConfig::Forecast { n_train: 4 },
        SplitConfig::Holdout {
            indices: vec![2, 4],
        },
    ] {
        let dir = tempfile::tempdir()?;
        let mut c = config(3);
        c.split = split;
        c.eval.use_ema = false; // the perturbation below reaches the live weights only
        let mut run = Run::create(dir.path(), c, data.clone(), &Device::Cpu)?;
        let mut seen = Evaluations::default();
        run.train(&mut seen)?;
        let (step, last) = seen.0.pop().expect("an evaluation at the last step");
        assert_eq!(step, 3);
        assert_eq!(
            last,
            run.evaluate()?,
            "the evaluation is a function of the model"
        );
        // The model changes behind the run's back: finish still reports the last step's
        // evaluation (it is not computed again) and writes its forecast.
        perturb_in_place(&run, 1.5)?;
        let changed = run.evaluate()?;
        assert_ne!(changed, last, "the perturbation must change the scores");
        let (reused, predictions) = run.finish()?;
        assert_eq!(reused, last);
        let written = wlm_data::load_particles_npz(dir.path().join(wlm::FORECAST_FILE), None)?;
        assert_eq!(written, predictions.forecast.to_snapshots()?);
        assert_eq!(
            predictions.interpolations.len(),
            if last.forecast { 0 } else { 2 }
        );
        // After mutable access to the trainer, finish scores the model as it is now.
        run.trainer_mut();
        let (again, _) = run.finish()?;
        assert_eq!(again, changed);
    }
    Ok(())
}

/// The `selection_score` column of `metrics.csv`, by step (rows without a score skipped).
fn selection_scores(dir: &std::path::Path) -> anyhow::Result<Vec<(usize, f64)>> {
    let text = std::fs::read_to_string(dir.join(wlm::METRICS_FILE))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "selection_score")
        .ok_or_else(|| anyhow::anyhow!("no selection_score column in {header:?}"))?;
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if let Some(score) = fields.get(column).filter(|s| !s.is_empty()) {
            out.push((fields[0].parse()?, score.parse()?));
        }
    }
    Ok(out)
}

/// Every tensor of a safetensors file, flattened to f64, by name.
fn tensors(path: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<f64>)>> {
    let mut out: Vec<(String, Vec<f64>)> = candle_core::safetensors::load(path, &Device::Cpu)?
        .into_iter()
        .map(|(name, t)| {
            Ok((
                name,
                t.to_dtype(candle_core::DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The factor by which `best_weights_are_the_lowest_scoring_evaluation_and_survive_resume`
/// scales every parameter after step 3. By 5 the train W1 rises by 0.04–0.06 for training
/// seeds 1, 2, 3 and 11 while a step lowers it by about 0.001; a factor of 1.8 was
/// seed-fragile (it lowered the score for three of those four seeds).
const PERTURBATION: f64 = 5.0;

/// With `TrainW1` selection scored at every step, `best.safetensors` holds the EMA weights of
/// the step whose `selection_score` in `metrics.csv` is lowest (a perturbation after step 3
/// makes the later steps worse, so the best is not simply the latest), `best.ron` names that
/// step and score; a run interrupted after the best and resumed from a checkpoint before its
/// worse steps ends with the same best, not with a worse later one.
#[test]
fn best_weights_are_the_lowest_scoring_evaluation_and_survive_resume() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 5)?;
    let dev = Device::Cpu;
    let root = tempfile::tempdir()?;
    let mut c = config(6);
    c.train.eval_every = 1;
    c.train.checkpoint_every = 4;
    c.train.ema_decay = 0.0; // the EMA is the live weights: the perturbation reaches it
    c.train.model_selection = ModelSelection::TrainW1;

    let whole_dir = root.path().join("whole");
    let mut whole = Run::create(&whole_dir, c.clone(), data.clone(), &dev)?;
    assert_eq!(whole.best(), None);
    for step in 1..=6 {
        whole.train_for(1, &mut ())?;
        if step == 3 {
            perturb_in_place(&whole, PERTURBATION)?;
        }
        let trainer = whole.trainer();
        let path = root.path().join(format!("ema_{step}.safetensors"));
        trainer
            .ema()
            .with_shadows(|| trainer.model().save_weights(&path))?;
    }
    let scores = selection_scores(&whole_dir)?;
    assert_eq!(scores.len(), 6, "{scores:?}");
    let (best_step, best_score) =
        scores
            .iter()
            .copied()
            .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
    assert!(
        best_step < 6,
        "the perturbation must make the last steps worse: {scores:?}"
    );
    let best = whole.best().expect("a best");
    assert_eq!((best.step, best.score), (best_step, best_score));
    let on_disk: wlm::BestScore =
        ron::from_str(&std::fs::read_to_string(whole_dir.join(wlm::BEST_FILE))?)?;
    assert_eq!(on_disk, best);
    let kept = tensors(&whole_dir.join(wlm::BEST_WEIGHTS_FILE))?;
    assert_eq!(
        kept,
        tensors(&root.path().join(format!("ema_{best_step}.safetensors")))?
    );
    assert_ne!(kept, tensors(&root.path().join("ema_6.safetensors"))?);

    // Interrupted at step 5 (checkpoint at 4), resumed: steps 5 and 6 are scored again and
    // must not replace the best found before the checkpoint.
    let parted_dir = root.path().join("parted");
    let mut parted = Run::create(&parted_dir, c, data.clone(), &dev)?;
    parted.train_for(3, &mut ())?;
    perturb_in_place(&parted, PERTURBATION)?;
    parted.train_for(2, &mut ())?;
    drop(parted);
    let mut resumed = Run::resume(&parted_dir, data, &dev)?;
    assert_eq!(resumed.trainer().step_count(), 4);
    assert_eq!(resumed.best().map(|b| b.step), Some(best_step));
    resumed.train(&mut ())?;
    assert_eq!(resumed.best(), Some(best));
    assert_eq!(tensors(&parted_dir.join(wlm::BEST_WEIGHTS_FILE))?, kept);
    Ok(())
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_tensor() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 5)?;
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let run_dir = dir.path().join("run");
    let mut run = Run::create(&run_dir, config(12), data.clone(), &dev)?;
    run.train_for(5, &mut Losses::default())?;
    drop(run);
    let path = run_dir.join(wlm::CHECKPOINT_FILE);
    let good = candle_core::safetensors::load(&path, &dev)?;
    let (param, adam_v) = {
        let mut keys: Vec<&String> = good.keys().collect();
        keys.sort();
        let param = keys
            .iter()
            .find(|k| k.starts_with("param/"))
            .expect("a parameter");
        let adam_v = keys
            .iter()
            .find(|k| k.starts_with("adam_v/"))
            .expect("a moment");
        ((*param).clone(), (*adam_v).clone())
    };
    let empty_i64 = Tensor::from_vec(Vec::<i64>::new(), 0, &dev)?;
    let empty_f64 = Tensor::from_vec(Vec::<f64>::new(), 0, &dev)?;
    let like = |key: &str, value: f32| -> anyhow::Result<Tensor> {
        Ok(good[key].ones_like()?.affine(f64::from(value), 0.0)?)
    };
    let cases: Vec<(String, Tensor, &str)> = vec![
        (
            "meta/step".into(),
            empty_i64,
            "tensor `meta/step` must hold one value, got 0",
        ),
        (
            "meta/step".into(),
            Tensor::new(&[-3i64], &dev)?,
            "tensor `meta/step` is -3",
        ),
        (
            "meta/blur".into(),
            empty_f64,
            "tensor `meta/blur` must hold one value",
        ),
        (
            "meta/blur".into(),
            Tensor::new(&[-0.5f64], &dev)?,
            "tensor `meta/blur` is -0.5",
        ),
        (
            "meta/rng".into(),
            Tensor::new(&[1u32, 2], &dev)?,
            "tensor `meta/rng` must hold 8 u32 words",
        ),
        (param.clone(), like(&param, f32::NAN)?, "has the value NaN"),
        (
            adam_v.clone(),
            like(&adam_v, -1.0)?,
            "must be finite and >= 0",
        ),
    ];
    for (key, value, expected) in cases {
        let mut tensors = good.clone();
        tensors.insert(key.clone(), value);
        candle_core::safetensors::save(&tensors, &path)?;
        let err = match Run::resume(&run_dir, data.clone(), &dev) {
            Ok(_) => panic!("{key}: a corrupt checkpoint was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(expected),
            "{key}: expected {expected:?} in {err:?}"
        );
        assert!(err.contains("checkpoint.safetensors"), "{err}");
    }
    candle_core::safetensors::save(&good, &path)?;
    let run = Run::resume(&run_dir, data, &dev)?;
    assert_eq!(run.trainer().step_count(), 5);
    // Plain weights (`wlm eval` without a checkpoint) are checked the same way.
    let model = run.trainer().model();
    let weights = dir.path().join("weights.safetensors");
    model.save_weights(&weights)?;
    let mut tensors = candle_core::safetensors::load(&weights, &dev)?;
    let name = param.trim_start_matches("param/").to_string();
    let bad = tensors[&name].ones_like()?.affine(f64::INFINITY, 0.0)?;
    tensors.insert(name.clone(), bad);
    candle_core::safetensors::save(&tensors, &weights)?;
    let before = params(&run)?;
    let err = model
        .load_weights(&weights)
        .expect_err("infinite weight")
        .to_string();
    assert!(
        err.contains(&format!("tensor `{name}` has the value inf")),
        "{err}"
    );
    assert_eq!(params(&run)?, before, "nothing is changed by a failed load");
    Ok(())
}

/// `data` with snapshot `k`'s positions shifted by `shift` in every coordinate.
fn shifted(
    data: &wlm_data::Snapshots,
    k: usize,
    shift: f64,
) -> anyhow::Result<wlm_data::Snapshots> {
    let positions = (0..data.len())
        .map(|j| {
            let p = data.positions(j).to_vec();
            if j == k {
                p.iter().map(|x| x + shift).collect()
            } else {
                p
            }
        })
        .collect();
    let velocities = (0..data.len())
        .map(|j| data.velocities(j).map(<[f64]>::to_vec))
        .collect();
    Ok(wlm_data::Snapshots::new(
        data.times().to_vec(),
        data.dim(),
        positions,
        Some(velocities),
    )?)
}

/// A validation snapshot is left out of the loss: moving it leaves every training loss
/// bit for bit unchanged, while the selection score (its W1, reported as the evaluation's
/// `validation_w1` and in `metrics.csv`) follows it; moving a training snapshot changes the
/// losses (the comparison can fail).
#[test]
fn validation_snapshots_are_scored_but_never_trained_on() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 5)?;
    let root = tempfile::tempdir()?;
    let mut c = config(4);
    c.train.eval_every = 2;
    c.train.model_selection = ModelSelection::Validation(vec![2]);
    let train = |data: wlm_data::Snapshots, name: &str| -> anyhow::Result<_> {
        let dir = root.path().join(name);
        let mut run = Run::create(&dir, c.clone(), data, &Device::Cpu)?;
        assert_eq!(run.split().train, vec![0, 1, 3]);
        assert_eq!(run.split().validation, vec![2]);
        let mut losses = Losses::default();
        run.train(&mut losses)?;
        let (evaluation, _) = run.finish()?;
        Ok((losses.0.into_inner(), evaluation, selection_scores(&dir)?))
    };
    let (losses, evaluation, scores) = train(data.clone(), "base")?;
    let validation = evaluation.validation_w1.expect("a validation score").mean;
    let row = evaluation
        .scores
        .iter()
        .find(|s| s.index == 2)
        .expect("row 2");
    assert_eq!(row.role, wlm::Role::Validation);
    assert_eq!(validation, row.w1);
    assert_eq!(scores.last().map(|s| s.1), Some(validation), "{scores:?}");
    assert_eq!(scores.iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 4]);
    // Train W1 covers the loss's snapshots only.
    let train_rows: Vec<usize> = evaluation
        .scores
        .iter()
        .filter(|s| s.role == wlm::Role::Train)
        .map(|s| s.index)
        .collect();
    assert_eq!(train_rows, vec![1, 3]);

    let (moved_losses, moved_eval, _) = train(shifted(&data, 2, 0.7)?, "moved_validation")?;
    assert_eq!(moved_losses, losses);
    let moved_validation = moved_eval.validation_w1.expect("a validation score").mean;
    assert!(
        (moved_validation - validation).abs() > 0.1,
        "{moved_validation} vs {validation}"
    );
    let (train_moved, _, _) = train(shifted(&data, 3, 0.7)?, "moved_train")?;
    assert_ne!(train_moved, losses);
    Ok(())
}

#[test]
fn validation_indices_must_be_training_snapshots() -> anyhow::Result<()> {
    let data = drifting_clouds(6, 24, 5)?;
    for (indices, needle) in [
        (vec![], "at least one"),
        (vec![0], "validation snapshot 0"),
        (vec![4], "validation snapshot 4"), // a test snapshot (n_train 4)
        (vec![9], "validation snapshot 9"),
        (vec![1, 2, 3], "at least 2 training snapshots"),
    ] {
        let mut c = config(2);
        c.train.model_selection = ModelSelection::Validation(indices.clone());
        let err = create_error(c, data.clone())?;
        assert!(err.contains("train.model_selection"), "{indices:?}: {err}");
        assert!(err.contains(needle), "{indices:?}: {err}");
    }
    Ok(())
}

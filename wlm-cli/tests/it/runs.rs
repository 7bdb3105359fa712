//! `wlm train`, `forecast`, `interpolate`, `eval`, `plot` on a tiny run, and config errors.

use std::path::Path;

use crate::common::{check_png, fails, ok, small_snapshots, stderr, tiny_run_folder, wlm_in};

const TINY: &str = r#"// A tiny experiment for tests.
(
    name: "tiny",
    data: (source: Particles("data.npz")),
    model: (
        energy: Attention((dim: 2, heads: 1, hidden: 8, blocks: 1, ff: 8)),
        friction: (gamma: 0.5, learnable: true),
    ),
    train: (steps: 3, lr: 1e-3, checkpoint_every: 2),
    eval: (steps_per_interval: 2),
    split: Forecast(n_train: 4),
)
"#;

fn setup() -> tempfile::TempDir {
    tiny_run_folder(TINY)
}

fn metrics_rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1
}

#[test]
fn train_then_forecast_interpolate_eval_and_plot_a_run() {
    let dir = setup();
    let p = dir.path();
    let out = ok(&wlm_in(
        p,
        &["train", "--config", "tiny.ron", "--run-dir", "run"],
    ));
    assert!(
        out.contains("repeat_last") && out.contains("constant_velocity"),
        "{out}"
    );
    let run = p.join("run");
    for file in [
        "config.ron",
        "experiment.ron",
        "metrics.csv",
        "checkpoint.safetensors",
        "weights.safetensors",
        "ema_weights.safetensors",
        "forecast.npz",
        "evaluation.ron",
    ] {
        assert!(
            run.join(file).is_file(),
            "{file} missing from the run directory"
        );
    }
    assert_eq!(metrics_rows(&run), 3);
    for png in ["snapshots.png", "w1.png", "loss.png", "friction.png"] {
        check_png(&run.join("plots").join(png));
    }

    let out = ok(&wlm_in(
        p,
        &["forecast", "--run-dir", "run", "--out", "pred.npz"],
    ));
    assert!(out.contains("model W1"), "{out}");
    let pred = wlm_data::load_particles_npz(p.join("pred.npz"), None).unwrap();
    assert_eq!((pred.len(), pred.n_particles(5)), (6, 16));
    assert_eq!(pred.times(), small_snapshots(6, 16).times());

    let out = ok(&wlm_in(p, &["interpolate", "--run-dir", "run"]));
    assert!(out.contains("repeat_previous"), "{out}");
    let interp = wlm_data::load_particles_npz(run.join("interpolation.npz"), None).unwrap();
    assert_eq!(interp.times(), &[2.0, 2.5]);

    std::fs::remove_file(run.join("evaluation.ron")).unwrap();
    let out = ok(&wlm_in(p, &["eval", "--run-dir", "run", "--substeps", "3"]));
    assert!(out.contains("mean ± SE of W1"), "{out}");
    assert!(run.join("evaluation.ron").is_file());
    // The checkpoint (with its EMA) evaluates too.
    let out = ok(&wlm_in(
        p,
        &[
            "eval",
            "--run-dir",
            "run",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--out",
            "e.ron",
        ],
    ));
    assert!(out.contains("repeat_last"), "{out}");

    let out = ok(&wlm_in(
        p,
        &["plot", "--run-dir", "run", "--out", "figs", "--dims", "1,0"],
    ));
    assert_eq!(out.lines().count(), 4, "{out}");
    check_png(&p.join("figs/snapshots.png"));

    // Resuming a finished run trains no more and re-evaluates; restarting it is refused.
    ok(&wlm_in(
        p,
        &["train", "--run-dir", "run", "--resume", "--quiet"],
    ));
    assert_eq!(metrics_rows(&run), 3);
    let err = fails(&wlm_in(
        p,
        &["train", "--config", "tiny.ron", "--run-dir", "run"],
    ));
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn a_holdout_run_writes_and_plots_interpolations() {
    let dir = setup();
    let p = dir.path();
    let out = ok(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--set",
            "split=Holdout(indices: [2, 4])",
            "--set",
            "train.steps=2",
            "--quiet",
        ],
    ));
    assert!(out.contains("repeat_previous"), "{out}");
    let run = p.join("runs/tiny");
    let interp = wlm_data::load_particles_npz(run.join("interpolation.npz"), None).unwrap();
    assert_eq!(interp.times(), &[1.0, 2.0]);
    check_png(&run.join("plots/snapshots.png"));
}

/// Data without velocities (dropped on loading) train from OT velocity estimates and evaluate
/// with the model's own velocities: the new sources need nothing from the CLI but their names.
#[test]
fn data_without_velocities_train_from_ot_and_evaluate_with_model_velocities() {
    let dir = setup();
    let p = dir.path();
    let no_velocities = [
        "--set",
        "data.drop_velocities=true",
        "--set",
        "split=Holdout(indices: [2, 4])",
        "--set",
        "train.steps=2",
    ];
    let mut args = vec![
        "train",
        "--config",
        "tiny.ron",
        "--run-dir",
        "run",
        "--quiet",
    ];
    args.extend(no_velocities);
    let without = fails(&wlm_in(p, &args));
    assert!(without.contains("train.initial_velocities"), "{without}");
    args.extend([
        "--set",
        "train.initial_velocities=OtCentral",
        "--set",
        "eval.initial_velocities=Model",
    ]);
    let out = ok(&wlm_in(p, &args));
    assert!(out.contains("repeat_previous"), "{out}");
    let config = std::fs::read_to_string(p.join("run/config.ron")).unwrap();
    assert!(config.contains("initial_velocities: OtCentral"), "{config}");
    assert!(
        config.contains("model_start_velocities: Some(OtCentral)"),
        "{config}"
    );
    for command in ["forecast", "interpolate", "eval"] {
        ok(&wlm_in(p, &[command, "--run-dir", "run"]));
    }
    let mut args = vec![
        "train",
        "--config",
        "tiny.ron",
        "--run-dir",
        "model",
        "--quiet",
    ];
    args.extend(no_velocities);
    args.extend(["--set", "train.initial_velocities=Model"]);
    let model = fails(&wlm_in(p, &args));
    assert!(
        model.contains("train.initial_velocities") && model.contains("snapshot 0"),
        "{model}"
    );
}

#[test]
fn quiet_training_prints_only_results() {
    let dir = setup();
    let out = wlm_in(
        dir.path(),
        &[
            "train",
            "--config",
            "tiny.ron",
            "--quiet",
            "--set",
            "train.steps=1",
        ],
    );
    ok(&out);
    assert!(stderr(&out).is_empty(), "stderr: {}", stderr(&out));
}

#[test]
fn config_errors_name_the_file_and_field() {
    let dir = setup();
    let p = dir.path();
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "train: (steps: 3, lr: 1e-3, checkpoint_every: 2)",
            &[],
            &["bad.ron", "unknown field `train.stepz`"],
        ),
        (
            "",
            &["--set", "train.stepz=4"],
            &["unknown field `train.stepz`"],
        ),
        ("", &["--set", "train.steps=\"many\""], &["train.steps"]),
        ("", &["--set", "train.lr=-0.5"], &["train.lr"]),
        ("", &["--set", "model.energy.heads=3"], &["model.energy"]),
        ("", &["--set", "split.n_train=9"], &["split.n_train"]),
    ];
    for (i, (replace, args, wanted)) in cases.iter().enumerate() {
        let text = if replace.is_empty() {
            TINY.to_string()
        } else {
            TINY.replace(replace, "train: (stepz: 3)")
        };
        std::fs::write(p.join("bad.ron"), text).unwrap();
        let mut all = vec!["train", "--config", "bad.ron", "--run-dir"];
        let run = format!("run{i}");
        all.push(&run);
        all.extend_from_slice(args);
        let err = fails(&wlm_in(p, &all));
        for w in *wanted {
            assert!(err.contains(w), "case {i}: `{w}` not in {err}");
        }
    }
    // Wrong type in the file: the field, and the line it is on.
    std::fs::write(p.join("bad.ron"), TINY.replace("steps: 3", "steps: [3]")).unwrap();
    let err = fails(&wlm_in(p, &["train", "--config", "bad.ron"]));
    assert!(err.contains("train.steps") && err.contains("9:"), "{err}");
    // Syntax error: position.
    std::fs::write(p.join("bad.ron"), "(name: \"x\",, )").unwrap();
    let err = fails(&wlm_in(p, &["train", "--config", "bad.ron"]));
    assert!(err.contains("bad.ron") && err.contains("1:"), "{err}");
}

#[test]
fn data_errors_name_the_file_or_field() {
    let dir = setup();
    let p = dir.path();
    let err = fails(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--set",
            "data.source=Particles(\"nowhere.npz\")",
        ],
    ));
    assert!(err.contains("nowhere.npz"), "{err}");
    std::fs::write(p.join("junk.npz"), b"junk").unwrap();
    let err = fails(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--set",
            "data.source=Particles(\"junk.npz\")",
        ],
    ));
    assert!(err.contains("junk.npz"), "{err}");
    let err = fails(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--set",
            "model.energy.dim=3",
        ],
    ));
    assert!(err.contains("model.energy.dim"), "{err}");
    let err = fails(&wlm_in(p, &["train", "--config", "missing.ron"]));
    assert!(err.contains("missing.ron"), "{err}");
    let err = fails(&wlm_in(p, &["eval", "--run-dir", "not-a-run"]));
    assert!(err.contains("not-a-run"), "{err}");
}

/// A multiple-shooting run with model selection scored at every step writes `best.ron`,
/// `best.safetensors` and a `selection_score` on every metrics row; `--checkpoint best`
/// evaluates those weights (its training W1 is the stored best score, the lowest of the
/// column); without model selection `--checkpoint best` is an error naming the field.
#[test]
fn model_selection_keeps_best_weights_that_eval_checkpoint_best_uses() {
    let dir = setup();
    let p = dir.path();
    ok(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--run-dir",
            "run",
            "--set",
            "train.steps=4",
            "--set",
            "train.eval_every=1",
            "--set",
            "train.model_selection=TrainW1",
            "--set",
            "train.random_start=true",
            "--quiet",
        ],
    ));
    let run = p.join("run");
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "selection_score").unwrap();
    let scores: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(column).unwrap().parse().unwrap())
        .collect();
    assert_eq!(scores.len(), 4, "{text}");
    let lowest = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let best: wlm::BestScore =
        ron::from_str(&std::fs::read_to_string(run.join(wlm::BEST_FILE)).unwrap()).unwrap();
    assert_eq!(best.score, lowest);
    assert_eq!(scores[best.step - 1], lowest);
    assert!(run.join(wlm::BEST_WEIGHTS_FILE).is_file());
    check_png(&run.join("plots/loss.png"));

    ok(&wlm_in(
        p,
        &[
            "eval",
            "--run-dir",
            "run",
            "--checkpoint",
            "best",
            "--out",
            "best.ron",
        ],
    ));
    let evaluation: wlm::Evaluation =
        ron::from_str(&std::fs::read_to_string(p.join("best.ron")).unwrap()).unwrap();
    let w1 = evaluation.train_w1.expect("train W1").mean;
    assert!(
        (w1 - best.score).abs() <= 1e-9 * best.score.abs(),
        "{w1} vs {}",
        best.score
    );

    ok(&wlm_in(
        p,
        &[
            "train",
            "--config",
            "tiny.ron",
            "--run-dir",
            "plain",
            "--quiet",
        ],
    ));
    // `best` reads best.safetensors, whatever it holds: here another run's weights.
    let eval_with = |checkpoint: &str, out: &str| -> wlm::Evaluation {
        ok(&wlm_in(
            p,
            &[
                "eval",
                "--run-dir",
                "run",
                "--checkpoint",
                checkpoint,
                "--out",
                out,
            ],
        ));
        ron::from_str(&std::fs::read_to_string(p.join(out)).unwrap()).unwrap()
    };
    std::fs::copy(
        p.join("plain").join(wlm::EMA_WEIGHTS_FILE),
        run.join(wlm::BEST_WEIGHTS_FILE),
    )
    .unwrap();
    let swapped = eval_with("best", "swapped.ron");
    assert_eq!(
        swapped,
        eval_with("plain/ema_weights.safetensors", "other.ron")
    );
    assert_ne!(swapped.train_w1, evaluation.train_w1);
    let err = fails(&wlm_in(
        p,
        &["forecast", "--run-dir", "plain", "--checkpoint", "best"],
    ));
    assert!(err.contains("train.model_selection"), "{err}");
}

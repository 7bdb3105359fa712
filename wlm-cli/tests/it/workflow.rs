//! A new user's workflow on an AnnData file: `wlm train --data` with the data flags and no
//! config, forecasts at any time (past the last snapshot, between snapshots, every step, from
//! a resample), outputs by extension read back by `wlm inspect`, the library and Python's
//! anndata, evaluations as JSON and CSV, and errors that name the bad flag.

use std::path::Path;

use candle_core::{Device, Tensor};
use wlm::{Model, RunConfig};
use wlm_data::{H5adConfig, H5adMatrix, Snapshots};

use crate::anndata::{python_with_anndata, write_anndata, Cells};
use crate::common::{fails, ok, stderr, wlm_in};

/// 3 days of 24 cells; the flags that read them in 2 components with velocities.
const FLAGS: [&str; 8] = [
    "--time-key",
    "day",
    "--embedding",
    "X_pca",
    "--n-components",
    "2",
    "--velocity-key",
    "velocity_pca",
];

fn h5ad_config() -> H5adConfig {
    H5adConfig {
        time_key: "day".into(),
        embedding: H5adMatrix::Obsm("X_pca".into()),
        n_components: Some(2),
        velocity: Some(H5adMatrix::Obsm("velocity_pca".into())),
    }
}

/// Trains a tiny f64 run on `data.h5ad` in `run`, with a config derived from the data.
fn train_tiny(p: &Path) -> Cells {
    let cells = write_anndata(&p.join("data.h5ad"), 3, 24);
    let mut args = vec![
        "train",
        "--data",
        "data.h5ad",
        "--run-dir",
        "run",
        "--quiet",
    ];
    args.extend(FLAGS);
    args.extend([
        "--set",
        "train.steps=3",
        "--set",
        "model.precision=F64",
        "--set",
        "eval.steps_per_interval=2",
    ]);
    ok(&wlm_in(p, &args));
    cells
}

/// The run's model with its EMA weights (what `wlm forecast` uses).
fn model(run: &Path) -> Model {
    let text = std::fs::read_to_string(run.join(wlm::CONFIG_FILE)).unwrap();
    let config: RunConfig = ron::from_str(&text).unwrap();
    let model = Model::new(config.model, &Device::Cpu).unwrap();
    model.load_weights(run.join(wlm::EMA_WEIGHTS_FILE)).unwrap();
    model
}

/// The library's rollout from day 0 (with the data's velocities) through `times` at `steps`
/// steps per interval: positions at each time, as rows.
fn library_rollout(run: &Path, cells: &Cells, times: &[f64], steps: usize) -> Vec<Vec<f64>> {
    let model = model(run);
    let x0 = Tensor::from_vec(cells.first(0, 2), (24, 2), &Device::Cpu).unwrap();
    let v0 = Tensor::from_vec(cells.first_velocities(0, 2), (24, 2), &Device::Cpu).unwrap();
    let states = model.simulate(&x0, &v0, 0.0, times, steps).unwrap();
    states
        .iter()
        .map(|s| s.positions.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .collect()
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn forecast(p: &Path, extra: &[&str]) -> String {
    let mut args = vec!["forecast", "--run-dir", "run", "--quiet"];
    args.extend(extra);
    ok(&wlm_in(p, &args))
}

#[test]
fn training_from_an_anndata_file_derives_a_config_and_forecasts_at_any_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let cells = train_tiny(p);
    let run = p.join("run");

    // The derived config: the data's file and flags, dimension, learned friction, the blur
    // the data give, every snapshot training.
    let stored = std::fs::read_to_string(run.join("experiment.ron")).unwrap();
    let data = wlm_data::load_h5ad(p.join("data.h5ad"), &h5ad_config()).unwrap();
    let blur = wlm_data::estimate_blur(&data, &wlm_data::BlurConfig::default());
    for needle in [
        "time_key: \"day\"",
        "Obsm(\"X_pca\")",
        "n_components: Some(2)",
        "dim: 2",
        "learnable: true",
        "n_train: 3",
        &format!("blur: Some({blur:?})"),
    ] {
        assert!(stored.contains(needle), "`{needle}` missing from\n{stored}");
    }
    // Resumable as planned sweeps need: a finished run is left alone.
    let mut again = vec!["train", "--data", "data.h5ad", "--run-dir", "run"];
    again.extend(FLAGS);
    again.extend(["--set", "train.steps=3", "--set", "model.precision=F64"]);
    again.extend(["--set", "eval.steps_per_interval=2", "--resume-or-start"]);
    let out = wlm_in(p, &again);
    ok(&out);
    assert!(
        stderr(&out).contains("finished earlier"),
        "{}",
        stderr(&out)
    );

    // At the data's own times: the forecast of `wlm::forecast_with_velocities` (what `wlm
    // forecast` wrote before --times), bit for bit, with and without --times.
    let today = {
        let v0 = Tensor::from_vec(cells.first_velocities(0, 2), (24, 2), &Device::Cpu).unwrap();
        wlm::forecast_with_velocities(&model(&run), &data, 0, &v0, 2)
            .unwrap()
            .to_snapshots()
            .unwrap()
    };
    forecast(p, &[]);
    forecast(p, &["--times", "1,2", "--out", "own.npz"]);
    let default = wlm_data::load_particles_npz(run.join("forecast.npz"), None).unwrap();
    let own = wlm_data::load_particles_npz(p.join("own.npz"), None).unwrap();
    assert_eq!(default, today);
    assert_eq!(own.times(), &[1.0, 2.0]);
    for k in 0..2 {
        assert_eq!(own.positions(k), today.positions(k + 1), "time {}", k + 1);
        assert_eq!(own.velocities(k), today.velocities(k + 1), "time {}", k + 1);
    }

    // Past the last snapshot: the library's rollout through those times (intervals of 1,
    // the data's, so 2 steps each).
    forecast(p, &["--times", "3,4", "--out", "past.npz"]);
    let past = wlm_data::load_particles_npz(p.join("past.npz"), None).unwrap();
    let reference = library_rollout(&run, &cells, &[1.0, 2.0, 3.0, 4.0], 2);
    assert_eq!(past.times(), &[3.0, 4.0]);
    for k in 0..2 {
        let d = max_difference(past.positions(k), &reference[k + 2]);
        assert!(d <= 1e-12, "time {}: {d}", k + 3);
    }
    assert_ne!(past.positions(0), past.positions(1));

    // Between snapshots, written as .h5ad in the input's layout, read back three ways.
    forecast(p, &["--times", "0.5,1.5", "--out", "between.h5ad"]);
    let reference = library_rollout(&run, &cells, &[0.5, 1.5], 2);
    let back = wlm_data::load_h5ad(
        p.join("between.h5ad"),
        &H5adConfig {
            n_components: None,
            ..h5ad_config()
        },
    )
    .unwrap();
    assert_eq!(back.times(), &[0.5, 1.5]);
    for (k, expected) in reference.iter().enumerate() {
        assert!(max_difference(back.positions(k), expected) <= 1e-12);
        assert_eq!(back.velocities(k).map(<[f64]>::len), Some(48));
    }
    let text = ok(&wlm_in(
        p,
        &[
            "inspect",
            "between.h5ad",
            "--time-key",
            "day",
            "--embedding",
            "X_pca",
        ],
    ));
    assert!(text.contains("points:      24 per snapshot"), "{text}");
    assert!(text.contains("0.5") && text.contains("1.5"), "{text}");
    // ... and by `wlm distance` against the same forecast as .npz: W1 0 at both times.
    forecast(p, &["--times", "0.5,1.5", "--out", "between.npz"]);
    for k in ["0", "1"] {
        let w1: f64 = ok(&wlm_in(
            p,
            &[
                "distance",
                "between.h5ad",
                "between.npz",
                "--time-key",
                "day",
                "--snapshot-a",
                k,
                "--snapshot-b",
                k,
            ],
        ))
        .trim()
        .parse()
        .unwrap();
        assert!(w1.abs() < 1e-12, "snapshot {k}: {w1}");
    }
    check_with_anndata(p, &back);

    // Every integrator step: 6 steps of 0.5 to time 3, the last the library's state.
    forecast(p, &["--times", "3", "--trajectories", "--out", "steps.csv"]);
    let steps = wlm_data::load_csv(p.join("steps.csv")).unwrap();
    assert_eq!(steps.len(), 7);
    assert_eq!(steps.times()[6], 3.0);
    assert!(
        (steps.times()[1] - 0.5).abs() < 1e-12,
        "{:?}",
        steps.times()
    );
    let reference = library_rollout(&run, &cells, &[3.0], 6);
    assert!(max_difference(steps.positions(6), &reference[0]) <= 1e-12);
    assert_eq!(steps.positions(0), cells.first(0, 2).as_slice());
}

/// Python's anndata reads the `.h5ad` wlm wrote: the time column under the input's name,
/// the positions under the input's embedding key, one observation per predicted point.
fn check_with_anndata(p: &Path, expected: &Snapshots) {
    let Some(python) = python_with_anndata() else {
        eprintln!(
            "skipped the anndata check: no Python with anndata (set WLM_PYTHON to one, or \
             `pip install anndata`)"
        );
        return;
    };
    let script = "import anndata, sys\n\
                  a = anndata.read_h5ad(sys.argv[1])\n\
                  print(a.n_obs)\n\
                  print(' '.join(repr(float(t)) for t in a.obs['day']))\n\
                  print(' '.join(repr(float(x)) for x in a.obsm['X_pca'].ravel()))\n";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(p.join("between.h5ad"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "anndata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let numbers = |line: &str| -> Vec<f64> {
        line.split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert_eq!(lines[0], "48");
    let mut times = Vec::new();
    let mut values = Vec::new();
    for k in 0..expected.len() {
        times.extend(std::iter::repeat_n(expected.times()[k], 24));
        values.extend_from_slice(expected.positions(k));
    }
    assert_eq!(numbers(lines[1]), times);
    assert_eq!(numbers(lines[2]), values);
}

#[test]
fn forecasts_resample_the_start_and_bad_flags_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let cells = train_tiny(p);

    // --from 1 --n-samples: 40 rows of day 1's cloud (with replacement), seeded.
    let draw = |seed: &str, out: &str| {
        forecast(
            p,
            &[
                "--from",
                "1",
                "--n-samples",
                "40",
                "--seed",
                seed,
                "--out",
                out,
            ],
        );
        wlm_data::load_csv(p.join(out)).unwrap()
    };
    let (a, b, c) = (draw("5", "a.csv"), draw("5", "b.csv"), draw("6", "c.csv"));
    assert_eq!(a, b, "the same seed draws the same sample");
    assert_ne!(a.positions(0), c.positions(0));
    assert_eq!(a.times(), &[1.0, 2.0]);
    assert_eq!(a.n_particles(0), 40);
    let day1 = cells.first(1, 2);
    for row in a.positions(0).chunks(2) {
        assert!(
            day1.chunks(2).any(|r| r == row),
            "{row:?} is not a cell of day 1"
        );
    }

    // Bad flags: the value, and what exists.
    let bad = |args: &[&str], needles: &[&str]| {
        let mut all = vec!["forecast", "--run-dir", "run"];
        all.extend(args);
        let err = fails(&wlm_in(p, &all));
        for n in needles {
            assert!(err.contains(n), "`{n}` missing from {err}");
        }
    };
    bad(&["--times", "2,1"], &["--times", "1", "does not increase"]);
    bad(&["--times", "1,nan"], &["--times", "NaN", "not finite"]);
    bad(
        &["--times", "0"],
        &["--times", "not after the start time 0"],
    );
    bad(&["--from", "7"], &["--from 7", "0..2"]);
    bad(&["--n-samples", "0"], &["--n-samples"]);
    bad(&["--time-key", "day"], &["--time-key", "--data"]);
    let with_data = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["--data", "data.h5ad"];
        args.extend(extra);
        bad(&args, needles);
    };
    with_data(
        &["--time-key", "dday", "--embedding", "X_pca"],
        &["obs/dday", "\"day\"", "\"hours\""],
    );
    with_data(
        &["--time-key", "day", "--embedding", "X_tsne"],
        &[
            "obsm/X_tsne",
            "X_pca (72×3)",
            "X_umap (72×2)",
            "X (csr_matrix",
        ],
    );
    with_data(
        &["--time-key", "day", "--embedding", "X_pca"],
        &[
            "2-dimensional",
            "3-dimensional",
            "--embedding X_pca",
            "X_umap (72×2)",
        ],
    );
    with_data(
        &["--time-key", "day", "--n-components", "4"],
        &["obsm/X_pca", "4 components", "3"],
    );
    let err = fails(&wlm_in(
        p,
        &["train", "--time-key", "day", "--config", "x.ron"],
    ));
    assert!(
        err.contains("--time-key") && err.contains("--data"),
        "{err}"
    );
}

/// Writes `data.h5ad` (4 days of 16 cells; no --velocity-key, so no velocities are read and
/// the derived config starts from OT estimates) and trains `run` for 2 steps, day 2 held out,
/// with the `--set` values `sets`.
fn train_holdout_2(p: &Path, sets: &[&str]) {
    write_anndata(&p.join("data.h5ad"), 4, 16);
    let mut args = vec![
        "train",
        "--data",
        "data.h5ad",
        "--run-dir",
        "run",
        "--quiet",
    ];
    args.extend(["--time-key", "day", "--n-components", "2", "--holdout", "2"]);
    args.extend(["--set", "train.steps=2"]);
    for set in sets {
        args.extend(["--set", set]);
    }
    ok(&wlm_in(p, &args));
}

#[test]
fn evaluations_are_written_as_json_csv_and_markdown_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    train_holdout_2(p, &["eval.steps_per_interval=1"]);
    let stored = std::fs::read_to_string(p.join("run/experiment.ron")).unwrap();
    assert!(
        stored.contains("Holdout(") && stored.contains("OtCentral"),
        "{stored}"
    );
    for out in ["m.ron", "m.json", "m.csv", "m.md"] {
        ok(&wlm_in(
            p,
            &["eval", "--run-dir", "run", "--out", out, "--quiet"],
        ));
    }
    let ron_text = std::fs::read_to_string(p.join("m.ron")).unwrap();
    let evaluation: wlm::Evaluation = ron::from_str(&ron_text).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("m.json")).unwrap()).unwrap();
    let from_json: wlm::Evaluation = serde_json::from_value(json).unwrap();
    assert_eq!(from_json, evaluation);
    let csv = std::fs::read_to_string(p.join("m.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("index,time,role,model_w1,model_w2,"),
        "{csv}"
    );
    assert_eq!(lines.len(), evaluation.scores.len() + 1);
    for (line, score) in lines[1..].iter().zip(&evaluation.scores) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0].parse::<usize>().unwrap(), score.index);
        assert_eq!(fields[3].parse::<f64>().unwrap(), score.w1);
    }
    // The same data named by the flags on the command line: the same evaluation.
    let flags = [
        "--data",
        "data.h5ad",
        "--time-key",
        "day",
        "--n-components",
        "2",
    ];
    let mut args = vec!["eval", "--run-dir", "run", "--out", "m2.ron", "--quiet"];
    args.extend(flags);
    ok(&wlm_in(p, &args));
    assert_eq!(std::fs::read_to_string(p.join("m2.ron")).unwrap(), ron_text);
    // Interpolations by extension, in the input's AnnData layout.
    let mut args = vec![
        "interpolate",
        "--run-dir",
        "run",
        "--out",
        "i.h5ad",
        "--quiet",
    ];
    args.extend(flags);
    ok(&wlm_in(p, &args));
    let npz = wlm_data::load_particles_npz(p.join("run/interpolation.npz"), None).unwrap();
    let back = wlm_data::load_h5ad(
        p.join("i.h5ad"),
        &H5adConfig {
            time_key: "day".into(),
            ..H5adConfig::default()
        },
    )
    .unwrap();
    assert_eq!(back.times(), &[2.0]);
    assert_eq!(back.positions(0), npz.positions(0));

    let md = std::fs::read_to_string(p.join("m.md")).unwrap();
    assert!(md.contains("exact W1 per snapshot"), "{md}");
    let err = fails(&wlm_in(p, &["eval", "--run-dir", "run", "--out", "m.xml"]));
    assert!(err.contains("m.xml") && err.contains(".json"), "{err}");

    // --forecast-from K: snapshots 0..K train.
    let mut args = vec!["train", "--data", "data.h5ad", "--run-dir", "fc", "--quiet"];
    args.extend([
        "--time-key",
        "day",
        "--n-components",
        "2",
        "--forecast-from",
        "3",
    ]);
    args.extend([
        "--set",
        "train.steps=1",
        "--set",
        "eval.steps_per_interval=1",
    ]);
    ok(&wlm_in(p, &args));
    let stored = std::fs::read_to_string(p.join("fc/experiment.ron")).unwrap();
    assert!(
        stored.contains("Forecast(") && stored.contains("n_train: 3"),
        "{stored}"
    );

    // A split the data cannot have names the flag.
    let mut args = vec!["train", "--data", "data.h5ad", "--run-dir", "bad"];
    args.extend(["--time-key", "day", "--holdout", "0"]);
    let err = fails(&wlm_in(p, &args));
    assert!(
        err.contains("--holdout") && err.contains("held-out index 0"),
        "{err}"
    );
}

#[test]
fn inspect_and_distance_read_anndata_files_with_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let cells = write_anndata(&p.join("data.h5ad"), 3, 10);
    let text = ok(&wlm_in(p, &["inspect", "data.h5ad", "--time-key", "day"]));
    for needle in [
        "snapshots:   3",
        "dimension:   3",
        "points:      10 per snapshot",
        "day2",
        "obs columns: day, hours",
        "X (csr_matrix, not readable)",
        "X_pca (30×3)",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from\n{text}");
    }
    let text = ok(&wlm_in(
        p,
        &[
            "inspect",
            "data.h5ad",
            "--time-key",
            "hours",
            "--embedding",
            "X_umap",
        ],
    ));
    assert!(
        text.contains("dimension:   2") && text.contains("48"),
        "{text}"
    );

    // Day 1's cloud, from the .h5ad and as a bare .npy: W1 0.
    let rows = cells.first(1, 2);
    crate::common::write_cloud_npy(&p.join("day1.npy"), &rows, 10, 2);
    let w1: f64 = ok(&wlm_in(
        p,
        &[
            "distance",
            "data.h5ad",
            "day1.npy",
            "--time-key",
            "day",
            "--n-components",
            "2",
            "--snapshot-a",
            "1",
        ],
    ))
    .trim()
    .parse()
    .unwrap();
    assert!(w1.abs() < 1e-12, "{w1}");
    let err = fails(&wlm_in(
        p,
        &["distance", "data.h5ad", "day1.npy", "--time-key", "day"],
    ));
    assert!(
        err.contains("--snapshot-a") && err.contains("3 snapshots"),
        "{err}"
    );
    // A format the extension does not tell.
    std::fs::copy(p.join("data.h5ad"), p.join("data.bin")).unwrap();
    let err = fails(&wlm_in(p, &["inspect", "data.bin", "--time-key", "day"]));
    assert!(err.contains("--format"), "{err}");
    let text = ok(&wlm_in(
        p,
        &[
            "inspect",
            "data.bin",
            "--time-key",
            "day",
            "--format",
            "h5ad",
        ],
    ));
    assert!(text.contains("snapshots:   3"), "{text}");
    let err = fails(&wlm_in(p, &["inspect", "data.bin", "--format", "hdf5"]));
    assert!(err.contains("hdf5") && err.contains("h5ad"), "{err}");
    // Keys for the wrong format name the flag.
    wlm_data::write_csv(p.join("s.csv"), &crate::common::small_snapshots(2, 3)).unwrap();
    let err = fails(&wlm_in(p, &["inspect", "s.csv", "--time-key", "day"]));
    assert!(err.contains("--time-key") && err.contains("s.csv"), "{err}");
}

#[test]
fn restarts_take_the_velocity_source_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    train_holdout_2(p, &["model.precision=F64", "eval.steps_per_interval=3"]);
    let interpolate = |source: Option<&str>, out: &str| {
        let mut args = vec!["interpolate", "--run-dir", "run", "--out", out, "--quiet"];
        if let Some(source) = source {
            args.extend(["--initial-velocities", source]);
        }
        ok(&wlm_in(p, &args));
        let back = wlm_data::load_particles_npz(p.join(out), None).unwrap();
        back.positions(0).to_vec()
    };
    let from_rest = interpolate(Some("Zero"), "zero.npz");
    let estimated = interpolate(None, "ot.npz");
    // The library's interpolation of day 2 from day 1 at rest, with the run's weights.
    let snapshots = wlm_data::load_h5ad(
        p.join("data.h5ad"),
        &H5adConfig {
            time_key: "day".into(),
            n_components: Some(2),
            ..H5adConfig::default()
        },
    )
    .unwrap();
    let model = model(&p.join("run"));
    let v0 = Tensor::zeros((16, 2), candle_core::DType::F64, &Device::Cpu).unwrap();
    let expected = wlm::interpolate_with_velocities(&model, &snapshots, 2, &v0, 3)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert!(max_difference(&from_rest, &expected) < 1e-12);
    // The run's own source (OtCentral) moves the start: a different prediction.
    assert!(max_difference(&from_rest, &estimated) > 1e-6);
    assert_eq!(interpolate(Some("OtCentral"), "central.npz"), estimated);

    // Evaluations follow the flag too.
    ok(&wlm_in(
        p,
        &[
            "eval",
            "--run-dir",
            "run",
            "--out",
            "z.ron",
            "--quiet",
            "--initial-velocities",
            "Zero",
        ],
    ));
    let z: wlm::Evaluation =
        ron::from_str(&std::fs::read_to_string(p.join("z.ron")).unwrap()).unwrap();
    ok(&wlm_in(
        p,
        &["eval", "--run-dir", "run", "--out", "c.ron", "--quiet"],
    ));
    let c: wlm::Evaluation =
        ron::from_str(&std::fs::read_to_string(p.join("c.ron")).unwrap()).unwrap();
    assert_ne!(z.scores, c.scores);

    // Observed velocities the data do not have, and an unknown name, are named.
    let err = fails(&wlm_in(
        p,
        &[
            "interpolate",
            "--run-dir",
            "run",
            "--initial-velocities",
            "Data",
        ],
    ));
    assert!(err.contains("velocit"), "{err}");
    let err = fails(&wlm_in(
        p,
        &[
            "eval",
            "--run-dir",
            "run",
            "--initial-velocities",
            "Estimated",
        ],
    ));
    assert!(
        err.contains("Estimated") && err.contains("OtCentral, Model"),
        "{err}"
    );
}

//! `wlm flow train`, `interpolate` and `forecast` on a tiny data set, and config errors.

use std::path::Path;
use std::process::Output;

use crate::common::{fails, ok, repository_config, shared_data, tiny_run_folder, wlm_in};

const TINY: &str = r#"// A tiny flow experiment for tests.
(
    name: "tiny_flow",
    data: (source: Particles("data.npz")),
    split: Holdout(indices: [2, 4]),
    flow: (
        network: (width: 8, hidden_layers: 1),
        train: (steps: 4, batch_size: 8),
        predict: (steps_per_interval: 2),
    ),
)
"#;

fn setup() -> tempfile::TempDir {
    tiny_run_folder(TINY)
}

/// `wlm flow train --config tiny.ron` with `extra` arguments, in `p`.
fn flow_train(p: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["flow", "train", "--config", "tiny.ron"];
    args.extend(extra);
    wlm_in(p, &args)
}

#[test]
fn flow_train_then_interpolate_and_forecast_a_run() {
    let dir = setup();
    let p = dir.path();
    let out = ok(&flow_train(p, &["--run-dir", "run", "-q"]));
    assert!(
        out.contains("ot_midpoint") && out.contains("repeat_previous"),
        "{out}"
    );
    let run = p.join("run");
    for file in [
        "config.ron",
        "flow.safetensors",
        "interpolation.npz",
        "scores.ron",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let predicted = wlm_data::load_particles_npz(run.join("interpolation.npz"), None).unwrap();
    assert_eq!(predicted.times(), &[1.0, 2.0]);
    assert_eq!(predicted.n_particles(0), 16);
    let scores = std::fs::read_to_string(run.join("scores.ron")).unwrap();
    assert!(
        scores.contains("interpolation") && scores.contains("mean_test_w1"),
        "{scores}"
    );

    // Interpolating again from the saved weights gives the same predictions.
    let again = p.join("again.npz");
    ok(&wlm_in(
        p,
        &[
            "flow",
            "interpolate",
            "--run-dir",
            "run",
            "--out",
            "again.npz",
            "-q",
        ],
    ));
    assert_eq!(
        wlm_data::load_particles_npz(&again, None).unwrap(),
        predicted
    );

    ok(&wlm_in(p, &["flow", "forecast", "--run-dir", "run", "-q"]));
    let forecast = wlm_data::load_particles_npz(run.join("forecast.npz"), None).unwrap();
    assert_eq!(forecast.len(), 6);

    // The same run directory is not overwritten.
    let err = fails(&flow_train(p, &["--run-dir", "run", "-q"]));
    assert!(err.contains("already holds a flow run"), "{err}");
}

#[test]
fn flow_config_errors_name_the_field() {
    let dir = setup();
    let p = dir.path();
    let err = fails(&flow_train(
        p,
        &[
            "--set",
            "flow.path=Harmonic(omega: 3.5)",
            "--run-dir",
            "bad",
        ],
    ));
    assert!(err.contains("`flow.path.omega`"), "{err}");
    let err = fails(&flow_train(p, &["--set", "split.indices=[0]"]));
    assert!(err.contains("split.indices"), "{err}");
    let err = fails(&wlm_in(p, &["flow", "interpolate", "--run-dir", "nowhere"]));
    assert!(err.contains("wlm flow train"), "{err}");
}

#[test]
fn shared_data_flow_configs_train_a_step() {
    let Some(data) = shared_data() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, file) in [
        ("flow_ocean_small", "Particles", "oceans/oceans_with_v0.npz"),
        ("flow_eb", "Npy", "eb/eb_300.npy"),
    ] {
        let (config, moved) = repository_config(name, &data, kind, file);
        let run = dir.path().join(name);
        let mut args = vec![
            "flow",
            "train",
            "--config",
            config.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "-q",
            "--set",
            "flow.train.steps=2",
        ];
        args.extend(moved.iter().map(String::as_str));
        let out = ok(&wlm_in(dir.path(), &args));
        assert!(out.contains("ot_midpoint"), "{name}: {out}");
    }
}

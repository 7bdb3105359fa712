//! `wlm experiment`: a tiny run set trains, writes its results table, and is reused when run
//! again; the ocean experiment reads the shared data; bad arguments name what is wrong.

use crate::common::{fails, ok, shared_data, stderr, wlm_in, TINY_BOIDS_EXPERIMENT};

/// Shrinks an experiment to seconds.
const TINY: [&str; 8] = [
    "--set",
    "train.steps=3",
    "--set",
    "model.energy=Attention((dim: 2, heads: 1, hidden: 8, blocks: 1, ff: 8))",
    "--set",
    "train.checkpoint_every=2",
    "--set",
    "eval.steps_per_interval=1",
];

#[test]
fn a_tiny_boids_experiment_writes_results_and_is_reused_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mut args = TINY_BOIDS_EXPERIMENT.to_vec();
    args.extend([
        "--set",
        "train.steps=3",
        "--set",
        "train.checkpoint_every=2",
    ]);
    let first = wlm_in(p, &args);
    let out = ok(&first);
    let results = std::fs::read_to_string(p.join("exp/boids/results.md")).unwrap();
    assert!(
        out.trim_end().ends_with(results.trim_end()),
        "prints what it writes: {out}"
    );
    for needle in [
        "forecast-half-seed3",
        "forecast-half-seed4",
        "repeat_last",
        "constant_velocity",
        "| forecast-half | 2 |",
        "wlm experiment boids --seeds 3,4",
    ] {
        assert!(
            results.contains(needle),
            "`{needle}` missing from\n{results}"
        );
    }
    for seed in [3, 4] {
        let run = p.join(format!("exp/boids/forecast-half-seed{seed}"));
        assert!(run.join("evaluation.ron").is_file());
    }
    let again = wlm_in(p, &args);
    let out2 = ok(&again);
    assert!(
        stderr(&again).contains("finished earlier"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        out2.trim(),
        results.trim(),
        "reused runs report the same results"
    );
    // Changing the plan for an existing run directory is refused, not silently resumed.
    let mut changed = args.clone();
    changed.extend(["--set", "train.lr=0.5", "--quiet"]);
    let err = fails(&wlm_in(p, &changed));
    assert!(err.contains("different config"), "{err}");
}

#[test]
fn the_ocean_experiment_interpolates_with_the_ot_midpoint_baseline() {
    let Some(data) = shared_data() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = data.to_string_lossy().into_owned();
    let mut args = vec!["experiment", "ocean-small", "--data", &data, "--out", "exp"];
    args.extend(TINY);
    let out = ok(&wlm_in(dir.path(), &args));
    assert!(
        out.contains("ot_midpoint") && out.contains("repeat_previous"),
        "{out}"
    );
    assert!(out.contains("t1=") && out.contains("t7="), "{out}");
}

#[test]
fn experiment_errors_name_the_missing_data_and_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&wlm_in(dir.path(), &["experiment", "eb"]));
    assert!(err.contains("--data"), "{err}");
    let err = fails(&wlm_in(
        dir.path(),
        &["experiment", "ocean-big", "--data", "nowhere"],
    ));
    assert!(
        err.contains("nowhere/oceans/big_oceans_forecast.npz"),
        "{err}"
    );
    let err = fails(&wlm_in(
        dir.path(),
        &["experiment", "gf-sde", "--set", "train.lr=-1"],
    ));
    assert!(err.contains("train.lr"), "{err}");
    let err = fails(&wlm_in(dir.path(), &["experiment", "weather"]));
    assert!(err.contains("weather"), "{err}");
}

#[test]
fn flow_baselines_join_an_experiment_as_extra_columns() {
    let Some(data) = shared_data() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = data.to_string_lossy().into_owned();
    let mut args = vec![
        "experiment",
        "ocean-small",
        "--data",
        &data,
        "--out",
        "exp",
        "--flow",
        "otcfm,icfm,lfm,lfm-aniso",
        "--flow-set",
        "flow.train.steps=3",
        "--flow-set",
        "flow.network.width=8",
    ];
    args.extend(TINY);
    let out = ok(&wlm_in(dir.path(), &args));
    for needle in [
        "## Flow-matching baselines",
        "| OT-CFM | I-CFM | LFM ω=1 | LFM aniso |",
        "| holdout-1-3-5-7 | 1 |",
        "--flow otcfm,icfm,lfm,lfm-aniso --flow-set 'flow.train.steps=3'",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from\n{out}");
    }
    let run = dir
        .path()
        .join("exp/ocean-small/holdout-1-3-5-7-seed0-flow-lfm-aniso");
    assert!(run.join("scores.ron").is_file() && run.join("interpolation.npz").is_file());
    // Run again: the finished flow runs are reused.
    let again = wlm_in(dir.path(), &args);
    ok(&again);
    assert!(
        stderr(&again).contains("reusing its scores"),
        "{}",
        stderr(&again)
    );
}

//! `wlm demo --quick` and the top-level usage.

use crate::common::{check_png, fails, ok, stdout, wlm_in};

#[test]
fn quick_demo_prints_a_table_against_both_baselines_and_writes_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&wlm_in(
        dir.path(),
        &["demo", "--quick", "--run-dir", "demo"],
    ));
    for wanted in [
        "repeat_last",
        "constant_velocity",
        "test",
        "model beats",
        "demo finished",
    ] {
        assert!(out.contains(wanted), "`{wanted}` missing from:\n{out}");
    }
    for png in ["snapshots.png", "w1.png", "loss.png", "friction.png"] {
        check_png(&dir.path().join("demo/plots").join(png));
    }
}

#[test]
fn demo_without_run_dir_never_overwrites_an_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    ok(&wlm_in(
        dir.path(),
        &["demo", "--quick", "--quiet", "--steps", "2"],
    ));
    ok(&wlm_in(
        dir.path(),
        &["demo", "--quick", "--quiet", "--steps", "2"],
    ));
    assert!(dir
        .path()
        .join("runs/demo-quick/checkpoint.safetensors")
        .is_file());
    assert!(dir
        .path()
        .join("runs/demo-quick-2/checkpoint.safetensors")
        .is_file());
}

#[test]
fn help_succeeds_and_usage_errors_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = wlm_in(dir.path(), &["--help"]);
    assert!(out.status.success());
    for sub in [
        "simulate",
        "train",
        "forecast",
        "interpolate",
        "eval",
        "distance",
        "inspect",
        "plot",
        "demo",
    ] {
        assert!(stdout(&out).contains(sub), "{sub} missing from --help");
    }
    let err = fails(&wlm_in(dir.path(), &["frobnicate"]));
    assert!(err.contains("frobnicate"), "{err}");
    let err = fails(&wlm_in(
        dir.path(),
        &["distance", "a.npy", "b.npy", "--metric", "w7"],
    ));
    assert!(err.contains("w7"), "{err}");
}

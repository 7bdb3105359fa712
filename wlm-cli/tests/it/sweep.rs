//! `wlm experiment NAME --plan slurm|commands` and `--collect`: a planned sweep run as
//! separate processes (the Slurm script run for two array indices) and collected gives the
//! local runner's results table on the same runs.

use std::process::Command;

use crate::common::{fails, ok, stderr, wlm_in, TINY_BOIDS_EXPERIMENT};

/// A two-run Boids sweep shrunk to seconds.
const SWEEP: [&str; 20] = TINY_BOIDS_EXPERIMENT;

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = SWEEP.to_vec();
    args.extend(extra);
    args
}

#[test]
fn a_planned_sweep_run_by_array_index_collects_into_the_local_runners_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let script = ok(&wlm_in(p, &with(&["--plan", "slurm", "--quiet"])));
    let script = std::path::PathBuf::from(script.trim());
    let text = std::fs::read_to_string(&script).unwrap();
    for needle in [
        "#SBATCH --array=0-1",
        "#SBATCH --job-name=wlm-boids",
        "SLURM_ARRAY_TASK_ID",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from\n{text}");
    }
    let commands = std::fs::read_to_string(p.join("exp/boids/plan/commands.txt")).unwrap();
    assert_eq!(commands.lines().count(), 2, "{commands}");
    assert!(
        commands
            .lines()
            .all(|l| l.contains(" train --config ") && l.contains("--resume-or-start")),
        "{commands}"
    );
    assert!(commands.contains("forecast-half-seed3") && commands.contains("forecast-half-seed4"));

    // Nothing has run yet.
    let err = fails(&wlm_in(p, &with(&["--collect"])));
    assert!(
        err.contains("no finished run") && err.contains("not started"),
        "{err}"
    );

    // The job array's two tasks, as Slurm would run them (each a separate process).
    for index in ["1", "0"] {
        let out = Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", index)
            .current_dir(p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "array index {index}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("bash")
        .arg(&script)
        .env("SLURM_ARRAY_TASK_ID", "2")
        .current_dir(p)
        .output()
        .unwrap();
    assert!(!out.status.success(), "index 2 does not exist");

    let collected = ok(&wlm_in(p, &with(&["--collect", "--quiet"])));
    let results = std::fs::read_to_string(p.join("exp/boids/results.md")).unwrap();
    assert_eq!(collected.trim(), results.trim());
    assert!(results.contains("| forecast-half | 2 |"), "{results}");

    // The local runner on the same runs: reused, the same table.
    let local = wlm_in(p, &SWEEP);
    assert!(
        stderr(&local).contains("finished earlier"),
        "{}",
        stderr(&local)
    );
    assert_eq!(ok(&local).trim(), collected.trim());

    // A plain command list for any scheduler: the same commands.
    let listed = ok(&wlm_in(p, &with(&["--plan", "commands", "--quiet"])));
    assert_eq!(listed, commands);
}

//! Tests of the experiment planner and of reading a run's last metrics.
use std::path::PathBuf;

use super::plan::{base_config, plan};
use crate::cli::{ExperimentArgs, ExperimentName, Scale};
use crate::config::{DataSource, ExperimentConfig};
use crate::runs::last_metrics;

/// Whether `source` reads a file (so `--data` matters).
fn reads_file(source: &DataSource) -> bool {
    !matches!(source, DataSource::Boids(_) | DataSource::GfSde(_))
}

#[test]
fn bad_numbers_in_the_last_metrics_line_are_errors_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let header = "step,horizon,batch,loss,friction,wall_seconds";
    let write = |line: &str| {
        std::fs::write(
            dir.path().join(wlm::METRICS_FILE),
            format!("{header}\n{line}\n"),
        )
        .unwrap();
    };
    write("7,3,16,0.5,0.25,3.5");
    assert_eq!(last_metrics(dir.path()).unwrap(), Some((7, 0.25, 3.5)));
    for (line, what) in [
        ("-3,3,16,0.5,0.25,3.5", "step"),
        ("nan,3,16,0.5,0.25,3.5", "step"),
        ("2.5,3,16,0.5,0.25,3.5", "step"),
        ("7,3,16,0.5,NaN,3.5", "friction"),
        ("7,3,16,0.5,0.25,inf", "wall_seconds"),
    ] {
        write(line);
        let msg = format!("{:#}", last_metrics(dir.path()).unwrap_err());
        assert!(msg.contains(&format!("bad `{what}`")), "{line}: {msg}");
    }
}

fn args(name: ExperimentName) -> ExperimentArgs {
    ExperimentArgs {
        name,
        data: Some(PathBuf::from("/nonexistent-wlm-data")),
        seeds: vec![0, 1],
        scale: Scale::Cpu,
        potentials: Vec::new(),
        set: Vec::new(),
        out: PathBuf::from("runs/experiments"),
        plan: None,
        collect: false,
        flow: Vec::new(),
        flow_set: Vec::new(),
    }
}

#[test]
fn simulated_experiments_plan_every_group_and_seed() {
    let runs = plan(&args(ExperimentName::GfSde)).unwrap();
    // 5 potentials × 2 pairings × 2 friction variants × 2 seeds
    assert_eq!(runs.len(), 40);
    let names: std::collections::HashSet<_> = runs.iter().map(|r| &r.name).collect();
    assert_eq!(names.len(), 40, "run names are unique");
    let dissipative = runs
        .iter()
        .find(|r| r.name == "wavy-plateau-unpaired-dissipative-seed1")
        .unwrap();
    assert!(dissipative.config.model.friction.learnable);
    assert_eq!(dissipative.config.train.seed, 1);
    assert!(!reads_file(&dissipative.config.data.source));
    let boids = plan(&args(ExperimentName::Boids)).unwrap();
    assert_eq!(boids.len(), 2);
    assert_ne!(
        boids[0].config.data, boids[1].config.data,
        "seeds change the data"
    );
}

#[test]
fn file_experiments_name_the_missing_data() {
    for name in [
        ExperimentName::OceanSmall,
        ExperimentName::OceanBig,
        ExperimentName::Eb,
    ] {
        let err = format!("{:#}", plan(&args(name)).unwrap_err());
        assert!(err.contains("/nonexistent-wlm-data/"), "{err}");
        let mut a = args(name);
        a.data = None;
        let err = format!("{:#}", plan(&a).unwrap_err());
        assert!(err.contains("--data"), "{err}");
    }
}

#[test]
fn overrides_reach_every_run_and_bad_ones_name_the_field() {
    let mut a = args(ExperimentName::Boids);
    a.set = vec!["train.steps=7".into()];
    assert!(plan(&a).unwrap().iter().all(|r| r.config.train.steps == 7));
    a.set = vec!["train.lr=-1".into()];
    let err = format!("{:#}", plan(&a).unwrap_err());
    assert!(err.contains("train.lr"), "{err}");
}

#[test]
fn every_embedded_config_parses_at_both_scales() {
    for name in [
        ExperimentName::OceanSmall,
        ExperimentName::OceanBig,
        ExperimentName::Eb,
        ExperimentName::GfSde,
        ExperimentName::Boids,
    ] {
        for scale in [Scale::Cpu, Scale::Reference] {
            ExperimentConfig::parse(base_config(name, scale), &[])
                .unwrap_or_else(|e| panic!("{name:?} {scale:?}: {e:#}"));
        }
    }
}

#[test]
fn the_eb_experiment_runs_the_recommended_configuration_for_data_without_velocities() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("eb")).unwrap();
    std::fs::write(dir.path().join("eb/eb_300.npy"), b"").unwrap();
    let mut a = args(ExperimentName::Eb);
    a.data = Some(dir.path().to_path_buf());
    let runs = plan(&a).unwrap();
    assert_eq!(runs.len(), 3 * 2, "3 held-out times x 2 seeds");
    for run in &runs {
        let (train, eval) = (&run.config.train, &run.config.eval);
        assert_eq!(
            train.initial_velocities,
            wlm::VelocitySource::OtCentral,
            "{}",
            run.name
        );
        assert_eq!(
            eval.initial_velocities,
            wlm::VelocitySource::OtCentral,
            "{}",
            run.name
        );
        assert!(train.random_start, "{}", run.name);
    }
}

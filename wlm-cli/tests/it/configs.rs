//! The reference configs in `configs/`: every one parses, and the file-based ones load their
//! data when `../shared/data` is present.

use std::path::PathBuf;

use crate::common::{ok, repository_config, shared_data, wlm_in};

fn configs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_reference_experiment_has_a_config_and_a_cpu_variant() {
    let names: Vec<String> = configs()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for base in ["gf_sde", "boids", "eb", "ocean_small", "ocean_big"] {
        assert!(
            names.contains(&base.to_string()),
            "{base}.ron missing: {names:?}"
        );
        assert!(
            names.contains(&format!("{base}_cpu")),
            "{base}_cpu.ron missing: {names:?}"
        );
    }
}

#[test]
fn shared_data_configs_train_a_step() {
    let Some(data) = shared_data() else {
        eprintln!("skipped: ../shared/data is absent");
        return;
    };
    // The configs name their data relative to the repository (`../shared/data` beside it);
    // when the shared folder is elsewhere (`$WLM_SHARED`), point the sources there.
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, file) in [
        ("ocean_small_cpu", "Particles", "oceans/oceans_with_v0.npz"),
        (
            "ocean_big_cpu",
            "Particles",
            "oceans/big_oceans_forecast.npz",
        ),
        ("eb_cpu", "Npy", "eb/eb_300.npy"),
    ] {
        let (config, moved) = repository_config(name, &data, kind, file);
        let run = dir.path().join(name);
        let energy = "model.energy=Attention((dim: DIM, heads: 1, hidden: 8, blocks: 1, ff: 8, time_features: TF))"
            .replace("DIM", if name == "eb_cpu" { "5" } else { "2" })
            .replace("TF", if name == "ocean_small_cpu" { "true" } else { "false" });
        let mut args = vec![
            "train",
            "--config",
            config.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--quiet",
            "--set",
            "train.steps=1",
            "--set",
            &energy,
        ];
        args.extend(moved.iter().map(String::as_str));
        let out = ok(&wlm_in(dir.path(), &args));
        assert!(out.contains("mean ± SE of W1"), "{name}: {out}");
    }
}

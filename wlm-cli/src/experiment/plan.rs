//! The runs of an experiment: its embedded config, data path, seeds and `--set` overrides.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::{ExperimentArgs, ExperimentName, PotentialName, Scale};
use crate::config::ExperimentConfig;

/// One run of an experiment.
#[derive(Debug, Clone)]
pub(crate) struct PlannedRun {
    /// Run name (the folder under `<out>/<experiment>/`).
    pub(crate) name: String,
    /// Runs of one group differ only by their seed; the summary averages over them.
    pub(crate) group: String,
    /// The full config.
    pub(crate) config: ExperimentConfig,
}

pub(super) fn base_config(name: ExperimentName, scale: Scale) -> &'static str {
    use ExperimentName as E;
    match (name, scale) {
        (E::OceanSmall, Scale::Cpu) => include_str!("../../../configs/ocean_small_cpu.ron"),
        (E::OceanSmall, Scale::Reference) => include_str!("../../../configs/ocean_small.ron"),
        (E::OceanBig, Scale::Cpu) => include_str!("../../../configs/ocean_big_cpu.ron"),
        (E::OceanBig, Scale::Reference) => include_str!("../../../configs/ocean_big.ron"),
        (E::Eb, Scale::Cpu) => include_str!("../../../configs/eb_cpu.ron"),
        (E::Eb, Scale::Reference) => include_str!("../../../configs/eb.ron"),
        (E::GfSde, Scale::Cpu) => include_str!("../../../configs/gf_sde_cpu.ron"),
        (E::GfSde, Scale::Reference) => include_str!("../../../configs/gf_sde.ron"),
        (E::Boids, Scale::Cpu) => include_str!("../../../configs/boids_cpu.ron"),
        (E::Boids, Scale::Reference) => include_str!("../../../configs/boids.ron"),
    }
}

/// The experiment's command-line name.
pub(crate) fn experiment_name(name: ExperimentName) -> &'static str {
    match name {
        ExperimentName::OceanSmall => "ocean-small",
        ExperimentName::OceanBig => "ocean-big",
        ExperimentName::Eb => "eb",
        ExperimentName::GfSde => "gf-sde",
        ExperimentName::Boids => "boids",
    }
}

pub(crate) fn potential_key(p: PotentialName) -> &'static str {
    match p {
        PotentialName::Quadratic => "quadratic",
        PotentialName::StyblinskiTang => "styblinski_tang",
        PotentialName::Bohachevsky => "bohachevsky",
        PotentialName::OakleyOhagan => "oakley_o_hagan",
        PotentialName::WavyPlateau => "wavy_plateau",
    }
}

/// A potential's name in run names and on the command line.
pub(crate) fn potential_label(p: PotentialName) -> &'static str {
    match p {
        PotentialName::Quadratic => "quadratic",
        PotentialName::StyblinskiTang => "styblinski-tang",
        PotentialName::Bohachevsky => "bohachevsky",
        PotentialName::OakleyOhagan => "oakley-ohagan",
        PotentialName::WavyPlateau => "wavy-plateau",
    }
}

/// The data file of a file-based experiment, under `--data`.
fn data_file(args: &ExperimentArgs, relative: &str) -> Result<PathBuf> {
    let Some(dir) = &args.data else {
        bail!(
            "experiment `{}` reads {relative}: give the folder that holds it with --data DIR \
             (see the README for where to get the data sets)",
            experiment_name(args.name)
        );
    };
    let path = dir.join(relative);
    if !path.is_file() {
        bail!(
            "{}: no such file (--data {} must hold {relative})",
            path.display(),
            dir.display()
        );
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn ron_path(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}

/// The runs of an experiment, in the order they are trained.
///
/// # Errors
/// A missing data file; a config that the overrides break (naming the field).
pub(crate) fn plan(args: &ExperimentArgs) -> Result<Vec<PlannedRun>> {
    let base = base_config(args.name, args.scale);
    let seeds = if args.seeds.is_empty() {
        vec![0]
    } else {
        args.seeds.clone()
    };
    let exp = experiment_name(args.name);
    // (group, run-name stem, overrides) before seeds.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    match args.name {
        ExperimentName::OceanSmall => {
            let file = data_file(args, "oceans/oceans_with_v0.npz")?;
            groups.push((
                "holdout-1-3-5-7".into(),
                vec![format!("data.source=Particles({})", ron_path(&file))],
            ));
        }
        ExperimentName::OceanBig => {
            let file = data_file(args, "oceans/big_oceans_forecast.npz")?;
            groups.push((
                "forecast-10".into(),
                vec![format!("data.source=Particles({})", ron_path(&file))],
            ));
        }
        ExperimentName::Eb => {
            // The 300-cell subsample has no velocities: start every rollout (training and the
            // evaluation's restarts) from the OT finite-difference estimate, and train from
            // random starts (multiple shooting), the recommended configuration for data
            // without velocities (docs/RESULTS.md: 0.842 / 0.926 / 1.047 at held-out times
            // 1 / 2 / 3, against 0.844 / 0.973 / 1.050 from snapshot 0 only and 0.942 / 1.145
            // / 0.982 from rest). `--set train.initial_velocities=Zero --set
            // eval.initial_velocities=Zero --set train.random_start=false` gives the
            // reference's runs from rest, as it does without `pcs_delta`.
            let file = data_file(args, "eb/eb_300.npy")?;
            for h in [1, 2, 3] {
                groups.push((
                    format!("holdout-{h}"),
                    vec![
                        format!("data.source=Npy({})", ron_path(&file)),
                        format!("split=Holdout(indices: [{h}])"),
                        "train.initial_velocities=OtCentral".into(),
                        "eval.initial_velocities=OtCentral".into(),
                        "train.random_start=true".into(),
                    ],
                ));
            }
        }
        ExperimentName::GfSde => {
            let potentials = if args.potentials.is_empty() {
                vec![
                    PotentialName::Quadratic,
                    PotentialName::StyblinskiTang,
                    PotentialName::Bohachevsky,
                    PotentialName::OakleyOhagan,
                    PotentialName::WavyPlateau,
                ]
            } else {
                args.potentials.clone()
            };
            for p in potentials {
                for pairing in ["paired", "unpaired"] {
                    // METHOD.md §5: friction 0 with the data's velocities, or friction learned from
                    // 1.0 starting from rest.
                    for (variant, extra) in [
                        (
                            "conservative",
                            [
                                "model.friction=(gamma: 0.0, learnable: false)",
                                "train.initial_velocities=Data",
                                "eval.initial_velocities=Data",
                            ],
                        ),
                        (
                            "dissipative",
                            [
                                "model.friction=(gamma: 1.0, learnable: true)",
                                "train.initial_velocities=Zero",
                                "eval.initial_velocities=Zero",
                            ],
                        ),
                    ] {
                        let mut o = vec![
                            format!("data.source.potential={}", potential_key(p)),
                            format!("data.source.pairing={pairing}"),
                        ];
                        o.extend(extra.iter().map(|s| s.to_string()));
                        groups.push((format!("{}-{pairing}-{variant}", potential_label(p)), o));
                    }
                }
            }
        }
        ExperimentName::Boids => groups.push(("forecast-half".into(), Vec::new())),
    }
    let simulated = matches!(args.name, ExperimentName::GfSde | ExperimentName::Boids);
    let mut runs = Vec::new();
    for (group, overrides) in groups {
        for &seed in &seeds {
            let name = format!("{group}-seed{seed}");
            let mut o = overrides.clone();
            o.push(format!("name={:?}", format!("{exp}-{name}")));
            o.push(format!("train.seed={seed}"));
            o.push(format!("model.init_seed={seed}"));
            if simulated {
                o.push(format!("data.source.seed={seed}"));
            }
            o.extend(args.set.iter().cloned());
            let config = ExperimentConfig::parse(base, &o)
                .with_context(|| format!("config of run `{name}` of experiment `{exp}`"))?;
            runs.push(PlannedRun {
                name,
                group: group.clone(),
                config,
            });
        }
    }
    Ok(runs)
}

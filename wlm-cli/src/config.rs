//! Experiment configs: the RON file format, `--set` overrides, and errors that name the field.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use wlm::{EvalConfig, ModelConfig, RunConfig, SplitConfig, TrainConfig};
use wlm_boids::FlockingConfig;
use wlm_data::{GfSdeConfig, H5adConfig, TrajectoryNetConfig};

use crate::overrides::set_path;

/// The CLI's config inside a run directory.
pub(crate) const EXPERIMENT_FILE: &str = "experiment.ron";
/// Interpolation predictions inside a run directory.
pub(crate) const INTERPOLATION_FILE: &str = "interpolation.npz";

/// One experiment: where the data comes from, the model, training, evaluation and split.
///
/// Every field of every nested struct is checked: an unknown field is an error naming its
/// dotted path, and a wrong type or out-of-range value names the field too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentConfig {
    /// Name of the experiment; the default run directory is `runs/<name>`.
    pub(crate) name: String,
    /// The data.
    pub(crate) data: DataConfig,
    /// The model (energy network, friction, integrator, precision).
    #[serde(default)]
    pub(crate) model: ModelConfig,
    /// Optimisation.
    #[serde(default)]
    pub(crate) train: TrainConfig,
    /// Evaluation.
    #[serde(default)]
    pub(crate) eval: EvalConfig,
    /// Which snapshots train and which are held out.
    pub(crate) split: SplitConfig,
    /// Plots written after training.
    #[serde(default)]
    pub(crate) plot: PlotConfig,
}

/// Where the snapshots come from, and how they are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataConfig {
    /// A file (relative paths are relative to the config file's folder) or a simulator.
    pub(crate) source: DataSource,
    /// Observation times replacing the file's (one per snapshot). Default: the file's, or
    /// `0, 1, …` when it has none.
    #[serde(default)]
    pub(crate) times: Option<Vec<f64>>,
    /// Keep at most this many points of each snapshot (a seeded random subset), for
    /// CPU-sized runs. Default: all.
    #[serde(default)]
    pub(crate) max_particles: Option<usize>,
    /// Drop the velocities of the data (train and evaluate from zero velocities).
    #[serde(default)]
    pub(crate) drop_velocities: bool,
    /// Seed of the subsampling, SeedRng (xoshiro256++, wlm-numeric). Default 0.
    #[serde(default)]
    pub(crate) seed: u64,
    /// Keep only the first `n` components of positions and velocities (sources whose own
    /// config has no such field; `wlm train --data FILE --n-components N`). Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) n_components: Option<usize>,
}

/// The data sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum DataSource {
    /// Particle `.npz` (`positions`, optional `velocities` and `times`, each `(T, N, d)`).
    Particles(PathBuf),
    /// snapMMD `.npz` (`Xs` `(T, N, d)` at times `dts`).
    SnapMmd(PathBuf),
    /// `.npy` of positions `(T, N, d)`.
    Npy(PathBuf),
    /// Long-format CSV `time,x0,…[,v0,…]`.
    Csv(PathBuf),
    /// AnnData `.h5ad`.
    H5ad {
        /// The file.
        path: PathBuf,
        /// Which columns and matrices to read.
        #[serde(default)]
        config: H5adConfig,
    },
    /// TrajectoryNet-style `.npz` (`pcs`, `sample_labels`, `pcs_delta`), e.g. the full EB file.
    TrajectoryNet {
        /// The file.
        path: PathBuf,
        /// Components, keys and standardisation.
        #[serde(default)]
        config: TrajectoryNetConfig,
    },
    /// Simulated Boids (METHOD.md §5).
    Boids(BoidsSource),
    /// Simulated gradient-flow SDE (METHOD.md §5).
    GfSde(GfSdeConfig),
}

/// A simulated Boids data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BoidsSource {
    /// Number of boids. Default 1000.
    pub(crate) n_particles: usize,
    /// Number of snapshots, the start included. Default 101.
    pub(crate) n_snapshots: usize,
    /// Simulator steps between snapshots. Default 1.
    pub(crate) steps_per_snapshot: usize,
    /// Seed of the random start, SeedRng (xoshiro256++, wlm-numeric). Default 0.
    pub(crate) seed: u64,
    /// The flocking rules. Default: the reference's.
    pub(crate) flocking: FlockingConfig,
}

impl Default for BoidsSource {
    fn default() -> Self {
        Self {
            n_particles: 1000,
            n_snapshots: 101,
            steps_per_snapshot: 1,
            seed: 0,
            flocking: FlockingConfig::default(),
        }
    }
}

/// What the plots show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PlotConfig {
    /// The two coordinates drawn in scatter plots. Default `(0, 1)`.
    pub(crate) dims: (usize, usize),
    /// At most this many times in the true-vs-predicted figure. Default 6.
    pub(crate) max_times: usize,
}

impl Default for PlotConfig {
    fn default() -> Self {
        Self {
            dims: (0, 1),
            max_times: 6,
        }
    }
}

impl ExperimentConfig {
    /// Reads a config file, applies `key=value` overrides and checks every field.
    ///
    /// # Errors
    /// Unreadable file; malformed RON (with line and column); unknown fields, wrong types
    /// and out-of-range values, naming the field; a malformed override.
    pub(crate) fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut config = Self::parse(&text, overrides)
            .with_context(|| format!("invalid config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data.source.resolve_paths(base);
        Ok(config)
    }

    /// [`ExperimentConfig::load`] on text (paths are left as written).
    ///
    /// # Errors
    /// As [`ExperimentConfig::load`].
    pub(crate) fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let text = apply_overrides(text, overrides)?;
        let config: Self = from_ron(&text).map_err(|e| {
            if overrides.is_empty() {
                e
            } else {
                e.context("after applying --set")
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that serde cannot.
    ///
    /// # Errors
    /// The first bad field, named by its dotted path.
    pub(crate) fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        self.eval.validate()?;
        if self.data.n_components == Some(0) {
            bail!("invalid config field `data.n_components`: must be at least 1");
        }
        if self.data.max_particles == Some(0) {
            bail!("invalid config field `data.max_particles`: must be at least 1");
        }
        if self.plot.max_times == 0 {
            bail!("invalid config field `plot.max_times`: must be at least 1");
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            bail!("invalid config field `name`: must be a non-empty name without slashes");
        }
        Ok(())
    }

    /// The learner's part of the config.
    pub(crate) fn run_config(&self) -> RunConfig {
        RunConfig {
            model: self.model.clone(),
            train: self.train.clone(),
            eval: self.eval.clone(),
            split: self.split.clone(),
        }
    }

    /// The model's spatial dimension.
    pub(crate) fn model_dim(&self) -> usize {
        self.model.energy.dim()
    }

    /// Pretty RON text of the config.
    ///
    /// # Errors
    /// Serialisation failures (none are expected).
    pub(crate) fn to_ron(&self) -> Result<String> {
        to_ron(self)
    }
}

/// Pretty RON text of a config or a record the CLI writes.
///
/// # Errors
/// A value RON cannot represent.
pub(crate) fn to_ron<T: Serialize>(value: &T) -> Result<String> {
    ron::ser::to_string_pretty(value, ron::ser::PrettyConfig::default())
        .context("cannot write the value as RON")
}

impl DataSource {
    /// Makes relative file paths relative to `base`.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            Self::Particles(p) | Self::SnapMmd(p) | Self::Npy(p) | Self::Csv(p) => fix(p),
            Self::H5ad { path, .. } | Self::TrajectoryNet { path, .. } => fix(path),
            Self::Boids(_) | Self::GfSde(_) => {}
        }
    }

    /// Makes file paths absolute (relative to the current directory).
    pub(crate) fn absolutize(&mut self) {
        if let Ok(cwd) = std::env::current_dir() {
            self.resolve_paths(&cwd);
        }
    }
}

/// `text` with every `--set KEY=VALUE` of `overrides` applied in order.
///
/// # Errors
/// An item without `=`, or a key or value [`set_path`] refuses, naming the item.
pub(crate) fn apply_overrides(text: &str, overrides: &[String]) -> Result<String> {
    let mut text = text.to_string();
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("invalid --set `{item}`: expected KEY=VALUE"))?;
        text = set_path(&text, key.trim(), value.trim())
            .with_context(|| format!("invalid --set `{item}`"))?;
    }
    Ok(text)
}

/// Deserialises RON text, rejecting unknown fields at any depth and naming the field of any
/// error with its dotted path and position.
///
/// # Errors
/// Syntax errors, unknown fields, wrong types.
pub(crate) fn from_ron<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    wlm::from_ron_strict(text).map_err(|e| anyhow::anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(
        name: "t",
        data: (source: Particles("x.npz")),
        model: (energy: Attention((dim: 2, heads: 2, hidden: 8, blocks: 1, ff: 8))),
        train: (steps: 3),
        split: Forecast(n_train: 3),
    )"#;

    #[test]
    fn a_good_config_parses_and_keeps_defaults() {
        let c = ExperimentConfig::parse(GOOD, &[]).unwrap();
        assert_eq!(c.train.steps, 3);
        assert_eq!(c.train.lr, 1e-4);
        assert_eq!(c.model_dim(), 2);
        assert_eq!(c.split, SplitConfig::Forecast { n_train: 3 });
    }

    #[test]
    fn unknown_nested_field_is_named_by_its_path() {
        let text = GOOD.replace("steps: 3", "steps: 3, stepz: 4");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("unknown field `train.stepz`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field_and_position() {
        let text = GOOD.replace("steps: 3", "steps: \"many\"");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("train.steps"), "{err}");
        assert!(err.contains("5:"), "no line number in {err}");
    }

    #[test]
    fn out_of_range_value_names_the_field() {
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(GOOD, &["train.lr=-1.0".into()]).unwrap_err()
        );
        assert!(err.contains("train.lr"), "{err}");
    }

    #[test]
    fn overrides_set_nested_values() {
        let c = ExperimentConfig::parse(
            GOOD,
            &[
                "train.steps=9".into(),
                "model.friction.learnable=true".into(),
                "name=other".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.train.steps, 9);
        assert!(c.model.friction.learnable);
        assert_eq!(c.name, "other");
    }

    #[test]
    fn unknown_override_key_is_named() {
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(GOOD, &["train.nonsense=1".into()]).unwrap_err()
        );
        assert!(err.contains("unknown field `train.nonsense`"), "{err}");
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(GOOD, &["oops".into()]).unwrap_err()
        );
        assert!(err.contains("expected KEY=VALUE"), "{err}");
    }

    #[test]
    fn overrides_work_on_configs_with_non_ascii_comments_and_name_a_unicode_minus() {
        let text = format!("/* σ: the noise — see ∂_t ρ */\n{GOOD}");
        let c = ExperimentConfig::parse(&text, &["train.lr=1e-3".into(), "train.steps=4".into()])
            .unwrap();
        assert_eq!((c.train.lr, c.train.steps), (1e-3, 4));
        let err = format!(
            "{:#}",
            ExperimentConfig::parse(&text, &["train.lr=1e\u{2212}4".into()]).unwrap_err()
        );
        assert!(err.contains("invalid --set `train.lr=1e−4`"), "{err}");
        assert!(
            err.contains("value `1e−4`") && err.contains("U+2212"),
            "{err}"
        );
    }

    #[test]
    fn missing_required_field_is_named() {
        let text = GOOD.replace("split: Forecast(n_train: 3),", "");
        let err = format!("{:#}", ExperimentConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("split"), "{err}");
    }

    fn configs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
    }

    #[test]
    fn every_config_in_the_configs_folder_parses() {
        let mut n = 0;
        for entry in std::fs::read_dir(configs_dir()).unwrap() {
            let path = entry.unwrap().path();
            // `flow_*.ron` are `wlm flow` configs (tested in flow.rs).
            let flow = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("flow_"));
            if path.extension().is_some_and(|e| e == "ron") && !flow {
                let c = ExperimentConfig::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                assert!(
                    stem.starts_with(c.name.split('_').next().unwrap()),
                    "{stem}: {}",
                    c.name
                );
                n += 1;
            }
        }
        assert!(n >= 10, "only {n} configs");
    }

    #[test]
    fn gf_sde_template_accepts_every_potential_and_pairing() {
        let path = configs_dir().join("gf_sde.ron");
        for potential in [
            "quadratic",
            "styblinski_tang",
            "bohachevsky",
            "oakley_o_hagan",
            "wavy_plateau",
        ] {
            for pairing in ["paired", "unpaired"] {
                let c = ExperimentConfig::load(
                    &path,
                    &[
                        format!("data.source.potential={potential}"),
                        format!("data.source.pairing={pairing}"),
                        "model.friction=(gamma: 1.0, learnable: true)".into(),
                    ],
                )
                .unwrap_or_else(|e| panic!("{potential} {pairing}: {e:#}"));
                assert!(c.model.friction.learnable);
            }
        }
    }
}

//! The data flags of every command that reads data (`--time-key`, `--embedding`,
//! `--velocity-key`, `--n-components`, `--format`): a file and its flags as a config's data
//! source, and the AnnData layout that predictions made from it are written in.

use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm_data::{Format, H5adConfig, H5adMatrix, Snapshots, TrajectoryNetConfig};

use crate::cli::DataFlags;
use crate::config::{DataConfig, DataSource};
use crate::data::load_config_data;

impl DataFlags {
    /// The first flag given, as typed (for messages).
    fn first_given(&self) -> Option<&'static str> {
        [
            (self.time_key.is_some(), "--time-key"),
            (self.embedding.is_some(), "--embedding"),
            (self.velocity_key.is_some(), "--velocity-key"),
            (self.n_components.is_some(), "--n-components"),
            (self.format.is_some(), "--format"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// Fails when a flag is given to a command that reads no data file with it.
    ///
    /// # Errors
    /// Naming the flag and what it needs.
    pub(crate) fn require_file(&self, needs: &str) -> Result<()> {
        match self.first_given() {
            Some(flag) => bail!("{flag} describes a data file: it needs {needs}"),
            None => Ok(()),
        }
    }
}

/// `X`, `layers/NAME`, `obsm/NAME` or an `obsm` key.
fn matrix(key: &str) -> H5adMatrix {
    if key == "X" {
        H5adMatrix::X
    } else if let Some(layer) = key.strip_prefix("layers/") {
        H5adMatrix::Layer(layer.to_string())
    } else {
        H5adMatrix::Obsm(key.strip_prefix("obsm/").unwrap_or(key).to_string())
    }
}

/// The format of `path`: `--format`, or guessed from the extension (and `.npz` keys).
///
/// # Errors
/// An unknown extension or `.npz` layout, naming the file and suggesting `--format`.
pub(crate) fn format(path: &Path, flags: &DataFlags) -> Result<Format> {
    match flags.format {
        Some(f) => Ok(f),
        None => wlm_data::detect_format(path).with_context(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("name the format with --format ({})", names.join(", "))
        }),
    }
}

/// The data config that reads `path` as the flags say (no re-timing, subsampling or
/// velocity dropping).
///
/// # Errors
/// An unknown format; a flag the format has no use for, naming it; `--n-components 0`.
pub(crate) fn data_config(path: &Path, flags: &DataFlags) -> Result<(Format, DataConfig)> {
    let format = format(path, flags)?;
    if flags.n_components == Some(0) {
        bail!("--n-components must be at least 1, got 0");
    }
    let path = path.to_path_buf();
    let keyed = matches!(format, Format::H5ad | Format::TrajectoryNet);
    if !keyed {
        for (given, flag) in [
            (flags.time_key.is_some(), "--time-key"),
            (flags.embedding.is_some(), "--embedding"),
            (flags.velocity_key.is_some(), "--velocity-key"),
        ] {
            if given {
                bail!(
                    "{flag} applies to .h5ad and TrajectoryNet .npz files; {} is a {}",
                    path.display(),
                    format.describe()
                );
            }
        }
    }
    let mut n_components = None;
    let source = match format {
        Format::H5ad => {
            let defaults = H5adConfig::default();
            DataSource::H5ad {
                path,
                config: H5adConfig {
                    time_key: flags.time_key.clone().unwrap_or(defaults.time_key),
                    embedding: flags
                        .embedding
                        .as_deref()
                        .map_or(defaults.embedding, matrix),
                    n_components: flags.n_components,
                    velocity: flags.velocity_key.as_deref().map(matrix),
                },
            }
        }
        Format::TrajectoryNet => {
            let defaults = TrajectoryNetConfig::default();
            DataSource::TrajectoryNet {
                path,
                config: TrajectoryNetConfig {
                    n_components: flags.n_components.unwrap_or(defaults.n_components),
                    embedding_key: flags.embedding.clone().unwrap_or(defaults.embedding_key),
                    label_key: flags.time_key.clone().unwrap_or(defaults.label_key),
                    velocity_key: flags.velocity_key.clone().or(defaults.velocity_key),
                    standardize: defaults.standardize,
                },
            }
        }
        other => {
            n_components = flags.n_components;
            match other {
                Format::Particles => DataSource::Particles(path),
                Format::SnapMmd => DataSource::SnapMmd(path),
                Format::Npy => DataSource::Npy(path),
                _ => DataSource::Csv(path),
            }
        }
    };
    Ok((
        format,
        DataConfig {
            source,
            times: None,
            max_particles: None,
            drop_velocities: false,
            seed: 0,
            n_components,
        },
    ))
}

/// Loads `path` as the flags say.
///
/// # Errors
/// As [`data_config`] and the loaders (an unknown time key or matrix lists what the file
/// holds).
pub(crate) fn load(path: &Path, flags: &DataFlags) -> Result<(Format, Snapshots)> {
    let (format, config) = data_config(path, flags)?;
    Ok((format, load_config_data(&config)?))
}

/// Where predictions go in an `.h5ad` written from data read through `source`: the input's
/// time column and matrices when it was an AnnData file; otherwise `obs/time`,
/// `obsm/X_pca` and `obsm/velocity`.
pub(crate) fn output_layout(source: &DataSource) -> H5adConfig {
    match source {
        DataSource::H5ad { config, .. } => H5adConfig {
            n_components: None,
            velocity: config.velocity.clone().filter(|v| *v != config.embedding),
            ..config.clone()
        },
        _ => H5adConfig {
            velocity: Some(H5adMatrix::Obsm("velocity".into())),
            ..H5adConfig::default()
        },
    }
}

/// A data-width check for a run's model: `Ok` when the data are `dim`-dimensional, otherwise
/// an error naming the width, the flags that chose it and, for an AnnData file, every matrix
/// it holds.
///
/// # Errors
/// As described.
pub(crate) fn check_width(
    dim: usize,
    snapshots: &Snapshots,
    source: &DataSource,
    flags: &DataFlags,
) -> Result<()> {
    if snapshots.dim() == dim {
        return Ok(());
    }
    let mut message = format!(
        "the run's model is {dim}-dimensional but the data are {}-dimensional",
        snapshots.dim()
    );
    if let DataSource::H5ad { path, config } = source {
        let name = match &config.embedding {
            H5adMatrix::X => "X".to_string(),
            H5adMatrix::Obsm(k) => k.clone(),
            H5adMatrix::Layer(k) => format!("layers/{k}"),
        };
        message.push_str(&format!(
            ": --embedding {name}{} of {}",
            config
                .n_components
                .map_or(String::new(), |n| format!(" --n-components {n}")),
            path.display()
        ));
        if let Ok((_, matrices)) = wlm_data::h5ad_contents(path) {
            let list: Vec<String> = matrices.iter().map(ToString::to_string).collect();
            message.push_str(&format!("; the file holds {}", list.join(", ")));
        }
        message.push_str(&format!(
            " (choose one with at least {dim} columns, and --n-components {dim} if it has more)"
        ));
    } else if flags.n_components.is_none() {
        message.push_str(&format!(" (--n-components {dim} keeps the first {dim})"));
    }
    bail!(message)
}

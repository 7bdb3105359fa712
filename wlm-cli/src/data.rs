//! Reading data for the subcommands: snapshots from a config's source or any supported file,
//! single point clouds (`distance`) and single start snapshots (`simulate --init`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm_boids::Start;
use wlm_data::{NpyArray, Snapshots};
use wlm_numeric::SeedRng;

use crate::config::{DataConfig, DataSource};

/// The snapshots a config describes: loaded or simulated, then re-timed, subsampled and
/// stripped of velocities as asked.
///
/// # Errors
/// Loader and simulator errors (naming the file and key); times of the wrong length.
pub(crate) fn load_config_data(config: &DataConfig) -> Result<Snapshots> {
    let times = config.times.as_deref();
    let mut snapshots = match &config.source {
        DataSource::Particles(path) => wlm_data::load_particles_npz(path, times)?,
        DataSource::SnapMmd(path) => wlm_data::load_snapmmd_npz(path)?,
        DataSource::Npy(path) => wlm_data::load_npy(path, times)?,
        DataSource::Csv(path) => wlm_data::load_csv(path)?,
        DataSource::H5ad { path, config } => wlm_data::load_h5ad(path, config)?,
        DataSource::TrajectoryNet { path, config } => {
            wlm_data::load_trajectorynet_npz(path, config)?
        }
        DataSource::Boids(b) => b
            .flocking
            .simulate(
                &Start::random_2d(b.n_particles, b.seed),
                b.n_snapshots,
                b.steps_per_snapshot,
            )
            .context("cannot simulate the Boids data (data.source)")?,
        DataSource::GfSde(g) => g
            .generate()
            .context("cannot simulate the GF-SDE data (data.source)")?,
    };
    if let Some(times) = times {
        if times.len() != snapshots.len() {
            bail!(
                "invalid config field `data.times`: {} times for {} snapshots",
                times.len(),
                snapshots.len()
            );
        }
        if times != snapshots.times() {
            snapshots =
                retime(&snapshots, times.to_vec()).context("invalid config field `data.times`")?;
        }
    }
    if let Some(n) = config.n_components {
        snapshots = first_components(&snapshots, n)?;
    }
    if let Some(max) = config.max_particles {
        snapshots = subsample(&snapshots, max, config.seed)?;
    }
    if config.drop_velocities {
        snapshots = without_velocities(&snapshots)?;
    }
    Ok(snapshots)
}

fn parts(s: &Snapshots) -> (Vec<Vec<f64>>, Vec<Option<Vec<f64>>>) {
    let positions = (0..s.len()).map(|k| s.positions(k).to_vec()).collect();
    let velocities = (0..s.len())
        .map(|k| s.velocities(k).map(<[f64]>::to_vec))
        .collect();
    (positions, velocities)
}

fn retime(s: &Snapshots, times: Vec<f64>) -> Result<Snapshots> {
    let (p, v) = parts(s);
    Ok(Snapshots::new(times, s.dim(), p, Some(v))?)
}

/// The first `n` coordinates of every point (and velocity).
fn first_components(s: &Snapshots, n: usize) -> Result<Snapshots> {
    let d = s.dim();
    if n == 0 || n > d {
        bail!("invalid config field `data.n_components` (--n-components): {n} components asked for but the data have {d} (need 1..={d})");
    }
    if n == d {
        return Ok(s.clone());
    }
    let cut = |values: &[f64]| -> Vec<f64> {
        values
            .chunks_exact(d)
            .flat_map(|row| row[..n].to_vec())
            .collect()
    };
    let positions = (0..s.len()).map(|k| cut(s.positions(k))).collect();
    let velocities = (0..s.len()).map(|k| s.velocities(k).map(cut)).collect();
    let out = Snapshots::new(s.times().to_vec(), n, positions, Some(velocities))?;
    Ok(match s.names() {
        Some(names) => out.with_names(names.to_vec())?,
        None => out,
    })
}

fn without_velocities(s: &Snapshots) -> Result<Snapshots> {
    let (p, _) = parts(s);
    Ok(Snapshots::new(s.times().to_vec(), s.dim(), p, None)?)
}

/// At most `max` points of each snapshot, chosen at random, in their original order: one
/// `SeedRng::sample_indices(n, max)` per snapshot with more than `max` points, in snapshot
/// order, from one stream seeded with `seed`.
pub(crate) fn subsample(s: &Snapshots, max: usize, seed: u64) -> Result<Snapshots> {
    let mut rng = SeedRng::seed_from(seed);
    let d = s.dim();
    let mut positions = Vec::with_capacity(s.len());
    let mut velocities = Vec::with_capacity(s.len());
    for k in 0..s.len() {
        let n = s.n_particles(k);
        let mut keep: Vec<usize> = if n > max {
            rng.sample_indices(n, max)
        } else {
            (0..n).collect()
        };
        keep.sort_unstable();
        let pick = |values: &[f64]| -> Vec<f64> {
            keep.iter()
                .flat_map(|&i| values[i * d..(i + 1) * d].iter().copied())
                .collect()
        };
        positions.push(pick(s.positions(k)));
        velocities.push(s.velocities(k).map(pick));
    }
    Ok(Snapshots::new(
        s.times().to_vec(),
        d,
        positions,
        Some(velocities),
    )?)
}

/// A point cloud: row-major values with `dim` columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cloud {
    /// Row-major `(n, dim)` values.
    pub(crate) values: Vec<f64>,
    /// Number of columns.
    pub(crate) dim: usize,
}

impl Cloud {
    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// As a `(n, dim)` f64 tensor on the CPU.
    ///
    /// # Errors
    /// Tensor creation failures.
    pub(crate) fn tensor(&self) -> Result<candle_core::Tensor> {
        Ok(candle_core::Tensor::from_slice(
            &self.values,
            (self.len(), self.dim),
            &candle_core::Device::Cpu,
        )?)
    }
}

fn cloud_from_array(array: &NpyArray, path: &Path, key: Option<&str>) -> Result<Cloud> {
    let what = match key {
        Some(k) => format!("{}: key `{k}`", path.display()),
        None => path.display().to_string(),
    };
    let (n, dim) = match array.shape.as_slice() {
        [n, d] => (*n, *d),
        [1, n, d] => (*n, *d),
        shape => bail!("{what}: expected a point cloud of shape (N, d), got shape {shape:?}"),
    };
    if n == 0 || dim == 0 {
        bail!("{what}: empty point cloud (shape {:?})", array.shape);
    }
    if let Some(i) = array.data.iter().position(|v| !v.is_finite()) {
        bail!(
            "{what}: value of point {} (coordinate {}) is not finite ({})",
            i / dim,
            i % dim,
            array.data[i]
        );
    }
    Ok(Cloud {
        values: array.data.clone(),
        dim,
    })
}

/// Reads a point cloud: `.npy` of shape `(N, d)` (or `(1, N, d)`), or a CSV of numbers with
/// one point per row (a first line that is not numeric is taken as a header).
///
/// # Errors
/// Unreadable files, other shapes, ragged or non-numeric rows, non-finite values, naming the
/// file (and line).
pub(crate) fn read_cloud(path: &Path) -> Result<Cloud> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match ext.as_str() {
        "npy" => {
            let array = wlm_data::parse_npy(&bytes)
                .with_context(|| format!("{}: invalid .npy", path.display()))?;
            cloud_from_array(&array, path, None)
        }
        "csv" | "txt" => parse_csv_cloud(&bytes, path),
        _ => bail!(
            "{}: expected a point cloud as .npy (N, d) or .csv",
            path.display()
        ),
    }
}

fn parse_csv_cloud(bytes: &[u8], path: &Path) -> Result<Cloud> {
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let mut values = Vec::new();
    let mut dim = 0;
    for (line_idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split([',', ';', '\t']).map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let row = match parsed {
            Ok(row) => row,
            Err(_) if values.is_empty() && dim == 0 => continue, // header
            Err(_) => bail!(
                "{}: line {}: expected numbers separated by commas, got `{line}`",
                path.display(),
                line_idx + 1
            ),
        };
        if dim == 0 {
            dim = row.len();
        } else if row.len() != dim {
            bail!(
                "{}: line {}: {} columns, but earlier rows have {dim}",
                path.display(),
                line_idx + 1,
                row.len()
            );
        }
        if let Some(c) = row.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: line {}: column {} is not finite ({})",
                path.display(),
                line_idx + 1,
                c,
                row[c]
            );
        }
        values.extend(row);
    }
    if values.is_empty() {
        bail!("{}: no points", path.display());
    }
    Ok(Cloud { values, dim })
}

/// A start snapshot for `simulate --init`: positions and optional velocities.
#[derive(Debug, Clone)]
pub(crate) struct StartSnapshot {
    /// Positions.
    pub(crate) positions: Cloud,
    /// Velocities of the same shape, if the file has them.
    pub(crate) velocities: Option<Vec<f64>>,
}

/// Reads a start snapshot: an `.npz` with `positions` (and `velocities`) of one snapshot,
/// `(N, d)` or `(1, N, d)` (a longer `(T, N, d)` file contributes its first snapshot), or an
/// `.npy` / CSV point cloud.
///
/// # Errors
/// Unreadable files, wrong shapes, mismatched velocity shapes, non-finite values.
pub(crate) fn read_start(path: &Path) -> Result<StartSnapshot> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "npz" {
        return Ok(StartSnapshot {
            positions: read_cloud(path)?,
            velocities: None,
        });
    }
    let keys = wlm_data::npz_keys(path)?;
    let first = |mut a: NpyArray| -> NpyArray {
        if a.shape.len() == 3 && a.shape[0] > 1 {
            let len = a.shape[1] * a.shape[2];
            a.data.truncate(len);
            a.shape = vec![a.shape[1], a.shape[2]];
        }
        a
    };
    if !keys.iter().any(|k| k == "positions") {
        bail!(
            "{}: no array named `positions` (found {keys:?})",
            path.display()
        );
    }
    let positions = cloud_from_array(
        &first(wlm_data::load_npz_array(path, "positions")?),
        path,
        Some("positions"),
    )?;
    let velocities = if keys.iter().any(|k| k == "velocities") {
        let v = cloud_from_array(
            &first(wlm_data::load_npz_array(path, "velocities")?),
            path,
            Some("velocities"),
        )?;
        if v.values.len() != positions.values.len() || v.dim != positions.dim {
            bail!(
                "{}: key `velocities`: {} points × {} differs from `positions` {} × {}",
                path.display(),
                v.len(),
                v.dim,
                positions.len(),
                positions.dim
            );
        }
        Some(v.values)
    } else {
        None
    };
    Ok(StartSnapshot {
        positions,
        velocities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_clouds_skip_a_header_and_reject_ragged_rows() {
        let c = parse_csv_cloud(b"x,y\n1,2\n3,4\n", Path::new("a.csv")).unwrap();
        assert_eq!(
            c,
            Cloud {
                values: vec![1.0, 2.0, 3.0, 4.0],
                dim: 2
            }
        );
        let err = parse_csv_cloud(b"1,2\n3\n", Path::new("a.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.csv: line 2"), "{err}");
        let err = parse_csv_cloud(b"1,2\n3,nan\n", Path::new("a.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not finite"), "{err}");
        assert!(parse_csv_cloud(b"", Path::new("a.csv")).is_err());
    }

    #[test]
    fn subsampling_keeps_at_most_max_points_with_their_velocities() {
        let s = Snapshots::new(
            vec![0.0, 1.0],
            1,
            vec![(0..10).map(f64::from).collect(), vec![5.0, 6.0]],
            Some(vec![
                Some((0..10).map(|i| f64::from(i) * 10.0).collect()),
                None,
            ]),
        )
        .unwrap();
        let sub = subsample(&s, 3, 1).unwrap();
        assert_eq!(sub.n_particles(0), 3);
        assert_eq!(sub.n_particles(1), 2);
        let (x, v) = (sub.positions(0), sub.velocities(0).unwrap());
        for (xi, vi) in x.iter().zip(v) {
            assert_eq!(*vi, xi * 10.0, "velocity no longer matches its point");
        }
    }
}

//! The TrajectoryNet `.npz` layout of single-cell data (`pcs`, `sample_labels`, `pcs_delta`),
//! standardized the way TrajectoryNet and the WLM reference do it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs::read_file;
use crate::npy::NpyArray;
use crate::npz::{Npz, MEMORY};
use crate::{Error, Result, Snapshots};

/// How to read a TrajectoryNet-style `.npz` (e.g. `eb_velocity_v5.npz`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrajectoryNetConfig {
    /// Number of leading embedding components kept. Default 5 (the WLM reference's `pca_dim`).
    pub n_components: usize,
    /// Key of the embedding `(cells, D)`. Default `"pcs"`.
    pub embedding_key: String,
    /// Key of the label per cell `(cells,)`, numeric. Default `"sample_labels"`.
    pub label_key: String,
    /// Key of the velocities `(cells, D)`, used when the archive has it; `None` ignores
    /// velocities. Default `Some("pcs_delta")`.
    pub velocity_key: Option<String>,
    /// z-score the kept components with their global mean and population standard deviation,
    /// and divide the velocities by the same standard deviation. Default `true`.
    pub standardize: bool,
}

impl Default for TrajectoryNetConfig {
    fn default() -> Self {
        Self {
            n_components: 5,
            embedding_key: "pcs".into(),
            label_key: "sample_labels".into(),
            velocity_key: Some("pcs_delta".into()),
            standardize: true,
        }
    }
}

/// Loads a TrajectoryNet-style `.npz`: one snapshot per distinct label, in increasing label
/// order, at time = label value, named by the label; cells keep their file order.
///
/// Standardization (with `standardize`): for each kept component `c`, `μ_c` and `σ_c` are the
/// mean and the *population* standard deviation (divisor `cells`) over **all cells of all
/// labels** (TrajectoryNet's `StandardScaler` fit on the whole embedding; the WLM reference
/// computes the same statistics over the cells of the labels it keeps, which is all of them by
/// default). Positions become `(x − μ_c) / σ_c`, velocities `v / σ_c` (no mean subtracted).
/// A component with `σ_c = 0` is only centred (`σ_c` taken as 1, as scikit-learn does).
/// Statistics are computed in `f64`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] for an empty file or a broken
/// archive; [`Error::Key`] naming the key for a missing embedding or label array, a malformed
/// entry, a non-float embedding, wrong ranks, row counts that differ, `n_components` of 0 or
/// more than the embedding has, and non-finite labels or values (naming the cell).
pub fn load_trajectorynet_npz(
    path: impl AsRef<Path>,
    config: &TrajectoryNetConfig,
) -> Result<Snapshots> {
    let path = path.as_ref();
    trajectorynet_npz(&read_file(path)?, path, config)
}

/// [`load_trajectorynet_npz`] on the bytes of an archive; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_trajectorynet_npz`], without the I/O errors.
pub fn parse_trajectorynet_npz(bytes: &[u8], config: &TrajectoryNetConfig) -> Result<Snapshots> {
    trajectorynet_npz(bytes, Path::new(MEMORY), config)
}

fn key_err(path: &Path, key: &str, problem: String) -> Error {
    Error::Key {
        path: path.to_owned(),
        key: key.to_owned(),
        problem,
    }
}

/// Checks a float `(cells, D)` matrix with at least `k` columns; returns `(cells, D)`.
fn matrix(array: &NpyArray, path: &Path, key: &str, k: usize) -> Result<(usize, usize)> {
    if !array.dtype.is_float() {
        return Err(key_err(
            path,
            key,
            format!("dtype {:?} is not float32 or float64", array.descr),
        ));
    }
    let &[cells, cols] = &array.shape[..] else {
        return Err(key_err(
            path,
            key,
            format!(
                "expected rank 2 (cells, components), got shape {:?}",
                array.shape
            ),
        ));
    };
    if cells == 0 {
        return Err(key_err(path, key, "no cells (0 rows)".into()));
    }
    if k == 0 || k > cols {
        return Err(key_err(
            path,
            key,
            format!("n_components is {k} but the array has {cols} components (need 1..={cols})"),
        ));
    }
    Ok((cells, cols))
}

/// The first `k` columns of row `i`, checked finite.
fn row(array: &NpyArray, cols: usize, i: usize, k: usize) -> Option<&[f64]> {
    let r = &array.data[i * cols..i * cols + k];
    r.iter().all(|v| v.is_finite()).then_some(r)
}

fn trajectorynet_npz(bytes: &[u8], path: &Path, config: &TrajectoryNetConfig) -> Result<Snapshots> {
    let k = config.n_components;
    let mut npz = Npz::open(bytes, path)?;
    let emb_key = config.embedding_key.as_str();
    let embedding = npz.array(emb_key)?;
    let (cells, cols) = matrix(&embedding, path, emb_key, k)?;

    let label_key = config.label_key.as_str();
    let labels = npz.array(label_key)?;
    if labels.shape.len() != 1 || labels.shape[0] != cells {
        return Err(key_err(
            path,
            label_key,
            format!(
                "expected shape ({cells},), one label per row of `{emb_key}`, got {:?}",
                labels.shape
            ),
        ));
    }
    if let Some(i) = labels.data.iter().position(|l| !l.is_finite()) {
        return Err(key_err(
            path,
            label_key,
            format!("label of cell {i} is not finite ({})", labels.data[i]),
        ));
    }

    let velocity = match &config.velocity_key {
        Some(key) if npz.has(key) => {
            let array = npz.array(key)?;
            let (vcells, vcols) = matrix(&array, path, key, k)?;
            if vcells != cells {
                return Err(key_err(
                    path,
                    key,
                    format!("{vcells} rows but `{emb_key}` has {cells}"),
                ));
            }
            Some((key.as_str(), array, vcols))
        }
        _ => None,
    };

    let mut positions = Vec::with_capacity(cells * k);
    for i in 0..cells {
        let r = row(&embedding, cols, i, k).ok_or_else(|| {
            key_err(
                path,
                emb_key,
                format!("cell {i} has a non-finite value among its first {k} components"),
            )
        })?;
        positions.extend_from_slice(r);
    }
    let mut velocities = match &velocity {
        Some((key, array, vcols)) => {
            let mut out = Vec::with_capacity(cells * k);
            for i in 0..cells {
                let r = row(array, *vcols, i, k).ok_or_else(|| {
                    key_err(
                        path,
                        key,
                        format!("cell {i} has a non-finite value among its first {k} components"),
                    )
                })?;
                out.extend_from_slice(r);
            }
            Some(out)
        }
        None => None,
    };

    if config.standardize {
        let (mean, std) = column_stats(&positions, k);
        for (i, x) in positions.iter_mut().enumerate() {
            *x = (*x - mean[i % k]) / std[i % k];
        }
        if let Some(v) = velocities.as_mut() {
            for (i, x) in v.iter_mut().enumerate() {
                *x /= std[i % k];
            }
        }
    }

    // Group cells by label, in increasing label order.
    let mut unique: Vec<f64> = labels.data.clone();
    unique.sort_by(f64::total_cmp);
    unique.dedup();
    let mut clouds: Vec<Vec<f64>> = vec![Vec::new(); unique.len()];
    let mut vel_clouds: Vec<Vec<f64>> = vec![Vec::new(); unique.len()];
    for (i, label) in labels.data.iter().enumerate() {
        let s = unique.partition_point(|u| u < label);
        clouds[s].extend_from_slice(&positions[i * k..(i + 1) * k]);
        if let Some(v) = &velocities {
            vel_clouds[s].extend_from_slice(&v[i * k..(i + 1) * k]);
        }
    }
    let vel = velocities.map(|_| vel_clouds.into_iter().map(Some).collect());
    let names = unique.iter().map(|l| format!("{l}")).collect();
    Snapshots::new(unique, k, clouds, vel)
        .and_then(|s| s.with_names(names))
        .map_err(|e| Error::Format {
            path: path.to_owned(),
            problem: e.to_string(),
        })
}

/// Mean and population standard deviation of each of the `k` columns (σ = 0 replaced by 1).
pub(crate) fn column_stats(values: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = (values.len() / k).max(1) as f64;
    let mut mean = vec![0.0; k];
    for (i, x) in values.iter().enumerate() {
        mean[i % k] += x;
    }
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut var = vec![0.0; k];
    for (i, x) in values.iter().enumerate() {
        var[i % k] += (x - mean[i % k]).powi(2);
    }
    let std = var
        .iter()
        .map(|v| (v / rows).sqrt())
        .map(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
        .collect();
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_stats_use_the_population_std() {
        // Column 0: 1, 3 → mean 2, population std 1. Column 1: constant → std taken as 1.
        let (mean, std) = column_stats(&[1.0, 5.0, 3.0, 5.0], 2);
        assert_eq!(mean, vec![2.0, 5.0]);
        assert_eq!(std, vec![1.0, 1.0]);
    }
}

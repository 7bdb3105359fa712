//! `wlm distance`: one number between two point clouds.

use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm_data::Format;
use wlm_ot::SinkhornConfig;

use crate::cli::{DataFlags, DistanceArgs, Metric};
use crate::data::{read_cloud, Cloud};

/// Whether `path` is a bare point cloud (`.npy` of rank 2, or `(1, N, d)`; a CSV of numbers
/// without a `time` column) rather than a data file of snapshots.
fn is_bare_cloud(path: &Path, flags: &DataFlags) -> Result<bool> {
    if flags.format.is_some() {
        return Ok(false);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "npy" => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(wlm_data::parse_npy(&bytes).map_or(true, |a| a.shape.len() != 3 || a.shape[0] == 1))
        }
        "csv" | "txt" => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'));
            let first_field = first
                .and_then(|l| l.split([',', ';', '\t']).next())
                .unwrap_or("");
            Ok(!first_field.trim().eq_ignore_ascii_case("time"))
        }
        _ => Ok(false),
    }
}

/// A point cloud: a bare cloud file, or snapshot `snapshot` of a data file (optional when it
/// holds one); `flag` names the snapshot option in messages. The flags that name keys
/// (`--time-key`, `--embedding`, `--velocity-key`) apply to the files that have keys (.h5ad,
/// TrajectoryNet .npz), so one of the two files may be a bare cloud; `--n-components` to
/// both.
fn read(path: &Path, flags: &DataFlags, snapshot: Option<usize>, flag: &str) -> Result<Cloud> {
    if is_bare_cloud(path, flags)? {
        if let Some(k) = snapshot.filter(|&k| k > 0) {
            bail!(
                "{flag} {k}: {} holds one point cloud (index 0)",
                path.display()
            );
        }
        let cloud = read_cloud(path)?;
        return match flags.n_components {
            Some(n) if n == 0 || n > cloud.dim => bail!(
                "--n-components {n}: {} has {} components (need 1..={})",
                path.display(),
                cloud.dim,
                cloud.dim
            ),
            Some(n) => Ok(Cloud {
                values: cloud
                    .values
                    .chunks(cloud.dim)
                    .flat_map(|r| r[..n].to_vec())
                    .collect(),
                dim: n,
            }),
            None => Ok(cloud),
        };
    }
    let keyed = matches!(
        crate::source::format(path, flags)?,
        Format::H5ad | Format::TrajectoryNet
    );
    let flags = if keyed {
        flags.clone()
    } else {
        DataFlags {
            time_key: None,
            embedding: None,
            velocity_key: None,
            ..flags.clone()
        }
    };
    let (_, s) = crate::source::load(path, &flags)?;
    let k = match snapshot {
        Some(k) => k,
        None if s.len() == 1 => 0,
        None => bail!(
            "{} holds {} snapshots (times {:?}): choose one with {flag} INDEX",
            path.display(),
            s.len(),
            s.times()
        ),
    };
    if k >= s.len() {
        bail!(
            "{flag} {k}: {} holds snapshots 0..{} (times {:?})",
            path.display(),
            s.len() - 1,
            s.times()
        );
    }
    Ok(Cloud {
        values: s.positions(k).to_vec(),
        dim: s.dim(),
    })
}

/// The distance between the clouds in files `a` and `b` under the chosen metric.
///
/// # Errors
/// Unreadable clouds, differing dimensions, invalid Sinkhorn options, metric failures.
pub(crate) fn distance(args: &DistanceArgs) -> Result<f64> {
    let a = read(&args.a, &args.data_flags, args.snapshot_a, "--snapshot-a")?;
    let b = read(&args.b, &args.data_flags, args.snapshot_b, "--snapshot-b")?;
    if a.dim != b.dim {
        bail!(
            "the clouds have different dimensions: {} has {}, {} has {}",
            args.a.display(),
            a.dim,
            args.b.display(),
            b.dim
        );
    }
    let (x, y) = (a.tensor()?, b.tensor()?);
    let value = match args.metric {
        Metric::W1 => wlm_ot::wasserstein_1(&x, &y)?,
        Metric::W2 => wlm_ot::wasserstein_2(&x, &y)?,
        Metric::Energy => wlm_ot::energy_distance(&x, &y)?,
        Metric::Sinkhorn => {
            let config = SinkhornConfig {
                p: u32::from(args.p),
                blur: args.blur,
                scaling: args.scaling,
                ..SinkhornConfig::default()
            };
            config.validate().context("invalid sinkhorn options")?;
            wlm_ot::sinkhorn_divergence(&x, &y, &config)?.to_scalar::<f64>()?
        }
    };
    Ok(value)
}

//! `wlm distance`: one number between two point clouds.

use anyhow::{bail, Context, Result};
use wlm_ot::SinkhornConfig;

use crate::cli::{DistanceArgs, Metric};
use crate::data::read_cloud;

/// The distance between the clouds in files `a` and `b` under the chosen metric.
///
/// # Errors
/// Unreadable clouds, differing dimensions, invalid Sinkhorn options, metric failures.
pub(crate) fn distance(args: &DistanceArgs) -> Result<f64> {
    let a = read_cloud(&args.a)?;
    let b = read_cloud(&args.b)?;
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

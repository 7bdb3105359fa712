//! `wlm train --data FILE` without `--config`: an experiment config derived from the data.
//!
//! What is derived, and from what (every value can still be changed with `--set`):
//!
//! | field | value |
//! |---|---|
//! | `name` | the file's stem |
//! | `model.energy` | attention energy of the data's dimension `d`, sized by the points of the data (`N̄·T`, the mean points per snapshot times the snapshots): ≤ 2,000 points: heads 2, hidden 16, 1 block, ff 32; ≤ 20,000: heads 2, hidden 32, 2 blocks, ff 64; more: heads 4, hidden 64, 3 blocks, ff 256; hidden at least `4d` (rounded up to a multiple of the heads), ff at least twice the hidden width |
//! | `model.friction` | learned, from γ = 1 |
//! | `train.loss.blur` | `wlm_data::estimate_blur` of the training snapshots with the training seed, written out (what the trainer would estimate) |
//! | `train.batch_size` | 512 when snapshots have more than 512 points on average, else all points |
//! | `train` | 1000 steps, lr 1e-3, weight decay 1e-3, EMA decay 0.99, a checkpoint every 250 steps |
//! | `*.initial_velocities` | `Data` when every snapshot has velocities, else `OtCentral` (training and evaluation) |
//! | `split` | `--holdout 1,3` (interpolation), `--forecast-from K` (train on snapshots `0..K`), default: every snapshot trains |

use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm::{EnergyConfig, FrictionConfig, SplitConfig, VelocitySource};
use wlm_data::{estimate_blur, BlurConfig};
use wlm_energy::AttentionEnergyConfig;

use crate::cli::TrainArgs;
use crate::config::{ExperimentConfig, PlotConfig};
use crate::data::load_config_data;

/// The attention energy for `points` points in `dim` dimensions (sizes in the module docs).
pub(crate) fn attention_for(points: usize, dim: usize) -> AttentionEnergyConfig {
    let (heads, hidden, blocks, ff) = if points <= 2_000 {
        (2, 16, 1, 32)
    } else if points <= 20_000 {
        (2, 32, 2, 64)
    } else {
        (4, 64, 3, 256)
    };
    let hidden = hidden.max((4 * dim).div_ceil(heads) * heads);
    AttentionEnergyConfig {
        dim,
        heads,
        hidden,
        blocks,
        ff: ff.max(2 * hidden),
        ..AttentionEnergyConfig::default()
    }
}

/// The split of `--holdout` / `--forecast-from` (default: every snapshot trains).
fn split(args: &TrainArgs, n_snapshots: usize) -> Result<SplitConfig> {
    let split = match (&args.holdout[..], args.forecast_from) {
        ([], None) => SplitConfig::Forecast {
            n_train: n_snapshots,
        },
        ([], Some(k)) => SplitConfig::Forecast { n_train: k },
        (held, _) => SplitConfig::Holdout {
            indices: held.to_vec(),
        },
    };
    split.resolve(n_snapshots).map_err(|e| {
        let flag = if args.holdout.is_empty() {
            "--forecast-from"
        } else {
            "--holdout"
        };
        anyhow::anyhow!("{flag}: {e} ({n_snapshots} snapshots)")
    })?;
    Ok(split)
}

/// The config `wlm train --data FILE` trains: derived from the data (see the module docs),
/// then `--set` applied.
///
/// # Errors
/// Loader errors (naming the file and key); fewer than 2 snapshots; a bad split (naming the
/// flag); a bad `--set`.
pub(crate) fn derived_config(data: &Path, args: &TrainArgs) -> Result<ExperimentConfig> {
    let (_, mut data_config) = crate::source::data_config(data, &args.data_flags)?;
    data_config.source.absolutize();
    let snapshots = load_config_data(&data_config)?;
    let n_snapshots = snapshots.len();
    if n_snapshots < 2 {
        bail!(
            "{}: {n_snapshots} snapshot: training needs at least 2 observed times",
            data.display()
        );
    }
    let split = split(args, n_snapshots)?;
    let resolved = split.resolve(n_snapshots)?;
    let dim = snapshots.dim();
    let points: usize = (0..n_snapshots).map(|k| snapshots.n_particles(k)).sum();
    let mean_points = points / n_snapshots;

    let mut config = ExperimentConfig {
        name: data
            .file_stem()
            .map(|s| s.to_string_lossy().replace(['/', '\\'], "_"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "data".into()),
        data: data_config,
        model: wlm::ModelConfig::default(),
        train: wlm::TrainConfig::default(),
        eval: wlm::EvalConfig::default(),
        split,
        plot: PlotConfig::default(),
    };
    config.model.energy = EnergyConfig::Attention(attention_for(points, dim));
    config.model.friction = FrictionConfig {
        gamma: 1.0,
        learnable: true,
    };
    let train = &mut config.train;
    train.steps = 1000;
    train.lr = 1e-3;
    train.weight_decay = 1e-3;
    train.ema_decay = 0.99;
    train.checkpoint_every = 250;
    train.batch_size = (mean_points > 512).then_some(512);
    let training = snapshots.select(&resolved.train)?;
    train.loss.blur = Some(estimate_blur(
        &training,
        &BlurConfig {
            seed: train.seed,
            ..BlurConfig::default()
        },
    ));
    let velocities = if snapshots.has_all_velocities() {
        VelocitySource::Data
    } else {
        VelocitySource::OtCentral
    };
    train.initial_velocities = velocities;
    config.eval.initial_velocities = velocities;
    if args.set.is_empty() {
        config.validate()?;
        return Ok(config);
    }
    ExperimentConfig::parse(&config.to_ron()?, &args.set)
        .context("invalid --set on the config derived from the data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_sizes_grow_with_the_points_and_fit_the_dimension() {
        let sizes = |points, dim| {
            let c = attention_for(points, dim);
            assert_eq!(c.dim, dim);
            (c.heads, c.hidden, c.blocks, c.ff)
        };
        assert_eq!(sizes(300, 2), (2, 16, 1, 32));
        assert_eq!(sizes(5 * 300, 5), (2, 20, 1, 40));
        assert_eq!(sizes(10_000, 2), (2, 32, 2, 64));
        assert_eq!(sizes(100_000, 50), (4, 200, 3, 400));
        for (points, dim) in [(10, 1), (3_000, 7), (50_000, 3), (100, 33)] {
            let c = attention_for(points, dim);
            let (heads, hidden, ff) = (c.heads, c.hidden, c.ff);
            c.validate().unwrap();
            assert!(hidden >= 4 * dim && hidden % heads == 0 && ff >= 2 * hidden);
        }
    }
}

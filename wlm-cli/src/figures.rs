//! The plots of a run directory: true vs predicted snapshots, W1 per time against the
//! baselines, the loss curve and the learned friction over training.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wlm::{Evaluation, Split};
use wlm_data::Snapshots;

use crate::config::{from_ron, ExperimentConfig, INTERPOLATION_FILE};
use crate::plot::{
    line_chart, scatter_grid, LineChart, Rgb, ScatterGrid, ScatterPanel, Series, Style, PALETTE,
};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MetricsRow {
    /// Training step (1-based).
    pub(crate) step: usize,
    /// Loss of the step.
    pub(crate) loss: f64,
    /// Friction after the step.
    pub(crate) friction: f64,
    /// Model-selection score of the step's evaluation (`selection_score`; `None` between
    /// evaluations, without `train.model_selection` or in files written before the column).
    pub(crate) selection: Option<f64>,
}

/// Reads the `step`, `loss` and `friction` columns (and `selection_score` where present) of a
/// run's `metrics.csv`.
///
/// # Errors
/// Unreadable file, missing columns, unparsable numbers (naming the line).
pub(crate) fn read_metrics(path: &Path) -> Result<Vec<MetricsRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("{}: no column `{name}`", path.display()))
    };
    let (cs, cl, cf) = (col("step")?, col("loss")?, col("friction")?);
    let selection_column = col("selection_score").ok();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let get = |c: usize| fields.get(c).map(|s| s.trim()).unwrap_or("");
        let bad = || format!("{}: line {}: cannot parse `{line}`", path.display(), i + 2);
        rows.push(MetricsRow {
            step: get(cs).parse().with_context(bad)?,
            loss: get(cl).parse().with_context(bad)?,
            friction: get(cf).parse().with_context(bad)?,
            selection: match selection_column.map(get) {
                None | Some("") => None,
                Some(text) => Some(text.parse().with_context(bad)?),
            },
        });
    }
    Ok(rows)
}

/// Up to `max` indices from `candidates`, evenly spread, the first and last included.
fn spread(candidates: &[usize], max: usize) -> Vec<usize> {
    if candidates.len() <= max {
        return candidates.to_vec();
    }
    let mut out: Vec<usize> = (0..max)
        .map(|i| candidates[(i * (candidates.len() - 1)) / (max - 1).max(1)])
        .collect();
    out.dedup();
    out
}

fn points(values: &[f64], dim: usize, dims: (usize, usize)) -> Vec<(f64, f64)> {
    values
        .chunks_exact(dim)
        .map(|p| (p[dims.0], p[dims.1]))
        .collect()
}

/// Checks that the predictions `pred` read from `path` belong to this run: entry `j` must be
/// at the time of observed snapshot `indices[j]`, in the data's dimension. A file left by an
/// earlier run with other data or another split would otherwise be drawn wrongly, or index
/// past the data.
fn check_predictions(
    path: &Path,
    pred: &Snapshots,
    indices: &[usize],
    snapshots: &Snapshots,
) -> Result<()> {
    let stale = "the file is stale or from another run; rerun `wlm train`, `wlm forecast` or \
                 `wlm interpolate`";
    if pred.dim() != snapshots.dim() {
        bail!(
            "{}: predictions of dimension {}, but the data have dimension {}: {stale}",
            path.display(),
            pred.dim(),
            snapshots.dim()
        );
    }
    for (j, &k) in indices.iter().enumerate() {
        let (t, observed) = (pred.times()[j], snapshots.times()[k]);
        if (t - observed).abs() > 1e-9 * (1.0 + observed.abs()) {
            bail!(
                "{}: prediction {j} is at time {t}, but it stands for snapshot {k} at time \
                 {observed}: {stale}",
                path.display()
            );
        }
    }
    Ok(())
}

const TRUE_COLOR: Rgb = PALETTE[0];
const PRED_COLOR: Rgb = PALETTE[1];

/// Writes the plots of a run into `out` (default `<dir>/plots`) and returns their paths.
/// Plots whose inputs are missing (no predictions yet, an empty metrics file) are skipped.
///
/// # Errors
/// Dimensions out of range; unreadable run files; PNG write failures.
pub(crate) fn plot_run(
    dir: &Path,
    config: &ExperimentConfig,
    snapshots: &Snapshots,
    split: &Split,
    out: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let out = out.map_or_else(|| dir.join("plots"), Path::to_path_buf);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let dims = config.plot.dims;
    let d = snapshots.dim();
    if dims.0 >= d || dims.1 >= d {
        bail!(
            "invalid plot dimensions {}, {}: the data have {d} dimensions (0..{})",
            dims.0,
            dims.1,
            d - 1
        );
    }
    let mut written = Vec::new();
    let forecast_path = dir.join(wlm::FORECAST_FILE);
    let interp_path = dir.join(INTERPOLATION_FILE);
    // True vs predicted.
    let predicted: Option<(Snapshots, Vec<usize>, &str)> =
        if !split.is_forecast() && interp_path.exists() {
            let p = wlm_data::load_particles_npz(&interp_path, None)?;
            if p.len() != split.test.len() {
                bail!(
                    "{}: {} predicted snapshots, but the run holds out {} ({:?}): the file is \
                     stale or from another run; rerun `wlm train` or `wlm interpolate`",
                    interp_path.display(),
                    p.len(),
                    split.test.len(),
                    split.test
                );
            }
            check_predictions(&interp_path, &p, &split.test, snapshots)?;
            Some((p, split.test.clone(), "interpolated"))
        } else if forecast_path.exists() {
            let p = wlm_data::load_particles_npz(&forecast_path, None)?;
            let mut candidates: Vec<usize> = split.test.clone();
            if let Some(&last) = split.train.last() {
                candidates.insert(0, last);
            }
            let chosen = spread(&candidates, config.plot.max_times);
            let positions: Vec<usize> = chosen.iter().copied().filter(|&k| k < p.len()).collect();
            let p = p.select(&positions)?;
            check_predictions(&forecast_path, &p, &positions, snapshots)?;
            Some((p, positions, "forecast"))
        } else {
            None
        };
    if let Some((pred, indices, what)) = predicted {
        let chosen = spread(
            &(0..indices.len()).collect::<Vec<_>>(),
            config.plot.max_times,
        );
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        for &j in &chosen {
            let k = indices[j];
            let t = snapshots.times()[k];
            let role = if split.test.contains(&k) {
                "test"
            } else {
                "train"
            };
            top.push(ScatterPanel {
                title: format!("observed t={t:.3} ({role})"),
                clouds: vec![(points(snapshots.positions(k), d, dims), TRUE_COLOR)],
            });
            bottom.push(ScatterPanel {
                title: format!("{what} t={t:.3}"),
                clouds: vec![(points(pred.positions(j), d, dims), PRED_COLOR)],
            });
        }
        let columns = top.len();
        top.extend(bottom);
        let grid = ScatterGrid {
            title: format!("{}: observed vs {what}", config.name),
            panels: top,
            columns,
            x_label: format!("x{}", dims.0),
            y_label: format!("x{}", dims.1),
            legend: vec![("observed".into(), TRUE_COLOR), (what.into(), PRED_COLOR)],
        };
        let path = out.join("snapshots.png");
        scatter_grid(&grid, 220)?.save_png(&path)?;
        written.push(path);
    }
    // W1 per time.
    let eval_path = dir.join(wlm::EVALUATION_FILE);
    if eval_path.exists() {
        let text = std::fs::read_to_string(&eval_path)
            .with_context(|| format!("cannot read {}", eval_path.display()))?;
        let e: Evaluation =
            from_ron(&text).with_context(|| format!("invalid {}", eval_path.display()))?;
        let mut series = vec![Series {
            label: "model".into(),
            points: e.scores.iter().map(|s| (s.time, s.w1)).collect(),
            color: PALETTE[0],
            style: Style::LineMarkers,
        }];
        for (i, b) in e.baselines.iter().enumerate() {
            let points =
                b.w1.iter()
                    .map(|&(k, w)| match snapshots.times().get(k) {
                        Some(&t) => Ok((t, w)),
                        None => bail!(
                            "{}: baseline `{}` scores snapshot {k}, but the data have {} \
                         snapshots: the file is stale or from another run; rerun `wlm eval`",
                            eval_path.display(),
                            b.name,
                            snapshots.len()
                        ),
                    })
                    .collect::<Result<Vec<_>>>()?;
            series.push(Series {
                label: b.name.clone(),
                points,
                color: PALETTE[(i + 1) % PALETTE.len()],
                style: Style::LineMarkers,
            });
        }
        let marker = if e.forecast {
            split
                .train
                .last()
                .map(|&k| (snapshots.times()[k], "end of training".to_string()))
        } else {
            None
        };
        let chart = LineChart {
            title: format!("{}: exact W1 per time", config.name),
            x_label: "time".into(),
            y_label: "W1".into(),
            series,
            log_y: false,
            marker,
        };
        let path = out.join("w1.png");
        line_chart(&chart, 720, 440)?.save_png(&path)?;
        written.push(path);
    }
    // Loss and friction.
    let metrics_path = dir.join(wlm::METRICS_FILE);
    if metrics_path.exists() {
        let rows = read_metrics(&metrics_path)?;
        if !rows.is_empty() {
            let raw: Vec<(f64, f64)> = rows.iter().map(|r| (r.step as f64, r.loss)).collect();
            let window = (rows.len() / 50).max(1);
            let smooth: Vec<(f64, f64)> = raw
                .windows(window)
                .map(|w| {
                    (
                        w[w.len() - 1].0,
                        w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64,
                    )
                })
                .collect();
            let mut series = vec![
                Series {
                    label: "loss".into(),
                    points: raw,
                    color: [170, 200, 230],
                    style: Style::Line,
                },
                Series {
                    label: format!("mean of {window}"),
                    points: smooth,
                    color: PALETTE[0],
                    style: Style::Line,
                },
            ];
            // The model-selection curve, with the best step marked.
            let selection: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| r.selection.map(|s| (r.step as f64, s)))
                .collect();
            let best = selection.iter().copied().filter(|p| p.1.is_finite()).fold(
                None,
                |best: Option<(f64, f64)>, p| match best {
                    Some(b) if b.1 <= p.1 => Some(b),
                    _ => Some(p),
                },
            );
            let y_label = if selection.is_empty() {
                "Sinkhorn loss".to_string()
            } else {
                series.push(Series {
                    label: "selection score (train W1)".into(),
                    points: selection,
                    color: PALETTE[1],
                    style: Style::LineMarkers,
                });
                "Sinkhorn loss; W1".to_string()
            };
            let chart = LineChart {
                title: format!("{}: training loss", config.name),
                x_label: "step".into(),
                y_label,
                series,
                log_y: true,
                marker: best.map(|(step, _)| (step, "best".to_string())),
            };
            let path = out.join("loss.png");
            line_chart(&chart, 720, 440)?.save_png(&path)?;
            written.push(path);
            let chart = LineChart {
                title: format!(
                    "{}: friction{}",
                    config.name,
                    if config.model.friction.learnable {
                        " (learned)"
                    } else {
                        " (fixed)"
                    }
                ),
                x_label: "step".into(),
                y_label: "friction".into(),
                series: vec![Series {
                    label: "friction".into(),
                    points: rows.iter().map(|r| (r.step as f64, r.friction)).collect(),
                    color: PALETTE[3],
                    style: Style::Line,
                }],
                log_y: false,
                marker: None,
            };
            let path = out.join("friction.png");
            line_chart(&chart, 720, 440)?.save_png(&path)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, dim: usize) -> Snapshots {
        let clouds = (0..n).map(|k| vec![k as f64; 3 * dim]).collect();
        Snapshots::new((0..n).map(|k| k as f64).collect(), dim, clouds, None).unwrap()
    }

    fn config(split: &str) -> ExperimentConfig {
        let text = format!(
            "(name: \"t\", data: (source: Particles(\"x.npz\")), split: {split}, \
             model: (energy: Attention((dim: 2, heads: 2, hidden: 8, blocks: 1, ff: 8))))"
        );
        ExperimentConfig::parse(&text, &[]).unwrap()
    }

    #[test]
    fn stale_or_foreign_predictions_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = data(5, 2);
        // A forecast of 3-d data from another run.
        let forecast = config("Forecast(n_train: 3)");
        let split = forecast.split.resolve(5).unwrap();
        let path = dir.path().join(wlm::FORECAST_FILE);
        wlm_data::write_particles_npz(&path, &data(5, 3)).unwrap();
        let err = plot_run(dir.path(), &forecast, &snapshots, &split, None).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("forecast.npz: predictions of dimension 3"),
            "{msg}"
        );
        // A forecast at other times.
        let mut shifted = data(5, 2);
        shifted = Snapshots::new(
            shifted.times().iter().map(|t| t + 0.5).collect(),
            2,
            (0..5).map(|k| shifted.positions(k).to_vec()).collect(),
            None,
        )
        .unwrap();
        wlm_data::write_particles_npz(&path, &shifted).unwrap();
        let msg = format!(
            "{:#}",
            plot_run(dir.path(), &forecast, &snapshots, &split, None).unwrap_err()
        );
        assert!(msg.contains("stands for snapshot"), "{msg}");
        std::fs::remove_file(&path).unwrap();
        // An interpolation of fewer held-out snapshots than the split has.
        let holdout = config("Holdout(indices: [1, 3])");
        let split = holdout.split.resolve(5).unwrap();
        let path = dir.path().join(INTERPOLATION_FILE);
        wlm_data::write_particles_npz(&path, &data(1, 2)).unwrap();
        let msg = format!(
            "{:#}",
            plot_run(dir.path(), &holdout, &snapshots, &split, None).unwrap_err()
        );
        assert!(
            msg.contains("interpolation.npz: 1 predicted snapshots, but the run holds out 2"),
            "{msg}"
        );
    }

    /// The selection score is read where the row has one; a file from before the column
    /// reads as no scores.
    #[test]
    fn metrics_selection_scores_are_read_where_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(
            &path,
            "step,horizon,batch,loss,friction,wall_seconds,train_w1,train_w1_se,test_w1,test_w1_se,selection_score\n\
             1,1,8,2e0,5e-1,0.1,,,,,\n\
             2,2,8,1.5e0,5e-1,0.2,7e-1,1e-1,9e-1,1e-1,7e-1\n",
        )
        .unwrap();
        let rows = read_metrics(&path).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.selection).collect::<Vec<_>>(),
            [None, Some(0.7)]
        );
        assert_eq!(rows[1].loss, 1.5);
        std::fs::write(&path, "step,horizon,batch,loss,friction\n3,1,8,2e0,5e-1\n").unwrap();
        assert_eq!(read_metrics(&path).unwrap()[0].selection, None);
    }

    #[test]
    fn spread_keeps_first_and_last_and_at_most_max() {
        let c: Vec<usize> = (10..30).collect();
        let s = spread(&c, 5);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0], 10);
        assert_eq!(*s.last().unwrap(), 29);
        assert_eq!(spread(&[1, 2], 6), vec![1, 2]);
    }
}

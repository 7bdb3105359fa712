//! `wlm landscape`: the learned energy a probe particle feels when added to a snapshot, and
//! the force on it, on a grid in the data plane (2-D) or the principal plane, as `.npz` and PNG.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use wlm::{EnergyAt, Plane};

use crate::cli::{EvalArgs, LandscapeArgs};
use crate::plot::{landscape_figure, padded_range, quantile_range, LandscapeFigure};
use crate::progress::Mode;
use crate::runs::load_run;

/// Computes the landscape of a run at one snapshot and writes `landscape-<S>.npz` and
/// `landscape-<S>.png`; returns their paths.
///
/// The `.npz` holds `u` `(G,)`, `v` `(G,)` (plane coordinates of the grid), `energy` `(G, G)`
/// (`E(X_S ∪ {y}) − E(X_S)` at `(v[j], u[i])`), `force` `(G, G, 2)` (the probe's force in
/// the plane), `snapshot` `(N, 2)` (the population in plane coordinates), `origin` `(d,)` and
/// `axes` `(2, d)` (the plane: `y = origin + u·axes[0] + v·axes[1]`), and the scalars
/// `friction`, `time`, `snapshot_index` and `population_energy`.
///
/// # Errors
/// Unreadable run; a snapshot index out of range or a grid of fewer than 2 points (naming
/// the value and what is allowed); data of one dimension; non-finite energies; write failures.
pub(crate) fn landscape(args: &LandscapeArgs, mode: Mode) -> Result<Vec<PathBuf>> {
    if args.grid < 2 {
        bail!(
            "--grid {}: the grid needs at least 2 points per axis",
            args.grid
        );
    }
    let loaded = load_run(&EvalArgs {
        run_dir: args.run_dir.clone(),
        checkpoint: args.checkpoint.clone(),
        data: args.data.clone(),
        ..EvalArgs::default()
    })?;
    let snapshots = &loaded.snapshots;
    let s = args.snapshot;
    if s >= snapshots.len() {
        bail!(
            "--snapshot {s}: the data have {} snapshots (0..{})",
            snapshots.len(),
            snapshots.len() - 1
        );
    }
    let dim = snapshots.dim();
    let all: Vec<f64> = (0..snapshots.len())
        .flat_map(|k| snapshots.positions(k).iter().copied())
        .collect();
    let plane = Plane::principal(&all, dim)?;
    // The grid covers the 0.5%–99.5% quantiles of every snapshot in the plane, padded.
    let projected: Vec<(f64, f64)> = all.chunks_exact(dim).map(|p| plane.project(p)).collect();
    let range = |values: Vec<f64>| {
        let (lo, hi) = quantile_range(&values, 0.005);
        padded_range([lo, hi].into_iter(), 0.1)
    };
    let (u_range, v_range) = (
        range(projected.iter().map(|p| p.0).collect()),
        range(projected.iter().map(|p| p.1).collect()),
    );
    let u = wlm::linspace(u_range.0, u_range.1, args.grid);
    let v = wlm::linspace(v_range.0, v_range.1, args.grid);
    let population = snapshots.positions(s);
    let time = snapshots.times()[s];
    let use_ema = loaded.config.eval.use_ema;
    let started = Instant::now();
    let (result, friction) = loaded.weights.with_model(use_ema, |model| {
        let energy = EnergyAt {
            energy: model.energy(),
            time,
            dtype: model.dtype(),
            device: model.device().clone(),
        };
        let result = wlm::landscape(&energy, population, &plane, &u, &v)?;
        Ok((result, model.friction()?))
    })?;
    if mode != Mode::Quiet {
        eprintln!(
            "landscape: {0} × {0} probes on {1} particles in {2:.1} s",
            args.grid,
            population.len() / dim,
            started.elapsed().as_secs_f64()
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("plots"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let snapshot_plane: Vec<(f64, f64)> = population
        .chunks_exact(dim)
        .map(|p| plane.project(p))
        .collect();
    let flat_snapshot: Vec<f64> = snapshot_plane.iter().flat_map(|p| [p.0, p.1]).collect();
    let axes: Vec<f64> = plane.axes.concat();
    let g = args.grid;
    let npz = out.join(format!("landscape-{s}.npz"));
    wlm_data::write_npz(
        &npz,
        &[
            ("u", &[g], &u),
            ("v", &[g], &v),
            ("energy", &[g, g], &result.energy),
            ("force", &[g, g, 2], &result.force),
            ("snapshot", &[snapshot_plane.len(), 2], &flat_snapshot),
            ("origin", &[dim], &plane.origin),
            ("axes", &[2, dim], &axes),
            ("friction", &[], &[friction]),
            ("time", &[], &[time]),
            ("snapshot_index", &[], &[s as f64]),
            ("population_energy", &[], &[result.population_energy]),
        ],
    )
    .with_context(|| format!("cannot write {}", npz.display()))?;
    let (x_label, y_label) = if dim == 2 {
        ("x0".to_string(), "x1".to_string())
    } else {
        ("PC1".to_string(), "PC2".to_string())
    };
    let friction_kind = if loaded.config.model.friction.learnable {
        "learned"
    } else {
        "fixed"
    };
    let figure = LandscapeFigure {
        title: format!(
            "{}: energy of a probe added to snapshot {s} (t = {time:.3})",
            loaded.config.name
        ),
        subtitle: format!(
            "friction γ = {friction:.4} ({friction_kind}); arrows: force on the probe{}",
            if dim == 2 {
                String::new()
            } else {
                format!(", projected on the plane of the first two principal components of {dim}-d data")
            }
        ),
        x_label,
        y_label,
        u,
        v,
        energy: result.energy,
        force: result.force,
        points: snapshot_plane,
        points_label: format!("snapshot {s} ({} particles)", population.len() / dim),
    };
    let png = out.join(format!("landscape-{s}.png"));
    landscape_figure(&figure, 820, 700)?.save_png(&png)?;
    Ok(vec![npz, png])
}

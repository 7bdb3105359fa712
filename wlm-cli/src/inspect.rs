//! `wlm inspect`: what a data file holds.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use wlm_data::Format;

use crate::cli::DataFlags;

/// A human-readable description of a data file read as the flags say: format, snapshots,
/// times, sizes, dimension, velocities; for an AnnData file also its `obs` columns and
/// matrices (what `--time-key` and `--embedding` can name).
///
/// # Errors
/// Unknown formats and loader errors, naming the file.
pub(crate) fn inspect(path: &Path, flags: &DataFlags) -> Result<String> {
    let (format, s) = crate::source::load(path, flags)?;
    let mut out = String::new();
    let sizes: Vec<usize> = (0..s.len()).map(|k| s.n_particles(k)).collect();
    let with_v = (0..s.len()).filter(|&k| s.velocities(k).is_some()).count();
    let _ = writeln!(out, "file:        {}", path.display());
    let _ = writeln!(out, "format:      {}", format.describe());
    let _ = writeln!(out, "snapshots:   {}", s.len());
    let _ = writeln!(out, "dimension:   {}", s.dim());
    let (lo, hi) = (
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
    );
    if lo == hi {
        let _ = writeln!(
            out,
            "points:      {lo} per snapshot ({} in all)",
            sizes.iter().sum::<usize>()
        );
    } else {
        let _ = writeln!(
            out,
            "points:      {lo} to {hi} per snapshot ({} in all)",
            sizes.iter().sum::<usize>()
        );
    }
    let velocities = if with_v == s.len() {
        "yes (every snapshot)".to_string()
    } else if with_v == 0 {
        "no".to_string()
    } else {
        format!("{with_v} of {} snapshots", s.len())
    };
    let _ = writeln!(out, "velocities:  {velocities}");
    if format == Format::H5ad {
        let (columns, matrices) = wlm_data::h5ad_contents(path)?;
        let matrices: Vec<String> = matrices.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "obs columns: {}", columns.join(", "));
        let _ = writeln!(out, "matrices:    {}", matrices.join(", "));
    }
    let _ = writeln!(
        out,
        "{:>5}  {:>12}  {:>8}  {:>4}  name",
        "index", "time", "points", "vel"
    );
    for k in 0..s.len() {
        let name = s.names().map(|n| n[k].as_str()).unwrap_or("");
        let _ = writeln!(
            out,
            "{k:>5}  {:>12}  {:>8}  {:>4}  {name}",
            format_time(s.times()[k]),
            s.n_particles(k),
            if s.velocities(k).is_some() {
                "yes"
            } else {
                "no"
            },
        );
    }
    Ok(out)
}

/// Shortest text that reads back as the same time (`0.8`, `0.800000011920929`).
fn format_time(t: f64) -> String {
    format!("{t}")
}

//! Output files by extension: predictions as `.npz`, `.h5ad` or `.csv`; evaluations as
//! `.ron`, `.json`, `.csv` or `.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use wlm::Evaluation;
use wlm_data::{H5adConfig, Snapshots};

use crate::report::{evaluation_table, role_name};

/// Writes `text` to `path` atomically (a temporary file, then a rename).
///
/// # Errors
/// I/O failures, naming the file.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    wlm_data::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Writes predicted snapshots to `path`, atomically, in the format of its extension:
/// `.npz` (particle layout: `positions`, `velocities`, `times`), `.h5ad` (one observation per
/// predicted point, the time column and matrices of `layout`), `.csv` (long format
/// `time,x0,…[,v0,…]`).
///
/// # Errors
/// Another extension (naming it and the three accepted); write failures, naming the file.
pub(crate) fn write_snapshots(path: &Path, s: &Snapshots, layout: &H5adConfig) -> Result<()> {
    let written = match extension(path).as_str() {
        "npz" => wlm_data::write_particles_npz(path, s),
        "h5ad" => wlm_data::write_h5ad(path, s, layout),
        "csv" => wlm_data::write_csv(path, s),
        other => bail!(
            "{}: unknown output format `.{other}`: predictions are written as .npz, .h5ad or .csv",
            path.display()
        ),
    };
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// One row per snapshot: `index,time,role,model_w1,model_w2`, then one column per baseline
/// (its W1 on the test rows, empty elsewhere) and `model_from_last_w1` for a forecast split.
fn evaluation_csv(e: &Evaluation) -> String {
    let mut out = String::from("index,time,role,model_w1,model_w2");
    for b in &e.baselines {
        let _ = write!(out, ",{}_w1", b.name);
    }
    let from_last = !e.from_last.is_empty();
    if from_last {
        out.push_str(",model_from_last_w1");
    }
    out.push('\n');
    let find = |pairs: &[(usize, f64)], k: usize| {
        pairs
            .iter()
            .find(|(i, _)| *i == k)
            .map_or(String::new(), |(_, w)| format!("{w:?}"))
    };
    for s in &e.scores {
        let _ = write!(
            out,
            "{},{:?},{},{:?},{}",
            s.index,
            s.time,
            role_name(s.role),
            s.w1,
            s.w2.map_or(String::new(), |w| format!("{w:?}"))
        );
        for b in &e.baselines {
            let _ = write!(out, ",{}", find(&b.w1, s.index));
        }
        if from_last {
            let _ = write!(out, ",{}", find(&e.from_last, s.index));
        }
        out.push('\n');
    }
    out
}

/// Writes an evaluation to `path`, atomically, in the format of its extension: `.ron` (what
/// `wlm eval` writes by default), `.json` (the same fields; a non-finite number is `null`),
/// `.csv` (one row per snapshot, see [`evaluation_csv`]), `.md` (the table `wlm eval` prints).
///
/// # Errors
/// Another extension (naming it); write failures, naming the file.
pub(crate) fn write_evaluation(path: &Path, e: &Evaluation) -> Result<()> {
    let text = match extension(path).as_str() {
        "ron" => crate::config::to_ron(e)?,
        "json" => serde_json::to_string_pretty(e)?,
        "csv" => evaluation_csv(e),
        "md" => format!("```\n{}\n```\n", evaluation_table(e).trim_end()),
        other => bail!(
            "{}: unknown output format `.{other}`: evaluations are written as .ron, .json, .csv or .md",
            path.display()
        ),
    };
    write_text(path, &text)
}

//! The AnnData `.h5ad` writer: snapshots as an `obs` time column and a dense matrix.

use std::path::Path;

use hdf5_pure::{AttrValue, FileBuilder};

use super::{H5adConfig, H5adMatrix};
use crate::fs::write_atomic;
use crate::{Error, Result, Snapshots};

fn text(s: &str) -> AttrValue {
    AttrValue::VarLenString(s.into())
}

/// Writes snapshots as an AnnData `.h5ad` file that [`load_h5ad`] with the same `config`
/// reads back, and that anndata (≥ 0.8) reads: `obs` holds a `float64` column
/// `config.time_key` and a string index `0, 1, …`; positions go to `config.embedding` (with
/// `X` also setting `var` to one variable per dimension); if `config.velocity` is set, the
/// velocities go there, with NaN rows for the snapshots that have none (all rows NaN if none
/// has). Names are not stored. `n_components` is ignored. The write is atomic.
///
/// # Errors
/// [`Error::Invalid`] if `config.velocity` names the same matrix as the positions;
/// [`Error::Format`] if the HDF5 file cannot be built; [`Error::Io`] if writing fails.
pub fn write_h5ad(
    path: impl AsRef<Path>,
    snapshots: &Snapshots,
    config: &H5adConfig,
) -> Result<()> {
    let path = path.as_ref();
    if config.velocity.as_ref() == Some(&config.embedding) {
        return Err(Error::Invalid(format!(
            "velocities and positions cannot both be written to {}",
            config.embedding.path()
        )));
    }
    let dim = snapshots.dim();
    let cells: usize = (0..snapshots.len()).map(|k| snapshots.n_particles(k)).sum();
    let mut times = Vec::with_capacity(cells);
    let mut positions = Vec::with_capacity(cells * dim);
    for k in 0..snapshots.len() {
        times.extend(std::iter::repeat_n(
            snapshots.times()[k],
            snapshots.n_particles(k),
        ));
        positions.extend_from_slice(snapshots.positions(k));
    }
    let velocities = config.velocity.as_ref().map(|m| {
        let v = crate::particles::velocities_with_nan(snapshots)
            .unwrap_or_else(|| vec![f64::NAN; positions.len()]);
        (m.clone(), v)
    });

    let mut fb = FileBuilder::new();
    fb.set_attr("encoding-type", text("anndata"));
    fb.set_attr("encoding-version", text("0.1.0"));

    let index: Vec<String> = (0..cells).map(|i| i.to_string()).collect();
    let index: Vec<&str> = index.iter().map(String::as_str).collect();
    let mut obs = fb.create_group("obs");
    obs.set_attr("encoding-type", text("dataframe"));
    obs.set_attr("encoding-version", text("0.2.0"));
    obs.set_attr("_index", text("_index"));
    obs.set_attr(
        "column-order",
        AttrValue::VarLenStringArray(vec![config.time_key.clone()]),
    );
    obs.create_dataset("_index")
        .with_vlen_strings(&index)
        .set_attr("encoding-type", text("string-array"))
        .set_attr("encoding-version", text("0.2.0"));
    obs.create_dataset(&config.time_key)
        .with_f64_data(&times)
        .set_attr("encoding-type", text("array"))
        .set_attr("encoding-version", text("0.2.0"));
    fb.add_group(obs.finish());

    let n_vars = if matches!(config.embedding, H5adMatrix::X) {
        dim
    } else {
        0
    };
    let var_index: Vec<String> = (0..n_vars).map(|i| format!("x{i}")).collect();
    let var_index: Vec<&str> = var_index.iter().map(String::as_str).collect();
    let mut var = fb.create_group("var");
    var.set_attr("encoding-type", text("dataframe"));
    var.set_attr("encoding-version", text("0.2.0"));
    var.set_attr("_index", text("_index"));
    var.set_attr("column-order", AttrValue::VarLenStringArray(Vec::new()));
    var.create_dataset("_index")
        .with_vlen_strings(&var_index)
        .set_attr("encoding-type", text("string-array"))
        .set_attr("encoding-version", text("0.2.0"));
    fb.add_group(var.finish());

    let mut matrices = vec![(config.embedding.clone(), positions)];
    if let Some((m, v)) = velocities {
        matrices.push((m, v));
    }
    let shape = [cells as u64, dim as u64];
    let mut obsm = fb.create_group("obsm");
    let mut layers = fb.create_group("layers");
    for g in [&mut obsm, &mut layers] {
        g.set_attr("encoding-type", text("dict"));
        g.set_attr("encoding-version", text("0.1.0"));
    }
    for (m, values) in &matrices {
        let ds = match m {
            H5adMatrix::X => fb.create_dataset("X"),
            H5adMatrix::Obsm(key) => obsm.create_dataset(key),
            H5adMatrix::Layer(key) => layers.create_dataset(key),
        };
        ds.with_f64_data(values)
            .with_shape(&shape)
            .set_attr("encoding-type", text("array"))
            .set_attr("encoding-version", text("0.2.0"));
    }
    fb.add_group(obsm.finish());
    fb.add_group(layers.finish());
    for name in ["uns", "obsp", "varm", "varp"] {
        let mut g = fb.create_group(name);
        g.set_attr("encoding-type", text("dict"));
        g.set_attr("encoding-version", text("0.1.0"));
        fb.add_group(g.finish());
    }
    let bytes = fb.finish().map_err(|e| Error::Format {
        path: path.to_owned(),
        problem: format!("cannot build the HDF5 file: {e}"),
    })?;
    write_atomic(path, &bytes)
}

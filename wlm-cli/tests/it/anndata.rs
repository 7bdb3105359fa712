//! AnnData `.h5ad` files written by the tests in the layouts anndata 0.8–0.12 writes
//! (hdf5-pure's writer): a categorical `obs` column with string categories, a numeric one,
//! a sparse `X` (CSR group, never read), gzip-compressed chunked `obsm` matrices; and a way
//! to read files back with Python's anndata when it is installed.

use std::path::Path;
use std::process::Command;

use hdf5_pure::{AttrValue, DatasetBuilder, FileBuilder};

use crate::common::numbers;

fn text(s: &str) -> AttrValue {
    AttrValue::VarLenString(s.into())
}

fn encoded(builder: &mut DatasetBuilder, kind: &str, version: &str) {
    builder
        .set_attr("encoding-type", text(kind))
        .set_attr("encoding-version", text(version));
}

/// The content of a test AnnData file: snapshots `k = 0..n_days` of `per_day` cells each,
/// in 3 components, with velocities.
pub(crate) struct Cells {
    /// `positions[k]`: the `(per_day, 3)` rows of the cells of day `k`, in file order.
    pub(crate) positions: Vec<Vec<f64>>,
    /// Velocities, like `positions`.
    pub(crate) velocities: Vec<Vec<f64>>,
}

impl Cells {
    /// Day `k`'s positions keeping the first `n` of the 3 components.
    pub(crate) fn first(&self, k: usize, n: usize) -> Vec<f64> {
        self.positions[k]
            .chunks(3)
            .flat_map(|row| row[..n].to_vec())
            .collect()
    }

    /// Day `k`'s velocities keeping the first `n` components.
    pub(crate) fn first_velocities(&self, k: usize, n: usize) -> Vec<f64> {
        self.velocities[k]
            .chunks(3)
            .flat_map(|row| row[..n].to_vec())
            .collect()
    }
}

/// Writes `path`: `obs/day` categorical (string categories `day0`, `day1`, …, int8 codes,
/// cells of the days interleaved: cell `i` is on day `i mod n_days`), `obs/hours` int64
/// (`24 · day`), `X` a CSR group (`data`, `indices`, `indptr`; unreadable as positions),
/// `obsm/X_pca` `(cells, 3)` float32 and `obsm/velocity_pca` `(cells, 3)` float64, both
/// chunked and gzip-compressed, `obsm/X_umap` `(cells, 2)`; `var` with 4 genes. Values
/// are drawn from the tests' LCG; day `k`'s clouds move by `0.3 k` so the days differ.
///
/// Deliberately not `wlm_data::write_h5ad` (whose obs part this resembles, and `duplicates`
/// pairs them): the reader is tested on what anndata itself writes, so the file is built
/// independently of our writer, with layouts the writer never produces (categorical times,
/// a sparse `X`, chunked gzip `obsm`, interleaved days).
pub(crate) fn write_anndata(path: &Path, n_days: usize, per_day: usize) -> Cells {
    let cells = n_days * per_day;
    let mut positions = vec![Vec::new(); n_days];
    let mut velocities = vec![Vec::new(); n_days];
    let mut pca = Vec::with_capacity(cells * 3);
    let mut vel = Vec::with_capacity(cells * 3);
    let draws = numbers(cells * 3, 11);
    let vdraws = numbers(cells * 3, 12);
    for i in 0..cells {
        let day = i % n_days;
        for j in 0..3 {
            // Exactly representable in f32, so the float32 matrix reads back unchanged.
            let x = f64::from((draws[i * 3 + j] + 0.3 * day as f64) as f32);
            let v = vdraws[i * 3 + j] * 0.1;
            positions[day].push(x);
            velocities[day].push(v);
            pca.push(x as f32);
            vel.push(v);
        }
    }
    let mut fb = FileBuilder::new();
    fb.set_attr("encoding-type", text("anndata"));
    fb.set_attr("encoding-version", text("0.1.0"));

    let index: Vec<String> = (0..cells).map(|i| format!("cell{i}")).collect();
    let index: Vec<&str> = index.iter().map(String::as_str).collect();
    let mut obs = fb.create_group("obs");
    obs.set_attr("encoding-type", text("dataframe"));
    obs.set_attr("encoding-version", text("0.2.0"));
    obs.set_attr("_index", text("_index"));
    obs.set_attr(
        "column-order",
        AttrValue::VarLenStringArray(vec!["day".into(), "hours".into()]),
    );
    encoded(
        obs.create_dataset("_index").with_vlen_strings(&index),
        "string-array",
        "0.2.0",
    );
    let hours: Vec<i64> = (0..cells).map(|i| 24 * (i % n_days) as i64).collect();
    encoded(
        obs.create_dataset("hours").with_i64_data(&hours),
        "array",
        "0.2.0",
    );
    let mut day = obs.create_group("day");
    day.set_attr("encoding-type", text("categorical"));
    day.set_attr("encoding-version", text("0.2.0"));
    day.set_attr("ordered", AttrValue::I8(0));
    let names: Vec<String> = (0..n_days).map(|k| format!("day{k}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    encoded(
        day.create_dataset("categories").with_vlen_strings(&names),
        "string-array",
        "0.2.0",
    );
    let codes: Vec<i8> = (0..cells).map(|i| (i % n_days) as i8).collect();
    encoded(
        day.create_dataset("codes").with_i8_data(&codes),
        "array",
        "0.2.0",
    );
    obs.add_group(day.finish());
    fb.add_group(obs.finish());

    let mut var = fb.create_group("var");
    var.set_attr("encoding-type", text("dataframe"));
    var.set_attr("encoding-version", text("0.2.0"));
    var.set_attr("_index", text("_index"));
    var.set_attr("column-order", AttrValue::VarLenStringArray(Vec::new()));
    encoded(
        var.create_dataset("_index")
            .with_vlen_strings(&["g0", "g1", "g2", "g3"]),
        "string-array",
        "0.2.0",
    );
    fb.add_group(var.finish());

    // Sparse X: one non-zero per cell.
    let mut x = fb.create_group("X");
    x.set_attr("encoding-type", text("csr_matrix"));
    x.set_attr("encoding-version", text("0.1.0"));
    x.set_attr("shape", AttrValue::I64Array(vec![cells as i64, 4]));
    x.create_dataset("data")
        .with_f32_data(&vec![1.0; cells])
        .with_deflate(4);
    let cols: Vec<i32> = (0..cells).map(|i| (i % 4) as i32).collect();
    x.create_dataset("indices").with_i32_data(&cols);
    let indptr: Vec<i32> = (0..=cells).map(|i| i as i32).collect();
    x.create_dataset("indptr").with_i32_data(&indptr);
    fb.add_group(x.finish());

    let mut obsm = fb.create_group("obsm");
    obsm.set_attr("encoding-type", text("dict"));
    obsm.set_attr("encoding-version", text("0.1.0"));
    let chunk = (cells as u64).div_ceil(2).max(1);
    let ds = obsm.create_dataset("X_pca");
    ds.with_f32_data(&pca)
        .with_shape(&[cells as u64, 3])
        .with_chunks(&[chunk, 3])
        .with_deflate(6);
    encoded(ds, "array", "0.2.0");
    let ds = obsm.create_dataset("velocity_pca");
    ds.with_f64_data(&vel)
        .with_shape(&[cells as u64, 3])
        .with_chunks(&[chunk, 3])
        .with_deflate(6);
    encoded(ds, "array", "0.2.0");
    let umap: Vec<f64> = numbers(cells * 2, 13);
    let ds = obsm.create_dataset("X_umap");
    ds.with_f64_data(&umap).with_shape(&[cells as u64, 2]);
    encoded(ds, "array", "0.2.0");
    fb.add_group(obsm.finish());
    for name in ["layers", "uns", "obsp", "varm", "varp"] {
        let mut g = fb.create_group(name);
        g.set_attr("encoding-type", text("dict"));
        g.set_attr("encoding-version", text("0.1.0"));
        fb.add_group(g.finish());
    }
    std::fs::write(path, fb.finish().unwrap()).unwrap();
    Cells {
        positions,
        velocities,
    }
}

/// A Python interpreter with `anndata`: `$WLM_PYTHON` (which must work when set), else
/// `python3` when it imports anndata; `None` (the caller skips with a message) otherwise.
pub(crate) fn python_with_anndata() -> Option<String> {
    let works = |python: &str| {
        Command::new(python)
            .args(["-c", "import anndata"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Ok(python) = std::env::var("WLM_PYTHON") {
        assert!(
            works(&python),
            "WLM_PYTHON={python} cannot `import anndata`"
        );
        return Some(python);
    }
    works("python3").then(|| "python3".to_string())
}

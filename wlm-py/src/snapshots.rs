//! `wlm.Snapshots`: the validated snapshots of `wlm-data`, built from numpy arrays, from an
//! AnnData object (duck-typed) or from a file.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use wlm_data::{CellTable, H5adConfig, H5adMatrix, Snapshots};

use crate::arrays::{check_finite, read_array, to_numpy, vector_to_numpy, Float};
use crate::errors::{from_data, value_error};

/// Observations of a population at increasing times: one point cloud `(N_k, d)` per time
/// (sizes may differ), optional velocities of the same shape.
#[pyclass(name = "Snapshots", module = "wlm", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PySnapshots {
    pub(crate) inner: Snapshots,
}

impl PySnapshots {
    pub(crate) fn new_checked(inner: Snapshots) -> Self {
        Self { inner }
    }
}

fn cloud_array<'py>(py: Python<'py>, values: &[f64], dim: usize) -> PyResult<Bound<'py, PyAny>> {
    to_numpy(py, values.to_vec(), values.len() / dim, dim, Float::F64)
}

/// Reads a sequence of `(N_k, d)` arrays named `name[k]`; all must have `d` columns.
fn read_clouds(
    obj: &Bound<'_, PyAny>,
    name: &str,
    dim: Option<usize>,
    allow_none: bool,
) -> PyResult<(Vec<Option<Vec<f64>>>, usize)> {
    let items: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .map_err(|_| value_error(format!("{name}: expected a list of (N, d) arrays")))?
        .collect::<PyResult<_>>()?;
    let mut dim = dim;
    let mut out = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let what = format!("{name}[{k}]");
        if item.is_none() {
            if allow_none {
                out.push(None);
                continue;
            }
            return Err(value_error(format!("{what}: is None")));
        }
        let array = read_array(item, &what)?;
        let d = match array.shape[..] {
            [n, d] if n > 0 && d > 0 => d,
            ref shape => {
                return Err(value_error(format!(
                "{what}: expected a non-empty 2-d array (points, dimensions), got shape {shape:?}"
            )))
            }
        };
        match dim {
            Some(expected) if expected != d => {
                return Err(value_error(format!(
                    "{what}: has {d} dimensions but {name}[0] has {expected} (ragged dimensions)"
                )))
            }
            _ => dim = Some(d),
        }
        check_finite(&array.values, d, &what)?;
        out.push(Some(array.values));
    }
    let dim = dim.ok_or_else(|| value_error(format!("{name}: no snapshots")))?;
    Ok((out, dim))
}

/// Reads times: a 1-d float array, or integers (converted to float64).
fn read_times(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let numpy = obj.py().import("numpy")?;
    let as_array = numpy
        .call_method1("asarray", (obj,))
        .map_err(|e| value_error(format!("times: cannot be read as an array ({e})")))?;
    let kind: String = as_array.getattr("dtype")?.getattr("kind")?.extract()?;
    let obj = if kind == "i" || kind == "u" {
        as_array.call_method1("astype", (numpy.getattr("float64")?,))?
    } else {
        as_array
    };
    let array = read_array(&obj, "times")?;
    if array.shape.len() != 1 {
        return Err(value_error(format!(
            "times: expected a 1-d array, got shape {:?}",
            array.shape
        )));
    }
    if let Some(i) = array.values.iter().position(|t| !t.is_finite()) {
        return Err(value_error(format!(
            "times: time {i} is not finite ({})",
            array.values[i]
        )));
    }
    Ok(array.values)
}

/// A data error from building snapshots, prefixed by what was being built.
fn invalid(what: &str, e: wlm_data::Error) -> PyErr {
    value_error(format!("{what}: {e}"))
}

/// A matrix of `adata`: `X`, an `obsm` entry, or a layer (sparse ones densified).
fn anndata_matrix<'py>(
    adata: &Bound<'py, PyAny>,
    key: &str,
    arg: &str,
) -> PyResult<(Bound<'py, PyAny>, String)> {
    let (matrix, name) = if key == "X" {
        (adata.getattr("X")?, "adata.X".to_string())
    } else {
        let obsm = adata.getattr("obsm")?;
        if obsm.contains(key)? {
            (obsm.get_item(key)?, format!("adata.obsm['{key}']"))
        } else {
            let layers = adata.getattr("layers").ok();
            match layers {
                Some(l) if l.contains(key)? => (l.get_item(key)?, format!("adata.layers['{key}']")),
                _ => {
                    let keys: Vec<String> = obsm
                        .call_method0("keys")?
                        .try_iter()?
                        .map(|k| k.and_then(|k| k.str().map(|s| s.to_string())))
                        .collect::<PyResult<_>>()?;
                    return Err(value_error(format!(
                        "{arg}: `{key}` is not in adata.obsm (keys {keys:?}), nor a layer, nor `X`"
                    )));
                }
            }
        }
    };
    let dense = if matrix.hasattr("toarray")? {
        matrix.call_method0("toarray")?
    } else if matrix.hasattr("to_numpy")? {
        matrix.call_method0("to_numpy")?
    } else {
        matrix
    };
    Ok((dense, name))
}

/// Reads a `(cells, ≥k)` matrix keeping `k` columns (all if `None`); non-finite values are
/// refused unless `nan_rows_ok` (then a row may be all NaN).
fn cell_matrix(
    matrix: &Bound<'_, PyAny>,
    name: &str,
    cells: usize,
    k: Option<usize>,
    nan_rows_ok: bool,
) -> PyResult<(usize, Vec<f64>)> {
    let array = read_array(matrix, name)?;
    let (rows, cols) = match array.shape[..] {
        [r, c] => (r, c),
        ref shape => {
            return Err(value_error(format!(
                "{name}: expected a 2-d array (cells, components), got shape {shape:?}"
            )))
        }
    };
    if rows != cells {
        return Err(value_error(format!(
            "{name}: {rows} rows but obs has {cells} cells"
        )));
    }
    let k = k.unwrap_or(cols);
    if k == 0 || k > cols {
        return Err(value_error(format!(
            "n_components: {k} components requested but {name} has {cols} (need 1..={cols})"
        )));
    }
    let mut out = Vec::with_capacity(rows * k);
    for (i, row) in array.values.chunks_exact(cols.max(1)).enumerate() {
        let row = &row[..k];
        let all_nan = nan_rows_ok && row.iter().all(|v| v.is_nan());
        if !all_nan {
            if let Some(c) = row.iter().position(|v| !v.is_finite()) {
                return Err(value_error(format!(
                    "{name}: cell {i}, component {c} is not finite ({})",
                    row[c]
                )));
            }
        }
        out.extend_from_slice(row);
    }
    Ok((k, out))
}

/// Per-cell times and the names of the distinct times.
type TimeColumn = (Vec<f64>, Vec<(f64, String)>);

/// The time column `obs[time_key]`.
fn time_column(adata: &Bound<'_, PyAny>, time_key: &str) -> PyResult<TimeColumn> {
    let obs = adata
        .getattr("obs")
        .map_err(|_| value_error("adata: has no `obs`: expected an AnnData object"))?;
    let name = format!("adata.obs['{time_key}']");
    if !obs.getattr("columns")?.contains(time_key)? {
        let columns: Vec<String> = obs
            .getattr("columns")?
            .try_iter()?
            .map(|c| c.and_then(|c| c.str().map(|s| s.to_string())))
            .collect::<PyResult<_>>()?;
        return Err(value_error(format!(
            "time_key: obs has no column `{time_key}` (columns {columns:?})"
        )));
    }
    let column = obs.get_item(time_key)?;
    let dtype = column.getattr("dtype")?;
    let is_category = dtype.getattr("name")?.extract::<String>()? == "category";
    if is_category {
        let cat = column.getattr("cat")?;
        let codes = read_array(
            &cat.getattr("codes")?
                .call_method1("to_numpy", (py_f64(adata.py())?,))?,
            &name,
        )?
        .values;
        let categories = cat.getattr("categories")?;
        let kind: String = categories.getattr("dtype")?.getattr("kind")?.extract()?;
        let labels = if "iuf".contains(kind.as_str()) && kind.len() == 1 {
            let values = read_array(
                &categories.call_method1("to_numpy", (py_f64(adata.py())?,))?,
                &format!("{name}.cat.categories"),
            )?
            .values;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(value_error(format!("{name}: category {i} is not finite")));
            }
            wlm_data::numeric_category_times(&values)
        } else {
            let names: Vec<String> = categories
                .try_iter()?
                .map(|c| c.and_then(|c| c.str().map(|s| s.to_string())))
                .collect::<PyResult<_>>()?;
            wlm_data::string_category_times(names)
        };
        let mut times = Vec::with_capacity(codes.len());
        for (cell, &code) in codes.iter().enumerate() {
            if code < 0.0 {
                return Err(value_error(format!(
                    "{name}: cell {cell} has no category (code {code})"
                )));
            }
            let (t, _) = labels.get(code as usize).ok_or_else(|| {
                value_error(format!(
                    "{name}: cell {cell} has code {code} but there are {} categories",
                    labels.len()
                ))
            })?;
            times.push(*t);
        }
        Ok((times, labels))
    } else {
        let kind: String = dtype.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "i" | "u" | "f") {
            return Err(value_error(format!(
                "{name}: holds {} values: a time column must be numeric or categorical (convert \
                 it with .astype('category'))",
                dtype.str()?
            )));
        }
        let values = column.call_method1("to_numpy", (py_f64(adata.py())?,))?;
        let times = read_array(&values, &name)?.values;
        if let Some(i) = times.iter().position(|t| !t.is_finite()) {
            return Err(value_error(format!(
                "{name}: time of cell {i} is not finite ({})",
                times[i]
            )));
        }
        Ok((times, Vec::new()))
    }
}

fn py_f64(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("numpy")?.getattr("float64")
}

fn h5ad_matrix(key: &str) -> H5adMatrix {
    if key == "X" {
        H5adMatrix::X
    } else {
        H5adMatrix::Obsm(key.to_string())
    }
}

#[pymethods]
impl PySnapshots {
    #[new]
    #[pyo3(signature = (positions, times, velocities=None))]
    fn new(
        positions: &Bound<'_, PyAny>,
        times: &Bound<'_, PyAny>,
        velocities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (clouds, dim) = read_clouds(positions, "positions", None, false)?;
        let clouds: Vec<Vec<f64>> = clouds.into_iter().flatten().collect();
        let times = read_times(times)?;
        if times.len() != clouds.len() {
            return Err(value_error(format!(
                "times: {} times for {} position arrays",
                times.len(),
                clouds.len()
            )));
        }
        let velocities = match velocities {
            Some(v) if !v.is_none() => {
                let (v, _) = read_clouds(v, "velocities", Some(dim), true)?;
                if v.len() != clouds.len() {
                    return Err(value_error(format!(
                        "velocities: {} entries for {} snapshots",
                        v.len(),
                        clouds.len()
                    )));
                }
                for (k, (vk, pk)) in v.iter().zip(&clouds).enumerate() {
                    if let Some(vk) = vk {
                        if vk.len() != pk.len() {
                            return Err(value_error(format!(
                                "velocities[{k}]: {} points but positions[{k}] has {}",
                                vk.len() / dim,
                                pk.len() / dim
                            )));
                        }
                    }
                }
                Some(v)
            }
            _ => None,
        };
        Snapshots::new(times, dim, clouds, velocities)
            .map(Self::new_checked)
            .map_err(|e| invalid("snapshots", e))
    }

    /// Snapshots of an AnnData object (duck-typed: `obs`, `obsm`, `X`, `layers`).
    #[staticmethod]
    #[pyo3(signature = (adata, time_key, embedding="X_pca", velocity_key=None, n_components=None))]
    fn from_anndata(
        adata: &Bound<'_, PyAny>,
        time_key: &str,
        embedding: &str,
        velocity_key: Option<&str>,
        n_components: Option<usize>,
    ) -> PyResult<Self> {
        let (times, names) = time_column(adata, time_key)?;
        let cells = times.len();
        if cells == 0 {
            return Err(value_error("adata: has no cells"));
        }
        let (matrix, name) = anndata_matrix(adata, embedding, "embedding")?;
        let (dim, positions) = cell_matrix(&matrix, &name, cells, n_components, false)?;
        let velocities = match velocity_key {
            Some(key) => {
                let (matrix, name) = anndata_matrix(adata, key, "velocity_key")?;
                Some(cell_matrix(&matrix, &name, cells, Some(dim), true)?.1)
            }
            None => None,
        };
        let table = CellTable {
            times: &times,
            names: &names,
            dim,
            positions: &positions,
            velocities: velocities.as_deref(),
        };
        wlm_data::group_cells(&table)
            .map(Self::new_checked)
            .map_err(|e| value_error(format!("adata: {e}")))
    }

    /// Snapshots of an AnnData `.h5ad` file, by the Rust loader (no anndata needed).
    #[staticmethod]
    #[pyo3(signature = (path, time_key, embedding="X_pca", velocity_key=None, n_components=None))]
    fn read_h5ad(
        py: Python<'_>,
        path: PathBuf,
        time_key: &str,
        embedding: &str,
        velocity_key: Option<&str>,
        n_components: Option<usize>,
    ) -> PyResult<Self> {
        let config = H5adConfig {
            time_key: time_key.to_string(),
            embedding: h5ad_matrix(embedding),
            n_components,
            velocity: velocity_key.map(h5ad_matrix),
        };
        py.detach(|| wlm_data::load_h5ad(&path, &config))
            .map(Self::new_checked)
            .map_err(from_data)
    }

    /// Snapshots of any supported file (`.npz`, `.npy`, `.csv`, `.h5ad`), format detected.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        py.detach(|| wlm_data::load_any(&path))
            .map(|(_, s)| Self::new_checked(s))
            .map_err(from_data)
    }

    /// The observation times, float64 `(T,)`.
    #[getter]
    fn times<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        vector_to_numpy(py, self.inner.times().to_vec())
    }

    /// The positions, one float64 `(N_k, d)` array per snapshot.
    #[getter]
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let s = &self.inner;
        let arrays = (0..s.len())
            .map(|k| cloud_array(py, s.positions(k), s.dim()))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, arrays)
    }

    /// The velocities, one float64 `(N_k, d)` array (or `None`) per snapshot.
    #[getter]
    fn velocities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let s = &self.inner;
        let arrays = (0..s.len())
            .map(|k| match s.velocities(k) {
                Some(v) => cloud_array(py, v, s.dim()),
                None => Ok(py.None().into_bound(py)),
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, arrays)
    }

    /// The snapshots' names (AnnData categories), if any.
    #[getter]
    fn names(&self) -> Option<Vec<String>> {
        self.inner.names().map(<[String]>::to_vec)
    }

    /// The dimension `d`.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The number of points of each snapshot.
    #[getter]
    fn n_particles(&self) -> Vec<usize> {
        (0..self.inner.len())
            .map(|k| self.inner.n_particles(k))
            .collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PySnapshots>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "Snapshots({} times {:?}, d = {}, points {:?}{})",
            s.len(),
            s.times(),
            s.dim(),
            self.n_particles(),
            if (0..s.len()).any(|k| s.velocities(k).is_some()) {
                ", with velocities"
            } else {
                ""
            }
        )
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                self.positions(py)?.into_any(),
                self.times(py),
                self.velocities(py)?.into_any(),
            ],
        )
    }
}

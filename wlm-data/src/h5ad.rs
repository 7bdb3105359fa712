//! AnnData `.h5ad` files (HDF5), read and written with the pure-Rust `hdf5-pure` crate: a
//! time column of `obs`, an embedding from `obsm` (or `X`, or a layer), optional velocities.

use std::path::Path;

use hdf5_pure::{AttrValue, DType, Dataset, File, FormatError};
use serde::{Deserialize, Serialize};

use crate::cells::{
    group_cells, numeric_category_times, string_category_times, CellTable, GroupError,
};
use crate::fs::read_file;
use crate::npz::MEMORY;
use crate::{Error, Result, Snapshots};

/// Where a `(cells, components)` matrix lives in an AnnData file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum H5adMatrix {
    /// The main matrix `X` (dense only).
    X,
    /// An entry of `obsm`, e.g. `X_pca` or `velocity_pca`.
    Obsm(String),
    /// An entry of `layers` (dense only).
    Layer(String),
}

impl H5adMatrix {
    /// The HDF5 path, e.g. `obsm/X_pca`.
    pub fn path(&self) -> String {
        match self {
            Self::X => "X".into(),
            Self::Obsm(key) => format!("obsm/{key}"),
            Self::Layer(key) => format!("layers/{key}"),
        }
    }
}

/// How to read (and write) snapshots from an AnnData `.h5ad` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct H5adConfig {
    /// Column of `obs` holding each cell's time: numeric, or categorical with numeric or
    /// string categories. Default `"time"`.
    pub time_key: String,
    /// Positions. Default `Obsm("X_pca")`.
    pub embedding: H5adMatrix,
    /// Keep only the first `n` components (of positions and velocities). Default `None`: all.
    pub n_components: Option<usize>,
    /// Velocities with the same number of components, if any. Default `None`.
    pub velocity: Option<H5adMatrix>,
}

impl Default for H5adConfig {
    fn default() -> Self {
        Self {
            time_key: "time".into(),
            embedding: H5adMatrix::Obsm("X_pca".into()),
            n_components: None,
            velocity: None,
        }
    }
}

/// Loads snapshots from an AnnData `.h5ad` file (the layout of anndata ≥ 0.8; 0.7's
/// categoricals under `obs/__categories` are read too).
///
/// Cells are grouped by the value of the time column; snapshots come in increasing time
/// order and cells keep their file order. Times: a numeric column gives its values; a
/// categorical column gives its categories' values when every category is a number (numeric
/// categories, or strings such as `"3"` or `"1.5"`), and otherwise the category's position
/// in the category list (`0, 1, …`, so an ordered categorical like `day0 < day1` keeps its
/// order); snapshots are named by the category (or by the time for a numeric column). Only
/// categories with at least one cell become snapshots. If velocities are read, a snapshot whose
/// velocity rows are all NaN has no velocities (the way [`write_h5ad`] stores them).
/// Chunked and deflate-compressed datasets are supported; sparse matrices are not.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] for an empty or non-HDF5
/// file; [`Error::Key`] naming the HDF5 path for a missing `obs`, time column or matrix, a
/// string or otherwise unsupported time column, a missing category code (`-1`) or one out of
/// range, a sparse or non-numeric matrix, a row count that differs from `obs`, too few
/// components, and non-finite values (naming the cell and component).
pub fn load_h5ad(path: impl AsRef<Path>, config: &H5adConfig) -> Result<Snapshots> {
    let path = path.as_ref();
    h5ad(read_file(path)?, path, config)
}

/// [`load_h5ad`] on the bytes of a file; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_h5ad`], without the I/O errors.
pub fn parse_h5ad(bytes: &[u8], config: &H5adConfig) -> Result<Snapshots> {
    h5ad(bytes.to_vec(), Path::new(MEMORY), config)
}

struct Reader<'a> {
    file: File,
    path: &'a Path,
    /// Bytes in the file: a dataset cannot hold more than [`MAX_VALUES_PER_BYTE`] values per
    /// byte of it.
    file_len: u64,
}

/// Values a file can hold per byte: stored values take at least a byte each, and deflate
/// expands a byte to at most 1032 (the bound of the `.npz` reader). A dataset declaring more
/// would read fill values or fail; it is refused before anything is allocated for it.
const MAX_VALUES_PER_BYTE: u64 = 1032;

/// A time column: per-cell times and, per distinct time, a name.
struct TimeColumn {
    times: Vec<f64>,
    names: Vec<(f64, String)>,
}

impl<'a> Reader<'a> {
    /// Opens the HDF5 file read into `bytes` from `path`.
    ///
    /// # Errors
    /// [`Error::Format`] if the bytes are not HDF5.
    fn open(path: &'a Path, bytes: Vec<u8>) -> Result<Self> {
        let file_len = bytes.len() as u64;
        let file = File::from_bytes(bytes).map_err(|e| Error::Format {
            path: path.to_owned(),
            problem: format!("not a readable HDF5 (.h5ad) file: {e}"),
        })?;
        Ok(Self {
            file,
            path,
            file_len,
        })
    }
}

impl Reader<'_> {
    fn err(&self, key: &str, problem: String) -> Error {
        Error::Key {
            path: self.path.to_owned(),
            key: key.to_owned(),
            problem,
        }
    }

    fn hdf5_err(&self, key: &str, e: &hdf5_pure::Error) -> Error {
        match e {
            hdf5_pure::Error::Format(FormatError::PathNotFound(_)) => {
                self.err(key, "missing".into())
            }
            _ => self.err(key, format!("cannot be read: {e}")),
        }
    }

    fn is_group(&self, key: &str) -> bool {
        self.file.group(key).is_ok()
    }

    fn encoding(&self, key: &str) -> Option<String> {
        let attrs = match self.file.group(key) {
            Ok(g) => g.attrs().ok()?,
            Err(_) => self.file.dataset(key).ok()?.attrs().ok()?,
        };
        attrs
            .get("encoding-type")
            .and_then(AttrValue::as_str)
            .map(str::to_owned)
    }

    fn dataset(&self, key: &str) -> Result<Dataset> {
        match self.file.dataset(key) {
            Ok(d) => Ok(d),
            Err(hdf5_pure::Error::NotADataset(_)) => {
                let enc = self.encoding(key).unwrap_or_else(|| "a group".into());
                Err(self.err(key, format!("is {enc}, not a dense array")))
            }
            Err(e) => Err(self.hdf5_err(key, &e)),
        }
    }

    /// Reads a numeric dataset of any rank as `f64`, with its shape.
    fn numeric(&self, key: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let ds = self.dataset(key)?;
        let dtype = ds.dtype().map_err(|e| self.hdf5_err(key, &e))?;
        let numeric = matches!(
            dtype,
            DType::F32
                | DType::F64
                | DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        );
        if !numeric {
            return Err(self.err(key, format!("holds {dtype:?} values, not numbers")));
        }
        let shape = ds.shape().map_err(|e| self.hdf5_err(key, &e))?;
        let shape: Vec<usize> = shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        // The shape is declared by the file; a deflated dataset can declare far more than the
        // file holds. Refuse one whose f64 values could not fit before reading it.
        let needed = count.and_then(|c| u64::try_from(c).ok()?.checked_mul(8));
        let most = self.file_len.saturating_mul(MAX_VALUES_PER_BYTE);
        match (needed, wlm_numeric::available_memory_bytes()) {
            (None, _) => {
                return Err(self.err(key, format!("shape {shape:?} has too many values")));
            }
            (Some(needed), _) if needed / 8 > most => {
                return Err(self.err(
                    key,
                    format!(
                        "shape {shape:?} declares {} values, more than a {}-byte file can \
                         hold ({MAX_VALUES_PER_BYTE} per byte at most)",
                        needed / 8,
                        self.file_len
                    ),
                ));
            }
            (Some(needed), Some(available)) if needed > available => {
                return Err(self.err(
                    key,
                    format!(
                        "shape {shape:?} needs {needed} bytes as f64, more than the \
                         {available} bytes of memory available"
                    ),
                ));
            }
            _ => {}
        }
        let values = ds.read_f64().map_err(|e| self.hdf5_err(key, &e))?;
        if count != Some(values.len()) {
            return Err(self.err(
                key,
                format!("shape {shape:?} but {} values were read", values.len()),
            ));
        }
        Ok((shape, values))
    }

    /// The matrices of the file (`X`, `obsm/*`, `layers/*`) with their shapes or encodings.
    fn matrices(&self) -> Vec<H5adMatrixInfo> {
        let mut out = Vec::new();
        let describe = |key: &str, matrix: H5adMatrix, out: &mut Vec<H5adMatrixInfo>| {
            let shape = self.file.dataset(key).ok().and_then(|d| d.shape().ok());
            let shape = shape.map(|s| {
                s.iter()
                    .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
                    .collect()
            });
            let encoding = self.encoding(key).unwrap_or_else(|| "array".into());
            out.push(H5adMatrixInfo {
                matrix,
                shape,
                encoding,
            });
        };
        if self.file.dataset("X").is_ok() || self.is_group("X") {
            describe("X", H5adMatrix::X, &mut out);
        }
        for (group, make) in [
            ("obsm", H5adMatrix::Obsm as fn(String) -> H5adMatrix),
            ("layers", H5adMatrix::Layer),
        ] {
            let Ok(g) = self.file.group(group) else {
                continue;
            };
            let mut names = [
                g.datasets().unwrap_or_default(),
                g.groups().unwrap_or_default(),
            ]
            .concat();
            names.sort();
            for name in names {
                describe(&format!("{group}/{name}"), make(name), &mut out);
            }
        }
        out
    }

    /// The columns of `obs`, sorted (its index and anndata 0.7's `__categories` left out).
    fn obs_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self
            .file
            .group("obs")
            .and_then(|g| Ok([g.datasets()?, g.groups()?].concat()))
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c != "_index" && c != "__categories")
            .collect();
        columns.sort();
        columns
    }

    /// `missing` with the list of the file's matrices, for a matrix that does not exist.
    fn missing_matrix(&self, key: &str) -> Error {
        let list: Vec<String> = self.matrices().iter().map(ToString::to_string).collect();
        self.err(
            key,
            format!(
                "missing: the file holds {}",
                if list.is_empty() {
                    "no matrices".to_string()
                } else {
                    list.join(", ")
                }
            ),
        )
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        let ds = self.dataset(key)?;
        let shape = ds.shape().map_err(|e| self.hdf5_err(key, &e))?;
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let most = self.file_len.saturating_mul(MAX_VALUES_PER_BYTE);
        if count.is_none_or(|c| c > most) {
            return Err(self.err(
                key,
                format!(
                    "shape {shape:?} declares more strings than a {}-byte file can hold",
                    self.file_len
                ),
            ));
        }
        ds.read_string().map_err(|e| self.hdf5_err(key, &e))
    }

    fn time_column(&self, time_key: &str) -> Result<TimeColumn> {
        if self.file.group("obs").is_err() {
            let problem = if self.file.dataset("obs").is_ok() {
                "is a dataset (AnnData < 0.7 layout), not a dataframe group: re-save the file \
                 with anndata ≥ 0.8"
            } else {
                "missing: not an AnnData file"
            };
            return Err(self.err("obs", problem.into()));
        }
        let key = format!("obs/{time_key}");
        let legacy_categories = format!("obs/__categories/{time_key}");
        if self.is_group(&key) {
            match self.encoding(&key).as_deref() {
                Some("categorical") => {
                    let codes = self.numeric(&format!("{key}/codes"))?.1;
                    let categories = format!("{key}/categories");
                    self.categorical(&key, &codes, &categories)
                }
                Some("nullable-integer") => {
                    let values = self.numeric(&format!("{key}/values"))?.1;
                    let mask = self.numeric(&format!("{key}/mask"))?.1;
                    if let Some(i) = mask.iter().position(|&m| m != 0.0) {
                        return Err(self.err(&key, format!("cell {i} has no value (masked)")));
                    }
                    Ok(numeric_times(values))
                }
                other => Err(self.err(
                    &key,
                    format!(
                        "has encoding {:?}: a time column must be numeric or categorical",
                        other.unwrap_or("none")
                    ),
                )),
            }
        } else if self.file.dataset(&legacy_categories).is_ok() {
            let codes = self.numeric(&key)?.1;
            self.categorical(&key, &codes, &legacy_categories)
        } else {
            if self.file.dataset(&key).is_err() {
                let columns = self.obs_columns();
                return Err(self.err(&key, format!("missing: obs has the columns {columns:?}")));
            }
            let ds = self.dataset(&key)?;
            if matches!(ds.dtype(), Ok(DType::String | DType::VariableLengthString)) {
                return Err(self.err(
                    &key,
                    "holds strings: a time column must be numeric or categorical".into(),
                ));
            }
            let (shape, values) = self.numeric(&key)?;
            if shape.len() != 1 {
                return Err(self.err(&key, format!("expected rank 1, got shape {shape:?}")));
            }
            Ok(numeric_times(values))
        }
    }

    fn categorical(&self, key: &str, codes: &[f64], categories: &str) -> Result<TimeColumn> {
        let cat_ds = self.dataset(categories)?;
        let labels: Vec<(f64, String)> = match cat_ds.dtype() {
            Ok(DType::String | DType::VariableLengthString) => {
                string_category_times(self.strings(categories)?)
            }
            _ => {
                let values = self.numeric(categories)?.1;
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(self.err(categories, format!("category {i} is not finite")));
                }
                numeric_category_times(&values)
            }
        };
        let mut times = Vec::with_capacity(codes.len());
        for (cell, &code) in codes.iter().enumerate() {
            if code < 0.0 {
                return Err(self.err(key, format!("cell {cell} has no category (code {code})")));
            }
            // Codes are integers; a float code that is NaN or fractional would otherwise be
            // truncated (NaN to 0) into a wrong time.
            if code.is_nan() || code.fract() != 0.0 {
                return Err(self.err(
                    key,
                    format!("cell {cell} has code {code}, not an integer category index"),
                ));
            }
            let (t, _) = labels.get(code as usize).ok_or_else(|| {
                self.err(
                    key,
                    format!(
                        "cell {cell} has code {code} but there are {} categories",
                        labels.len()
                    ),
                )
            })?;
            times.push(*t + 0.0);
        }
        Ok(TimeColumn {
            times,
            names: labels,
        })
    }

    /// Reads a `(cells, ≥k)` matrix, keeping `k` columns (all if `None`); checks finiteness
    /// unless `nan_rows_ok` (then a row may be all NaN).
    fn matrix(
        &self,
        m: &H5adMatrix,
        cells: usize,
        k: Option<usize>,
        nan_rows_ok: bool,
    ) -> Result<(usize, Vec<f64>)> {
        let key = m.path();
        if !self.is_group(&key) && self.file.dataset(&key).is_err() {
            return Err(self.missing_matrix(&key));
        }
        if self.is_group(&key) {
            let enc = self.encoding(&key).unwrap_or_else(|| "a group".into());
            return Err(self.err(&key, format!("is {enc}: only dense matrices are supported")));
        }
        let (shape, values) = self.numeric(&key)?;
        let &[rows, cols] = &shape[..] else {
            return Err(self.err(
                &key,
                format!("expected rank 2 (cells, components), got shape {shape:?}"),
            ));
        };
        if rows != cells {
            return Err(self.err(&key, format!("{rows} rows but obs has {cells} cells")));
        }
        let k = k.unwrap_or(cols);
        if k == 0 || k > cols {
            return Err(self.err(
                &key,
                format!("{k} components requested but the matrix has {cols} (need 1..={cols})"),
            ));
        }
        let mut out = Vec::with_capacity(rows * k);
        for (i, row) in values.chunks_exact(cols.max(1)).enumerate() {
            let row = &row[..k];
            if nan_rows_ok && row.iter().all(|v| v.is_nan()) {
                out.extend_from_slice(row);
                continue;
            }
            if let Some(c) = row.iter().position(|v| !v.is_finite()) {
                return Err(self.err(
                    &key,
                    format!("cell {i}, component {c} is not finite ({})", row[c]),
                ));
            }
            out.extend_from_slice(row);
        }
        Ok((k, out))
    }
}

fn numeric_times(values: Vec<f64>) -> TimeColumn {
    TimeColumn {
        times: values.into_iter().map(|t| t + 0.0).collect(),
        names: Vec::new(),
    }
}

fn h5ad(bytes: Vec<u8>, path: &Path, config: &H5adConfig) -> Result<Snapshots> {
    if bytes.is_empty() {
        return Err(Error::Format {
            path: path.to_owned(),
            problem: "empty file: not an HDF5 (.h5ad) file".into(),
        });
    }
    let reader = Reader::open(path, bytes)?;
    let column = reader.time_column(&config.time_key)?;
    let time_key = format!("obs/{}", config.time_key);
    if let Some(i) = column.times.iter().position(|t| !t.is_finite()) {
        return Err(reader.err(
            &time_key,
            format!("time of cell {i} is not finite ({})", column.times[i]),
        ));
    }
    let cells = column.times.len();
    if cells == 0 {
        return Err(reader.err(&time_key, "no cells".into()));
    }
    let (dim, positions) = reader.matrix(&config.embedding, cells, config.n_components, false)?;
    let velocities = match &config.velocity {
        Some(m) => Some(reader.matrix(m, cells, Some(dim), true)?.1),
        None => None,
    };

    let table = CellTable {
        times: &column.times,
        names: &column.names,
        dim,
        positions: &positions,
        velocities: velocities.as_deref(),
    };
    group_cells(&table).map_err(|e| match (e, &config.velocity) {
        (e @ GroupError::MixedVelocities { .. }, Some(m)) => reader.err(&m.path(), e.to_string()),
        (e, _) => Error::Format {
            path: path.to_owned(),
            problem: e.to_string(),
        },
    })
}

/// One matrix of an AnnData file, as [`h5ad_matrices`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H5adMatrixInfo {
    /// Where it is.
    pub matrix: H5adMatrix,
    /// Its shape, for a dense array; `None` for a sparse matrix or another group.
    pub shape: Option<Vec<usize>>,
    /// Its `encoding-type` (`array`, `csr_matrix`, …; `array` when the file names none).
    pub encoding: String,
}

impl std::fmt::Display for H5adMatrixInfo {
    /// `X_pca (300×50)`, `X (csr_matrix, not readable)`, `layers/spliced (300×2000)`: the
    /// name as `--embedding` takes it for `X` and `obsm`, the HDF5 path for layers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.matrix {
            H5adMatrix::X => "X".to_string(),
            H5adMatrix::Obsm(key) => key.clone(),
            H5adMatrix::Layer(key) => format!("layers/{key}"),
        };
        match &self.shape {
            Some(shape) => {
                let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
                write!(f, "{name} ({})", dims.join("×"))
            }
            None => write!(f, "{name} ({}, not readable)", self.encoding),
        }
    }
}

/// The matrices of an AnnData file (`X`, every `obsm` entry, every layer) with their shapes,
/// and the columns of `obs`, for messages that list what a file holds.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not HDF5.
pub fn h5ad_contents(path: impl AsRef<Path>) -> Result<(Vec<String>, Vec<H5adMatrixInfo>)> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let reader = Reader::open(path, bytes)?;
    Ok((reader.obs_columns(), reader.matrices()))
}

mod write;
pub use write::write_h5ad;

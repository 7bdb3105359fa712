//! The `.npy` snapshot file: a `(T, N, d)` array of positions read into [`Snapshots`] and
//! written back (the array format itself is `npy.rs`).

use std::path::Path;

use crate::fs::{read_file, write_atomic};
use crate::npy::{encode_npy, parse_npy};
use crate::particles::{equal_size, float_tnd, split_tnd, times_or_default};
use crate::{Error, Result, Snapshots};

/// Loads a `.npy` file of positions shaped `(T, N, d)` (the SBIRR layout).
///
/// `times` gives the `T` observation times; `None` means `0, 1, …, T−1`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] naming the file for a
/// malformed NPY, a non-float dtype, a rank other than 3, a zero dimension, non-finite values
/// (naming snapshot, point and coordinate), or `times` of the wrong length, non-finite or not
/// strictly increasing.
pub fn load_npy(path: impl AsRef<Path>, times: Option<&[f64]>) -> Result<Snapshots> {
    let path = path.as_ref();
    npy_snapshots(&read_file(path)?, path, times)
}

/// [`load_npy`] on the bytes of a `.npy` file; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_npy`], without the I/O errors.
pub fn parse_npy_snapshots(bytes: &[u8], times: Option<&[f64]>) -> Result<Snapshots> {
    npy_snapshots(bytes, Path::new("<memory>"), times)
}

fn npy_snapshots(bytes: &[u8], path: &Path, times: Option<&[f64]>) -> Result<Snapshots> {
    let array = parse_npy(bytes).map_err(|e| Error::Format {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    let (t, n, d) = float_tnd(&array, path, None)?;
    let times = times_or_default(times, t, path, None)?;
    let positions = split_tnd(&array.data, t, n, d, path, None, false)?;
    let positions = positions
        .into_iter()
        .map(|p| p.unwrap_or_default())
        .collect();
    Snapshots::new(times, d, positions, None).map_err(|e| Error::Format {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

/// Writes the positions of snapshots with equal sizes as a `(T, N, d)` `float64` `.npy` file
/// (velocities, times and names are not stored). The write is atomic.
///
/// # Errors
/// [`Error::Invalid`] if the snapshots differ in size; [`Error::Io`] if writing fails.
pub fn write_npy(path: impl AsRef<Path>, snapshots: &Snapshots) -> Result<()> {
    let n = equal_size(snapshots, "a (T, N, d) .npy file")?;
    let data: Vec<f64> = (0..snapshots.len())
        .flat_map(|k| snapshots.positions(k).to_vec())
        .collect();
    let bytes = encode_npy(&[snapshots.len(), n, snapshots.dim()], &data)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomic(path.as_ref(), &bytes)
}

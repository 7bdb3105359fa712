//! The `(T, N, d)` particle layout shared by the `.npy` and `.npz` formats: shape checks,
//! time checks and splitting into clouds.

use std::path::Path;

use crate::npy::NpyArray;
use crate::{Error, Result, Snapshots};

/// An error about `path`, naming `key` when the problem is in one entry of an archive.
pub(crate) fn fail(path: &Path, key: Option<&str>, problem: String) -> Error {
    match key {
        Some(key) => Error::Key {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        },
        None => Error::Format {
            path: path.to_owned(),
            problem,
        },
    }
}

/// Checks that `array` holds floats shaped `(T, N, d)` with no zero dimension.
pub(crate) fn float_tnd(
    array: &NpyArray,
    path: &Path,
    key: Option<&str>,
) -> Result<(usize, usize, usize)> {
    if !array.dtype.is_float() {
        return Err(fail(
            path,
            key,
            format!("dtype {:?} is not float32 or float64", array.descr),
        ));
    }
    match array.shape[..] {
        [t, n, d] if t > 0 && n > 0 && d > 0 => Ok((t, n, d)),
        [_, _, _] => Err(fail(
            path,
            key,
            format!("shape {:?} has a zero dimension: no data", array.shape),
        )),
        _ => Err(fail(
            path,
            key,
            format!(
                "expected rank 3 (T, N, d), got rank {} with shape {:?}",
                array.shape.len(),
                array.shape
            ),
        )),
    }
}

/// Checks that `times` has `expected` finite, strictly increasing values.
pub(crate) fn check_times(
    times: &[f64],
    expected: usize,
    path: &Path,
    key: Option<&str>,
    what: &str,
) -> Result<()> {
    if times.len() != expected {
        return Err(fail(
            path,
            key,
            format!("{what}: {} values for {expected} snapshots", times.len()),
        ));
    }
    for (k, &t) in times.iter().enumerate() {
        if !t.is_finite() {
            return Err(fail(
                path,
                key,
                format!("{what}: time {k} is not finite ({t})"),
            ));
        }
        if k > 0 && t <= times[k - 1] {
            return Err(fail(
                path,
                key,
                format!(
                    "{what}: times must be strictly increasing, got {t} at index {k} after {}",
                    times[k - 1]
                ),
            ));
        }
    }
    Ok(())
}

/// The caller's times (checked), or `0, 1, …, t−1`.
pub(crate) fn times_or_default(
    times: Option<&[f64]>,
    t: usize,
    path: &Path,
    key: Option<&str>,
) -> Result<Vec<f64>> {
    match times {
        Some(times) => {
            check_times(times, t, path, key, "times given by the caller")?;
            Ok(times.to_vec())
        }
        None => Ok((0..t).map(|k| k as f64).collect()),
    }
}

/// Splits row-major `(t, n, d)` values into `t` clouds, checking that every value is finite.
///
/// With `nan_means_absent`, a snapshot whose values are all NaN becomes `None` (the way the
/// writers mark snapshots without velocities); a partly NaN snapshot is still an error.
pub(crate) fn split_tnd(
    data: &[f64],
    t: usize,
    n: usize,
    d: usize,
    path: &Path,
    key: Option<&str>,
    nan_means_absent: bool,
) -> Result<Vec<Option<Vec<f64>>>> {
    let size = n * d;
    let mut out = Vec::with_capacity(t);
    for (k, cloud) in data.chunks_exact(size).take(t).enumerate() {
        if nan_means_absent && cloud.iter().all(|v| v.is_nan()) {
            out.push(None);
            continue;
        }
        if let Some(i) = cloud.iter().position(|v| !v.is_finite()) {
            return Err(fail(
                path,
                key,
                format!(
                    "snapshot {k}, point {}, coordinate {} is not finite ({})",
                    i / d,
                    i % d,
                    cloud[i]
                ),
            ));
        }
        out.push(Some(cloud.to_vec()));
    }
    Ok(out)
}

/// The common cloud size, or an error if the snapshots differ in size.
pub(crate) fn equal_size(snapshots: &Snapshots, what: &str) -> Result<usize> {
    let n = snapshots.n_particles(0);
    for k in 1..snapshots.len() {
        if snapshots.n_particles(k) != n {
            return Err(Error::Invalid(format!(
                "{what} needs clouds of equal size: snapshot {k} has {} points, snapshot 0 has {n}",
                snapshots.n_particles(k)
            )));
        }
    }
    Ok(n)
}

/// Row-major `(T, N, d)` velocities with NaN for snapshots without, or `None` if no snapshot
/// has velocities.
pub(crate) fn velocities_with_nan(snapshots: &Snapshots) -> Option<Vec<f64>> {
    if (0..snapshots.len()).all(|k| snapshots.velocities(k).is_none()) {
        return None;
    }
    let mut out = Vec::new();
    for k in 0..snapshots.len() {
        match snapshots.velocities(k) {
            Some(v) => out.extend_from_slice(v),
            None => out.extend(std::iter::repeat_n(f64::NAN, snapshots.positions(k).len())),
        }
    }
    Some(out)
}

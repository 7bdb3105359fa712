//! Validation of user tensors and their conversion to host vectors for the CPU kernels.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::kernel::Real;

/// Two validated clouds on the host, row-major, in the kernel's float type.
pub(crate) struct HostPair<T> {
    pub(crate) x: Vec<T>,
    pub(crate) y: Vec<T>,
    pub(crate) n_x: usize,
    pub(crate) n_y: usize,
    pub(crate) dim: usize,
}

/// Shapes `(n_x, n_y, dim)` and the common dtype of two clouds, checked.
pub(crate) fn check_pair(x: &Tensor, y: &Tensor) -> Result<(usize, usize, usize, DType)> {
    let (n_x, dx) = cloud_shape(x, "x")?;
    let (n_y, dy) = cloud_shape(y, "y")?;
    if dx != dy {
        return Err(Error::DimensionMismatch {
            x_dim: dx,
            y_dim: dy,
        });
    }
    let dtype = match (x.dtype(), y.dtype()) {
        (DType::F32, DType::F32) => DType::F32,
        (DType::F64, DType::F64) => DType::F64,
        (x_dtype, y_dtype) => return Err(Error::UnsupportedDType { x_dtype, y_dtype }),
    };
    Ok((n_x, n_y, dx, dtype))
}

fn cloud_shape(t: &Tensor, name: &'static str) -> Result<(usize, usize)> {
    match *t.dims() {
        [n, d] if n > 0 && d > 0 => Ok((n, d)),
        [_, _] => Err(Error::EmptyCloud {
            name,
            shape: t.dims().to_vec(),
        }),
        _ => Err(Error::NotAPointCloud {
            name,
            shape: t.dims().to_vec(),
        }),
    }
}

/// Reads both clouds (already checked by [`check_pair`]) and rejects non-finite coordinates.
pub(crate) fn read_pair<T: Real>(x: &Tensor, y: &Tensor) -> Result<HostPair<T>> {
    let (n_x, n_y, dim, _) = check_pair(x, y)?;
    Ok(HostPair {
        x: read_cloud(x, "x", dim)?,
        y: read_cloud(y, "y", dim)?,
        n_x,
        n_y,
        dim,
    })
}

fn read_cloud<T: Real>(t: &Tensor, name: &'static str, dim: usize) -> Result<Vec<T>> {
    let values: Vec<T> = t.detach().flatten_all()?.to_vec1()?;
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteCoordinate {
            name,
            point_idx: pos / dim,
            coord_idx: pos % dim,
            value: values[pos].to_f64(),
        });
    }
    Ok(values)
}

/// Reads a weight vector of length `n`: finite, non-negative, summing to 1 within a tolerance
/// that scales with `n` and the precision.
pub(crate) fn read_weights<T: Real>(w: &Tensor, n: usize, name: &'static str) -> Result<Vec<T>> {
    if w.dims() != [n] {
        return Err(Error::InvalidWeights {
            name,
            reason: format!("expected shape [{n}], got {:?}", w.dims()),
        });
    }
    let values: Vec<T> = w.detach().to_dtype(T::DTYPE)?.to_vec1()?;
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && v.to_f64() >= 0.0_f64))
    {
        return Err(Error::InvalidWeights {
            name,
            reason: format!(
                "weight {i} is {}, weights must be finite and >= 0",
                v.to_f64()
            ),
        });
    }
    let sum: f64 = values.iter().map(|v| v.to_f64()).sum();
    let tolerance = 1e-6_f64.max(8.0 * T::EPSILON.to_f64() * n as f64);
    if (sum - 1.0).abs() > tolerance {
        return Err(Error::InvalidWeights {
            name,
            reason: format!("weights sum to {sum}, not 1 (tolerance {tolerance:e})"),
        });
    }
    Ok(values)
}

/// Uniform weights `1/n`.
pub(crate) fn uniform_weights<T: Real>(n: usize) -> Vec<T> {
    vec![T::from_f64(1.0 / n as f64); n]
}

/// Builds an `(rows, cols)` tensor (or `(rows,)` when `cols` is `None`) on `device`.
pub(crate) fn to_tensor<T: Real>(
    values: Vec<T>,
    rows: usize,
    cols: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let t = match cols {
        Some(c) => Tensor::from_vec(values, (rows, c), device)?,
        None => Tensor::from_vec(values, rows, device)?,
    };
    Ok(t)
}

//! `wlm.w1`, `wlm.w2`, `wlm.sinkhorn`: exact transport and the debiased Sinkhorn divergence of
//! `wlm-ot` between uniform point clouds, with the GIL released while they run.

use candle_core::DType;
use pyo3::prelude::*;
use wlm_ot::SinkhornConfig;

use crate::arrays::{read_cloud, tensor_to_numpy, Cloud, Float};
use crate::errors::{from_ot, value_error};

/// Reads `x` and `y`, which must have the same number of columns.
fn read_pair(x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<(Cloud, Cloud)> {
    let x = read_cloud(x, "x")?;
    let y = read_cloud(y, "y")?;
    if x.dim != y.dim {
        return Err(value_error(format!(
            "x, y: dimensions differ: x is ({}, {}) and y is ({}, {})",
            x.n, x.dim, y.n, y.dim
        )));
    }
    Ok((x, y))
}

/// Exact W1 with Euclidean ground cost (POT's `ot.emd2(a, b, M)`, uniform `a`, `b`).
#[pyfunction]
pub(crate) fn w1(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (x, y) = read_pair(x, y)?;
    let (tx, ty) = (x.tensor(DType::F64)?, y.tensor(DType::F64)?);
    py.detach(|| wlm_ot::wasserstein_1(&tx, &ty))
        .map_err(|e| from_ot(e, "x, y"))
}

/// Exact W2 = sqrt(emd2) with squared Euclidean ground cost.
#[pyfunction]
pub(crate) fn w2(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (x, y) = read_pair(x, y)?;
    let (tx, ty) = (x.tensor(DType::F64)?, y.tensor(DType::F64)?);
    py.detach(|| wlm_ot::wasserstein_2(&tx, &ty))
        .map_err(|e| from_ot(e, "x, y"))
}

/// The debiased Sinkhorn divergence and its gradient with respect to `x`, as geomloss's
/// `SamplesLoss("sinkhorn", p, blur, scaling)`.
#[pyfunction]
#[pyo3(signature = (x, y, p=2, blur=0.05, scaling=0.9))]
pub(crate) fn sinkhorn<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    p: u32,
    blur: f64,
    scaling: f64,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    if p != 1 && p != 2 {
        return Err(value_error(format!("p: must be 1 or 2, got {p}")));
    }
    if !(blur.is_finite() && blur > 0.0) {
        return Err(value_error(format!(
            "blur: must be finite and > 0, got {blur}"
        )));
    }
    if !(scaling > 0.0 && scaling < 1.0) {
        return Err(value_error(format!(
            "scaling: must be in (0, 1), got {scaling}"
        )));
    }
    let (x, y) = read_pair(x, y)?;
    let dtype = Float::common(x.float, y.float).dtype();
    let (tx, ty) = (x.tensor(dtype)?, y.tensor(dtype)?);
    let config = SinkhornConfig {
        p,
        blur,
        scaling,
        ..SinkhornConfig::default()
    };
    let out = py
        .detach(|| wlm_ot::sinkhorn(&tx, &ty, &config))
        .map_err(|e| from_ot(e, "x, y"))?;
    Ok((out.value, tensor_to_numpy(py, &out.grad_x)?))
}

//! numpy arrays in and out: float32/float64 in any memory order, checked for rank, size and
//! finiteness with errors naming the argument.

use candle_core::{DType, Device, Tensor};
use numpy::{
    dtype, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{from_tensor, value_error};

/// The element type of an array read from Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Float {
    /// `float32`.
    F32,
    /// `float64`.
    F64,
}

impl Float {
    /// The candle dtype.
    pub(crate) fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F64 => DType::F64,
        }
    }

    /// `F32` if both are, `F64` otherwise.
    pub(crate) fn common(self, other: Self) -> Self {
        if self == Self::F32 && other == Self::F32 {
            Self::F32
        } else {
            Self::F64
        }
    }
}

/// An array read from Python: its values in row-major order (as f64; float32 values are exact),
/// its shape and its element type.
#[derive(Debug, Clone)]
pub(crate) struct FloatArray {
    pub(crate) values: Vec<f64>,
    pub(crate) shape: Vec<usize>,
    pub(crate) float: Float,
}

/// Reads `obj` (a numpy array, or anything `numpy.asarray` turns into one) of float32 or
/// float64 values, copying it in row-major order.
///
/// # Errors
/// `ValueError` naming `name` when it cannot become an array (ragged lists) or its dtype is
/// not float32/float64.
pub(crate) fn read_array(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<FloatArray> {
    let py = obj.py();
    let converted;
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a,
        Err(_) => {
            let numpy = py.import("numpy")?;
            converted = numpy
                .call_method1("asarray", (obj,))
                .map_err(|e| value_error(format!("{name}: cannot be read as an array ({e})")))?;
            converted
                .cast::<PyUntypedArray>()
                .map_err(|_| value_error(format!("{name}: cannot be read as an array")))?
        }
    };
    let descr = array.dtype();
    let shape = array.shape().to_vec();
    if descr.is_equiv_to(&dtype::<f64>(py)) {
        let typed = array
            .cast::<PyArrayDyn<f64>>()
            .map_err(|_| value_error(format!("{name}: not a float64 array")))?;
        let view = typed
            .try_readonly()
            .map_err(|e| value_error(format!("{name}: {e}")))?;
        let values = view.as_array().iter().copied().collect();
        Ok(FloatArray {
            values,
            shape,
            float: Float::F64,
        })
    } else if descr.is_equiv_to(&dtype::<f32>(py)) {
        let typed = array
            .cast::<PyArrayDyn<f32>>()
            .map_err(|_| value_error(format!("{name}: not a float32 array")))?;
        let view = typed
            .try_readonly()
            .map_err(|e| value_error(format!("{name}: {e}")))?;
        let values = view.as_array().iter().map(|&v| f64::from(v)).collect();
        Ok(FloatArray {
            values,
            shape,
            float: Float::F32,
        })
    } else {
        let found = descr.str().map(|s| s.to_string()).unwrap_or_default();
        Err(value_error(format!(
            "{name}: expected a float32 or float64 array, got dtype {found} (convert it with \
             .astype(numpy.float64))"
        )))
    }
}

/// A point cloud `(n, d)`: values row-major.
#[derive(Debug, Clone)]
pub(crate) struct Cloud {
    pub(crate) values: Vec<f64>,
    pub(crate) n: usize,
    pub(crate) dim: usize,
    pub(crate) float: Float,
}

impl Cloud {
    /// As a CPU tensor of `dtype`.
    pub(crate) fn tensor(&self, dtype: DType) -> PyResult<Tensor> {
        Tensor::from_slice(&self.values, (self.n, self.dim), &Device::Cpu)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(from_tensor)
    }
}

/// Reads a non-empty `(n, d)` array of finite values (see [`read_array`]).
///
/// # Errors
/// `ValueError` naming `name` for another rank, no points or no columns, a NaN or infinite
/// value (with its row and column), or a bad dtype.
pub(crate) fn read_cloud(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Cloud> {
    let array = read_array(obj, name)?;
    let (n, dim) = match array.shape[..] {
        [n, d] => (n, d),
        ref shape => {
            return Err(value_error(format!(
                "{name}: expected a 2-d array (points, dimensions), got shape {shape:?}"
            )))
        }
    };
    if n == 0 || dim == 0 {
        return Err(value_error(format!(
            "{name}: empty array of shape ({n}, {dim}): need at least one point and one dimension"
        )));
    }
    check_finite(&array.values, dim, name)?;
    Ok(Cloud {
        values: array.values,
        n,
        dim,
        float: array.float,
    })
}

/// `ValueError` naming `name`, the row and the column of the first non-finite value.
pub(crate) fn check_finite(values: &[f64], dim: usize, name: &str) -> PyResult<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(value_error(format!(
            "{name}: value at row {}, column {} is not finite ({})",
            i / dim.max(1),
            i % dim.max(1),
            values[i]
        ))),
        None => Ok(()),
    }
}

/// A new `(n, dim)` numpy array of `float` holding `values` (row-major).
pub(crate) fn to_numpy<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    n: usize,
    dim: usize,
    float: Float,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = [n, dim];
    let array = match float {
        Float::F64 => values.into_pyarray(py).reshape(shape)?.into_any(),
        Float::F32 => values
            .into_iter()
            .map(|v| v as f32)
            .collect::<Vec<f32>>()
            .into_pyarray(py)
            .reshape(shape)?
            .into_any(),
    };
    Ok(array)
}

/// A tensor `(n, dim)` as a numpy array of its own dtype (float32 or float64).
pub(crate) fn tensor_to_numpy<'py>(
    py: Python<'py>,
    tensor: &Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    let (n, dim) = tensor.dims2().map_err(from_tensor)?;
    let float = if tensor.dtype() == DType::F32 {
        Float::F32
    } else {
        Float::F64
    };
    let values = tensor
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(from_tensor)?;
    to_numpy(py, values, n, dim, float)
}

/// A 1-d float64 numpy array.
pub(crate) fn vector_to_numpy<'py>(py: Python<'py>, values: Vec<f64>) -> Bound<'py, PyAny> {
    values.into_pyarray(py).into_any()
}

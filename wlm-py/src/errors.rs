//! The library crates' errors as Python exceptions: `ValueError` for bad input and configs,
//! `OSError` (`FileNotFoundError` where the file is missing) for files, `RuntimeError` for
//! failures of the computation itself.

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// A `ValueError` with `message`.
pub(crate) fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// An `OSError` (a `FileNotFoundError` when the file does not exist) for an I/O failure.
pub(crate) fn io_error(message: String, error: &std::io::Error) -> PyErr {
    if error.kind() == std::io::ErrorKind::NotFound {
        PyFileNotFoundError::new_err(message)
    } else {
        PyOSError::new_err(message)
    }
}

/// A learner error: config and data errors are `ValueError`s, file errors `OSError`s,
/// non-finite training and tensor failures `RuntimeError`s.
pub(crate) fn from_wlm(error: wlm::Error) -> PyErr {
    let message = error.to_string();
    match error {
        wlm::Error::Config { .. } | wlm::Error::Data(_) | wlm::Error::Ot(_) => value_error(message),
        wlm::Error::Io { source, .. } => io_error(message, &source),
        wlm::Error::File { .. } => PyOSError::new_err(message),
        wlm::Error::Snapshots(e) => from_data(e),
        _ => PyRuntimeError::new_err(message),
    }
}

/// A data error: I/O failures are `OSError`s, unreadable files `OSError`s naming the file,
/// invalid values `ValueError`s.
pub(crate) fn from_data(error: wlm_data::Error) -> PyErr {
    let message = error.to_string();
    match error {
        wlm_data::Error::Io { source, .. } => io_error(message, &source),
        wlm_data::Error::Format { .. } => PyOSError::new_err(message),
        _ => value_error(message),
    }
}

/// A transport error, prefixed by the arguments it concerns (`x, y`).
pub(crate) fn from_ot(error: wlm_ot::Error, what: &str) -> PyErr {
    value_error(format!("{what}: {error}"))
}

/// A candle failure (not expected on valid input).
pub(crate) fn from_tensor(error: candle_core::Error) -> PyErr {
    PyRuntimeError::new_err(error.to_string())
}

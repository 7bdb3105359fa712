//! Safetensors files (weights, checkpoints) written atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::{Error, Result};

/// Writes `tensors` as one safetensors file at `path`, atomically (`wlm_data::write_atomic`:
/// a temporary file in the same directory, flushed, then renamed over `path`).
///
/// # Errors
/// [`Error::File`] when the tensors cannot be serialised, [`Error::Snapshots`] wrapping the
/// I/O error naming `path` when writing fails.
pub(crate) fn write_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut named: Vec<(&String, &Tensor)> = tensors.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let bytes =
        safetensors::serialize(named, None).map_err(|e| Error::file(path, e.to_string()))?;
    wlm_data::write_atomic(path, &bytes)?;
    Ok(())
}

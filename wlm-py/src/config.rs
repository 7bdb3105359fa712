//! The run configuration from Python: a nested dict, a path to a RON file, or `None`, read
//! through serde as `wlm train` reads its RON (unknown keys and wrong types are errors naming
//! the dotted path), then checked by the library's validators.

use std::path::Path;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use wlm::RunConfig;

use crate::errors::{from_wlm, io_error, value_error};

/// The run configuration `obj` describes: `None` (the defaults), a dict (the RON schema as
/// nested dicts: structs are dicts, enum variants with data `{"Variant": {...}}`, unit
/// variants strings), or a path (`str` or `os.PathLike`) to a RON file of a `RunConfig`.
///
/// # Errors
/// `ValueError` naming the field (`config: unknown field `train.stepz``); `OSError` for an
/// unreadable file.
pub(crate) fn run_config(obj: Option<&Bound<'_, PyAny>>) -> PyResult<RunConfig> {
    let config: RunConfig = match obj {
        None => RunConfig::default(),
        Some(o) if o.is_none() => RunConfig::default(),
        Some(o) if o.cast::<PyDict>().is_ok() => {
            let value = to_json(o, "")?;
            from_value(value).map_err(|e| value_error(format!("config: {e}")))?
        }
        Some(o) => {
            let path: std::path::PathBuf = o.extract().map_err(|_| {
                value_error(format!(
                    "config: expected None, a dict or a path to a RON file, got {}",
                    type_name(o)
                ))
            })?;
            read_ron(&path)?
        }
    };
    validate(&config)?;
    Ok(config)
}

/// The library's range checks, as `wlm train` makes them.
pub(crate) fn validate(config: &RunConfig) -> PyResult<()> {
    config.model.validate().map_err(config_error)?;
    config.train.validate().map_err(config_error)?;
    config.eval.validate().map_err(config_error)
}

fn config_error(e: wlm::Error) -> PyErr {
    match e {
        wlm::Error::Config { .. } => value_error(format!("config: {e}")),
        other => from_wlm(other),
    }
}

fn read_ron(path: &Path) -> PyResult<RunConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io_error(format!("config: cannot read {}: {e}", path.display()), &e))?;
    wlm::from_ron_strict(&text).map_err(|e| value_error(format!("config: {}: {e}", path.display())))
}

/// Deserialises a JSON value, rejecting unknown fields at any depth; errors name the field's
/// dotted path.
fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let mut unknown: Vec<String> = Vec::new();
    let result = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignoring = serde_ignored::Deserializer::new(value, &mut record);
        serde_path_to_error::deserialize(ignoring)
    };
    match result {
        Ok(value) => match unknown.first() {
            Some(path) => Err(format!("unknown field `{path}`")),
            None => Ok(value),
        },
        Err(err) => {
            let path = err.path().to_string();
            if path.is_empty() || path == "." {
                Err(err.into_inner().to_string())
            } else {
                Err(format!("field `{path}`: {}", err.into_inner()))
            }
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python value as JSON, exactly (floats keep every bit); `path` names it in errors.
fn to_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    let here = || {
        if path.is_empty() {
            "config".to_string()
        } else {
            format!("config field `{path}`")
        }
    };
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(value_error(format!(
            "{}: integer {obj} is out of range",
            here()
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float_value(f.value(), &here());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, value) in d.iter() {
            let key: String = key.extract().map_err(|_| {
                value_error(format!(
                    "{}: keys must be strings, got {}",
                    here(),
                    type_name(&key)
                ))
            })?;
            let sub = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            map.insert(key, to_json(&value, &sub)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(to_json(&item?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(items));
    }
    // numpy scalars and other numbers: integers by `__index__`, then floats.
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = obj.extract::<f64>() {
        return float_value(f, &here());
    }
    Err(value_error(format!(
        "{}: unsupported value of type {}",
        here(),
        type_name(obj)
    )))
}

fn float_value(f: f64, here: &str) -> PyResult<Value> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| value_error(format!("{here}: {f} is not a finite number")))
}

/// A config as a Python dict (the same shape [`run_config`] reads).
pub(crate) fn to_py<'py>(py: Python<'py>, config: &RunConfig) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(config)
        .map_err(|e| PyOSError::new_err(format!("cannot convert the config: {e}")))?;
    value_to_py(py, &value)
}

/// A JSON value as Python objects (`null` → `None`).
pub(crate) fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, value_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

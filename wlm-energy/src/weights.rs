//! Weights: PyTorch default initialisations, a seeded `VarBuilder`, and safetensors loading by state_dict name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use wlm_numeric::SeedRng;

/// Failures of [`load_weights`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file has no tensor for a parameter of the model.
    #[error("{path}: no tensor named `{key}` (the model has a parameter of shape {shape:?})")]
    MissingKey {
        /// The safetensors file.
        path: PathBuf,
        /// The parameter's state_dict name.
        key: String,
        /// The model's shape for it.
        shape: Vec<usize>,
    },
    /// A tensor in the file has another shape than the model's parameter.
    #[error("{path}: tensor `{key}` has shape {found:?} but the model expects {expected:?}")]
    ShapeMismatch {
        /// The safetensors file.
        path: PathBuf,
        /// The parameter's state_dict name.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// Reading the file or converting a tensor failed.
    #[error("{path}: {source}")]
    Candle {
        /// The safetensors file.
        path: PathBuf,
        /// The underlying error.
        source: candle_core::Error,
    },
}

/// PyTorch's `nn.Linear` initialisation of a weight or bias: `U(±1/sqrt(fan_in))`.
pub(crate) fn linear_init(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// PyTorch's `xavier_uniform_`: `U(±sqrt(6/(fan_in + fan_out)))`.
pub(crate) fn xavier_uniform(fan_in: usize, fan_out: usize) -> Init {
    let bound = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A `VarBuilder` over `varmap` whose new variables are drawn from a seeded generator,
/// SeedRng (xoshiro256++, wlm-numeric), so that initialisation is reproducible, across
/// dependency upgrades too (candle's own CPU generator cannot be seeded). Existing
/// variables of `varmap` are returned unchanged, as with `VarBuilder::from_varmap`.
///
/// The draws follow each variable's [`Init`] (`Const`, `Uniform`, `Randn`, `Kaiming`) in the
/// order the model creates its parameters: a uniform is `lo + (up − lo) · SeedRng::uniform`,
/// a normal `mean + stdev · SeedRng::normal`.
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend = SeededVarMap {
        varmap: varmap.clone(),
        rng: Mutex::new(SeedRng::seed_from(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

struct SeededVarMap {
    varmap: VarMap,
    rng: Mutex<SeedRng>,
}

impl SeededVarMap {
    fn draw(&self, shape: &Shape, init: Init) -> candle_core::Result<Vec<f64>> {
        let n = shape.elem_count();
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("seeded var builder: poisoned lock".into()))?;
        let uniform = |rng: &mut SeedRng, lo: f64, up: f64| -> Vec<f64> {
            (0..n).map(|_| lo + (up - lo) * rng.uniform()).collect()
        };
        let normal = |rng: &mut SeedRng, mean: f64, stdev: f64| -> Vec<f64> {
            (0..n).map(|_| mean + stdev * rng.normal()).collect()
        };
        Ok(match init {
            Init::Const(c) => vec![c; n],
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    candle_nn::init::NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                    candle_nn::init::NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                }
            }
        })
    }
}

impl candle_nn::var_builder::SimpleBackend for SeededVarMap {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let existing = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("varmap: poisoned lock".into()))?
            .get(name)
            .map(|v| v.as_tensor().clone());
        if let Some(tensor) = existing {
            if tensor.shape() != &shape {
                candle_core::bail!(
                    "variable `{name}` exists with shape {:?}, requested {:?}",
                    tensor.dims(),
                    shape.dims()
                );
            }
            return Ok(tensor);
        }
        let values = self.draw(&shape, init)?;
        let tensor = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        self.varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("varmap: poisoned lock".into()))?
            .insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("seeded var builder: `{name}` must be requested with a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

/// Adds `scale · N(0, 1)` noise (`SeedRng::normal` seeded with `seed`) to every variable of
/// `varmap` whose entries are all equal (LayerNorm weights and biases, zero-initialised
/// attention biases), as the parity fixtures do, so that checks of forces and gradients cover
/// them. Returns the names changed, sorted (the order of the draws).
///
/// # Errors
/// Any tensor failure.
pub fn perturb_constant_parameters(
    varmap: &VarMap,
    scale: f64,
    seed: u64,
) -> candle_core::Result<Vec<String>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("varmap: poisoned lock".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = SeedRng::seed_from(seed);
    let mut changed = Vec::new();
    for name in names {
        let var = &data[name];
        let values = var
            .as_tensor()
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        let Some(&first) = values.first() else {
            continue;
        };
        if values.iter().any(|&v| v != first) {
            continue;
        }
        let noisy: Vec<f64> = values.iter().map(|&v| v + scale * rng.normal()).collect();
        let tensor = Tensor::from_vec(noisy, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&tensor)?;
        changed.push(name.clone());
    }
    Ok(changed)
}

/// Sets every variable of `varmap` from the safetensors file at `path`, by name (the PyTorch
/// reference's state_dict names), converting dtypes to the variables' dtype. Returns the
/// names in the file that the model does not use (e.g. `friction.theta`), sorted.
///
/// Saving needs no helper: `varmap.save(path)` writes a reference-compatible file.
///
/// # Errors
/// [`WeightsError::MissingKey`] when a parameter has no tensor in the file,
/// [`WeightsError::ShapeMismatch`] when shapes differ, [`WeightsError::Candle`] when the file
/// cannot be read. On error no variable has been changed.
pub fn load_weights(varmap: &VarMap, path: impl AsRef<Path>) -> Result<Vec<String>, WeightsError> {
    let path = path.as_ref();
    let candle_err = |source| WeightsError::Candle {
        path: path.to_path_buf(),
        source,
    };
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(path, &Device::Cpu).map_err(candle_err)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_err(candle_core::Error::Msg("varmap: poisoned lock".into())))?;
    let mut updates = Vec::with_capacity(data.len());
    for (name, var) in data.iter() {
        let Some(tensor) = tensors.get(name) else {
            return Err(WeightsError::MissingKey {
                path: path.to_path_buf(),
                key: name.clone(),
                shape: var.dims().to_vec(),
            });
        };
        if tensor.dims() != var.dims() {
            return Err(WeightsError::ShapeMismatch {
                path: path.to_path_buf(),
                key: name.clone(),
                expected: var.dims().to_vec(),
                found: tensor.dims().to_vec(),
            });
        }
        let value = tensor
            .to_dtype(var.dtype())
            .and_then(|t| t.to_device(var.device()))
            .map_err(candle_err)?;
        updates.push((var, value));
    }
    for (var, value) in updates {
        var.set(&value).map_err(candle_err)?;
    }
    let mut unused: Vec<String> = tensors
        .keys()
        .filter(|k| !data.contains_key(*k))
        .cloned()
        .collect();
    unused.sort();
    Ok(unused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_builder_is_reproducible_and_respects_bounds() -> candle_core::Result<()> {
        let draw = |seed| -> candle_core::Result<Vec<f64>> {
            let varmap = VarMap::new();
            let vb = seeded_var_builder(&varmap, seed, DType::F64, &Device::Cpu);
            let w = vb.get_with_hints((50, 4), "w", linear_init(4))?;
            let c = vb.get_with_hints(3, "c", Init::Const(1.0))?;
            assert_eq!(c.to_vec1::<f64>()?, vec![1.0; 3]);
            w.flatten_all()?.to_vec1::<f64>()
        };
        let a = draw(7)?;
        assert_eq!(a, draw(7)?);
        assert_ne!(a, draw(8)?);
        assert!(a.iter().all(|v| v.abs() <= 0.5));
        assert!(a.iter().any(|v| v.abs() > 0.4));
        Ok(())
    }

    #[test]
    fn loading_names_the_missing_key_and_the_mismatched_shape() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("w.safetensors");
        let source = VarMap::new();
        let vb = VarBuilder::from_varmap(&source, DType::F64, &Device::Cpu);
        vb.get_with_hints((2, 3), "a.weight", Init::Const(2.0))?;
        vb.get_with_hints(1, "extra", Init::Const(0.0))?;
        source.save(&path)?;

        let target = VarMap::new();
        let vb = VarBuilder::from_varmap(&target, DType::F32, &Device::Cpu);
        let a = vb.get_with_hints((2, 3), "a.weight", Init::Const(0.0))?;
        let unused = load_weights(&target, &path)?;
        assert_eq!(unused, vec!["extra".to_string()]);
        assert_eq!(a.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?, 12.0);

        let missing = VarMap::new();
        let vb = VarBuilder::from_varmap(&missing, DType::F64, &Device::Cpu);
        vb.get_with_hints(4, "b.bias", Init::Const(0.0))?;
        let err = load_weights(&missing, &path).unwrap_err();
        assert!(err.to_string().contains("b.bias"), "{err}");

        let wrong = VarMap::new();
        let vb = VarBuilder::from_varmap(&wrong, DType::F64, &Device::Cpu);
        vb.get_with_hints((3, 2), "a.weight", Init::Const(0.0))?;
        let err = load_weights(&wrong, &path).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
        Ok(())
    }
}

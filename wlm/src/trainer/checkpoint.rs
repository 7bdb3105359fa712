//! Checkpoints: one safetensors file with weights, EMA, optimiser state, step and RNG state,
//! written atomically (temporary file + rename).
//!
//! Tensor names: `param/<name>`, `ema/<name>`, `adam_m/<name>`, `adam_v/<name>`,
//! `adam_steps/<name>` (i64), `meta/step` (i64), `meta/rng` (u32 × 8, the RNG's four `u64`s
//! little-end first), `meta/blur` and `meta/wall_seconds` (f64). Parameter names are the
//! reference's state_dict names (with `friction.theta` when friction is learned).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::Trainer;
use crate::rng::TrainRng;
use crate::safetensors_file::write_safetensors;
use crate::{Error, Result};

impl Trainer {
    /// Writes the full training state to `path` atomically: a temporary file in the same
    /// directory is written, then renamed over `path`, so `path` always holds a complete
    /// checkpoint.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::File`] when writing fails.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let cpu = Device::Cpu;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (name, var) in self.model.named_parameters() {
            tensors.insert(format!("param/{name}"), var.as_tensor().to_device(&cpu)?);
        }
        for (name, shadow) in self.ema.shadows() {
            tensors.insert(format!("ema/{name}"), shadow.to_device(&cpu)?);
        }
        for slot in self.optimizer.slots() {
            tensors.insert(
                format!("adam_m/{}", slot.name),
                slot.exp_avg.to_device(&cpu)?,
            );
            tensors.insert(
                format!("adam_v/{}", slot.name),
                slot.exp_avg_sq.to_device(&cpu)?,
            );
            tensors.insert(
                format!("adam_steps/{}", slot.name),
                Tensor::new(&[slot.steps as i64], &cpu)?,
            );
        }
        tensors.insert("meta/step".into(), Tensor::new(&[self.step as i64], &cpu)?);
        let words: Vec<u32> = self
            .rng
            .state()
            .iter()
            .flat_map(|w| [(*w & 0xFFFF_FFFF) as u32, (*w >> 32) as u32])
            .collect();
        tensors.insert("meta/rng".into(), Tensor::new(words.as_slice(), &cpu)?);
        tensors.insert("meta/blur".into(), Tensor::new(&[self.blur], &cpu)?);
        tensors.insert(
            "meta/wall_seconds".into(),
            Tensor::new(&[self.wall_seconds], &cpu)?,
        );
        write_safetensors(path, &tensors)?;
        Ok(())
    }

    /// Restores the state written by [`Trainer::save_checkpoint`] into this trainer (built
    /// with the same model and training configs and data).
    ///
    /// # Errors
    /// [`Error::File`] naming the missing, mis-shaped or out-of-range tensor (an empty
    /// counter, a negative step, a non-finite weight or moment, a negative second moment, a
    /// blur that is not finite and positive); nothing useful is left in the
    /// trainer after a failure, so build a fresh one to retry.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::file(path, "checkpoint not found"));
        }
        let device = self.model.device().clone();
        let tensors = candle_core::safetensors::load(path, &device)
            .map_err(|e| Error::file(path, e.to_string()))?;
        let get = |key: &str, like: Option<&Tensor>| -> Result<Tensor> {
            let t = tensors
                .get(key)
                .ok_or_else(|| Error::file(path, format!("no tensor named `{key}`")))?;
            if let Some(like) = like {
                if t.dims() != like.dims() || t.dtype() != like.dtype() {
                    return Err(Error::file(
                        path,
                        format!(
                            "tensor `{key}` is {:?} {:?}, expected {:?} {:?}",
                            t.dtype(),
                            t.dims(),
                            like.dtype(),
                            like.dims()
                        ),
                    ));
                }
            }
            Ok(t.clone())
        };
        // One value, read as f64 (exact for the i64 counters below 2^53); an empty tensor or
        // one of several values is an error naming the key, not an index panic.
        let scalar = |key: &str| -> Result<f64> {
            let values = get(key, None)?
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            match values.as_slice() {
                [value] => Ok(*value),
                _ => Err(Error::file(
                    path,
                    format!("tensor `{key}` must hold one value, got {}", values.len()),
                )),
            }
        };
        let count = |key: &str| -> Result<u64> {
            let value = scalar(key)?;
            if !(value >= 0.0 && value.fract() == 0.0 && value <= (1u64 << 53) as f64) {
                return Err(Error::file(
                    path,
                    format!("tensor `{key}` is {value}: must be a count >= 0"),
                ));
            }
            Ok(value as u64)
        };
        // Weights and optimiser moments must be finite (the second moments also >= 0), or
        // training and evaluation would turn them into silent NaNs.
        let checked = |key: &str, like: &Tensor, non_negative: bool| -> Result<Tensor> {
            let t = get(key, Some(like))?;
            let values = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
            let bad = values
                .iter()
                .position(|v| !v.is_finite() || (non_negative && *v < 0.0));
            if let Some(i) = bad {
                let need = if non_negative {
                    "finite and >= 0"
                } else {
                    "finite"
                };
                return Err(Error::file(
                    path,
                    format!(
                        "tensor `{key}` has the value {} at flat index {i}: must be {need}",
                        values[i]
                    ),
                ));
            }
            Ok(t)
        };
        for (name, var) in self.model.named_parameters() {
            var.set(&checked(&format!("param/{name}"), var.as_tensor(), false)?)?;
            let like = var.as_tensor().clone();
            let shadow = checked(&format!("ema/{name}"), &like, false)?;
            self.ema.set_shadow(&name, shadow);
        }
        for slot in self.optimizer.slots_mut() {
            let like = slot.var.as_tensor().clone();
            slot.exp_avg = checked(&format!("adam_m/{}", slot.name), &like, false)?;
            slot.exp_avg_sq = checked(&format!("adam_v/{}", slot.name), &like, true)?;
            slot.steps = count(&format!("adam_steps/{}", slot.name))?;
        }
        self.step = usize::try_from(count("meta/step")?)
            .map_err(|_| Error::file(path, "tensor `meta/step` does not fit in usize"))?;
        let rng = get("meta/rng", None)?;
        if rng.dtype() != DType::U32 || rng.elem_count() != 8 {
            return Err(Error::file(
                path,
                format!(
                    "tensor `meta/rng` must hold 8 u32 words, got {:?} {:?}",
                    rng.dtype(),
                    rng.dims()
                ),
            ));
        }
        let words = rng.flatten_all()?.to_vec1::<u32>()?;
        let mut state = [0u64; 4];
        for (i, s) in state.iter_mut().enumerate() {
            *s = u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        }
        self.rng = TrainRng::from_state(state);
        let blur = scalar("meta/blur")?;
        if !(blur.is_finite() && blur > 0.0) {
            return Err(Error::file(
                path,
                format!("tensor `meta/blur` is {blur}: must be finite and > 0"),
            ));
        }
        self.blur = blur;
        let wall_seconds = scalar("meta/wall_seconds")?;
        if !(wall_seconds.is_finite() && wall_seconds >= 0.0) {
            return Err(Error::file(
                path,
                format!("tensor `meta/wall_seconds` is {wall_seconds}: must be finite and >= 0"),
            ));
        }
        self.wall_seconds = wall_seconds;
        Ok(())
    }
}

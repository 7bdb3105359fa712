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

use crate::rng::TrainRng;
use crate::trainer::Trainer;
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
        let file_name = path
            .file_name()
            .ok_or_else(|| Error::file(path, "checkpoint path has no file name"))?
            .to_string_lossy()
            .into_owned();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(|e| Error::file(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(())
    }

    /// Restores the state written by [`Trainer::save_checkpoint`] into this trainer (built
    /// with the same model and training configs and data).
    ///
    /// # Errors
    /// [`Error::File`] naming the missing or mis-shaped tensor; nothing useful is left in the
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
        let scalar_i64 = |key: &str| -> Result<i64> {
            Ok(get(key, None)?
                .to_dtype(DType::I64)?
                .flatten_all()?
                .to_vec1::<i64>()?[0])
        };
        let scalar_f64 = |key: &str| -> Result<f64> {
            Ok(get(key, None)?
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?[0])
        };
        for (name, var) in self.model.named_parameters() {
            var.set(&get(&format!("param/{name}"), Some(var.as_tensor()))?)?;
            let like = var.as_tensor().clone();
            let shadow = get(&format!("ema/{name}"), Some(&like))?;
            self.ema.set_shadow(&name, shadow);
        }
        for slot in self.optimizer.slots_mut() {
            let like = slot.var.as_tensor().clone();
            slot.exp_avg = get(&format!("adam_m/{}", slot.name), Some(&like))?;
            slot.exp_avg_sq = get(&format!("adam_v/{}", slot.name), Some(&like))?;
            slot.steps = scalar_i64(&format!("adam_steps/{}", slot.name))? as u64;
        }
        self.step = scalar_i64("meta/step")? as usize;
        let words = get("meta/rng", None)?.to_vec1::<u32>()?;
        if words.len() != 8 {
            return Err(Error::file(path, "tensor `meta/rng` must hold 8 words"));
        }
        let mut state = [0u64; 4];
        for (i, s) in state.iter_mut().enumerate() {
            *s = u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        }
        self.rng = TrainRng::from_state(state);
        self.blur = scalar_f64("meta/blur")?;
        self.wall_seconds = scalar_f64("meta/wall_seconds")?;
        Ok(())
    }
}

//! Dropout masks: train/eval mode and a seeded generator shared by one model's dropout sites.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use candle_core::{bail, DType, Device, Result, Tensor};
use wlm_numeric::SeedRng;

/// Dropout state of one model: probability, mode and generator (SeedRng, xoshiro256++,
/// wlm-numeric).
///
/// A mask is drawn once per site and per evaluation, and the caller keeps it, so that the
/// forward pass and the VJP of one force evaluation use the same mask.
pub(crate) struct Dropout {
    probability: f64,
    training: AtomicBool,
    rng: Mutex<SeedRng>,
}

impl Dropout {
    /// A dropout state in training mode (PyTorch's default for a new module).
    pub(crate) fn new(probability: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&probability) {
            bail!("dropout probability must be in [0, 1), got {probability}");
        }
        Ok(Dropout {
            probability,
            training: AtomicBool::new(true),
            rng: Mutex::new(SeedRng::seed_from(seed)),
        })
    }

    pub(crate) fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    pub(crate) fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    pub(crate) fn reseed(&self, seed: u64) -> Result<()> {
        *self.lock()? = SeedRng::seed_from(seed);
        Ok(())
    }

    /// Whether masks are drawn (training mode and probability > 0).
    pub(crate) fn active(&self) -> bool {
        self.probability > 0.0 && self.is_training()
    }

    /// A mask of `0` (probability `p`) and `1/(1 − p)` entries, or `None` when inactive: an
    /// entry is kept when its `SeedRng::uniform` draw is below `1 − p`, in row-major order.
    pub(crate) fn mask(
        &self,
        dims: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Tensor>> {
        if !self.active() {
            return Ok(None);
        }
        let keep = 1.0 - self.probability;
        let scale = 1.0 / keep;
        let n: usize = dims.iter().product();
        let values: Vec<f64> = {
            let mut rng = self.lock()?;
            (0..n)
                .map(|_| if rng.uniform() < keep { scale } else { 0.0 })
                .collect()
        };
        Ok(Some(
            Tensor::from_vec(values, dims, device)?.to_dtype(dtype)?,
        ))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, SeedRng>> {
        self.rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("dropout generator: poisoned lock".into()))
    }
}

/// `x ⊙ mask`, or `x` when there is no mask.
pub(crate) fn apply(x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    match mask {
        Some(m) => x * m,
        None => Ok(x.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_seeded_scaled_and_absent_in_eval_mode() -> Result<()> {
        let d = Dropout::new(0.25, 3)?;
        let m1 = d.mask(&[100, 40], DType::F64, &Device::Cpu)?.expect("mask");
        d.reseed(3)?;
        let m2 = d.mask(&[100, 40], DType::F64, &Device::Cpu)?.expect("mask");
        let a = m1.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(a, m2.flatten_all()?.to_vec1::<f64>()?);
        assert!(a.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-15));
        let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
        assert!((dropped - 0.25).abs() < 0.03, "dropped fraction {dropped}");
        d.set_training(false);
        assert!(d.mask(&[2], DType::F64, &Device::Cpu)?.is_none());
        assert!(Dropout::new(1.0, 0).is_err());
        Ok(())
    }
}

//! Exponential moving average of the model parameters, used for evaluation.

use candle_core::{Tensor, Var};

use crate::Result;

/// Shadow copies `s ← decay·s + (1 − decay)·θ` of named parameters, updated after every
/// optimiser step (no warm-up, as the reference's `EMA` class).
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    entries: Vec<(String, Var, Tensor)>,
}

impl Ema {
    /// Shadows initialised to the current values of `params`.
    ///
    /// # Errors
    /// Tensor failures copying the values.
    pub fn new(decay: f64, params: Vec<(String, Var)>) -> Result<Self> {
        let entries = params
            .into_iter()
            .map(|(name, var)| {
                let shadow = var.as_tensor().copy()?;
                Ok((name, var, shadow))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { decay, entries })
    }

    /// The decay.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// One update from the parameters' current values.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn update(&mut self) -> Result<()> {
        for (_, var, shadow) in &mut self.entries {
            *shadow = ((&*shadow * self.decay)? + (var.as_tensor() * (1.0 - self.decay))?)?;
        }
        Ok(())
    }

    /// The named shadow values.
    pub fn shadows(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, _, s)| (n.as_str(), s))
    }

    /// Replaces the shadow of `name` (checkpoint restore). Returns false if unknown.
    pub(crate) fn set_shadow(&mut self, name: &str, value: Tensor) -> bool {
        match self.entries.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => {
                entry.2 = value;
                true
            }
            None => false,
        }
    }

    /// Runs `f` with the shadow values swapped into the parameters, then restores them
    /// (also when `f` fails).
    ///
    /// # Errors
    /// Tensor failures swapping; otherwise whatever `f` returns.
    pub fn with_shadows<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let saved = self
            .entries
            .iter()
            .map(|(_, var, _)| var.as_tensor().copy())
            .collect::<candle_core::Result<Vec<_>>>()?;
        for (_, var, shadow) in &self.entries {
            var.set(shadow)?;
        }
        let out = f();
        for ((_, var, _), value) in self.entries.iter().zip(&saved) {
            var.set(value)?;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shadow_follows_the_recursion_and_swap_restores() {
        let var = Var::zeros(1, DType::F64, &Device::Cpu).unwrap();
        let mut ema = Ema::new(0.9, vec![("p".into(), var.clone())]).unwrap();
        var.set(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap())
            .unwrap();
        ema.update().unwrap();
        ema.update().unwrap();
        let (_, s) = ema.shadows().next().unwrap();
        let s = s.to_vec1::<f64>().unwrap()[0];
        assert!((s - (1.0 - 0.81)).abs() < 1e-12, "{s}");
        let inside = ema
            .with_shadows(|| Ok(var.as_tensor().to_vec1::<f64>()?[0]))
            .unwrap();
        assert!((inside - s).abs() < 1e-15);
        assert_eq!(var.as_tensor().to_vec1::<f64>().unwrap()[0], 1.0);
    }
}

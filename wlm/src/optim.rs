//! AdamW over candle [`Var`]s with parameter groups and a state that checkpoints exactly.

use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// Hyper-parameters of one AdamW parameter group (PyTorch's `torch.optim.AdamW` semantics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWGroup {
    /// Learning rate (constant).
    pub lr: f64,
    /// Decoupled weight decay: each step first scales the parameter by `1 − lr·weight_decay`.
    pub weight_decay: f64,
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// Denominator guard ε, added after the bias-corrected square root.
    pub eps: f64,
}

/// One optimised parameter with its moment estimates.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) var: Var,
    pub(crate) group: usize,
    pub(crate) exp_avg: Tensor,
    pub(crate) exp_avg_sq: Tensor,
    /// Number of updates this parameter received (PyTorch keeps one count per parameter).
    pub(crate) steps: u64,
}

/// AdamW with parameter groups.
///
/// Per parameter with gradient `g` at its `s`-th update, exactly as PyTorch:
/// `p ← p (1 − lr·wd)`, `m ← m + (1−β₁)(g − m)`, `v ← β₂ v + (1−β₂) g²`,
/// `p ← p − lr/(1−β₁ˢ) · m / (sqrt(v)/sqrt(1−β₂ˢ) + ε)`.
/// A parameter without a gradient this step is skipped entirely (no decay, no count), as
/// PyTorch does for a `None` gradient.
#[derive(Debug)]
pub struct AdamW {
    groups: Vec<AdamWGroup>,
    slots: Vec<Slot>,
}

impl AdamW {
    /// An optimiser over `params`: `(name, variable, group index)`.
    ///
    /// # Errors
    /// [`Error::Config`] for a group index out of range; tensor failures creating the state.
    pub fn new(groups: Vec<AdamWGroup>, params: Vec<(String, Var, usize)>) -> Result<Self> {
        let mut slots = Vec::with_capacity(params.len());
        for (name, var, group) in params {
            if group >= groups.len() {
                return Err(Error::config(
                    "optimizer.group",
                    format!(
                        "parameter {name} is in group {group} but there are {}",
                        groups.len()
                    ),
                ));
            }
            let exp_avg = var.as_tensor().zeros_like()?;
            let exp_avg_sq = var.as_tensor().zeros_like()?;
            slots.push(Slot {
                name,
                var,
                group,
                exp_avg,
                exp_avg_sq,
                steps: 0,
            });
        }
        Ok(Self { groups, slots })
    }

    /// The hyper-parameters of every group.
    pub fn groups(&self) -> &[AdamWGroup] {
        &self.groups
    }

    /// Names of the optimised parameters, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Applies one update. `grads[i]` is the gradient of the `i`-th parameter (constructor
    /// order) or `None` to skip it.
    ///
    /// # Errors
    /// Tensor failures (a gradient of the wrong shape).
    pub fn step(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        for (slot, grad) in self.slots.iter_mut().zip(grads) {
            let Some(grad) = grad else { continue };
            let hp = self.groups[slot.group];
            slot.steps += 1;
            let p = slot.var.as_tensor();
            let p = if hp.weight_decay != 0.0 {
                p.affine(1.0 - hp.lr * hp.weight_decay, 0.0)?
            } else {
                p.clone()
            };
            slot.exp_avg = (&slot.exp_avg + ((grad - &slot.exp_avg)? * (1.0 - hp.beta1))?)?;
            slot.exp_avg_sq = ((&slot.exp_avg_sq * hp.beta2)? + (grad.sqr()? * (1.0 - hp.beta2))?)?;
            let s = slot.steps as i32;
            let bias1 = 1.0 - hp.beta1.powi(s);
            let bias2_sqrt = (1.0 - hp.beta2.powi(s)).sqrt();
            let denom = ((slot.exp_avg_sq.sqrt()? / bias2_sqrt)? + hp.eps)?;
            let update = ((&slot.exp_avg / denom)? * (hp.lr / bias1))?;
            slot.var.set(&(p - update)?)?;
        }
        Ok(())
    }

    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub(crate) fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn group(lr: f64, wd: f64) -> AdamWGroup {
        AdamWGroup {
            lr,
            weight_decay: wd,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    #[test]
    fn first_step_moves_each_coordinate_by_about_lr_against_the_gradient_sign() {
        let var = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0], &Device::Cpu).unwrap()).unwrap();
        let mut opt =
            AdamW::new(vec![group(0.1, 0.0)], vec![("p".into(), var.clone(), 0)]).unwrap();
        let g = Tensor::new(&[3.0f64, -0.5], &Device::Cpu).unwrap();
        opt.step(&[Some(g)]).unwrap();
        let p = var.as_tensor().to_vec1::<f64>().unwrap();
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
        assert!((p[1] + 1.9).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn decoupled_weight_decay_shrinks_with_zero_gradient() {
        let var = Var::ones(2, DType::F64, &Device::Cpu).unwrap();
        let mut opt =
            AdamW::new(vec![group(0.1, 0.5)], vec![("p".into(), var.clone(), 0)]).unwrap();
        opt.step(&[Some(Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap())])
            .unwrap();
        let p = var.as_tensor().to_vec1::<f64>().unwrap();
        assert!((p[0] - 0.95).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn parameter_without_gradient_is_untouched() {
        let var = Var::ones(2, DType::F64, &Device::Cpu).unwrap();
        let mut opt =
            AdamW::new(vec![group(0.1, 0.5)], vec![("p".into(), var.clone(), 0)]).unwrap();
        opt.step(&[None]).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f64>().unwrap(), vec![1.0, 1.0]);
        assert_eq!(opt.slots()[0].steps, 0);
    }

    #[test]
    fn bad_group_index_is_an_error() {
        let var = Var::ones(2, DType::F64, &Device::Cpu).unwrap();
        assert!(AdamW::new(vec![group(0.1, 0.0)], vec![("p".into(), var, 3)]).is_err());
    }
}

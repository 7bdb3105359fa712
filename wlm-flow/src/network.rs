//! The velocity network `v_θ(x, time features)`: an MLP with SiLU, weights drawn from
//! [`SeedRng`] (PyTorch's `nn.Linear` initialisation, `U(−1/√fan_in, 1/√fan_in)`).

use candle_core::{DType, Device, Tensor, Var};
use wlm_numeric::SeedRng;

use crate::config::NetworkConfig;
use crate::error::Result;

/// An MLP `[x, features] → v` with SiLU between layers, f32.
#[derive(Debug)]
pub struct VelocityNet {
    /// `(name, weight (in, out), bias (out,))` per layer.
    layers: Vec<(String, Var, Var)>,
    dim: usize,
    n_features: usize,
}

impl VelocityNet {
    /// A network for `dim`-dimensional points and `n_features` time inputs, its weights drawn
    /// from `rng`.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn new(
        config: &NetworkConfig,
        dim: usize,
        n_features: usize,
        rng: &mut SeedRng,
        device: &Device,
    ) -> Result<Self> {
        let mut sizes = vec![dim + n_features];
        sizes.extend(std::iter::repeat_n(config.width, config.hidden_layers));
        sizes.push(dim);
        let mut layers = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let (fan_in, fan_out) = (w[0], w[1]);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                    .collect()
            };
            let weight = Tensor::from_vec(draw(fan_in * fan_out), (fan_in, fan_out), device)?;
            let bias = Tensor::from_vec(draw(fan_out), fan_out, device)?;
            layers.push((
                format!("layers.{i}"),
                Var::from_tensor(&weight)?,
                Var::from_tensor(&bias)?,
            ));
        }
        Ok(Self {
            layers,
            dim,
            n_features,
        })
    }

    /// The data dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of time inputs.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// `v_θ` at the rows of `x` with time inputs `features`.
    ///
    /// # Shapes
    /// `x`: `(n, dim)` f32, `features`: `(n, n_features)` f32 → `(n, dim)`.
    ///
    /// # Errors
    /// Tensor failures (e.g. wrong shapes).
    pub fn forward(&self, x: &Tensor, features: &Tensor) -> Result<Tensor> {
        let mut h = Tensor::cat(&[x, features], 1)?;
        let last = self.layers.len() - 1;
        for (i, (_, w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            if i < last {
                h = candle_nn::ops::silu(&h)?;
            }
        }
        Ok(h)
    }

    /// The parameters with their names (`layers.{i}.weight`, `layers.{i}.bias`).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .flat_map(|(name, w, b)| {
                [
                    (format!("{name}.weight"), w.clone()),
                    (format!("{name}.bias"), b.clone()),
                ]
            })
            .collect()
    }

    /// Sets every parameter from `tensors` (names as [`VelocityNet::named_vars`]).
    ///
    /// # Errors
    /// A missing name or a shape mismatch, as a tensor error naming the parameter.
    pub fn set_values(&self, tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.named_vars() {
            let value = tensors.get(&name).ok_or_else(|| {
                candle_core::Error::Msg(format!("no tensor `{name}` in the weights"))
            })?;
            if value.dims() != var.dims() {
                return Err(candle_core::Error::Msg(format!(
                    "weights `{name}` have shape {:?}, the network needs {:?}",
                    value.dims(),
                    var.dims()
                ))
                .into());
            }
            var.set(&value.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

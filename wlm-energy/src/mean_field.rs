//! The mean-field energy `E = Σ_i U(x_i) + (1/N) Σ_{i≠j} w(|x_i − x_j|²)` with small SiLU MLPs `U`, `w`.

use candle_core::{bail, DType, Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::energy::{check_positions, check_time, Energy};
use crate::layers::activation::silu;
use crate::layers::linear::Linear;

/// Sizes of a [`MeanFieldEnergy`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanFieldEnergyConfig {
    /// Spatial dimension `d`. Default 2.
    pub dim: usize,
    /// Width of the hidden layers of `U` and `w`. Default 32.
    pub hidden: usize,
    /// Number of hidden layers of each MLP (≥ 1). Default 2.
    pub layers: usize,
}

impl Default for MeanFieldEnergyConfig {
    fn default() -> Self {
        MeanFieldEnergyConfig {
            dim: 2,
            hidden: 32,
            layers: 2,
        }
    }
}

impl MeanFieldEnergyConfig {
    /// Creates the parameters through `vb`: `confinement.{0,2,…}` (the MLP `U: R^d → R`) and
    /// `interaction.{0,2,…}` (the MLP `w: R → R`, `W(r) = w(|r|²)`), Linear layers with
    /// PyTorch's default initialisation and SiLU in between.
    ///
    /// # Errors
    /// A zero size; `vb` failures.
    pub fn init(&self, vb: VarBuilder) -> Result<MeanFieldEnergy> {
        if self.dim == 0 || self.hidden == 0 || self.layers == 0 {
            bail!(
                "mean-field energy: dim, hidden and layers must be at least 1, got {}, {}, {}",
                self.dim,
                self.hidden,
                self.layers
            );
        }
        Ok(MeanFieldEnergy {
            config: self.clone(),
            confinement: Mlp::new(vb.pp("confinement"), self.dim, self.hidden, self.layers)?,
            interaction: Mlp::new(vb.pp("interaction"), 1, self.hidden, self.layers)?,
        })
    }
}

/// `Linear → SiLU → … → Linear(hidden, 1)`.
#[derive(Clone, Debug)]
struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(vb: VarBuilder, input: usize, hidden: usize, hidden_layers: usize) -> Result<Self> {
        let mut layers = Vec::with_capacity(hidden_layers + 1);
        let mut width = input;
        for i in 0..hidden_layers {
            layers.push(Linear::new(vb.pp(2 * i), width, hidden)?);
            width = hidden;
        }
        layers.push(Linear::new(vb.pp(2 * hidden_layers), width, 1)?);
        Ok(Mlp { layers })
    }

    /// Outputs `(m, 1)` and the pre-activations of the hidden layers.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        let mut pre = Vec::with_capacity(self.layers.len() - 1);
        let mut h = x.clone();
        for layer in &self.layers[..self.layers.len() - 1] {
            let z = layer.forward(&h)?;
            h = silu(&z)?;
            pre.push(z);
        }
        let out = self.layers[self.layers.len() - 1].forward(&h)?;
        Ok((out, pre))
    }

    /// Gradient of `Σ_rows out` with respect to each row's input, `(m, input)`.
    fn input_gradient(&self, pre: &[Tensor], m: usize) -> Result<Tensor> {
        let last = &self.layers[self.layers.len() - 1];
        let mut g = last
            .weight
            .broadcast_as((m, last.weight.dim(1)?))?
            .contiguous()?;
        for (layer, z) in self.layers[..self.layers.len() - 1].iter().zip(pre).rev() {
            g = layer.vjp(&silu_vjp(z, &g)?)?;
        }
        Ok(g)
    }
}

/// `g ⊙ s(z)(1 + z(1 − s(z)))`.
fn silu_vjp(z: &Tensor, g: &Tensor) -> Result<Tensor> {
    let s = (z.neg()?.exp()? + 1.0)?.recip()?;
    g * (&s * ((z * s.affine(-1.0, 1.0)?)? + 1.0)?)?
}

/// `E = Σ_i U(x_i) + (1/N) Σ_{i≠j} w(|x_i − x_j|²)`; force
/// `−∇U(x_i) − (4/N) Σ_j w'(|x_i − x_j|²)(x_i − x_j)`. Time-independent. Cost and memory are
/// `O(N² · hidden)` (every pair goes through `w`).
pub struct MeanFieldEnergy {
    config: MeanFieldEnergyConfig,
    confinement: Mlp,
    interaction: Mlp,
}

impl std::fmt::Debug for MeanFieldEnergy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeanFieldEnergy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MeanFieldEnergy {
    /// The sizes this model was built with.
    pub fn config(&self) -> &MeanFieldEnergyConfig {
        &self.config
    }

    fn param_dtype(&self) -> DType {
        self.confinement.layers[0].weight.dtype()
    }

    /// Pair differences `(n, n, d)` and squared distances as a column `(n², 1)`.
    fn pairs(x: &Tensor, n: usize) -> Result<(Tensor, Tensor)> {
        let diff = x.unsqueeze(1)?.broadcast_sub(&x.unsqueeze(0)?)?;
        let sq = diff.sqr()?.sum(D::Minus1)?.reshape((n * n, 1))?;
        Ok((diff, sq))
    }
}

impl Energy for MeanFieldEnergy {
    fn energy(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let n = check_positions(x, self.config.dim, self.param_dtype(), "mean-field energy")?;
        check_time(t, "mean-field energy")?;
        let (u, _) = self.confinement.forward(x)?;
        let (_, sq) = Self::pairs(x, n)?;
        let (w, _) = self.interaction.forward(&sq)?;
        let off_diagonal = (Tensor::ones((n, n), x.dtype(), x.device())?
            - Tensor::eye(n, x.dtype(), x.device())?)?
        .reshape((n * n, 1))?;
        let pair = ((w * off_diagonal)?.sum_all()? / n as f64)?;
        u.sum_all()? + pair
    }

    fn force(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let n = check_positions(x, self.config.dim, self.param_dtype(), "mean-field force")?;
        check_time(t, "mean-field force")?;
        let (_, pre_u) = self.confinement.forward(x)?;
        let grad_u = self.confinement.input_gradient(&pre_u, n)?;
        let (diff, sq) = Self::pairs(x, n)?;
        let (_, pre_w) = self.interaction.forward(&sq)?;
        // w'(s_ij), (n, n); the diagonal multiplies x_i − x_i = 0.
        let w_prime = self
            .interaction
            .input_gradient(&pre_w, n * n)?
            .reshape((n, n))?;
        let pair = diff.broadcast_mul(&w_prime.unsqueeze(2)?)?.sum(1)?;
        let grad = (grad_u + (pair * (4.0 / n as f64))?)?;
        grad.neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{entry_rel, force_vs_autograd, random};
    use crate::weights::seeded_var_builder;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn mean_field_force_matches_autograd_of_energy() -> Result<()> {
        for &dim in &[1usize, 2, 5] {
            let varmap = VarMap::new();
            let vb = seeded_var_builder(&varmap, 4, DType::F64, &Device::Cpu);
            let config = MeanFieldEnergyConfig {
                dim,
                hidden: 8,
                layers: 2,
            };
            let energy = config.init(vb)?;
            for &n in &[1usize, 2, 17] {
                let x = random(&[n, dim], 5, -2.0, 2.0)?;
                let err = force_vs_autograd(&energy, &x, 0.0)?;
                assert!(err < 1e-11, "d={dim} n={n}: {err}");
            }
        }
        Ok(())
    }

    #[test]
    fn mean_field_pair_term_is_symmetric_under_permutation() -> Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 4, DType::F64, &Device::Cpu);
        let energy = MeanFieldEnergyConfig::default().init(vb)?;
        let x = random(&[6, 2], 1, -1.0, 1.0)?;
        let perm = Tensor::new(&[3u32, 0, 5, 1, 4, 2], &Device::Cpu)?;
        let xp = x.index_select(&perm, 0)?;
        let e = energy.energy(&x, 0.0)?.to_scalar::<f64>()?;
        let ep = energy.energy(&xp, 0.0)?.to_scalar::<f64>()?;
        assert!((e - ep).abs() < 1e-12 * e.abs().max(1.0));
        let f = energy.force(&x, 0.0)?.index_select(&perm, 0)?;
        assert!(entry_rel(&energy.force(&xp, 0.0)?, &f)? < 1e-12);
        Ok(())
    }

    #[test]
    fn zero_sizes_are_errors() {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 4, DType::F64, &Device::Cpu);
        let err = MeanFieldEnergyConfig {
            layers: 0,
            ..Default::default()
        }
        .init(vb)
        .unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}

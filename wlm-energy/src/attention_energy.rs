//! The attention energy of METHOD.md §2.1 (the reference's `attn_flow` model): config, initialisation, energy and force.

use candle_core::{bail, DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::dropout::Dropout;
use crate::energy::{check_positions, check_time, Energy, ForceTape};
use crate::kernels::float::Float;
use crate::kernels::{broadcast, Kernels};
use crate::layers::block::{FlowBlock, FlowBlockCache};
use crate::layers::linear::Linear;
use crate::layers::time_mlp::{TimeMlp, TIME_FEATURES};
use crate::native::{NativeModel, NativeNet, NativeTape, NativeWeights};
use crate::weights::seeded_var_builder;
use std::any::Any;
use std::sync::{Arc, Mutex};

/// Sizes of an [`AttentionEnergy`]. Defaults are the reference's GF-SDE/Boids sizes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionEnergyConfig {
    /// Spatial dimension `d` of the particles. Default 2.
    pub dim: usize,
    /// Attention heads; must divide `hidden`. Default 4.
    pub heads: usize,
    /// Hidden width `H`. Default 64.
    pub hidden: usize,
    /// Number of pre-LayerNorm blocks `L`. Default 4.
    pub blocks: usize,
    /// Feed-forward width `F`. Default 512.
    pub ff: usize,
    /// Concatenate 16 time features `Linear(16,16)(SiLU(Linear(1,16)(t)))` after the
    /// coordinates. Default false.
    pub time_features: bool,
    /// Dropout probability in `[0, 1)` on the attention weights and after the feed-forward
    /// GELU and output (training mode only). Default 0.
    pub dropout: f64,
}

impl Default for AttentionEnergyConfig {
    fn default() -> Self {
        AttentionEnergyConfig {
            dim: 2,
            heads: 4,
            hidden: 64,
            blocks: 4,
            ff: 512,
            time_features: false,
            dropout: 0.0,
        }
    }
}

impl AttentionEnergyConfig {
    /// Width of the input projection's input: `dim` (+ 16 with time features).
    pub fn input_dim(&self) -> usize {
        self.dim + if self.time_features { TIME_FEATURES } else { 0 }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// A zero size, `hidden` not divisible by `heads`, or `dropout` outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("dim", self.dim),
            ("heads", self.heads),
            ("hidden", self.hidden),
            ("ff", self.ff),
        ] {
            if value == 0 {
                bail!("attention energy: {name} must be at least 1, got 0");
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            bail!(
                "attention energy: hidden size {} is not divisible by heads {}",
                self.hidden,
                self.heads
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!(
                "attention energy: dropout must be in [0, 1), got {}",
                self.dropout
            );
        }
        Ok(())
    }

    /// Number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        let (h, f) = (self.hidden, self.ff);
        let time = if self.time_features {
            2 * TIME_FEATURES + TIME_FEATURES * TIME_FEATURES + TIME_FEATURES
        } else {
            0
        };
        let block = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h);
        time + (self.input_dim() * h + h) + self.blocks * block + (h + 1)
    }

    /// Creates the parameters through `vb` under the reference's state_dict names
    /// (`time_mlp.0.weight`, `input_projection.weight`, `flow_layers.0.norm1.weight`,
    /// `flow_layers.0.self_attn.in_proj_weight`, …, `output_projection.bias`) with PyTorch's
    /// default initialisation. With a `VarMap` behind `vb`, `varmap.save(path)` writes a
    /// reference-compatible safetensors file and [`crate::load_weights`] reads one. The model
    /// starts in training mode (PyTorch's default) with dropout seed 0 and fused kernels.
    ///
    /// # Errors
    /// [`AttentionEnergyConfig::validate`] failures; `vb` failures (e.g. a loaded tensor of
    /// another shape).
    pub fn init(&self, vb: VarBuilder) -> Result<AttentionEnergy> {
        self.init_inner(vb)
    }

    /// A fresh `VarMap` and a model initialised in it from a seeded generator
    /// ([`crate::seeded_var_builder`]): reproducible PyTorch-default initialisation.
    ///
    /// # Errors
    /// As [`AttentionEnergyConfig::init`].
    pub fn init_seeded(
        &self,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<(AttentionEnergy, VarMap)> {
        let varmap = VarMap::new();
        let energy = self.init(seeded_var_builder(&varmap, seed, dtype, device))?;
        Ok((energy, varmap))
    }

    fn init_inner(&self, vb: VarBuilder) -> Result<AttentionEnergy> {
        self.validate()?;
        let time_mlp = if self.time_features {
            Some(TimeMlp::new(vb.pp("time_mlp"))?)
        } else {
            None
        };
        let input_projection =
            Linear::new(vb.pp("input_projection"), self.input_dim(), self.hidden)?;
        let blocks = (0..self.blocks)
            .map(|i| {
                FlowBlock::new(
                    vb.pp(format!("flow_layers.{i}")),
                    self.hidden,
                    self.heads,
                    self.ff,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let output_projection = Linear::new(vb.pp("output_projection"), self.hidden, 1)?;
        Ok(AttentionEnergy {
            config: self.clone(),
            time_mlp,
            input_projection,
            blocks,
            output_projection,
            dropout: Dropout::new(self.dropout, 0)?,
            kernels: Kernels::default(),
            native_weights: Mutex::new(None),
        })
    }
}

/// The attention energy `E(X, t) = Σ_i out_i`, `out = Linear(H,1)(blocks(Linear(in,H)(z)))`.
///
/// Built by [`AttentionEnergyConfig::init`]. The parameters are the `VarBuilder`'s tensors, so
/// updating the variables of a `VarMap` updates the model.
pub struct AttentionEnergy {
    config: AttentionEnergyConfig,
    pub(crate) time_mlp: Option<TimeMlp>,
    pub(crate) input_projection: Linear,
    pub(crate) blocks: Vec<FlowBlock>,
    pub(crate) output_projection: Linear,
    dropout: Dropout,
    kernels: Kernels,
    /// The native path's copy of the parameters (a `NativeWeights<f32 or f64>`), reused while
    /// the parameters are unchanged.
    native_weights: NativeCache,
}

type NativeCache = Mutex<Option<Arc<dyn Any + Send + Sync>>>;

impl std::fmt::Debug for AttentionEnergy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttentionEnergy")
            .field("config", &self.config)
            .field("kernels", &self.kernels)
            .field("training", &self.dropout.is_training())
            .finish_non_exhaustive()
    }
}

impl AttentionEnergy {
    /// The sizes this model was built with.
    pub fn config(&self) -> &AttentionEnergyConfig {
        &self.config
    }

    /// Which kernels run ([`Kernels::Fused`] by default).
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Selects the kernels; [`Kernels::Plain`] keeps every op differentiable by candle's
    /// autograd.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Builder form of [`AttentionEnergy::set_kernels`].
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Training mode (dropout active when `dropout > 0`) or evaluation mode.
    pub fn set_training(&self, training: bool) {
        self.dropout.set_training(training);
    }

    /// Whether the model is in training mode.
    pub fn is_training(&self) -> bool {
        self.dropout.is_training()
    }

    /// Reseeds the dropout generator.
    ///
    /// # Errors
    /// Only if the generator's lock was poisoned by a panic elsewhere.
    pub fn seed_dropout(&self, seed: u64) -> Result<()> {
        self.dropout.reseed(seed)
    }

    /// Per-particle outputs `out_i` (the reference's `model(x, t)[0]`).
    ///
    /// # Shapes
    /// `x`: `(n_particles, dim)` → `(n_particles,)`.
    ///
    /// # Errors
    /// As [`Energy::energy`].
    pub fn per_particle_energy(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let (h, _) = self.hidden_states(x, t, "per_particle_energy", false)?;
        self.output_projection
            .forward_with(&h, self.kernels)?
            .squeeze(1)
    }

    /// `z = [x, τ(t)]`, `h = blocks(z W_inᵀ + b_in)`, with the blocks' caches (keeping the
    /// attention probabilities for the VJP when `for_force`).
    fn hidden_states(
        &self,
        x: &Tensor,
        t: f64,
        what: &str,
        for_force: bool,
    ) -> Result<(Tensor, Vec<FlowBlockCache>)> {
        let param_dtype = self.input_projection.weight.dtype();
        let n = check_positions(x, self.config.dim, param_dtype, what)?;
        check_time(t, what)?;
        let z = match &self.time_mlp {
            Some(mlp) => {
                let tau = mlp.forward(t, x.dtype(), x.device())?;
                Tensor::cat(&[x, &tau.broadcast_as((n, TIME_FEATURES))?], 1)?
            }
            None => x.clone(),
        };
        let mut h = self.input_projection.forward_with(&z, self.kernels)?;
        let mut caches = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (next, cache) = block.forward(&h, self.kernels, &self.dropout, for_force)?;
            h = next;
            caches.push(cache);
        }
        Ok((h, caches))
    }
}

impl AttentionEnergy {
    /// The dtype of the native path for `x` (checked), or `None` where it does not apply.
    fn native_dtype(&self, x: &Tensor, what: &str) -> Result<Option<DType>> {
        let param_dtype = self.input_projection.weight.dtype();
        check_positions(x, self.config.dim, param_dtype, what)?;
        let native = self.kernels == Kernels::Fused
            && !self.dropout.active()
            && x.device().is_cpu()
            && matches!(param_dtype, DType::F32 | DType::F64);
        Ok(native.then_some(param_dtype))
    }

    /// The sizes, parameters (in [`NativeModel::parameters`]' order) and time MLP that the
    /// native path reads.
    fn native_model(&self) -> NativeModel<'_> {
        let model = self;
        let config = self.config();
        let parameters = {
            let mut out = vec![&model.input_projection.weight, &model.input_projection.bias];
            for b in &model.blocks {
                let attn = &b.self_attn;
                out.extend([
                    &b.norm1.weight,
                    &b.norm1.bias,
                    &attn.in_proj_weight,
                    &attn.in_proj_bias,
                    &attn.out_proj.weight,
                    &attn.out_proj.bias,
                    &b.norm2.weight,
                    &b.norm2.bias,
                    &b.ffn.up.weight,
                    &b.ffn.up.bias,
                    &b.ffn.down.weight,
                    &b.ffn.down.bias,
                ]);
            }
            out.extend([
                &model.output_projection.weight,
                &model.output_projection.bias,
            ]);
            out
        };
        NativeModel {
            dim: config.dim,
            input_dim: config.input_dim(),
            hidden: config.hidden,
            heads: config.heads,
            ff: config.ff,
            parameters,
            time_mlp: self.time_mlp.as_ref(),
        }
    }

    /// The cached [`NativeWeights`] if the parameters are unchanged, else fresh ones.
    fn native_weights<T: Float>(&self, model: &NativeModel<'_>) -> Result<Arc<NativeWeights<T>>> {
        let cached = self.native_weights.lock().ok().and_then(|g| g.clone());
        if let Some(Ok(weights)) = cached.map(|c| c.downcast::<NativeWeights<T>>()) {
            if weights.matches(model)? {
                return Ok(weights);
            }
        }
        let weights = Arc::new(NativeWeights::<T>::new(model)?);
        if let Ok(mut guard) = self.native_weights.lock() {
            *guard = Some(weights.clone());
        }
        Ok(weights)
    }

    /// The energy (`force = false`, rank 0) or force at `x` with no graph: the native path
    /// (`native.rs`) with the fused kernels and no active dropout on the CPU in f32 or f64,
    /// run as one job of the thread pool (its row-parallel passes then wake no sleeping
    /// caller); otherwise the graph path, detached.
    fn detached(&self, x: &Tensor, t: f64, force: bool) -> Result<Tensor> {
        let what = if force { "force" } else { "energy" };
        check_time(t, what)?;
        match self.native_dtype(x, what)? {
            Some(DType::F32) => self.native::<f32>(x, t, force),
            Some(_) => self.native::<f64>(x, t, force),
            None if force => Ok(self.force(&x.detach(), t)?.detach()),
            None => Ok(self.energy(&x.detach(), t)?.detach()),
        }
    }

    /// [`Energy::force_tape`] in `T`.
    fn native_tape<T: Float>(&self, x: &Tensor, t: f64) -> Result<ForceTape> {
        let model = self.native_model();
        let weights = self.native_weights::<T>(&model)?;
        let (force, tape) = NativeTape::record(&model, weights, x, t)?;
        let force = Tensor::from_vec(force, x.shape(), x.device())?;
        let bytes = tape.bytes();
        Ok(ForceTape::new(force, bytes, Box::new(tape)))
    }

    /// The native energy or force (as [`AttentionEnergy::detached`]) in `T`.
    fn native<T: Float>(&self, x: &Tensor, t: f64, force: bool) -> Result<Tensor> {
        let model = self.native_model();
        let weights = self.native_weights::<T>(&model)?;
        let net = NativeNet::new(&model, &weights, x.dim(0)?, t)?;
        let xs = x.flatten_all()?.to_vec1::<T>()?;
        if force {
            let f = rayon::scope(|_| net.force(&xs));
            Tensor::from_vec(f, x.shape(), x.device())
        } else {
            let e = rayon::scope(|_| net.energy(&xs));
            Tensor::new(e, x.device())
        }
    }
}

impl Energy for AttentionEnergy {
    fn energy(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let (h, _) = self.hidden_states(x, t, "energy", false)?;
        self.output_projection
            .forward_with(&h, self.kernels)?
            .sum_all()
    }

    /// `dE/dh_L` = every row `W_out`; then the blocks' VJPs in reverse; then the input
    /// projection's VJP restricted to the coordinate columns; the force is its negation.
    fn force(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let (h, caches) = self.hidden_states(x, t, "force", true)?;
        let w_out = &self.output_projection.weight;
        let mut g = match self.kernels {
            Kernels::Plain => w_out.broadcast_as(h.shape())?.contiguous()?,
            Kernels::Fused => broadcast::mul_row(&h.ones_like()?, &w_out.squeeze(0)?)?,
        };
        for (block, cache) in self.blocks.iter().zip(&caches).rev() {
            g = block.vjp(cache, &g, self.kernels)?;
        }
        self.input_projection
            .vjp_leading_columns(&g, self.config.dim)?
            .neg()
    }

    /// See `AttentionEnergy::detached`: the graph-free native path where it applies.
    fn energy_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        self.detached(x, t, false)
    }

    /// See `AttentionEnergy::detached`: the graph-free native path where it applies.
    fn force_detached(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        self.detached(x, t, true)
    }

    /// The attention probabilities that the fused kernels keep for the VJP:
    /// `blocks · heads · n²` values when kept (fused kernels, no active dropout, `heads · n²`
    /// at most 2²⁴), else 0.
    fn force_tape(&self, x: &Tensor, t: f64) -> Result<Option<ForceTape>> {
        check_time(t, "force")?;
        if self.blocks.is_empty() {
            return Ok(None);
        }
        match self.native_dtype(x, "force")? {
            Some(DType::F32) => self.native_tape::<f32>(x, t).map(Some),
            Some(_) => self.native_tape::<f64>(x, t).map(Some),
            None => Ok(None),
        }
    }

    fn force_graph_hidden_bytes(&self, n_particles: usize) -> u64 {
        let keeps = |block: &FlowBlock| {
            self.kernels == Kernels::Fused
                && !self.dropout.active()
                && block.self_attn.keeps_probabilities(n_particles)
        };
        let size = self.input_projection.weight.dtype().size_in_bytes();
        self.blocks
            .iter()
            .filter(|b| keeps(b))
            .map(|b| (b.self_attn.heads() * n_particles * n_particles * size) as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{entry_rel, force_vs_autograd, perturbed_model, random, small_config};

    fn model(config: &AttentionEnergyConfig, seed: u64) -> Result<(AttentionEnergy, VarMap)> {
        let (energy, varmap) = perturbed_model(config, seed, DType::F64)?;
        Ok((energy.with_kernels(Kernels::Plain), varmap))
    }

    #[test]
    fn force_matches_autograd_of_energy() -> Result<()> {
        for &heads in &[1usize, 4] {
            for &time_features in &[false, true] {
                for &dim in &[1usize, 2, 5] {
                    let config = small_config(dim, heads, 2, time_features);
                    let (energy, _varmap) = model(&config, 7)?;
                    for &n in &[1usize, 2, 17, 64] {
                        let x = random(&[n, dim], n as u64, -2.0, 2.0)?;
                        let err = force_vs_autograd(&energy, &x, 0.3)?;
                        assert!(
                            err < 1e-10,
                            "heads={heads} time={time_features} d={dim} n={n}: {err}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn fused_kernels_equal_plain_kernels_in_f64() -> Result<()> {
        let config = small_config(3, 2, 2, true);
        let (mut energy, _varmap) = model(&config, 3)?;
        let x = random(&[29, 3], 1, -2.0, 2.0)?;
        let plain_e = energy.energy(&x, 0.5)?;
        let plain_f = energy.force(&x, 0.5)?;
        energy.set_kernels(Kernels::Fused);
        assert!(entry_rel(&energy.energy(&x, 0.5)?, &plain_e)? < 1e-13);
        assert!(entry_rel(&energy.force(&x, 0.5)?, &plain_f)? < 1e-12);
        Ok(())
    }

    #[test]
    fn hidden_graph_bytes_count_the_kept_probabilities() -> Result<()> {
        let (mut energy, _) =
            AttentionEnergyConfig::default().init_seeded(0, DType::F32, &Device::Cpu)?;
        energy.set_training(false);
        assert_eq!(
            energy.force_graph_hidden_bytes(1000),
            4 * 4 * 1000 * 1000 * 4
        );
        assert_eq!(energy.force_graph_hidden_bytes(5000), 0);
        energy.set_kernels(Kernels::Plain);
        assert_eq!(energy.force_graph_hidden_bytes(1000), 0);
        Ok(())
    }

    #[test]
    fn parameter_count_matches_the_variables() -> Result<()> {
        for time_features in [false, true] {
            let config = AttentionEnergyConfig {
                time_features,
                ..AttentionEnergyConfig::default()
            };
            let (_, varmap) = model(&config, 1)?;
            let total: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
            assert_eq!(total, config.parameter_count());
        }
        // The parity fixture `small` has 1233 parameters.
        let small = AttentionEnergyConfig {
            dim: 2,
            heads: 2,
            hidden: 8,
            blocks: 2,
            ff: 16,
            time_features: false,
            dropout: 0.0,
        };
        assert_eq!(small.parameter_count(), 1233);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_values() -> Result<()> {
        let config = AttentionEnergyConfig {
            hidden: 8,
            ff: 8,
            blocks: 1,
            ..AttentionEnergyConfig::default()
        };
        let (energy, _) = model(&config, 1)?;
        let x = random(&[4, 3], 1, -1.0, 1.0)?;
        let err = energy.force(&x, 0.0).unwrap_err();
        assert!(err.to_string().contains("dim 3"), "{err}");
        let x32 = random(&[4, 2], 1, -1.0, 1.0)?.to_dtype(DType::F32)?;
        let err = energy.energy(&x32, 0.0).unwrap_err();
        assert!(err.to_string().contains("F32"), "{err}");
        let bad = AttentionEnergyConfig {
            hidden: 10,
            ..config.clone()
        };
        let varmap = VarMap::new();
        let err = bad
            .init(seeded_var_builder(&varmap, 0, DType::F64, &Device::Cpu))
            .unwrap_err();
        assert!(err.to_string().contains("not divisible"), "{err}");
        let bad = AttentionEnergyConfig {
            dropout: 1.0,
            ..config
        };
        assert!(bad.validate().is_err());
        Ok(())
    }
}

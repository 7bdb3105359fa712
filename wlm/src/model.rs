//! The mechanics model: an energy network, friction and an integrator, with its parameters in
//! one `VarMap` under the reference's state_dict names.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarMap};
use serde::{Deserialize, Serialize};
use wlm_energy::{
    AnalyticPotential, AttentionEnergyConfig, DetachedEnergyField, Energy, EnergyField,
    MeanFieldEnergyConfig,
};
use wlm_integrate::{Integrator, State};

use crate::{Error, Result};

/// Name of the learned friction parameter `θ_γ` (`γ = exp θ_γ`) in the `VarMap` and in
/// checkpoints, as in the parity fixtures.
pub const FRICTION_PARAMETER: &str = "friction.theta";

/// Floating-point precision of the parameters and the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// 32-bit floats (default for training).
    #[default]
    F32,
    /// 64-bit floats (tests, parity).
    F64,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }
}

/// Which potential-energy network the model uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EnergyConfig {
    /// The paper's attention energy (METHOD.md §2.1).
    Attention(AttentionEnergyConfig),
    /// The mean-field energy `Σ U(x_i) + (1/N) Σ W(x_i − x_j)` (lighter, interpretable).
    MeanField(MeanFieldEnergyConfig),
    /// A fixed analytic potential (no parameters): known-truth simulations and tests.
    Analytic {
        /// The potential.
        potential: AnalyticPotential,
        /// Spatial dimension.
        dim: usize,
    },
}

impl Default for EnergyConfig {
    fn default() -> Self {
        EnergyConfig::Attention(AttentionEnergyConfig::default())
    }
}

impl EnergyConfig {
    /// Spatial dimension of the particles.
    pub fn dim(&self) -> usize {
        match self {
            EnergyConfig::Attention(c) => c.dim,
            EnergyConfig::MeanField(c) => c.dim,
            EnergyConfig::Analytic { dim, .. } => *dim,
        }
    }
}

/// Friction `γ ≥ 0`, fixed or learned as `γ = exp θ_γ`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrictionConfig {
    /// The (initial) friction γ. Default 0. When learned, a value ≤ 0 starts at 0.01 (the
    /// reference's floor), since `ln 0` is not finite.
    pub gamma: f64,
    /// Learn `θ_γ = ln γ` (a parameter named [`FRICTION_PARAMETER`]). Default false.
    pub learnable: bool,
}

impl Default for FrictionConfig {
    fn default() -> Self {
        Self {
            gamma: 0.0,
            learnable: false,
        }
    }
}

/// Everything that defines a [`Model`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// The energy network. Default: the reference attention energy (heads 4, hidden 64,
    /// blocks 4, ff 512, d = 2).
    pub energy: EnergyConfig,
    /// Friction. Default: fixed γ = 0.
    pub friction: FrictionConfig,
    /// Integration scheme. Default [`Integrator::ReferenceLeapfrog`].
    pub integrator: Integrator,
    /// Reference gradient mode: positions are detached before the force, so gradients
    /// ignore `∂a/∂x` (default true). `false` gives the exact discretise-then-optimise
    /// gradient.
    pub detach_positions: bool,
    /// Precision of parameters and simulation. Default f32.
    pub precision: Precision,
    /// Seed of the parameter initialisation, SeedRng (xoshiro256++, wlm-numeric). Default 0.
    pub init_seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            energy: EnergyConfig::default(),
            friction: FrictionConfig::default(),
            integrator: Integrator::ReferenceLeapfrog,
            detach_positions: true,
            precision: Precision::F32,
            init_seed: 0,
        }
    }
}

impl ModelConfig {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::Config`] naming `model.friction.gamma` or `model.energy`.
    pub fn validate(&self) -> Result<()> {
        let gamma = self.friction.gamma;
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(Error::config(
                "model.friction.gamma",
                format!("must be finite and ≥ 0, got {gamma}"),
            ));
        }
        match &self.energy {
            EnergyConfig::Attention(c) => c
                .validate()
                .map_err(|e| Error::config("model.energy", e.to_string())),
            EnergyConfig::MeanField(c) => {
                if c.dim == 0 || c.hidden == 0 || c.layers == 0 {
                    return Err(Error::config(
                        "model.energy",
                        "mean-field dim, hidden and layers must be at least 1",
                    ));
                }
                Ok(())
            }
            EnergyConfig::Analytic { dim, .. } => {
                if *dim == 0 {
                    return Err(Error::config("model.energy.dim", "must be at least 1"));
                }
                Ok(())
            }
        }
    }
}

/// A trainable mechanics model (METHOD.md §2).
///
/// Holds the energy network, the friction and the integrator; every parameter (and the
/// friction parameter when learned) is a variable of one [`VarMap`] under the reference's
/// state_dict names, so [`Model::save_weights`] writes a reference-compatible safetensors file.
pub struct Model {
    config: ModelConfig,
    varmap: VarMap,
    /// `Send + Sync` so that a model (and a run) can move to another thread, e.g. one that
    /// trains while a Python interpreter runs on.
    energy: Box<dyn Energy + Send + Sync>,
    friction: Option<Var>,
    device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Builds a model with freshly initialised parameters (PyTorch's default initialisation,
    /// seeded by `config.init_seed`).
    ///
    /// # Errors
    /// [`Error::Config`] for invalid sizes or friction; tensor failures.
    pub fn new(config: ModelConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let varmap = VarMap::new();
        let dtype = config.precision.dtype();
        let vb = wlm_energy::seeded_var_builder(&varmap, config.init_seed, dtype, device);
        let energy: Box<dyn Energy + Send + Sync> = match &config.energy {
            EnergyConfig::Attention(c) => Box::new(c.init(vb.clone())?),
            EnergyConfig::MeanField(c) => Box::new(c.init(vb.clone())?),
            EnergyConfig::Analytic { potential, .. } => Box::new(potential.clone()),
        };
        let friction = if config.friction.learnable {
            let gamma0 = if config.friction.gamma > 0.0 {
                config.friction.gamma
            } else {
                1e-2
            };
            vb.get_with_hints((), FRICTION_PARAMETER, Init::Const(gamma0.ln()))?;
            let data = varmap.data().lock().map_err(|_| poisoned())?;
            data.get(FRICTION_PARAMETER).cloned()
        } else {
            None
        };
        Ok(Self {
            config,
            varmap,
            energy,
            friction,
            device: device.clone(),
        })
    }

    /// The configuration this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Spatial dimension of the particles.
    pub fn dim(&self) -> usize {
        self.config.energy.dim()
    }

    /// Parameter dtype.
    pub fn dtype(&self) -> DType {
        self.config.precision.dtype()
    }

    /// Device of the parameters.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The variables, by reference name.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The energy network (shareable across threads, as the landscape's parallel probes
    /// need).
    pub fn energy(&self) -> &(dyn Energy + Send + Sync) {
        self.energy.as_ref()
    }

    /// All parameters (energy and, when learned, [`FRICTION_PARAMETER`]), sorted by name.
    pub fn named_parameters(&self) -> Vec<(String, Var)> {
        let data = match self.varmap.data().lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let mut params: Vec<(String, Var)> =
            data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params
    }

    /// The friction parameter `θ_γ`, when learned.
    pub fn friction_parameter(&self) -> Option<&Var> {
        self.friction.as_ref()
    }

    /// The current friction γ.
    ///
    /// # Errors
    /// Tensor failures reading a learned value.
    pub fn friction(&self) -> Result<f64> {
        match &self.friction {
            Some(theta) => Ok(theta
                .as_tensor()
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?
                .exp()),
            None => Ok(self.config.friction.gamma),
        }
    }

    /// Friction as a rank-0 tensor; when learned, `exp(θ_γ)` with its graph to `θ_γ`.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn friction_tensor(&self) -> Result<Tensor> {
        match &self.friction {
            Some(theta) => Ok(theta.as_tensor().exp()?),
            None => Ok(
                Tensor::new(self.config.friction.gamma, &self.device)?.to_dtype(self.dtype())?
            ),
        }
    }

    /// The force field `a = −∇E` in the configured position-gradient mode.
    pub fn force_field(&self) -> EnergyField<'_> {
        EnergyField {
            energy: self.energy.as_ref(),
            detach_positions: self.config.detach_positions,
        }
    }

    /// Sets the parameters from a safetensors file with reference names (converting dtypes).
    /// Extra tensors in the file are ignored.
    ///
    /// # Errors
    /// [`Error::File`] naming the missing key, the shape mismatch or a tensor with a NaN or
    /// infinite value; nothing is changed then.
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        // A non-finite weight would make every force and score a silent NaN.
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::file(path, e.to_string()))?;
        for (name, _) in self.named_parameters() {
            let Some(tensor) = tensors.get(&name) else {
                continue; // reported by the loader, with the expected shape
            };
            let values = tensor
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor `{name}` has the value {} at flat index {i}: weights must be finite",
                        values[i]
                    ),
                ));
            }
        }
        wlm_energy::load_weights(&self.varmap, path)
            .map_err(|e| Error::file(path, e.to_string()))?;
        Ok(())
    }

    /// Writes the parameters as safetensors under their reference names.
    ///
    /// # Errors
    /// [`Error::File`] when writing fails.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors: std::collections::HashMap<String, Tensor> = self
            .varmap
            .data()
            .lock()
            .map_err(|_| Error::file(path.as_ref(), "the weights' lock is poisoned"))?
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect();
        crate::safetensors_file::write_safetensors(path.as_ref(), &tensors)
    }

    /// Converts a data tensor to the model's dtype and device.
    pub(crate) fn prepare(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.to_dtype(self.dtype())?.to_device(&self.device)?)
    }

    /// Simulates from `(x0, v0)` at time `t0` through the increasing `times`, with
    /// `steps_per_interval` integrator steps per interval, and returns the state at each of
    /// `times` (graph-free: every step is detached).
    ///
    /// # Shapes
    /// `x0`, `v0`: `(n_particles, dim)`; one `(n_particles, dim)` state per time.
    ///
    /// # Errors
    /// [`Error::Config`] for times not after `t0` or not increasing, or 0 steps per
    /// interval; tensor and force failures.
    pub fn simulate(
        &self,
        x0: &Tensor,
        v0: &Tensor,
        t0: f64,
        times: &[f64],
        steps_per_interval: usize,
    ) -> Result<Vec<State>> {
        let steps = vec![steps_per_interval; times.len()];
        self.simulate_steps(x0, v0, t0, times, &steps, false)
    }

    /// [`Model::simulate`] with `steps[k]` integrator steps from the previous time to
    /// `times[k]`; with `every_step`, the state after every step is returned (the last of
    /// each interval being the state at `times[k]`), otherwise the states at `times`.
    ///
    /// # Shapes
    /// `x0`, `v0`: `(n_particles, dim)`; one `(n_particles, dim)` state per time (per step).
    ///
    /// # Errors
    /// [`Error::Config`] for times not after `t0` or not increasing, `steps` of another length
    /// than `times`, or a 0 in it; tensor and force failures.
    pub fn simulate_steps(
        &self,
        x0: &Tensor,
        v0: &Tensor,
        t0: f64,
        times: &[f64],
        steps: &[usize],
        every_step: bool,
    ) -> Result<Vec<State>> {
        if steps.len() != times.len() {
            return Err(Error::config(
                "steps",
                format!("{} step counts for {} times", steps.len(), times.len()),
            ));
        }
        if steps.contains(&0) {
            return Err(Error::config("steps_per_interval", "must be at least 1"));
        }
        let gamma = self.friction_tensor()?.detach();
        // No gradients: the energy's graph-free force (the attention energy's native path).
        let field = DetachedEnergyField {
            energy: self.energy.as_ref(),
        };
        let mut state = State::new(&field, self.prepare(x0)?, self.prepare(v0)?, t0)?;
        state.acceleration = state.acceleration.detach();
        let mut previous = t0;
        let mut out = Vec::with_capacity(times.len());
        for (&t, &n_steps) in times.iter().zip(steps) {
            if t.is_nan() || t <= previous {
                return Err(Error::config(
                    "times",
                    format!("simulation times must increase from {t0}: got {t} after {previous}"),
                ));
            }
            let h = (t - previous) / n_steps as f64;
            for _ in 0..n_steps {
                let next = self.config.integrator.step(&field, &state, h, &gamma)?;
                state = State {
                    positions: next.positions.detach(),
                    velocities: next.velocities.detach(),
                    acceleration: next.acceleration.detach(),
                    time: next.time,
                };
                if every_step {
                    out.push(state.clone());
                }
            }
            previous = t;
            if !every_step {
                out.push(state.clone());
            }
        }
        Ok(out)
    }
}

fn poisoned() -> Error {
    Error::Tensor(candle_core::Error::Msg("varmap lock poisoned".into()))
}

//! [`FlowConfig`]: the network, path, coupling, time input, training and prediction settings
//! of a flow-matching run, with validation that names the offending field.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything that defines a flow-matching baseline. Plain data; `Default` gives OT-CFM with
/// the settings of the LFM repository's single-cell script (`eval_loo_methods.py`: width 64,
/// σ = 0.1, batch 128, learning rate 1e-3, weight decay 1e-5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// The velocity network. Default: 3 hidden layers of width 64, SiLU.
    pub network: NetworkConfig,
    /// The conditional path between coupled endpoints. Default [`PathKind::Linear`].
    pub path: PathKind,
    /// Gaussian width σ ≥ 0 of the conditional path: `x_τ = μ_τ + σ ε`, `ε ~ N(0, I)`,
    /// constant in τ as TorchCFM's `ConditionalFlowMatcher` (in standardised units when
    /// `standardize`). Default 0.1.
    pub sigma: f64,
    /// How minibatch endpoints are paired. Default [`Coupling::ExactOt`].
    pub coupling: Coupling,
    /// The time input of the network. Default [`TimeInput::Chain`].
    pub time: TimeInput,
    /// Train in coordinates standardised by the training snapshots' pooled mean and standard
    /// deviation (per coordinate), as the LFM script does; predictions are mapped back.
    /// Default true.
    pub standardize: bool,
    /// Optimisation.
    pub train: FlowTrainConfig,
    /// Integration of the learned field.
    pub predict: PredictConfig,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            network: NetworkConfig::default(),
            path: PathKind::Linear,
            sigma: 0.1,
            coupling: Coupling::ExactOt,
            time: TimeInput::Chain,
            standardize: true,
            train: FlowTrainConfig::default(),
            predict: PredictConfig::default(),
        }
    }
}

/// The velocity MLP `v_θ(x, time features)`: `hidden_layers` layers of `width` units with SiLU,
/// then a linear output of the data dimension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Units per hidden layer (≥ 1). Default 64.
    pub width: usize,
    /// Number of hidden layers (≥ 1). Default 3 (TorchCFM's `MLP`).
    pub hidden_layers: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            width: 64,
            hidden_layers: 3,
        }
    }
}

/// The conditional path `μ_τ(x₀, x₁)` and its velocity `u_τ = ∂_τ μ_τ`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PathKind {
    /// `μ_τ = (1−τ)x₀ + τx₁`, `u_τ = x₁ − x₀` (the kinetic Lagrangian: OT-CFM, I-CFM).
    Linear,
    /// Lagrangian flow matching with the harmonic oscillator `L = ½|v|² − ½ω²|x|²`:
    /// `μ_τ = (sin(ω(1−τ)) x₀ + sin(ωτ) x₁) / sin ω`.
    Harmonic {
        /// Frequency ω ∈ (0, π).
        omega: f64,
    },
    /// One harmonic frequency per principal direction of the training data (centred at their
    /// mean), `ω_k` linear from `omega_base` (largest variance) to `omega_base · omega_ratio`
    /// (smallest), as torchlfm's `AnisoParams.from_data(freq_mode="linear")`.
    Anisotropic {
        /// Frequency of the first principal direction, in (0, π).
        omega_base: f64,
        /// `ω_max / ω_base` > 0, with `ω_base · ω_ratio < π`.
        omega_ratio: f64,
    },
}

/// How the endpoints of a minibatch are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coupling {
    /// Independent pairs (I-CFM).
    Independent,
    /// Pairs sampled from the exact optimal plan of the minibatch for the path's action cost
    /// (squared Euclidean for the linear and isotropic harmonic paths), as TorchCFM's
    /// `ExactOptimalTransportConditionalFlowMatcher` (OT-CFM).
    ExactOt,
}

/// What the network sees of time. Training interval `k` (between consecutive training
/// snapshots) has local time `τ ∈ [0, 1]`; the chain time is `s = k + τ`, and the network's
/// velocity is `dx/ds` in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInput {
    /// One input, `s = k + τ` (the LFM script's renumbered time).
    Chain,
    /// One input, the absolute time `t = t_k + τ (t_{k+1} − t_k)`.
    Absolute,
    /// `τ` and a one-hot interval index (`1 + n_intervals` inputs).
    LocalAndIndex,
}

/// Optimisation of the velocity network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowTrainConfig {
    /// Optimiser steps (≥ 1). Default 2000.
    pub steps: usize,
    /// Pairs drawn per interval per step (≥ 2). Default 128.
    pub batch_size: usize,
    /// AdamW learning rate (> 0). Default 1e-3.
    pub lr: f64,
    /// AdamW decoupled weight decay (≥ 0). Default 1e-5.
    pub weight_decay: f64,
    /// EMA decay of the weights in [0, 1). Default 0.999.
    pub ema_decay: f64,
    /// Seed of the initial weights and of every draw of training (SeedRng). Default 0.
    pub seed: u64,
}

impl Default for FlowTrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 1e-5,
            ema_decay: 0.999,
            seed: 0,
        }
    }
}

/// The ODE solvers of prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Solver {
    /// Classical fourth-order Runge–Kutta.
    Rk4,
    /// Forward Euler.
    Euler,
}

/// How the learned field is integrated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictConfig {
    /// The solver. Default [`Solver::Rk4`].
    pub solver: Solver,
    /// Fixed steps per unit of chain time (one training interval), ≥ 1. Default 20.
    pub steps_per_interval: usize,
    /// Predict with the EMA weights. Default true.
    pub use_ema: bool,
}

impl Default for PredictConfig {
    fn default() -> Self {
        Self {
            solver: Solver::Rk4,
            steps_per_interval: 20,
            use_ema: true,
        }
    }
}

fn check(ok: bool, field: &'static str, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::config(field, message()))
    }
}

fn check_omega(omega: f64, field: &'static str) -> Result<()> {
    check(omega > 0.0 && omega < PI, field, || {
        format!("the harmonic frequency must be in (0, π) (sin ω > 0), got {omega}")
    })
}

impl FlowConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field (`flow.path.omega`, `flow.sigma`,
    /// `flow.train.batch_size`, …) and the value.
    pub fn validate(&self) -> Result<()> {
        check(self.network.width >= 1, "flow.network.width", || {
            "must be at least 1, got 0".into()
        })?;
        check(
            self.network.hidden_layers >= 1,
            "flow.network.hidden_layers",
            || "must be at least 1, got 0".into(),
        )?;
        match self.path {
            PathKind::Linear => {}
            PathKind::Harmonic { omega } => check_omega(omega, "flow.path.omega")?,
            PathKind::Anisotropic {
                omega_base,
                omega_ratio,
            } => {
                check_omega(omega_base, "flow.path.omega_base")?;
                check(
                    omega_ratio > 0.0 && omega_ratio.is_finite(),
                    "flow.path.omega_ratio",
                    || format!("must be positive, got {omega_ratio}"),
                )?;
                check_omega(omega_base * omega_ratio, "flow.path.omega_ratio").map_err(|_| {
                    Error::config(
                        "flow.path.omega_ratio",
                        format!(
                            "omega_base · omega_ratio = {} must be below π",
                            omega_base * omega_ratio
                        ),
                    )
                })?;
            }
        }
        check(
            self.sigma >= 0.0 && self.sigma.is_finite(),
            "flow.sigma",
            || format!("must be finite and ≥ 0, got {}", self.sigma),
        )?;
        let t = &self.train;
        check(t.steps >= 1, "flow.train.steps", || {
            "must be at least 1, got 0".into()
        })?;
        check(t.batch_size >= 2, "flow.train.batch_size", || {
            format!("must be at least 2, got {}", t.batch_size)
        })?;
        check(t.lr > 0.0 && t.lr.is_finite(), "flow.train.lr", || {
            format!("must be finite and positive, got {}", t.lr)
        })?;
        check(
            t.weight_decay >= 0.0 && t.weight_decay.is_finite(),
            "flow.train.weight_decay",
            || format!("must be finite and ≥ 0, got {}", t.weight_decay),
        )?;
        check(
            (0.0..1.0).contains(&t.ema_decay),
            "flow.train.ema_decay",
            || format!("must be in [0, 1), got {}", t.ema_decay),
        )?;
        check(
            self.predict.steps_per_interval >= 1,
            "flow.predict.steps_per_interval",
            || "must be at least 1, got 0".into(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &FlowConfig) -> &'static str {
        match config.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn default_config_is_valid() {
        FlowConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let base = FlowConfig::default();
        let cases: Vec<(FlowConfig, &str)> = vec![
            (
                FlowConfig {
                    path: PathKind::Harmonic { omega: PI },
                    ..base.clone()
                },
                "flow.path.omega",
            ),
            (
                FlowConfig {
                    path: PathKind::Harmonic { omega: 0.0 },
                    ..base.clone()
                },
                "flow.path.omega",
            ),
            (
                FlowConfig {
                    path: PathKind::Anisotropic {
                        omega_base: 1.0,
                        omega_ratio: 4.0,
                    },
                    ..base.clone()
                },
                "flow.path.omega_ratio",
            ),
            (
                FlowConfig {
                    path: PathKind::Anisotropic {
                        omega_base: -1.0,
                        omega_ratio: 1.0,
                    },
                    ..base.clone()
                },
                "flow.path.omega_base",
            ),
            (
                FlowConfig {
                    sigma: f64::NAN,
                    ..base.clone()
                },
                "flow.sigma",
            ),
            (
                FlowConfig {
                    network: NetworkConfig {
                        width: 0,
                        hidden_layers: 2,
                    },
                    ..base.clone()
                },
                "flow.network.width",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(&config), field, "{config:?}");
        }
        let mut c = base.clone();
        c.train.batch_size = 1;
        assert_eq!(field_of(&c), "flow.train.batch_size");
        let mut c = base.clone();
        c.train.ema_decay = 1.0;
        assert_eq!(field_of(&c), "flow.train.ema_decay");
        let mut c = base.clone();
        c.train.lr = 0.0;
        assert_eq!(field_of(&c), "flow.train.lr");
        let mut c = base;
        c.predict.steps_per_interval = 0;
        assert_eq!(field_of(&c), "flow.predict.steps_per_interval");
    }
}

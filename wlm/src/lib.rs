//! The WLM learner: an energy network, friction and an integrator, trained on snapshots.
//!
//! This crate sits on top of the workspace: `wlm-energy` (the energy networks and their
//! hand-written forces), `wlm-integrate` (damped leapfrog), `wlm-ot` (Sinkhorn loss, exact
//! W1/W2) and `wlm-data` (snapshots, blur estimate, `.npz`). `wlm-cli` drives it.
//!
//! # Quick start
//! ```no_run
//! use candle_core::Device;
//! use wlm::{Run, RunConfig, SplitConfig};
//! # fn main() -> wlm::Result<()> {
//! # let snapshots: wlm_data::Snapshots = unimplemented!();
//! let config = RunConfig { split: SplitConfig::Forecast { n_train: 10 }, ..RunConfig::default() };
//! let mut run = Run::create("runs/demo", config, snapshots, &Device::Cpu)?;
//! run.train(&mut ())?;               // metrics.csv, checkpoint.safetensors
//! let (evaluation, _rollouts) = run.finish()?; // weights, forecast.npz, evaluation.ron
//! println!("test W1 {:?}", evaluation.test_w1);
//! # Ok(()) }
//! ```
//!
//! # Entry points
//! | item | what | cost |
//! |---|---|---|
//! | [`Model::new`] | energy + friction + integrator, parameters in a `VarMap` (reference names) | init |
//! | [`Model::loss_and_gradients`] | one rollout's mean Sinkhorn loss and `∂L/∂θ` ([`GradientMethod::ReverseSweep`] or [`GradientMethod::Backprop`]) | `k` force graphs + `k` Sinkhorn solves; sweep memory = one step's graph |
//! | [`Trainer`] | METHOD.md §4 training step: random horizon, minibatch, AdamW (two groups), EMA | as above + AdamW |
//! | [`Trainer::save_checkpoint`] / [`Trainer::load_checkpoint`] | atomic, exact-resume checkpoints | one file write |
//! | [`Run`] | a run directory: `config.ron`, `metrics.csv`, checkpoints, final outputs; [`Run::resume`] | — |
//! | [`forecast`], [`interpolate`] | graph-free rollouts at `steps_per_interval` steps per interval | one force per step |
//! | [`evaluate`], [`evaluate_with_predictions`], [`baselines`] | exact W1 (and W2) per snapshot, mean ± SE over train/test; the rollouts kept for writing | the rollouts, then one exact OT per score, in parallel (`O(N·M)` memory each) |
//! | [`landscape`] | `E(X ∪ {y}) − E(X)` and the force on a probe `y` on a grid of a [`Plane`] (PCA plane above 2-D) | one energy + force pass on `N + 1` particles per grid point, in parallel |
//! | [`w1_scores`] | exact W1 of given predictions against their snapshots | one exact OT each, in parallel |
//! | [`ot_finite_difference`] | velocities of a snapshot from the exact OT plans to its neighbours (forward, backward, central) | one or two exact OT problems |
//! | [`initial_velocities`], [`carry_velocities`] | a rollout's start velocities from a [`VelocitySource`] (data, zero, OT estimate, the model's own rollout carried along an OT plan) | as above, or a rollout from snapshot 0 + one exact OT |
//!
//! # Gradients in memory independent of the horizon
//! The reference keeps every step's graph. Here the forward rollout stores only plain tensors
//! `(x_n, v_n, a_n, h_n)`; the Sinkhorn envelope gradient gives `∂L/∂x_m`; the adjoint
//! recursion of the parity README §6.3 then runs backwards, rebuilding one step's force graph
//! at a time and calling `backward()` on `⟨ā_n, A_θ(x_n, t_n)⟩` (positions as a fresh variable in
//! exact mode, for `J_Aᵀ ā`). The friction gradient is accumulated from the scalar adjoints of
//! the integrator's coefficients. It equals plain backprop to 1e-10 in f64 (tests).
//!
//! # What can go wrong
//! - Bad configs are an [`Error::Config`] naming the field (`train.lr`, `split.n_train`,
//!   `model.friction.gamma`, `train.initial_velocities` when the data have no velocities, ...).
//!   A minibatch larger than the cloud is clamped, not an error. `Model` initial velocities
//!   for training are refused (training starts at snapshot 0: nothing to roll out from).
//! - OT velocity estimates divide a matching error by `Δt`: on a dense cloud sampled anew at
//!   every snapshot they are noisy, and they only see the part of the motion that moves
//!   mass (a flock turning in place, a rotating isotropic blob look still to them).
//! - A NaN or infinite loss, gradient or simulated position stops training with
//!   [`Error::NonFinite`] naming the step; nothing is updated and the last checkpoint stays.
//! - Dropout (`AttentionEnergyConfig::dropout > 0`) with the reverse sweep would draw different
//!   masks in the forward and the backward passes: use [`GradientMethod::Backprop`] then.
//! - The reference leapfrog's small-step limit is `dv/dt = (1+γ) a − γ v` (kept for parity);
//!   choose `Integrator::ConformalLeapfrog` for the paper's equation.
//! - Exact W1 needs an `N × M` cost matrix: evaluation of very large clouds is memory-bound,
//!   and it solves one such problem per rayon thread at a time (`RAYON_NUM_THREADS` caps it).
//!
//! # References
//! `docs/METHOD.md` §2–4 in the repository; the parity fixtures' README (`fixtures/parity`).

mod adjoint;
mod config;
mod ema;
mod error;
mod evaluate;
mod landscape;
mod loss;
mod model;
mod optim;
mod rng;
mod ron_strict;
mod run;
mod safetensors_file;
mod trainer;
mod velocity;

pub use config::{
    EvalConfig, GradientMethod, LossConfig, ModelSelection, Split, SplitConfig, TrainConfig,
    VelocitySource,
};
pub use ema::Ema;
pub use error::{Error, Result};
pub use evaluate::{
    baselines, evaluate, evaluate_with_predictions, forecast, forecast_with_velocities,
    initial_velocities, interpolate, interpolate_with_velocities, interpolation_baselines,
    w1_scores, BaselineScore, Evaluation, Forecast, MeanSe, Predictions, Role, SnapshotScore,
};
pub use landscape::{landscape, linspace, EnergyAt, Landscape, Plane, PopulationEnergy};
pub use loss::{LossGradients, RolloutLoss};
pub use model::{EnergyConfig, FrictionConfig, Model, ModelConfig, Precision, FRICTION_PARAMETER};
pub use optim::{AdamW, AdamWGroup};
pub use rng::TrainRng;
pub use ron_strict::from_ron_strict;
pub use run::{
    BestScore, Run, RunConfig, TrainObserver, BEST_FILE, BEST_WEIGHTS_FILE, CHECKPOINT_FILE,
    CONFIG_FILE, EMA_WEIGHTS_FILE, EVALUATION_FILE, FORECAST_FILE, METRICS_FILE, WEIGHTS_FILE,
};
pub use trainer::{StepReport, Trainer};
pub use velocity::{carry_velocities, ot_finite_difference, Scheme};

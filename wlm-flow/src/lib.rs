//! First-order flow-matching baselines beside WLM: a time-conditioned velocity field
//! `v_θ(x, t)` trained simulation-free on the same snapshots, with independent (I-CFM) or
//! exact-OT (OT-CFM) minibatch couplings and linear or harmonic (Lagrangian flow matching)
//! conditional paths.
//!
//! `wlm-flow` sits beside `wlm` (it uses `wlm-data` for snapshots, `wlm-ot` for exact plans
//! and `wlm-numeric` for [`wlm_numeric::SeedRng`]); `wlm-cli` runs it as `wlm flow` and scores
//! it with the same exact W1 as WLM.
//!
//! # Quick start
//!
//! ```
//! use wlm_data::Snapshots;
//! use wlm_flow::{FlowConfig, FlowTrainer};
//!
//! # fn main() -> anyhow::Result<()> {
//! let snapshots = Snapshots::new(
//!     vec![0.0, 1.0, 2.0],
//!     1,
//!     vec![vec![0.0, 0.1, 0.2, 0.3], vec![1.0, 1.1, 1.2, 1.3], vec![2.0, 2.1, 2.2, 2.3]],
//!     None,
//! )?;
//! let mut config = FlowConfig::default();
//! config.train.steps = 20;
//! config.train.batch_size = 4;
//! // Train on snapshots 0 and 2; snapshot 1 is held out.
//! let mut trainer = FlowTrainer::new(&config, &snapshots, &[0, 2])?;
//! trainer.train(&mut |_step, _loss| {})?;
//! let model = trainer.finish()?;
//! let predicted = model.predict(snapshots.positions(0), 0.0, 1.0)?; // RK4
//! assert_eq!(predicted.len(), 4);
//! # Ok(())
//! # }
//! ```
//!
//! # Entry points
//!
//! | item | what | cost |
//! |---|---|---|
//! | [`FlowConfig`] | network, path, σ, coupling, time input, training, prediction; [`FlowConfig::validate`] names bad fields | — |
//! | [`FlowTrainer`] | AdamW + EMA on the flow-matching regression over the chain's intervals | per step: one exact plan of `batch_size²` arcs per interval (OT-CFM) and one MLP forward/backward |
//! | [`FlowModel`] | the trained field; [`FlowModel::trajectory`] / [`FlowModel::predict`] by RK4 or Euler from any time to any time | `4 · steps_per_interval` MLP evaluations per unit of chain time (RK4) |
//! | [`Path`] | conditional positions, velocities, action costs and coupling coordinates | `O(dim)` per point (`O(dim²)` anisotropic) |
//! | [`couple`], [`optimal_plan`] | minibatch couplings | exact OT: network simplex |
//!
//! # Multi-marginal chains
//!
//! The training snapshots (held-out ones removed) form a chain; interval `k` joins training
//! snapshots `k` and `k + 1`, so a held-out snapshot lies inside the interval that spans its
//! neighbours. The network sees chain time `s = k + τ` (or the absolute time, or `τ` and a
//! one-hot `k`: [`TimeInput`]) and predicts `dx/ds`; prediction integrates from the chain time
//! of the start to that of the target ([`Chain::chain_time`]), so a held-out time is reached
//! at its place inside its interval, as the LFM repository's leave-one-out script does.
//!
//! # Harmonic coupling
//!
//! For isotropic `ω ∈ (0, π)` the harmonic action's optimal plan is the squared-Euclidean plan:
//! the action differs from `−(ω / sin ω)⟨x₀, x₁⟩` by terms of one endpoint each, which every
//! coupling pays alike, and `ω / sin ω > 0` (details in [`Path`]'s module). The anisotropic
//! path has its own plan, the squared-Euclidean plan of [`Path::coupling_coordinates`].
//!
//! # What can go wrong
//!
//! - Bad configs are [`Error::Config`] naming the field (`flow.path.omega` for `ω ∉ (0, π)`,
//!   `flow.sigma`, `flow.train.batch_size`, …); fewer than two training snapshots or a bad
//!   index is [`Error::Data`]; a non-finite loss stops training with [`Error::Diverged`].
//! - The harmonic path curves about the origin of the coordinates it runs in, bulging away
//!   from it like an orbit arc (its offset from the straight line is a non-negative
//!   combination of `x₀` and `x₁` for `ω ∈ (0, π)`): with `standardize` (the default) that
//!   origin is the training data's mean.
//! - Times past the last training snapshot are extrapolation: chain time continues with the
//!   last interval's length, and the field there was never trained.
//! - Exact OT on a minibatch of `b` points per side stores `24 b²` bytes; `b` in the hundreds is
//!   what it is for.
//!
//! # References
//!
//! - `docs/METHOD.md` §7 in the repository: the chain, paths, couplings, training and prediction.
//! - A. Tong et al., *Improving and generalizing flow-based generative models with minibatch
//!   optimal transport*, TMLR 2024 (I-CFM, OT-CFM; TorchCFM).
//! - *Lagrangian Flow Matching: a least-action framework for principled path design*, 2026
//!   (harmonic and anisotropic paths; `torchlfm`).

mod chain;
mod config;
mod coupling;
mod error;
mod model;
mod network;
mod path;
mod train;

pub use chain::Chain;
pub use config::{
    Coupling, FlowConfig, FlowTrainConfig, NetworkConfig, PathKind, PredictConfig, Solver,
    TimeInput,
};
pub use coupling::{couple, optimal_plan};
pub use error::{Error, Result};
pub use model::FlowModel;
pub use network::VelocityNet;
pub use path::{AnisotropicBasis, Path};
pub use train::{Batch, FlowTrainer};

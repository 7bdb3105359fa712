//! Training, loss, split and evaluation configs: plain serde structs with documented defaults
//! (the split in `config/split.rs`).

use serde::{Deserialize, Serialize};

use crate::velocity::Scheme;
use crate::{Error, Result};

mod split;

pub use split::{Split, SplitConfig};

/// Where the initial velocities of a rollout come from.
///
/// For data without velocities, [`VelocitySource::OtCentral`] (or `OtForward`) estimates them
/// from the snapshots; [`VelocitySource::Zero`] assumes the population starts at rest. The
/// OT estimates see only the snapshots a rollout may know: the training snapshots when
/// training, and in an evaluation the training snapshots plus the start snapshot (never the
/// held-out snapshot an interpolation predicts, nor the test snapshots a forecast predicts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VelocitySource {
    /// The velocities stored with the starting snapshot (an error if it has none).
    #[default]
    Data,
    /// Zero velocities.
    Zero,
    /// OT forward difference with the next known snapshot,
    /// [`crate::ot_finite_difference`] with [`Scheme::Forward`]: `(T₊(x) − x) / Δt`,
    /// first order. At the last known snapshot (an evaluation restart from the last training
    /// snapshot) it falls back to the backward difference.
    OtForward,
    /// OT backward difference with the previous known snapshot ([`Scheme::Backward`]): first
    /// order. At snapshot 0 (every training start) it falls back to the forward difference.
    OtBackward,
    /// OT central difference with both neighbours ([`Scheme::Central`]): second order. At
    /// snapshot 0, which has no previous snapshot (every training start), it is the forward
    /// difference; at the last known snapshot, the backward difference.
    OtCentral,
    /// Evaluation only: the model's own velocities. The model is rolled out from snapshot 0
    /// (with [`EvalConfig::model_start_velocities`]) to the start time, and the simulated
    /// velocities are carried onto the observed start cloud along the exact OT plan between
    /// the simulated and the observed cloud ([`crate::carry_velocities`]). For
    /// interpolation and forecast restarts; the forecast from snapshot 0 itself uses
    /// `model_start_velocities`. Training always starts at snapshot 0, where there is nothing
    /// to roll out from: there it is a config error.
    Model,
}

impl VelocitySource {
    /// The finite-difference scheme of an OT source (`None` for the others).
    pub fn ot_scheme(self) -> Option<Scheme> {
        match self {
            VelocitySource::OtForward => Some(Scheme::Forward),
            VelocitySource::OtBackward => Some(Scheme::Backward),
            VelocitySource::OtCentral => Some(Scheme::Central),
            VelocitySource::Data | VelocitySource::Zero | VelocitySource::Model => None,
        }
    }
}

/// What picks the best checkpoint of a run (model selection).
///
/// The score is computed at every evaluation of a run (every `train.eval_every` steps and at
/// the last step), from that evaluation (the EMA weights unless `eval.use_ema` is false);
/// lower is better. The weights that scored lowest are kept as `best.safetensors` beside the
/// final weights, and their step and score in `best.ron`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSelection {
    /// No selection: no score, no `best.safetensors` (default).
    #[default]
    Off,
    /// The mean exact W1 of the forecast from snapshot 0 at the training times
    /// ([`crate::Evaluation::train_w1`]): only snapshots the loss already sees, never a
    /// test snapshot.
    TrainW1,
    /// Validation snapshots: these training snapshots of the split (never 0) are left out of
    /// the loss and of the velocity estimates, and the score is the mean exact W1 of the
    /// forecast from snapshot 0 at them ([`crate::Evaluation::validation_w1`]). In RON:
    /// `Validation([3, 7])`.
    Validation(Vec<usize>),
}

impl ModelSelection {
    /// The score of `evaluation` (lower is better); `None` when selection is off or the
    /// evaluation has no such score.
    pub fn score(&self, evaluation: &crate::Evaluation) -> Option<f64> {
        match self {
            ModelSelection::Off => None,
            ModelSelection::TrainW1 => evaluation.train_w1.map(|m| m.mean),
            ModelSelection::Validation(_) => evaluation.validation_w1.map(|m| m.mean),
        }
    }

    /// `split` with this selection's validation snapshots moved from `train` to
    /// `validation` (unchanged for the other selections).
    ///
    /// # Errors
    /// [`Error::Config`] (`train.model_selection`) for an empty list, snapshot 0, an index
    /// that is not a training snapshot of the split, or fewer than 2 training snapshots left.
    pub fn apply(&self, mut split: Split) -> Result<Split> {
        let ModelSelection::Validation(indices) = self else {
            return Ok(split);
        };
        let field = "train.model_selection";
        if indices.is_empty() {
            return Err(Error::config(
                field,
                "Validation needs at least one snapshot index",
            ));
        }
        let mut validation = indices.clone();
        validation.sort_unstable();
        validation.dedup();
        if let Some(&bad) = validation
            .iter()
            .find(|&&k| k == 0 || !split.train.contains(&k))
        {
            return Err(Error::config(
                field,
                format!(
                    "validation snapshot {bad} must be a training snapshot other than 0 (training snapshots: {:?})",
                    split.train
                ),
            ));
        }
        split.train.retain(|k| !validation.contains(k));
        if split.train.len() < 2 {
            return Err(Error::config(
                field,
                "at least 2 training snapshots must remain besides the validation ones",
            ));
        }
        split.validation = validation;
        Ok(split)
    }
}

/// How gradients are propagated through the training rollout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradientMethod {
    /// Graph-free forward pass and the adjoint reverse sweep: peak memory is one step's
    /// force record whatever the horizon (default). Where the energy has a graph-free adjoint
    /// (`wlm_energy::Energy::force_tape`: the attention energy with fused kernels and no
    /// active dropout, on the CPU) no candle graph is built at all; otherwise each step's
    /// force graph is differentiated, as [`GradientMethod::GraphSweep`].
    #[default]
    ReverseSweep,
    /// The same reverse sweep, always differentiating candle force graphs (the oracle of the
    /// graph-free adjoint, slower).
    GraphSweep,
    /// Plain candle backprop through the whole rollout and the Sinkhorn custom op; memory
    /// grows with the horizon. The reference path for tests.
    Backprop,
}

/// The Sinkhorn training loss (METHOD.md §3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossConfig {
    /// Exponent of the ground cost: 1 (`|x − y|`) or 2 (`½|x − y|²`). Default 2.
    pub p: u32,
    /// Blur (length scale; `ε = blurᵖ`). `None` (default) estimates it from the training
    /// data: 0.5 × median over 8 random snapshots of the median distance of random pairs,
    /// clamped to `[1e-3, 10]` (METHOD.md §4).
    pub blur: Option<f64>,
    /// ε-annealing factor in (0, 1). Default 0.9 (the reference's).
    pub scaling: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            p: 2,
            blur: None,
            scaling: 0.9,
        }
    }
}

/// One training run's optimisation settings (METHOD.md §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Total number of training steps (one random-horizon rollout each). Default 1000.
    pub steps: usize,
    /// Seed of the training RNG, SeedRng (xoshiro256++, wlm-numeric): horizons, starts,
    /// minibatches, blur estimate. Default 0.
    pub seed: u64,
    /// AdamW learning rate of the energy parameters θ. Default 1e-4.
    pub lr: f64,
    /// Decoupled weight decay of θ. Default 1e-4.
    pub weight_decay: f64,
    /// Learning rate of the friction parameter `θ_γ = ln γ` (no weight decay). Default 1e-2.
    pub friction_lr: f64,
    /// AdamW β₁. Default 0.9.
    pub beta1: f64,
    /// AdamW β₂. Default 0.999.
    pub beta2: f64,
    /// AdamW ε. Default 1e-8.
    pub eps: f64,
    /// Decay of the exponential moving average of the parameters (updated every step, used
    /// for evaluation). Default 0.999.
    pub ema_decay: f64,
    /// Minibatch size `B`: that many points of snapshot 0 (with their velocities) start each
    /// rollout. `None` (default) uses all points; a value above the cloud size is clamped.
    pub batch_size: Option<usize>,
    /// Subsample each target (and the batch) to a common size, as the reference does:
    /// `n = min(B, N₀, M₁..M_k)`. Default true. When false, targets are used in full.
    pub subsample_targets: bool,
    /// Cap on the horizon `K` (default `None`: number of training snapshots − 1).
    pub max_horizon: Option<usize>,
    /// Always use the full horizon `K` instead of drawing `k ~ U{1..K}`. Default false.
    /// With `random_start`, the longest horizon the drawn start allows (`min(cap, K − s)`).
    pub fixed_horizon: bool,
    /// Multiple shooting: start each rollout at a random training snapshot `s ~ U{0..K−1}`
    /// (`K` = index of the last training snapshot among the training snapshots), then draw
    /// the horizon `k ~ U{1..min(cap, K − s)}`, so that `s + k ≤ K` always. The start's
    /// velocities come from `initial_velocities` at snapshot `s`: `Data` needs velocities at
    /// every training snapshot but the last; the OT sources estimate them from the training
    /// snapshots (once per snapshot, cached). Default false: every rollout starts at
    /// snapshot 0, as the reference does, and the RNG stream is the reference path's.
    pub random_start: bool,
    /// Initial velocities of the training rollouts (at snapshot 0, or at the drawn start with
    /// `random_start`): `Data`, `Zero` or an OT estimate from the training snapshots
    /// (`OtForward`, `OtCentral`, `OtBackward`: all the forward difference to the next
    /// training snapshot at snapshot 0); `Model` is an error.
    /// Default [`VelocitySource::Data`].
    pub initial_velocities: VelocitySource,
    /// The Sinkhorn loss.
    pub loss: LossConfig,
    /// Gradient propagation. Default [`GradientMethod::ReverseSweep`].
    pub gradient: GradientMethod,
    /// Memory budget, in MiB, for keeping the forward rollout's force graphs in the reverse
    /// sweep ([`GradientMethod::ReverseSweep`] only). Graphs are kept, earliest steps first,
    /// while their total size (estimated from the first step's graph) stays within the budget,
    /// and the sweep reuses them instead of recomputing those forces (about a quarter of a
    /// step's work); the remaining steps' graphs are rebuilt one at a time as without a
    /// budget. Peak memory is therefore at most the budget plus one step's graph, whatever the
    /// horizon. 0 always rebuilds (the least memory). Gradients are identical either way.
    /// Default 2048 (2 GiB: with the reference attention energy at N = 1000 in f32 a step's
    /// native tape is about 105 MB, so about 19 steps are kept; a candle force graph, where
    /// the energy has no native tape, is about 140 MB).
    pub keep_graphs_mib: u64,
    /// Write a checkpoint every this many steps (0: only at the end). Default 1000.
    pub checkpoint_every: usize,
    /// Evaluate (with the EMA weights) every this many steps (0: only at the end). Default 0.
    pub eval_every: usize,
    /// Model selection: the score of each evaluation that picks the checkpoint kept as
    /// `best.safetensors` (lowest wins; a resumed run keeps the best found before). Default
    /// [`ModelSelection::Off`].
    pub model_selection: ModelSelection,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            seed: 0,
            lr: 1e-4,
            weight_decay: 1e-4,
            friction_lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            ema_decay: 0.999,
            batch_size: None,
            subsample_targets: true,
            max_horizon: None,
            fixed_horizon: false,
            random_start: false,
            initial_velocities: VelocitySource::Data,
            loss: LossConfig::default(),
            gradient: GradientMethod::ReverseSweep,
            keep_graphs_mib: 2048,
            checkpoint_every: 1000,
            eval_every: 0,
            model_selection: ModelSelection::Off,
        }
    }
}

impl TrainConfig {
    /// Checks every field's range.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field (`train.lr`, `train.loss.p`, ...;
    /// `train.initial_velocities` for `Model`).
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!("must be finite and > 0, got {v}"),
                ))
            }
        };
        let non_negative = |field: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!("must be finite and ≥ 0, got {v}"),
                ))
            }
        };
        let unit = |field: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(field, format!("must be in [0, 1), got {v}")))
            }
        };
        if self.initial_velocities == VelocitySource::Model {
            return Err(Error::config(
                "train.initial_velocities",
                "Model velocities come from a rollout from snapshot 0 to the start, but training starts at snapshot 0: use Data, Zero, OtForward or OtCentral",
            ));
        }
        positive("train.lr", self.lr)?;
        non_negative("train.weight_decay", self.weight_decay)?;
        positive("train.friction_lr", self.friction_lr)?;
        unit("train.beta1", self.beta1)?;
        unit("train.beta2", self.beta2)?;
        positive("train.eps", self.eps)?;
        unit("train.ema_decay", self.ema_decay)?;
        if self.batch_size == Some(0) {
            return Err(Error::config(
                "train.batch_size",
                "must be at least 1 (or None for all)",
            ));
        }
        if self.max_horizon == Some(0) {
            return Err(Error::config(
                "train.max_horizon",
                "must be at least 1 (or None)",
            ));
        }
        if !matches!(self.loss.p, 1 | 2) {
            return Err(Error::config(
                "train.loss.p",
                format!("must be 1 or 2, got {}", self.loss.p),
            ));
        }
        if let Some(blur) = self.loss.blur {
            positive("train.loss.blur", blur)?;
        }
        if !(self.loss.scaling > 0.0 && self.loss.scaling < 1.0) {
            return Err(Error::config(
                "train.loss.scaling",
                format!("must be in (0, 1), got {}", self.loss.scaling),
            ));
        }
        Ok(())
    }
}

/// Evaluation settings (METHOD.md §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalConfig {
    /// Integrator steps per observed interval. Default 5.
    pub steps_per_interval: usize,
    /// Also compute exact W2. Default true.
    pub w2: bool,
    /// Evaluate with the EMA weights (the trainer's; a bare model has none). Default true.
    pub use_ema: bool,
    /// Initial velocities of evaluation rollouts. Default [`VelocitySource::Data`].
    pub initial_velocities: VelocitySource,
    /// With `initial_velocities: Model`, the velocities at snapshot 0 that start the model's
    /// rollout (and the forecast from snapshot 0); any source but `Model`. `None` (default):
    /// as `train.initial_velocities`, filled in by [`crate::Run::create`] (and recorded in
    /// `config.ron`) and by [`crate::Trainer::evaluate`]; a bare [`crate::evaluate`] of a
    /// `Model` config needs it set.
    pub model_start_velocities: Option<VelocitySource>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            steps_per_interval: 5,
            w2: true,
            use_ema: true,
            initial_velocities: VelocitySource::Data,
            model_start_velocities: None,
        }
    }
}

impl EvalConfig {
    /// This config with an unset [`EvalConfig::model_start_velocities`] taken from the
    /// training config's `initial_velocities` (what the model learnt to start from).
    #[must_use]
    pub fn with_training_start(&self, train: &TrainConfig) -> Self {
        Self {
            model_start_velocities: self
                .model_start_velocities
                .or(Some(train.initial_velocities)),
            ..self.clone()
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::Config`] (`eval.steps_per_interval`) for 0 steps;
    /// (`eval.model_start_velocities`) for `Model`.
    pub fn validate(&self) -> Result<()> {
        if self.steps_per_interval == 0 {
            return Err(Error::config(
                "eval.steps_per_interval",
                "must be at least 1",
            ));
        }
        if self.model_start_velocities == Some(VelocitySource::Model) {
            return Err(Error::config(
                "eval.model_start_velocities",
                "Model cannot start the rollout it is taken from: use Data, Zero or an Ot source",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_learning_rate_names_the_field() {
        let config = TrainConfig {
            lr: -1.0,
            ..TrainConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("train.lr"), "{err}");
    }

    #[test]
    fn bad_p_and_batch_name_their_fields() {
        let mut config = TrainConfig::default();
        config.loss.p = 3;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("train.loss.p"));
        let config = TrainConfig {
            batch_size: Some(0),
            ..TrainConfig::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("train.batch_size"));
    }

    #[test]
    fn configs_round_trip_through_ron() {
        let config = TrainConfig {
            batch_size: Some(64),
            ..TrainConfig::default()
        };
        let text = ron::to_string(&config).unwrap();
        let back: TrainConfig = ron::from_str(&text).unwrap();
        assert_eq!(back, config);
        let partial: TrainConfig = ron::from_str("(steps: 5)").unwrap();
        assert_eq!(partial.steps, 5);
        assert_eq!(partial.lr, 1e-4);
        assert!(!partial.random_start);
        assert_eq!(partial.model_selection, ModelSelection::Off);
        let chosen: TrainConfig =
            ron::from_str("(random_start: true, model_selection: TrainW1)").unwrap();
        assert!(chosen.random_start);
        assert_eq!(chosen.model_selection, ModelSelection::TrainW1);
    }

    #[test]
    fn velocity_sources_read_from_ron_and_model_is_refused_for_training() {
        for (text, source) in [
            ("OtForward", VelocitySource::OtForward),
            ("OtBackward", VelocitySource::OtBackward),
            ("OtCentral", VelocitySource::OtCentral),
            ("Model", VelocitySource::Model),
        ] {
            let train: TrainConfig =
                ron::from_str(&format!("(initial_velocities: {text})")).unwrap();
            assert_eq!(train.initial_velocities, source);
            let eval: EvalConfig = ron::from_str(&format!(
                "(initial_velocities: {text}, model_start_velocities: Some(OtCentral))"
            ))
            .unwrap();
            assert_eq!(eval.initial_velocities, source);
            assert_eq!(eval.validate().ok(), Some(()));
            assert_eq!(
                ron::from_str::<EvalConfig>(&ron::to_string(&eval).unwrap()).unwrap(),
                eval
            );
        }
        let model = TrainConfig {
            initial_velocities: VelocitySource::Model,
            ..TrainConfig::default()
        };
        let message = model.validate().unwrap_err().to_string();
        assert!(message.contains("train.initial_velocities"), "{message}");
        assert!(message.contains("snapshot 0"), "{message}");
        let eval = EvalConfig {
            model_start_velocities: Some(VelocitySource::Model),
            ..EvalConfig::default()
        };
        let message = eval.validate().unwrap_err().to_string();
        assert!(message.contains("eval.model_start_velocities"), "{message}");
        // An unset start is taken from training; a set one is kept.
        let train = TrainConfig {
            initial_velocities: VelocitySource::OtCentral,
            ..TrainConfig::default()
        };
        let resolved = EvalConfig::default().with_training_start(&train);
        assert_eq!(
            resolved.model_start_velocities,
            Some(VelocitySource::OtCentral)
        );
        let kept = EvalConfig {
            model_start_velocities: Some(VelocitySource::Zero),
            ..EvalConfig::default()
        };
        assert_eq!(
            kept.with_training_start(&train).model_start_velocities,
            Some(VelocitySource::Zero)
        );
    }
}

//! The training loop of METHOD.md §4: random horizon, minibatch, rollout loss, AdamW with two
//! parameter groups, EMA.

use std::time::Instant;

use candle_core::{DType, Tensor};
use wlm_data::Snapshots;
use wlm_ot::SinkhornConfig;

use crate::adjoint::MIB;
use crate::config::{GradientMethod, TrainConfig, VelocitySource};
use crate::ema::Ema;
use crate::loss::RolloutLoss;
use crate::model::{Model, FRICTION_PARAMETER};
use crate::optim::{AdamW, AdamWGroup};
use crate::rng::TrainRng;
use crate::velocity::{ot_finite_difference, Scheme};
use crate::{Error, Result};

mod checkpoint;
mod evaluation;

/// What one training step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// The step number, 1-based (the number of updates applied so far).
    pub step: usize,
    /// The training snapshot the rollout started from (0 unless `train.random_start`).
    pub start: usize,
    /// The horizon `k` drawn for this step.
    pub horizon: usize,
    /// Number of rollout particles (the minibatch size).
    pub batch: usize,
    /// The loss `(1/k) Σ_m S_m` before the update.
    pub loss: f64,
    /// Friction γ after the update.
    pub friction: f64,
    /// Seconds this step took.
    pub seconds: f64,
}

/// The training snapshots as tensors of the model's dtype.
#[derive(Debug)]
pub(crate) struct TrainingData {
    pub(crate) times: Vec<f64>,
    pub(crate) positions: Vec<Tensor>,
    /// Start velocities per training snapshot (`None`: zero, or an OT estimate not made yet).
    /// Snapshot 0's is known from [`Trainer::new`]; with `random_start` the others are
    /// loaded (`Data`) there or estimated (OT) at their first draw and kept.
    pub(crate) start_velocities: Vec<Option<Tensor>>,
    /// The training snapshots, kept for the OT estimates of random starts (`None` otherwise).
    pub(crate) ot_snapshots: Option<Snapshots>,
}

/// Draws a rollout's start `s` and horizon `k` for `n_snapshots` training snapshots
/// (`K = n_snapshots − 1`), the horizon capped by `cap`.
///
/// Without `random_start`: `s = 0` and `k ~ U{1..min(cap, K)}` (or that maximum when
/// `fixed_horizon`), one [`TrainRng::range_inclusive`] draw (none when fixed). With it:
/// `s ~ U{0..K−1}` (one [`TrainRng::below`]), then `k ~ U{1..min(cap, K − s)}` (or that
/// maximum), so `s + k ≤ K`.
pub(crate) fn draw_start_and_horizon(
    rng: &mut TrainRng,
    n_snapshots: usize,
    cap: Option<usize>,
    fixed_horizon: bool,
    random_start: bool,
) -> (usize, usize) {
    let last = n_snapshots - 1;
    let start = if random_start {
        rng.below(last as u64) as usize
    } else {
        0
    };
    let longest = cap.map_or(last - start, |c| c.min(last - start));
    let horizon = if fixed_horizon {
        longest
    } else {
        rng.range_inclusive(1, longest as u64) as usize
    };
    (start, horizon)
}

/// Trains a [`Model`] on training snapshots (METHOD.md §4).
///
/// Each [`Trainer::step`]: draw `k ~ U{1..K}` (`K` = number of training snapshots − 1, capped
/// by `max_horizon`); take `B` points of snapshot 0 with their velocities (or zero); roll out
/// one integrator step per interval to the `k`-th training time; loss = mean over `m = 1..k`
/// of the Sinkhorn divergence to snapshot `m` (with `random_start`, multiple shooting: start
/// at a drawn training snapshot `s` and match `s + 1..=s + k`, `s + k ≤ K`, see
/// [`TrainConfig::random_start`]) (subsampled to the batch size when
/// `subsample_targets`); AdamW update (θ: `lr`, `weight_decay`; `θ_γ`: `friction_lr`, no
/// decay); EMA update. All randomness comes from one [`TrainRng`], checkpointed with the rest
/// of the state, so a resumed run repeats an uninterrupted one exactly.
#[derive(Debug)]
pub struct Trainer {
    pub(crate) model: Model,
    pub(crate) config: TrainConfig,
    pub(crate) data: TrainingData,
    pub(crate) optimizer: AdamW,
    pub(crate) ema: Ema,
    pub(crate) rng: TrainRng,
    pub(crate) step: usize,
    pub(crate) blur: f64,
    pub(crate) wall_seconds: f64,
}

impl Trainer {
    /// A trainer at step 0. `train` holds the training snapshots only, in time order
    /// (e.g. `snapshots.select(&split.train)`).
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, fewer than 2 training snapshots
    /// (`split`), a dimension mismatch (`model.energy.dim`), data velocities that snapshot
    /// 0 lacks (with `random_start`, any training snapshot but the last) or `Model`
    /// velocities (`train.initial_velocities`); exact-OT failures of an OT velocity estimate
    /// (`train.initial_velocities`); tensor failures.
    ///
    /// The OT sources estimate snapshot 0's velocities once, here, from the training
    /// snapshots (at snapshot 0 every scheme is the forward difference to training snapshot
    /// 1); a minibatch takes its points' rows of that estimate. With `random_start` the other
    /// starts' estimates are made at their first draw (by [`Trainer::step`], whose errors
    /// then include these) and cached.
    pub fn new(model: Model, config: TrainConfig, train: &Snapshots) -> Result<Self> {
        config.validate()?;
        if train.len() < 2 {
            return Err(Error::config(
                "split",
                format!("training needs at least 2 snapshots, got {}", train.len()),
            ));
        }
        if train.dim() != model.dim() {
            return Err(Error::config(
                "model.energy.dim",
                format!(
                    "the model is {}-dimensional but the data are {}-dimensional",
                    model.dim(),
                    train.dim()
                ),
            ));
        }
        if let crate::model::EnergyConfig::Attention(c) = &model.config().energy {
            if c.dropout > 0.0 && config.gradient != GradientMethod::Backprop {
                return Err(Error::config(
                    "train.gradient",
                    "dropout > 0 needs GradientMethod::Backprop (the reverse sweep would redraw the masks)",
                ));
            }
        }
        let dtype = model.dtype();
        let device = model.device().clone();
        let positions = (0..train.len())
            .map(|k| Ok(train.positions_tensor(k, dtype, &device)?))
            .collect::<Result<Vec<_>>>()?;
        let starts = if config.random_start {
            train.len() - 1
        } else {
            1
        };
        let mut start_velocities: Vec<Option<Tensor>> = vec![None; train.len()];
        let mut ot_snapshots = None;
        match config.initial_velocities {
            VelocitySource::Zero => {}
            VelocitySource::Data => {
                for (s, slot) in start_velocities.iter_mut().enumerate().take(starts) {
                    match train.velocities_tensor(s, dtype, &device)? {
                        Some(v) => *slot = Some(v),
                        None if s == 0 => {
                            return Err(Error::config(
                                "train.initial_velocities",
                                "Data was asked for but the first training snapshot has no velocities (use Zero or OtCentral)",
                            ))
                        }
                        None => {
                            return Err(Error::config(
                                "train.initial_velocities",
                                format!("Data with train.random_start needs velocities at every training snapshot but the last; training snapshot {s} has none (use Zero or OtCentral)"),
                            ))
                        }
                    }
                }
            }
            source @ (VelocitySource::OtForward
            | VelocitySource::OtBackward
            | VelocitySource::OtCentral) => {
                let scheme = source.ot_scheme().unwrap_or(Scheme::Forward);
                let v = ot_finite_difference(train, 0, scheme).map_err(|e| {
                    Error::config("train.initial_velocities", format!("{source:?}: {e}"))
                })?;
                start_velocities[0] = Some(v.to_dtype(dtype)?.to_device(&device)?);
                if config.random_start {
                    ot_snapshots = Some(train.clone());
                }
            }
            // Refused by `validate` above.
            VelocitySource::Model => {
                return Err(Error::config(
                    "train.initial_velocities",
                    "Model is for evaluation only",
                ))
            }
        }
        let blur = match config.loss.blur {
            Some(b) => b,
            None => wlm_data::estimate_blur(
                train,
                &wlm_data::BlurConfig {
                    seed: config.seed,
                    ..wlm_data::BlurConfig::default()
                },
            ),
        };
        let groups = vec![
            AdamWGroup {
                lr: config.lr,
                weight_decay: config.weight_decay,
                beta1: config.beta1,
                beta2: config.beta2,
                eps: config.eps,
            },
            AdamWGroup {
                lr: config.friction_lr,
                weight_decay: 0.0,
                beta1: config.beta1,
                beta2: config.beta2,
                eps: config.eps,
            },
        ];
        let params = model.named_parameters();
        let optimizer = AdamW::new(
            groups,
            params
                .iter()
                .map(|(n, v)| (n.clone(), v.clone(), usize::from(n == FRICTION_PARAMETER)))
                .collect(),
        )?;
        let ema = Ema::new(config.ema_decay, params)?;
        let data = TrainingData {
            times: train.times().to_vec(),
            positions,
            start_velocities,
            ot_snapshots,
        };
        let rng = TrainRng::seed_from(config.seed);
        Ok(Self {
            model,
            config,
            data,
            optimizer,
            ema,
            rng,
            step: 0,
            blur,
            wall_seconds: 0.0,
        })
    }

    /// The model being trained (current, not EMA, weights).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The EMA of the parameters.
    pub fn ema(&self) -> &Ema {
        &self.ema
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    /// Number of updates applied so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The Sinkhorn blur in use (configured or estimated).
    pub fn blur(&self) -> f64 {
        self.blur
    }

    /// Training wall time so far, seconds (carried across resumes).
    pub fn wall_seconds(&self) -> f64 {
        self.wall_seconds
    }

    /// The largest horizon `K`.
    pub fn max_horizon(&self) -> usize {
        let k = self.data.positions.len() - 1;
        self.config.max_horizon.map_or(k, |cap| cap.min(k))
    }

    /// The Sinkhorn settings of the loss.
    pub fn sinkhorn_config(&self) -> SinkhornConfig {
        SinkhornConfig {
            p: self.config.loss.p,
            blur: self.blur,
            scaling: self.config.loss.scaling,
            converge_final: None,
        }
    }

    /// The start velocities of training snapshot `start` (`None`: zero), estimating and
    /// caching an OT estimate at its first use.
    fn start_velocities(&mut self, start: usize) -> Result<Option<Tensor>> {
        if self.data.start_velocities[start].is_none() {
            if let (Some(train), Some(scheme)) = (
                &self.data.ot_snapshots,
                self.config.initial_velocities.ot_scheme(),
            ) {
                let v = ot_finite_difference(train, start, scheme).map_err(|e| {
                    Error::config(
                        "train.initial_velocities",
                        format!(
                            "{:?} at training snapshot {start}: {e}",
                            self.config.initial_velocities
                        ),
                    )
                })?;
                self.data.start_velocities[start] = Some(self.model.prepare(&v)?);
            }
        }
        Ok(self.data.start_velocities[start].clone())
    }

    /// Draws this step's start, horizon and minibatch (consuming the RNG).
    fn draw_problem(&mut self) -> Result<(RolloutLoss, usize, usize)> {
        let (s, k) = draw_start_and_horizon(
            &mut self.rng,
            self.data.positions.len(),
            self.config.max_horizon,
            self.config.fixed_horizon,
            self.config.random_start,
        );
        let velocities = self.start_velocities(s)?;
        let n0 = self.data.positions[s].dim(0)?;
        let mut n = self.config.batch_size.map_or(n0, |b| b.min(n0));
        if self.config.subsample_targets {
            for m in s + 1..=s + k {
                n = n.min(self.data.positions[m].dim(0)?);
            }
        }
        let x_all = self.data.positions[s].clone();
        let (x0, v0) = if n < n0 {
            let idx = self.index_tensor(n0, n)?;
            let x0 = x_all.index_select(&idx, 0)?;
            let v0 = match &velocities {
                Some(v) => v.index_select(&idx, 0)?,
                None => x0.zeros_like()?,
            };
            (x0, v0)
        } else {
            let v0 = match &velocities {
                Some(v) => v.clone(),
                None => x_all.zeros_like()?,
            };
            (x_all.clone(), v0)
        };
        let mut targets = Vec::with_capacity(k);
        for m in s + 1..=s + k {
            let y = self.data.positions[m].clone();
            let size = y.dim(0)?;
            if self.config.subsample_targets && n < size {
                let idx = self.index_tensor(size, n)?;
                targets.push(y.index_select(&idx, 0)?);
            } else {
                targets.push(y.clone());
            }
        }
        let dts = (s + 1..=s + k)
            .map(|m| self.data.times[m] - self.data.times[m - 1])
            .collect();
        let problem = RolloutLoss {
            x0,
            v0,
            t0: self.data.times[s],
            dts,
            targets,
            sinkhorn: self.sinkhorn_config(),
        };
        Ok((problem, n, s))
    }

    fn index_tensor(&mut self, length: usize, amount: usize) -> Result<Tensor> {
        let idx: Vec<u32> = self
            .rng
            .sample_indices(length, amount)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        Ok(Tensor::from_vec(idx, amount, self.model.device())?)
    }

    /// One training step.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the step when the loss or a gradient is NaN or infinite
    /// (nothing is updated then); Sinkhorn, force and tensor failures; with `random_start`, an
    /// OT estimate failing at a start drawn for the first time (`train.initial_velocities`).
    pub fn step(&mut self) -> Result<StepReport> {
        let start = Instant::now();
        let step = self.step + 1;
        let (problem, batch, start_snapshot) = self.draw_problem()?;
        let result = match self.config.gradient {
            GradientMethod::ReverseSweep | GradientMethod::GraphSweep => {
                self.model.sweep_loss_and_gradients(
                    &problem,
                    self.config.keep_graphs_mib.saturating_mul(MIB),
                    self.config.gradient == GradientMethod::ReverseSweep,
                )
            }
            GradientMethod::Backprop => self
                .model
                .loss_and_gradients(&problem, GradientMethod::Backprop),
        };
        let out = match result {
            Ok(out) => out,
            Err(Error::NonFinite { what, .. }) => return Err(Error::NonFinite { step, what }),
            Err(e) => return Err(e),
        };
        if !out.loss.is_finite() {
            return Err(Error::NonFinite {
                step,
                what: format!("loss ({})", out.loss),
            });
        }
        for (name, grad) in out.names.iter().zip(&out.grads) {
            if let Some(g) = grad {
                let total = g
                    .abs()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
                if !total.is_finite() {
                    return Err(Error::NonFinite {
                        step,
                        what: format!("gradient of {name}"),
                    });
                }
            }
        }
        self.optimizer.step(&out.grads)?;
        self.ema.update()?;
        self.step = step;
        let seconds = start.elapsed().as_secs_f64();
        self.wall_seconds += seconds;
        Ok(StepReport {
            step,
            start: start_snapshot,
            horizon: problem.dts.len(),
            batch,
            loss: out.loss,
            friction: self.model.friction()?,
            seconds,
        })
    }
}

#[cfg(test)]
mod tests;

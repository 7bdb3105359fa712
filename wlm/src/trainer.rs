//! The training loop of METHOD.md §4: random horizon, minibatch, rollout loss, AdamW with two
//! parameter groups, EMA.

use std::time::Instant;

use candle_core::{DType, Tensor};
use rand::seq::index::sample;
use rand::Rng;
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
/// `fixed_horizon`), one draw from `rng` (none when fixed), the reference's stream. With it:
/// `s ~ U{0..K−1}`, then `k ~ U{1..min(cap, K − s)}` (or that maximum), so `s + k ≤ K`.
pub(crate) fn draw_start_and_horizon(
    rng: &mut impl Rng,
    n_snapshots: usize,
    cap: Option<usize>,
    fixed_horizon: bool,
    random_start: bool,
) -> (usize, usize) {
    let last = n_snapshots - 1;
    let start = if random_start {
        rng.random_range(0..last)
    } else {
        0
    };
    let longest = cap.map_or(last - start, |c| c.min(last - start));
    let horizon = if fixed_horizon {
        longest
    } else {
        rng.random_range(1..=longest)
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
        let idx: Vec<u32> = sample(&mut self.rng, length, amount)
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
mod tests {
    use super::*;
    use crate::model::{EnergyConfig, FrictionConfig, ModelConfig, Precision};
    use candle_core::Device;
    use wlm_energy::AttentionEnergyConfig;
    use wlm_integrate::Integrator;

    fn cloud(n: usize, shift: f64, seed: f64) -> Tensor {
        let v: Vec<f64> = (0..2 * n)
            .map(|i| ((i as f64) * 1.37 + seed).sin() + shift)
            .collect();
        Tensor::from_vec(v, (n, 2), &Device::Cpu).expect("cloud")
    }

    /// Losses, friction and final parameters of `steps` training steps.
    fn train(keep_graphs_mib: u64, detach_positions: bool, steps: usize) -> (Vec<f64>, Vec<f64>) {
        let clouds: Vec<Tensor> = (0..4)
            .map(|m| cloud(12, 0.1 * m as f64, m as f64))
            .collect();
        let mut velocities = vec![Some((cloud(12, 0.0, 9.0) * 0.3).expect("v"))];
        velocities.extend((1..4).map(|_| None));
        let snapshots =
            Snapshots::from_tensors(vec![0.0, 0.1, 0.2, 0.3], &clouds, Some(&velocities))
                .expect("snapshots");
        let model = Model::new(
            ModelConfig {
                energy: EnergyConfig::Attention(AttentionEnergyConfig {
                    dim: 2,
                    heads: 2,
                    hidden: 8,
                    blocks: 1,
                    ff: 16,
                    time_features: false,
                    dropout: 0.0,
                }),
                friction: FrictionConfig {
                    gamma: 0.5,
                    learnable: true,
                },
                integrator: Integrator::ReferenceLeapfrog,
                detach_positions,
                precision: Precision::F64,
                init_seed: 1,
            },
            &Device::Cpu,
        )
        .expect("model");
        let config = TrainConfig {
            batch_size: Some(10),
            lr: 1e-2,
            keep_graphs_mib,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(model, config, &snapshots).expect("trainer");
        let losses = (0..steps)
            .map(|_| trainer.step().expect("step").loss)
            .collect();
        let params = trainer
            .model()
            .named_parameters()
            .iter()
            .flat_map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f64>())
                    .expect("values")
            })
            .collect();
        (losses, params)
    }

    /// Keeping the forward graphs (the default budget) and rebuilding them (budget 0) train
    /// identically, step for step, in both position-gradient modes.
    #[test]
    fn keeping_graphs_trains_exactly_like_rebuilding_them() {
        for detach_positions in [true, false] {
            let kept = train(TrainConfig::default().keep_graphs_mib, detach_positions, 4);
            let rebuilt = train(0, detach_positions, 4);
            assert_eq!(kept.0, rebuilt.0, "losses, detach={detach_positions}");
            assert_eq!(kept.1, rebuilt.1, "parameters, detach={detach_positions}");
            assert!(kept.0.iter().all(|l| l.is_finite()));
        }
    }

    /// A one-block, f64 attention model in 2-D, small enough for many training steps.
    fn tiny_attention_model() -> Model {
        Model::new(
            ModelConfig {
                energy: EnergyConfig::Attention(AttentionEnergyConfig {
                    dim: 2,
                    heads: 1,
                    hidden: 4,
                    blocks: 1,
                    ff: 8,
                    time_features: false,
                    dropout: 0.0,
                }),
                precision: Precision::F64,
                ..ModelConfig::default()
            },
            &Device::Cpu,
        )
        .expect("model")
    }

    /// Data without velocities train from the OT estimate at snapshot 0: the forward
    /// difference to training snapshot 1 (central has no backward neighbour there), row for
    /// row; a few steps give finite losses. `Model` velocities are refused, naming the field.
    #[test]
    fn ot_velocities_start_training_on_data_without_velocities() {
        let clouds: Vec<Tensor> = (0..4)
            .map(|m| cloud(12, 0.1 * m as f64, m as f64))
            .collect();
        let snapshots =
            Snapshots::from_tensors(vec![0.0, 0.1, 0.2, 0.3], &clouds, None).expect("snapshots");
        let model = tiny_attention_model;
        let config = |source| TrainConfig {
            initial_velocities: source,
            batch_size: Some(8),
            ..TrainConfig::default()
        };
        let mut trainer =
            Trainer::new(model(), config(VelocitySource::OtCentral), &snapshots).expect("trainer");
        let expected = ot_finite_difference(&snapshots, 0, Scheme::Forward).expect("estimate");
        let v0 = trainer.data.start_velocities[0]
            .as_ref()
            .expect("velocities");
        assert_eq!(
            v0.to_vec2::<f64>().expect("v0"),
            expected.to_vec2::<f64>().expect("expected")
        );
        assert!(
            v0.abs()
                .expect("abs")
                .sum_all()
                .expect("sum")
                .to_scalar::<f64>()
                .expect("s")
                > 0.0
        );
        for _ in 0..3 {
            assert!(trainer.step().expect("step").loss.is_finite());
        }
        let message = Trainer::new(model(), config(VelocitySource::Model), &snapshots)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("train.initial_velocities"), "{message}");
        let message = Trainer::new(model(), config(VelocitySource::Data), &snapshots)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("OtCentral"), "{message}");
    }
    /// Over many draws, multiple-shooting starts take every training snapshot but the last
    /// (and nothing else), horizons stay within `1..=min(cap, K − s)` so `s + k ≤ K`, and a
    /// fixed horizon is that maximum. Without `random_start` the start is 0 and the horizon is
    /// the reference's single draw `U{1..min(cap, K)}` from the same stream.
    #[test]
    fn random_starts_cover_every_eligible_snapshot_and_stay_in_range() {
        for n_snapshots in [2, 5, 9] {
            let last = n_snapshots - 1;
            for cap in [None, Some(2)] {
                for fixed in [false, true] {
                    let mut rng = TrainRng::seed_from(7);
                    let mut seen = vec![0usize; n_snapshots];
                    for _ in 0..2000 {
                        let (s, k) =
                            draw_start_and_horizon(&mut rng, n_snapshots, cap, fixed, true);
                        let longest = cap.map_or(last - s, |c| c.min(last - s));
                        assert!(s < last, "start {s} of {n_snapshots}");
                        assert!(k >= 1 && k <= longest, "k {k}, s {s}, cap {cap:?}");
                        assert!(s + k <= last);
                        if fixed {
                            assert_eq!(k, longest);
                        }
                        seen[s] += 1;
                    }
                    assert!(seen[..last].iter().all(|&c| c > 0), "{seen:?}");
                    assert_eq!(seen[last], 0);
                    let mut rng = TrainRng::seed_from(7);
                    let mut reference = TrainRng::seed_from(7);
                    for _ in 0..200 {
                        let (s, k) =
                            draw_start_and_horizon(&mut rng, n_snapshots, cap, fixed, false);
                        let big_k = cap.map_or(last, |c| c.min(last));
                        let expected = if fixed {
                            big_k
                        } else {
                            reference.random_range(1..=big_k)
                        };
                        assert_eq!((s, k), (0, expected));
                    }
                    assert_eq!(rng.state(), reference.state());
                }
            }
        }
    }

    /// A multiple-shooting run on data without velocities starts from several snapshots,
    /// never past `K`; each start's OT estimate is made once and is the central difference
    /// at that training snapshot (forward at 0). `Data` starts need velocities at every
    /// eligible snapshot: the error names the first that lacks them.
    #[test]
    fn random_starts_train_from_cached_ot_estimates_and_data_needs_every_start() {
        let clouds: Vec<Tensor> = (0..5)
            .map(|m| cloud(10, 0.1 * m as f64, m as f64))
            .collect();
        let times = vec![0.0, 0.1, 0.2, 0.3, 0.4];
        let snapshots = Snapshots::from_tensors(times.clone(), &clouds, None).expect("snapshots");
        let model = tiny_attention_model;
        let config = |source| TrainConfig {
            initial_velocities: source,
            random_start: true,
            batch_size: Some(8),
            ..TrainConfig::default()
        };
        let mut trainer =
            Trainer::new(model(), config(VelocitySource::OtCentral), &snapshots).expect("trainer");
        assert!(trainer.data.start_velocities[1..]
            .iter()
            .all(Option::is_none));
        let mut starts = Vec::new();
        for _ in 0..12 {
            let report = trainer.step().expect("step");
            assert!(report.loss.is_finite());
            assert!(report.start + report.horizon <= 4, "{report:?}");
            starts.push(report.start);
        }
        starts.sort_unstable();
        starts.dedup();
        assert!(starts.len() >= 3, "starts {starts:?}");
        for s in 0..5 {
            let cached = &trainer.data.start_velocities[s];
            if s == 0 || starts.contains(&s) {
                let scheme = if s == 0 {
                    Scheme::Forward
                } else {
                    Scheme::Central
                };
                let expected = ot_finite_difference(&snapshots, s, scheme).expect("estimate");
                assert_eq!(
                    cached
                        .as_ref()
                        .expect("cached")
                        .to_vec2::<f64>()
                        .expect("v"),
                    expected.to_vec2::<f64>().expect("expected"),
                    "snapshot {s}"
                );
            } else {
                assert!(cached.is_none(), "snapshot {s} was never drawn");
            }
        }
        let mut velocities: Vec<Option<Tensor>> = vec![None; 5];
        velocities[0] = Some(cloud(10, 0.0, 3.0));
        velocities[1] = Some(cloud(10, 0.0, 4.0));
        let partial = Snapshots::from_tensors(times, &clouds, Some(&velocities)).expect("data");
        let message = Trainer::new(model(), config(VelocitySource::Data), &partial)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("training snapshot 2 has none"),
            "{message}"
        );
        let fixed = TrainConfig {
            random_start: false,
            ..config(VelocitySource::Data)
        };
        assert!(Trainer::new(model(), fixed, &partial).is_ok());
    }
}

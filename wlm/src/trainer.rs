//! The training loop of SPEC 4: random horizon, minibatch, rollout loss, AdamW with two
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
    pub(crate) velocities0: Option<Tensor>,
}

/// Trains a [`Model`] on training snapshots (SPEC 4).
///
/// Each [`Trainer::step`]: draw `k ~ U{1..K}` (`K` = number of training snapshots − 1, capped
/// by `max_horizon`); take `B` points of snapshot 0 with their velocities (or zero); roll out
/// one integrator step per interval to the `k`-th training time; loss = mean over `m = 1..k`
/// of the Sinkhorn divergence to snapshot `m` (subsampled to the batch size when
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
    /// 0 lacks or `Model` velocities (`train.initial_velocities`); exact-OT failures of an
    /// OT velocity estimate (`train.initial_velocities`); tensor failures.
    ///
    /// The OT sources estimate snapshot 0's velocities once, here, from the training
    /// snapshots (at snapshot 0 every scheme is the forward difference to training snapshot
    /// 1); a minibatch takes its points' rows of that estimate.
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
        let velocities0 = match config.initial_velocities {
            VelocitySource::Zero => None,
            VelocitySource::Data => match train.velocities_tensor(0, dtype, &device)? {
                Some(v) => Some(v),
                None => {
                    return Err(Error::config(
                        "train.initial_velocities",
                        "Data was asked for but the first training snapshot has no velocities (use Zero or OtCentral)",
                    ))
                }
            },
            source @ (VelocitySource::OtForward
            | VelocitySource::OtBackward
            | VelocitySource::OtCentral) => {
                let scheme = source.ot_scheme().unwrap_or(Scheme::Forward);
                let v = ot_finite_difference(train, 0, scheme).map_err(|e| {
                    Error::config("train.initial_velocities", format!("{source:?}: {e}"))
                })?;
                Some(v.to_dtype(dtype)?.to_device(&device)?)
            }
            // Refused by `validate` above.
            VelocitySource::Model => {
                return Err(Error::config(
                    "train.initial_velocities",
                    "Model is for evaluation only",
                ))
            }
        };
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
            velocities0,
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

    /// Draws this step's horizon and minibatch (consuming the RNG).
    fn draw_problem(&mut self) -> Result<(RolloutLoss, usize)> {
        let big_k = self.max_horizon();
        let k = if self.config.fixed_horizon {
            big_k
        } else {
            self.rng.random_range(1..=big_k)
        };
        let n0 = self.data.positions[0].dim(0)?;
        let mut n = self.config.batch_size.map_or(n0, |b| b.min(n0));
        if self.config.subsample_targets {
            for m in 1..=k {
                n = n.min(self.data.positions[m].dim(0)?);
            }
        }
        let x_all = self.data.positions[0].clone();
        let (x0, v0) = if n < n0 {
            let idx = self.index_tensor(n0, n)?;
            let x0 = x_all.index_select(&idx, 0)?;
            let v0 = match &self.data.velocities0 {
                Some(v) => v.index_select(&idx, 0)?,
                None => x0.zeros_like()?,
            };
            (x0, v0)
        } else {
            let v0 = match &self.data.velocities0 {
                Some(v) => v.clone(),
                None => x_all.zeros_like()?,
            };
            (x_all.clone(), v0)
        };
        let mut targets = Vec::with_capacity(k);
        for m in 1..=k {
            let y = self.data.positions[m].clone();
            let size = y.dim(0)?;
            if self.config.subsample_targets && n < size {
                let idx = self.index_tensor(size, n)?;
                targets.push(y.index_select(&idx, 0)?);
            } else {
                targets.push(y.clone());
            }
        }
        let dts = (1..=k)
            .map(|m| self.data.times[m] - self.data.times[m - 1])
            .collect();
        let problem = RolloutLoss {
            x0,
            v0,
            t0: self.data.times[0],
            dts,
            targets,
            sinkhorn: self.sinkhorn_config(),
        };
        Ok((problem, n))
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
    /// (nothing is updated then); Sinkhorn, force and tensor failures.
    pub fn step(&mut self) -> Result<StepReport> {
        let start = Instant::now();
        let step = self.step + 1;
        let (problem, batch) = self.draw_problem()?;
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
        let model = || {
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
        };
        let config = |source| TrainConfig {
            initial_velocities: source,
            batch_size: Some(8),
            ..TrainConfig::default()
        };
        let mut trainer =
            Trainer::new(model(), config(VelocitySource::OtCentral), &snapshots).expect("trainer");
        let expected = ot_finite_difference(&snapshots, 0, Scheme::Forward).expect("estimate");
        let v0 = trainer.data.velocities0.as_ref().expect("velocities");
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
}

//! [`FlowTrainer`]: simulation-free training of the velocity network by regression on
//! conditional path velocities over the chain's intervals; AdamW and an EMA of the weights.

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use wlm_data::Snapshots;
use wlm_numeric::SeedRng;

use crate::config::FlowConfig;
use crate::coupling::couple;
use crate::error::{Error, Result};
use crate::model::FlowModel;
use crate::path::Path;

/// One minibatch of the regression: inputs, time features and target velocities.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Row-major `(n, dim)` points `x_τ = μ_τ + σε` (standardised).
    pub x: Vec<f32>,
    /// Row-major `(n, n_features)` time inputs.
    pub features: Vec<f32>,
    /// Row-major `(n, dim)` targets `u_τ`.
    pub target: Vec<f32>,
    /// Rows.
    pub n: usize,
}

/// Trains a [`FlowModel`]: per step and per interval `k` of the chain, `batch_size` points
/// drawn with replacement from each end, paired by the coupling, a local time `τ ~ U(0, 1)`
/// and noise `ε ~ N(0, I)` per pair; the loss is the mean squared error between
/// `v_θ(x_τ, k + τ)` and `u_τ` over all intervals' pairs, minimised by AdamW. Every draw comes
/// from one [`SeedRng`] seeded by `train.seed` (after the initial weights), so training is a
/// function of the config and the data.
#[derive(Debug)]
pub struct FlowTrainer {
    model: FlowModel,
    path: Path,
    optimizer: AdamW,
    ema: Vec<Tensor>,
    rng: SeedRng,
    step: usize,
}

impl FlowTrainer {
    /// A trainer with fresh weights on the training snapshots `train` of `snapshots`.
    ///
    /// # Errors
    /// Config and data errors (see [`FlowModel::new`]); the anisotropic path's fit.
    pub fn new(config: &FlowConfig, snapshots: &Snapshots, train: &[usize]) -> Result<Self> {
        let mut rng = SeedRng::seed_from(config.train.seed);
        let model = FlowModel::with_rng(config, snapshots, train, &mut rng)?;
        let chain = model.chain();
        let pooled: Vec<f64> = (0..=chain.n_intervals())
            .flat_map(|k| chain.cloud(k).to_vec())
            .collect();
        let path = Path::new(&config.path, &pooled, chain.dim())?;
        let vars: Vec<_> = model
            .net()
            .named_vars()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let ema = vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let optimizer = AdamW::new(
            vars,
            ParamsAdamW {
                lr: config.train.lr,
                weight_decay: config.train.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            model,
            path,
            optimizer,
            ema,
            rng,
            step: 0,
        })
    }

    /// The model (current, not EMA, weights).
    pub fn model(&self) -> &FlowModel {
        &self.model
    }

    /// The fitted path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Steps taken.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Draws the next minibatch (advancing the generator).
    ///
    /// # Errors
    /// Exact-OT failures.
    pub fn draw_batch(&mut self) -> Result<Batch> {
        let config = self.model.config();
        let chain = self.model.chain();
        let (dim, b, sigma) = (chain.dim(), config.train.batch_size, config.sigma);
        let mut batch = Batch {
            x: Vec::new(),
            features: Vec::new(),
            target: Vec::new(),
            n: 0,
        };
        let (mut mu, mut u) = (vec![0.0; dim], vec![0.0; dim]);
        for k in 0..chain.n_intervals() {
            let mut draw = |cloud: &[f64]| -> Vec<f64> {
                let n = (cloud.len() / dim) as u64;
                (0..b)
                    .flat_map(|_| {
                        let i = self.rng.below(n) as usize;
                        cloud[i * dim..(i + 1) * dim].to_vec()
                    })
                    .collect()
            };
            let (x0, x1) = (draw(chain.cloud(k)), draw(chain.cloud(k + 1)));
            let pairs = couple(&x0, &x1, dim, config.coupling, &self.path, b, &mut self.rng)?;
            for (i, j) in pairs {
                let (a, z) = (&x0[i * dim..(i + 1) * dim], &x1[j * dim..(j + 1) * dim]);
                let tau = self.rng.uniform();
                self.path.position(a, z, tau, &mut mu);
                self.path.velocity(a, z, tau, &mut u);
                for m in &mu {
                    batch.x.push((m + sigma * self.rng.normal()) as f32);
                }
                batch.target.extend(u.iter().map(|&v| v as f32));
                chain.push_features(k as f64 + tau, &mut batch.features);
                batch.n += 1;
            }
        }
        Ok(batch)
    }

    /// One optimiser step; returns the loss before the step.
    ///
    /// # Errors
    /// [`Error::Diverged`] for a non-finite loss; tensor and OT failures.
    pub fn step(&mut self) -> Result<f64> {
        let batch = self.draw_batch()?;
        let dim = self.model.chain().dim();
        let device = Device::Cpu;
        let x = Tensor::from_vec(batch.x, (batch.n, dim), &device)?;
        let features = Tensor::from_vec(
            batch.features,
            (batch.n, self.model.chain().n_features()),
            &device,
        )?;
        let target = Tensor::from_vec(batch.target, (batch.n, dim), &device)?;
        let prediction = self.model.net().forward(&x, &features)?;
        let loss = (prediction - target)?.sqr()?.mean_all()?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::Diverged {
                step: self.step,
                loss: value,
            });
        }
        self.optimizer.backward_step(&loss)?;
        let decay = self.model.config().train.ema_decay;
        for (shadow, (_, var)) in self.ema.iter_mut().zip(self.model.net().named_vars()) {
            *shadow = ((&*shadow * decay)? + (var.as_tensor() * (1.0 - decay))?)?;
        }
        self.step += 1;
        Ok(value)
    }

    /// Runs the remaining steps of `train.steps`, calling `on_step(step, loss)` after each.
    ///
    /// # Errors
    /// As [`FlowTrainer::step`].
    pub fn train(&mut self, on_step: &mut dyn FnMut(usize, f64)) -> Result<()> {
        while self.step < self.model.config().train.steps {
            let loss = self.step()?;
            on_step(self.step, loss);
        }
        Ok(())
    }

    /// The trained model, with the EMA weights when `predict.use_ema`.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn finish(self) -> Result<FlowModel> {
        if self.model.config().predict.use_ema {
            for (shadow, (_, var)) in self.ema.iter().zip(self.model.net().named_vars()) {
                var.set(shadow)?;
            }
        }
        Ok(self.model)
    }
}

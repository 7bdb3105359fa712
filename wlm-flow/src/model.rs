//! [`FlowModel`]: a velocity network over a [`Chain`], integrated by fixed-step RK4 or Euler
//! from any time to any time; weights saved and loaded as safetensors.

use std::collections::HashMap;
use std::path::Path as FsPath;

use candle_core::{Device, Tensor};
use wlm_data::Snapshots;
use wlm_numeric::SeedRng;

use crate::chain::Chain;
use crate::config::{FlowConfig, Solver};
use crate::error::{Error, Result};
use crate::network::VelocityNet;

/// A flow-matching model: the configuration, the chain of training snapshots it was built on
/// (times and standardisation) and the velocity network `dx/ds` in chain time.
#[derive(Debug)]
pub struct FlowModel {
    config: FlowConfig,
    chain: Chain,
    net: VelocityNet,
}

impl FlowModel {
    /// A model with fresh weights (drawn from `SeedRng::seed_from(config.train.seed)`) for the
    /// training snapshots `train` of `snapshots`.
    ///
    /// # Errors
    /// [`Error::Config`] from [`FlowConfig::validate`]; [`Error::Data`] from [`Chain::new`].
    pub fn new(config: &FlowConfig, snapshots: &Snapshots, train: &[usize]) -> Result<Self> {
        let mut rng = SeedRng::seed_from(config.train.seed);
        Self::with_rng(config, snapshots, train, &mut rng)
    }

    pub(crate) fn with_rng(
        config: &FlowConfig,
        snapshots: &Snapshots,
        train: &[usize],
        rng: &mut SeedRng,
    ) -> Result<Self> {
        config.validate()?;
        let chain = Chain::new(snapshots, train, config.standardize, config.time)?;
        let net = VelocityNet::new(
            &config.network,
            chain.dim(),
            chain.n_features(),
            rng,
            &Device::Cpu,
        )?;
        Ok(Self {
            config: config.clone(),
            chain,
            net,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The chain of training snapshots.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The velocity network.
    pub fn net(&self) -> &VelocityNet {
        &self.net
    }

    /// The learned velocity `dx/ds` (standardised units per unit chain time) at standardised
    /// points `y` and chain time `s`.
    ///
    /// # Shapes
    /// `y`: `(n, dim)` f32 → `(n, dim)` f32.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn velocity(&self, y: &Tensor, s: f64) -> Result<Tensor> {
        let n = y.dim(0)?;
        let mut row = Vec::new();
        self.chain.push_features(s, &mut row);
        let features = Tensor::new(row.as_slice(), y.device())?
            .unsqueeze(0)?
            .broadcast_as((n, self.chain.n_features()))?
            .contiguous()?;
        self.net.forward(y, &features)
    }

    /// Moves the row-major `(n, dim)` points `x` (data coordinates) from absolute time
    /// `t_from` to each of `times` in turn (sorted in the direction of travel), with the
    /// configured solver and `steps_per_interval` fixed steps per unit of chain time
    /// (at least one step per leg). Returns one row-major cloud per time.
    ///
    /// # Errors
    /// [`Error::Data`] for a wrong number of values or non-finite predictions; tensor
    /// failures.
    pub fn trajectory(&self, x: &[f64], t_from: f64, times: &[f64]) -> Result<Vec<Vec<f64>>> {
        let dim = self.chain.dim();
        if x.is_empty() || !x.len().is_multiple_of(dim) {
            return Err(Error::Data(format!(
                "a start of {} values is not a cloud of {dim}-dimensional points",
                x.len()
            )));
        }
        let y: Vec<f32> = self.chain.normalize(x).iter().map(|&v| v as f32).collect();
        let mut y = Tensor::from_vec(y, (x.len() / dim, dim), &Device::Cpu)?;
        let mut s = self.chain.chain_time(t_from);
        let mut out = Vec::with_capacity(times.len());
        for &t in times {
            let s_to = self.chain.chain_time(t);
            y = self.integrate(&y, s, s_to)?;
            s = s_to;
            let values: Vec<f64> = y
                .flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .map(f64::from)
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(Error::Data(format!(
                    "the prediction at time {t} has non-finite values"
                )));
            }
            out.push(self.chain.denormalize(&values));
        }
        Ok(out)
    }

    /// [`FlowModel::trajectory`] to one time.
    ///
    /// # Errors
    /// As [`FlowModel::trajectory`].
    pub fn predict(&self, x: &[f64], t_from: f64, t_to: f64) -> Result<Vec<f64>> {
        Ok(self
            .trajectory(x, t_from, &[t_to])?
            .pop()
            .unwrap_or_default())
    }

    fn integrate(&self, y: &Tensor, s_from: f64, s_to: f64) -> Result<Tensor> {
        let span = s_to - s_from;
        let n_steps =
            ((span.abs() * self.config.predict.steps_per_interval as f64).ceil() as usize).max(1);
        let h = span / n_steps as f64;
        let mut y = y.clone();
        for i in 0..n_steps {
            let s = s_from + i as f64 * h;
            y = match self.config.predict.solver {
                Solver::Euler => (&y + (self.velocity(&y, s)? * h)?)?,
                Solver::Rk4 => {
                    let k1 = self.velocity(&y, s)?;
                    let k2 = self.velocity(&(&y + (&k1 * (h / 2.0))?)?, s + h / 2.0)?;
                    let k3 = self.velocity(&(&y + (&k2 * (h / 2.0))?)?, s + h / 2.0)?;
                    let k4 = self.velocity(&(&y + (&k3 * h)?)?, s + h)?;
                    let sum = (((k1 + (k2 * 2.0)?)? + (k3 * 2.0)?)? + k4)?;
                    (&y + (sum * (h / 6.0))?)?
                }
            };
        }
        Ok(y)
    }

    /// The current weights by name.
    ///
    /// # Errors
    /// Tensor failures.
    pub fn weights(&self) -> Result<HashMap<String, Tensor>> {
        self.net
            .named_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect()
    }

    /// Replaces the weights (names as [`FlowModel::weights`]).
    ///
    /// # Errors
    /// A missing name or a shape mismatch.
    pub fn set_weights(&self, weights: &HashMap<String, Tensor>) -> Result<()> {
        self.net.set_values(weights)
    }

    /// Writes the weights as a safetensors file, atomically.
    ///
    /// # Errors
    /// [`Error::File`] naming the path.
    pub fn save(&self, path: &FsPath) -> Result<()> {
        let weights = self.weights()?;
        let mut named: Vec<(&String, &Tensor)> = weights.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = safetensors::serialize(named, None).map_err(|e| Error::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        wlm_data::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Reads weights written by [`FlowModel::save`].
    ///
    /// # Errors
    /// [`Error::File`] naming the path for an unreadable file, missing or mis-shaped weights.
    pub fn load(&self, path: &FsPath) -> Result<()> {
        let file_error = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        let weights = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| file_error(e.to_string()))?;
        self.set_weights(&weights)
            .map_err(|e| file_error(e.to_string()))
    }
}

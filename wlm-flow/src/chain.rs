//! [`Chain`]: the training snapshots as a chain of intervals, the map between absolute time
//! and chain time `s = k + τ`, the network's time inputs, and the standardisation.

use wlm_data::Snapshots;

use crate::config::TimeInput;
use crate::error::{Error, Result};

/// Training snapshots in time order, standardised, with their chain-time bookkeeping.
///
/// Interval `k` runs from training snapshot `k` to `k + 1` (indices into the training list,
/// so a held-out snapshot between two training ones lies inside the interval that spans it).
/// Chain time `s = k + τ`, `τ = (t − t_k)/(t_{k+1} − t_k)`; before the first and after the last
/// training time `s` continues linearly with the first and last interval's length.
#[derive(Clone, Debug)]
pub struct Chain {
    times: Vec<f64>,
    clouds: Vec<Vec<f64>>,
    dim: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    time_input: TimeInput,
}

impl Chain {
    /// The chain of `snapshots` at the indices `train` (at least two, increasing), standardised
    /// by their pooled per-coordinate mean and standard deviation when `standardize`.
    ///
    /// # Errors
    /// [`Error::Data`] for fewer than two training snapshots, an index out of range or not
    /// increasing.
    pub fn new(
        snapshots: &Snapshots,
        train: &[usize],
        standardize: bool,
        time_input: TimeInput,
    ) -> Result<Self> {
        if train.len() < 2 {
            return Err(Error::Data(format!(
                "flow matching needs at least 2 training snapshots, got {}",
                train.len()
            )));
        }
        if let Some(&bad) = train.iter().find(|&&k| k >= snapshots.len()) {
            return Err(Error::Data(format!(
                "training snapshot {bad} does not exist: the data have {} snapshots",
                snapshots.len()
            )));
        }
        if train.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Data(format!(
                "training snapshot indices must increase, got {train:?}"
            )));
        }
        let dim = snapshots.dim();
        let (mut mean, mut scale) = (vec![0.0; dim], vec![1.0; dim]);
        if standardize {
            let n: usize = train.iter().map(|&k| snapshots.n_particles(k)).sum();
            let points = || {
                train
                    .iter()
                    .flat_map(|&k| snapshots.positions(k).chunks_exact(dim))
            };
            for p in points() {
                for (m, v) in mean.iter_mut().zip(p) {
                    *m += v / n as f64;
                }
            }
            let mut var = vec![0.0; dim];
            for p in points() {
                for ((s, v), m) in var.iter_mut().zip(p).zip(&mean) {
                    *s += (v - m) * (v - m) / n as f64;
                }
            }
            for (s, v) in scale.iter_mut().zip(var) {
                *s = if v > 0.0 { v.sqrt() } else { 1.0 };
            }
        }
        let mut chain = Self {
            times: train.iter().map(|&k| snapshots.times()[k]).collect(),
            clouds: Vec::new(),
            dim,
            mean,
            scale,
            time_input,
        };
        chain.clouds = train
            .iter()
            .map(|&k| chain.normalize(snapshots.positions(k)))
            .collect();
        Ok(chain)
    }

    /// The data dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of intervals (training snapshots − 1).
    pub fn n_intervals(&self) -> usize {
        self.times.len() - 1
    }

    /// Absolute times of the training snapshots.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Standardised positions of training snapshot `k` of the chain, row-major `(n, dim)`.
    pub fn cloud(&self, k: usize) -> &[f64] {
        &self.clouds[k]
    }

    /// Row-major points in standardised coordinates.
    pub fn normalize(&self, x: &[f64]) -> Vec<f64> {
        x.chunks_exact(self.dim)
            .flat_map(|p| {
                p.iter()
                    .zip(&self.mean)
                    .zip(&self.scale)
                    .map(|((v, m), s)| (v - m) / s)
            })
            .collect()
    }

    /// Row-major standardised points back in data coordinates.
    pub fn denormalize(&self, y: &[f64]) -> Vec<f64> {
        y.chunks_exact(self.dim)
            .flat_map(|p| {
                p.iter()
                    .zip(&self.mean)
                    .zip(&self.scale)
                    .map(|((v, m), s)| v * s + m)
            })
            .collect()
    }

    /// Chain time `s` of absolute time `t`.
    pub fn chain_time(&self, t: f64) -> f64 {
        let last = self.n_intervals();
        let k = match self.times.partition_point(|&tk| tk <= t) {
            0 => 0,
            p => (p - 1).min(last - 1),
        };
        let (a, b) = (self.times[k], self.times[k + 1]);
        k as f64 + (t - a) / (b - a)
    }

    /// Absolute time of chain time `s` (the inverse of [`Chain::chain_time`]).
    pub fn absolute_time(&self, s: f64) -> f64 {
        let k = self.interval_of(s);
        let (a, b) = (self.times[k], self.times[k + 1]);
        a + (s - k as f64) * (b - a)
    }

    fn interval_of(&self, s: f64) -> usize {
        (s.floor().max(0.0) as usize).min(self.n_intervals() - 1)
    }

    /// Number of time inputs of the network.
    pub fn n_features(&self) -> usize {
        match self.time_input {
            TimeInput::Chain | TimeInput::Absolute => 1,
            TimeInput::LocalAndIndex => 1 + self.n_intervals(),
        }
    }

    /// Appends the network's time inputs at chain time `s` to `out`.
    pub fn push_features(&self, s: f64, out: &mut Vec<f32>) {
        match self.time_input {
            TimeInput::Chain => out.push(s as f32),
            TimeInput::Absolute => out.push(self.absolute_time(s) as f32),
            TimeInput::LocalAndIndex => {
                let k = self.interval_of(s);
                out.push((s - k as f64) as f32);
                out.extend((0..self.n_intervals()).map(|j| f32::from(u8::from(j == k))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshots() -> Snapshots {
        let positions: Vec<Vec<f64>> = (0..5)
            .map(|k| vec![k as f64, 1.0, -(k as f64), 3.0])
            .collect();
        Snapshots::new(vec![0.0, 1.0, 3.0, 4.0, 10.0], 2, positions, None).unwrap()
    }

    #[test]
    fn chain_time_round_trips_and_held_out_times_fall_inside_their_interval() {
        let chain = Chain::new(&snapshots(), &[0, 2, 4], false, TimeInput::Chain).unwrap();
        // Held out t = 1 lies in interval 0 (0 → 3), t = 4 in interval 1 (3 → 10).
        assert!((chain.chain_time(1.0) - 1.0 / 3.0).abs() < 1e-15);
        assert!((chain.chain_time(4.0) - (1.0 + 1.0 / 7.0)).abs() < 1e-15);
        for t in [-2.0, 0.0, 1.0, 3.0, 4.0, 10.0, 17.0] {
            assert!(
                (chain.absolute_time(chain.chain_time(t)) - t).abs() < 1e-12,
                "{t}"
            );
        }
        assert_eq!(chain.chain_time(10.0), 2.0);
        assert_eq!(chain.chain_time(17.0), 3.0);
    }

    #[test]
    fn standardised_training_points_have_zero_mean_and_unit_variance() {
        let chain = Chain::new(&snapshots(), &[0, 1, 3], true, TimeInput::Chain).unwrap();
        let all: Vec<f64> = (0..3).flat_map(|k| chain.cloud(k).to_vec()).collect();
        for d in 0..2 {
            let col: Vec<f64> = all.iter().skip(d).step_by(2).copied().collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / col.len() as f64;
            assert!(m.abs() < 1e-12 && (v - 1.0).abs() < 1e-12, "{m} {v}");
        }
        let x = vec![0.5, -2.0, 7.0, 1.0];
        let back = chain.denormalize(&chain.normalize(&x));
        assert!(x.iter().zip(back).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn local_and_index_features_are_tau_and_one_hot() {
        let chain = Chain::new(&snapshots(), &[0, 2, 4], false, TimeInput::LocalAndIndex).unwrap();
        let mut f = Vec::new();
        chain.push_features(1.25, &mut f);
        assert_eq!(f, vec![0.25, 0.0, 1.0]);
        // Absolute time: chain time 1.5 is halfway from t = 3 to t = 10.
        let chain = Chain::new(&snapshots(), &[0, 2, 4], false, TimeInput::Absolute).unwrap();
        let mut f = Vec::new();
        chain.push_features(1.5, &mut f);
        assert_eq!(f, vec![6.5]);
        assert!(Chain::new(&snapshots(), &[3], false, TimeInput::Chain).is_err());
        assert!(Chain::new(&snapshots(), &[0, 9], false, TimeInput::Chain).is_err());
    }
}

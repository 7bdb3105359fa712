//! The [`Snapshots`] type: clouds of points observed at strictly increasing times.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Clouds of points observed at strictly increasing times, optionally with velocities.
///
/// Snapshot `k` holds `n_particles(k)` points in `R^dim`, stored row-major. Sizes may differ
/// between snapshots and points are unpaired across times. Each snapshot may carry velocities
/// of the same shape as its positions. Every value is finite; construction checks all of this.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshots {
    times: Vec<f64>,
    dim: usize,
    positions: Vec<Vec<f64>>,
    velocities: Vec<Option<Vec<f64>>>,
    names: Option<Vec<String>>,
}

impl Snapshots {
    /// Checks, before anything is allocated, that `n_snapshots` clouds of `n_particles` points
    /// in `R^dim` (with velocities of the same size when `with_velocities`) fit in the memory
    /// the system reports as available (`MemAvailable + SwapFree` on Linux; elsewhere only
    /// overflow of the size is checked).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the sizes and the bytes needed and available.
    pub fn check_fits(
        n_snapshots: usize,
        n_particles: usize,
        dim: usize,
        with_velocities: bool,
    ) -> Result<()> {
        let copies: u64 = if with_velocities { 2 } else { 1 };
        let what = || {
            format!(
                "{n_snapshots} snapshots of {n_particles} points in {dim} dimensions{}",
                if with_velocities {
                    " with velocities"
                } else {
                    ""
                }
            )
        };
        let needed = [
            n_snapshots as u64,
            n_particles as u64,
            dim as u64,
            copies,
            8,
        ]
        .into_iter()
        .try_fold(1u64, u64::checked_mul);
        match (needed, wlm_numeric::available_memory_bytes()) {
            (None, _) => Err(Error::Invalid(format!(
                "{} need more than 2^64 bytes",
                what()
            ))),
            (Some(needed), Some(available)) if needed > available => Err(Error::Invalid(format!(
                "{} need {needed} bytes, more than the {available} bytes of memory available",
                what()
            ))),
            _ => Ok(()),
        }
    }

    /// Builds and validates snapshots.
    ///
    /// `positions[k]` is snapshot `k`, row-major with `dim` columns; `velocities`, when given,
    /// has one entry per snapshot (`None` where that snapshot has none).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty list, `dim == 0` or list lengths that disagree;
    /// [`Error::InvalidSnapshot`] naming the index for non-finite or non-increasing times, an
    /// empty cloud, a length that is not a multiple of `dim`, velocities whose shape differs
    /// from the positions, and NaN or infinite coordinates.
    pub fn new(
        times: Vec<f64>,
        dim: usize,
        positions: Vec<Vec<f64>>,
        velocities: Option<Vec<Option<Vec<f64>>>>,
    ) -> Result<Self> {
        if times.is_empty() {
            return Err(Error::Invalid(
                "no snapshots: at least one is needed".into(),
            ));
        }
        if dim == 0 {
            return Err(Error::Invalid("dimension must be at least 1, got 0".into()));
        }
        if positions.len() != times.len() {
            return Err(Error::Invalid(format!(
                "{} times but {} position clouds",
                times.len(),
                positions.len()
            )));
        }
        let velocities = velocities.unwrap_or_else(|| vec![None; times.len()]);
        if velocities.len() != times.len() {
            return Err(Error::Invalid(format!(
                "{} times but {} velocity entries",
                times.len(),
                velocities.len()
            )));
        }
        for (index, &t) in times.iter().enumerate() {
            let bad = |problem: String| Error::InvalidSnapshot { index, problem };
            if !t.is_finite() {
                return Err(bad(format!("time is not finite ({t})")));
            }
            if index > 0 && t <= times[index - 1] {
                return Err(bad(format!(
                    "times must be strictly increasing, got {t} after {}",
                    times[index - 1]
                )));
            }
            let cloud = &positions[index];
            if cloud.is_empty() {
                return Err(bad("empty cloud: no points".into()));
            }
            if !cloud.len().is_multiple_of(dim) {
                return Err(bad(format!(
                    "{} position values is not a multiple of the dimension {dim}",
                    cloud.len()
                )));
            }
            if let Some(problem) = non_finite(cloud, dim, "position") {
                return Err(bad(problem));
            }
            if let Some(vel) = &velocities[index] {
                if vel.len() != cloud.len() {
                    return Err(bad(format!(
                        "velocities have {} values but positions have {} ({} points × {dim})",
                        vel.len(),
                        cloud.len(),
                        cloud.len() / dim
                    )));
                }
                if let Some(problem) = non_finite(vel, dim, "velocity") {
                    return Err(bad(problem));
                }
            }
        }
        Ok(Self {
            times,
            dim,
            positions,
            velocities,
            names: None,
        })
    }

    /// Attaches one name per snapshot (e.g. sample labels).
    ///
    /// # Errors
    /// [`Error::Invalid`] if the number of names differs from the number of snapshots.
    pub fn with_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.times.len() {
            return Err(Error::Invalid(format!(
                "{} names for {} snapshots",
                names.len(),
                self.times.len()
            )));
        }
        self.names = Some(names);
        Ok(self)
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Always false: validated snapshots hold at least one cloud.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Observation times, strictly increasing.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Dimension of every point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of points in snapshot `k`. Panics if `k >= len()`.
    pub fn n_particles(&self, k: usize) -> usize {
        self.positions[k].len() / self.dim
    }

    /// Positions of snapshot `k`, row-major `(n_particles(k), dim)`. Panics if `k >= len()`.
    pub fn positions(&self, k: usize) -> &[f64] {
        &self.positions[k]
    }

    /// Velocities of snapshot `k`, if it has them. Panics if `k >= len()`.
    pub fn velocities(&self, k: usize) -> Option<&[f64]> {
        self.velocities[k].as_deref()
    }

    /// Whether every snapshot carries velocities.
    pub fn has_all_velocities(&self) -> bool {
        self.velocities.iter().all(Option::is_some)
    }

    /// Names of the snapshots, if any were attached.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// The snapshots at the given indices, in that order (times must stay increasing).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an index out of range; the errors of [`Snapshots::new`] if the
    /// chosen times are not increasing.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&k| k >= self.len()) {
            return Err(Error::Invalid(format!(
                "snapshot index {bad} out of range: there are {} snapshots",
                self.len()
            )));
        }
        let out = Self::new(
            indices.iter().map(|&k| self.times[k]).collect(),
            self.dim,
            indices.iter().map(|&k| self.positions[k].clone()).collect(),
            Some(
                indices
                    .iter()
                    .map(|&k| self.velocities[k].clone())
                    .collect(),
            ),
        )?;
        match &self.names {
            Some(names) => out.with_names(indices.iter().map(|&k| names[k].clone()).collect()),
            None => Ok(out),
        }
    }

    /// Positions of snapshot `k` as a `(n_particles(k), dim)` tensor. Panics if `k >= len()`.
    ///
    /// # Errors
    /// Tensor creation or dtype conversion failures.
    pub fn positions_tensor(&self, k: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        to_tensor(&self.positions[k], self.dim, dtype, device)
    }

    /// Velocities of snapshot `k` as a `(n_particles(k), dim)` tensor, if present.
    ///
    /// # Errors
    /// Tensor creation or dtype conversion failures.
    pub fn velocities_tensor(
        &self,
        k: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Tensor>> {
        self.velocities[k]
            .as_deref()
            .map(|v| to_tensor(v, self.dim, dtype, device))
            .transpose()
    }

    /// Builds snapshots from `(n_k, dim)` tensors (any float dtype, any device).
    ///
    /// # Errors
    /// [`Error::Invalid`] if a tensor is not of rank 2 or the dimensions differ; otherwise the
    /// errors of [`Snapshots::new`].
    pub fn from_tensors(
        times: Vec<f64>,
        positions: &[Tensor],
        velocities: Option<&[Option<Tensor>]>,
    ) -> Result<Self> {
        let dim = match positions.first() {
            Some(first) => rank2(first, "positions", 0)?.1,
            None => {
                return Err(Error::Invalid(
                    "no snapshots: at least one is needed".into(),
                ))
            }
        };
        let mut pos = Vec::with_capacity(positions.len());
        for (k, t) in positions.iter().enumerate() {
            let (_, d) = rank2(t, "positions", k)?;
            if d != dim {
                return Err(Error::InvalidSnapshot {
                    index: k,
                    problem: format!("dimension {d} differs from snapshot 0's {dim}"),
                });
            }
            pos.push(flatten(t)?);
        }
        let vel = match velocities {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|v| v.as_ref().map(flatten).transpose())
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Self::new(times, dim, pos, vel)
    }
}

/// `"<what> of point i (coordinate k) is not finite (v)"` for the first non-finite entry of the
/// row-major `values` (`dim` per point), if any.
fn non_finite(values: &[f64], dim: usize, what: &str) -> Option<String> {
    let pos = values.iter().position(|v| !v.is_finite())?;
    Some(format!(
        "{what} of point {} (coordinate {}) is not finite ({})",
        pos / dim,
        pos % dim,
        values[pos]
    ))
}

fn rank2(t: &Tensor, what: &str, index: usize) -> Result<(usize, usize)> {
    t.dims2().map_err(|_| Error::InvalidSnapshot {
        index,
        problem: format!("{what} must have shape (n, dim), got {:?}", t.dims()),
    })
}

fn flatten(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

fn to_tensor(values: &[f64], dim: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, (values.len() / dim, dim), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Snapshots {
        Snapshots::new(
            vec![0.0, 1.0],
            2,
            vec![vec![0.0, 1.0], vec![1.0, 2.0, 3.0, 4.0]],
            None,
        )
        .unwrap()
    }

    #[test]
    fn valid_snapshots_report_their_shapes() {
        let s = two();
        assert_eq!(s.len(), 2);
        assert_eq!(s.n_particles(0), 1);
        assert_eq!(s.n_particles(1), 2);
        assert!(!s.has_all_velocities());
    }

    #[test]
    fn non_increasing_times_name_the_snapshot() {
        let err = Snapshots::new(vec![0.0, 0.0], 1, vec![vec![1.0], vec![2.0]], None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("snapshot 1:"), "{msg}");
        assert!(msg.contains("strictly increasing"), "{msg}");
    }

    #[test]
    fn nan_position_names_point_and_coordinate() {
        let err = Snapshots::new(vec![0.0], 2, vec![vec![0.0, 1.0, f64::NAN, 2.0]], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("point 1 (coordinate 0)"), "{err}");
    }

    #[test]
    fn velocity_shape_mismatch_is_rejected() {
        let err = Snapshots::new(
            vec![0.0],
            1,
            vec![vec![0.0, 1.0]],
            Some(vec![Some(vec![1.0])]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("velocities have 1 values"), "{err}");
    }

    #[test]
    fn empty_cloud_and_ragged_rows_are_rejected() {
        assert!(Snapshots::new(vec![0.0], 2, vec![vec![]], None).is_err());
        assert!(Snapshots::new(vec![0.0], 2, vec![vec![1.0, 2.0, 3.0]], None).is_err());
        assert!(Snapshots::new(vec![], 2, vec![], None).is_err());
    }

    #[test]
    fn tensors_round_trip() {
        let s = two();
        let dev = Device::Cpu;
        let ts: Vec<Tensor> = (0..2)
            .map(|k| s.positions_tensor(k, DType::F32, &dev).unwrap())
            .collect();
        let back = Snapshots::from_tensors(s.times().to_vec(), &ts, None).unwrap();
        assert_eq!(back, s);
    }
}

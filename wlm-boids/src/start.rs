//! [`Start`]: where a flock begins, either drawn from a seed or given explicitly.

use serde::{Deserialize, Serialize};
use wlm_numeric::SeedRng;

use crate::{Error, Result};

/// The initial state of a flock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Start {
    /// The reference start: positions `x ~ N(0, I)`; velocities `v ~ N(0, I)`, then the mean
    /// velocity over the flock is subtracted and each velocity scaled to unit speed (one that
    /// is exactly zero stays zero). All positions are drawn first, then all velocities, each
    /// boid's coordinates in order, each one `SeedRng::normal` of `SeedRng::seed_from(seed)`.
    Random {
        /// Number of boids, at least 1.
        n_boids: usize,
        /// Dimension of space, at least 1 (the reference uses 2).
        dim: usize,
        /// Seed of the random number generator, SeedRng (xoshiro256++, wlm-numeric); the same
        /// seed gives the same start.
        seed: u64,
    },
    /// Explicit positions and velocities, row-major `(n_boids, dim)`. Velocities are used
    /// as given (not normalised; the first step normalises them).
    Given {
        /// Positions, row-major `(n_boids, dim)`, all finite.
        positions: Vec<f64>,
        /// Velocities, the same shape as `positions`, all finite.
        velocities: Vec<f64>,
        /// Dimension of space, at least 1.
        dim: usize,
    },
}

impl Start {
    /// The reference start in 2-D: `Start::Random { n_boids, dim: 2, seed }`.
    pub fn random_2d(n_boids: usize, seed: u64) -> Self {
        Self::Random {
            n_boids,
            dim: 2,
            seed,
        }
    }

    /// Checks the start and returns `(positions, velocities, dim)`, drawing them if random.
    ///
    /// # Shapes
    /// Both vectors are row-major `(n_boids, dim)`.
    ///
    /// # Errors
    /// [`Error::Start`] for zero or more than `u32::MAX` boids, `dim == 0`, a length that is not a multiple of `dim`,
    /// velocities whose length differs from the positions', or a NaN or infinite value
    /// (naming the boid and coordinate).
    pub fn realise(&self) -> Result<(Vec<f64>, Vec<f64>, usize)> {
        match self {
            Self::Random { n_boids, dim, seed } => {
                check_sizes(*n_boids, *dim)?;
                let len = n_boids.checked_mul(*dim).ok_or_else(|| {
                    Error::Start(format!("{n_boids} boids × dimension {dim} overflows"))
                })?;
                let mut rng = SeedRng::seed_from(*seed);
                let positions: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
                let mut velocities: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
                for k in 0..*dim {
                    let mean =
                        velocities.iter().skip(k).step_by(*dim).sum::<f64>() / *n_boids as f64;
                    velocities
                        .iter_mut()
                        .skip(k)
                        .step_by(*dim)
                        .for_each(|v| *v -= mean);
                }
                velocities
                    .chunks_exact_mut(*dim)
                    .for_each(crate::flock::normalise);
                Ok((positions, velocities, *dim))
            }
            Self::Given {
                positions,
                velocities,
                dim,
            } => {
                if *dim == 0 {
                    return Err(Error::Start("dim must be at least 1, got 0".into()));
                }
                if !positions.len().is_multiple_of(*dim) {
                    return Err(Error::Start(format!(
                        "{} position values is not a multiple of dim {dim}",
                        positions.len()
                    )));
                }
                check_sizes(positions.len() / dim, *dim)?;
                if velocities.len() != positions.len() {
                    return Err(Error::Start(format!(
                        "velocities have {} values but positions have {} ({} boids × {dim})",
                        velocities.len(),
                        positions.len(),
                        positions.len() / dim
                    )));
                }
                for (what, values) in [("position", positions), ("velocity", velocities)] {
                    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
                        return Err(Error::Start(format!(
                            "{what} of boid {} (coordinate {}) is not finite ({})",
                            at / dim,
                            at % dim,
                            values[at]
                        )));
                    }
                }
                Ok((positions.clone(), velocities.clone(), *dim))
            }
        }
    }
}

fn check_sizes(n_boids: usize, dim: usize) -> Result<()> {
    if n_boids == 0 {
        return Err(Error::Start("n_boids must be at least 1, got 0".into()));
    }
    if dim == 0 {
        return Err(Error::Start("dim must be at least 1, got 0".into()));
    }
    // The cell list packs boid indices into 32 bits.
    if u32::try_from(n_boids).is_err() {
        return Err(Error::Start(format!(
            "at most {} boids, got {n_boids}",
            u32::MAX
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_start_has_unit_speeds_and_standard_normal_positions() {
        let (x, v, dim) = Start::random_2d(500, 3).realise().unwrap();
        assert_eq!((x.len(), v.len(), dim), (1000, 1000, 2));
        for row in v.chunks_exact(2) {
            let speed = (row[0] * row[0] + row[1] * row[1]).sqrt();
            assert!((speed - 1.0).abs() < 1e-12, "speed {speed}");
        }
        // Positions look standard normal: mean near 0, variance near 1 (500·2 draws).
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(
            mean.abs() < 0.15 && (var - 1.0).abs() < 0.15,
            "mean {mean} var {var}"
        );
    }

    #[test]
    fn given_start_with_nan_names_the_boid_and_coordinate() {
        let start = Start::Given {
            positions: vec![0.0, 0.0, 1.0, 2.0],
            velocities: vec![1.0, 0.0, 0.0, f64::NAN],
            dim: 2,
        };
        let msg = start.realise().unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid start: velocity of boid 1 (coordinate 1) is not finite (NaN)"
        );
    }
}

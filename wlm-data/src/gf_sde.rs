//! The GF-SDE data of METHOD.md §5: snapshots of `dX = −∇ψ(X) dt + σ dW` by Euler–Maruyama, with
//! probability-flow velocities.

use serde::{Deserialize, Serialize};
use wlm_numeric::SeedRng;

use crate::score::{probability_flow_velocity, ScoreSign};
use crate::{Error, Potential, Result, Snapshots};

/// Whether snapshots follow the same particles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// One set of `N` trajectories observed at every time (snapshot `k` is the same particles
    /// `k` intervals later). The default.
    #[default]
    Paired,
    /// Snapshot `k ≥ 1` is simulated from `k · dt` of fresh draws of `x0 ~ N(0, v I)`, so
    /// snapshots are independent samples of the marginals (the unpaired data of METHOD.md §5).
    /// Snapshot 0
    /// is the first draw.
    Unpaired,
    /// As `Unpaired`, but each snapshot starts from a resample (with replacement) of snapshot
    /// 0's points, as the reference code's `kill_condition` does.
    UnpairedBootstrap,
}

/// Which snapshots get velocities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VelocitySnapshots {
    /// Every snapshot (the reference computes them for all). The default.
    #[default]
    All,
    /// Snapshot 0 only (what training from observed initial velocities needs).
    First,
    /// None.
    None,
}

/// The GF-SDE data set; [`GfSdeConfig::generate`] produces it. Defaults are METHOD.md §5's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GfSdeConfig {
    /// The potential `ψ`. Default [`Potential::Quadratic`].
    pub potential: Potential,
    /// Points per snapshot `N`. Default 1000.
    pub n_particles: usize,
    /// Dimension `d`. Default 2.
    pub dim: usize,
    /// Number of snapshots, at times `0, dt, 2 dt, …`. Default 21.
    pub n_snapshots: usize,
    /// Time between snapshots. Default 0.01.
    pub dt: f64,
    /// Noise amplitude `σ` (diffusion `σ²/2`). Default 1.
    pub sigma: f64,
    /// Variance `v` of the start `x0 ~ N(0, v I)`: covariance `v I`, i.e. standard deviation
    /// `√v` per coordinate. Default 0.2.
    pub initial_variance: f64,
    /// Euler–Maruyama steps per interval (step `dt / substeps`). Default 10.
    pub substeps: usize,
    /// Paired trajectories or independent samples per snapshot. Default [`Pairing::Paired`].
    pub pairing: Pairing,
    /// Which snapshots carry probability-flow velocities. Default [`VelocitySnapshots::All`].
    pub velocities: VelocitySnapshots,
    /// Sign of the entropic term of the velocities. Default [`ScoreSign::ProbabilityFlow`]
    /// (correct); [`ScoreSign::Reference`] reproduces the reference's `+`.
    pub score_sign: ScoreSign,
    /// Seed of the generator, SeedRng (xoshiro256++, wlm-numeric). Default 0.
    pub seed: u64,
}

impl Default for GfSdeConfig {
    fn default() -> Self {
        Self {
            potential: Potential::Quadratic,
            n_particles: 1000,
            dim: 2,
            n_snapshots: 21,
            dt: 0.01,
            sigma: 1.0,
            initial_variance: 0.2,
            substeps: 10,
            pairing: Pairing::Paired,
            velocities: VelocitySnapshots::All,
            score_sign: ScoreSign::ProbabilityFlow,
            seed: 0,
        }
    }
}

impl GfSdeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and value: zero `n_particles`, `n_snapshots` or
    /// `substeps`; `dim` below what the potential needs (Bohachevsky needs 2); a non-positive
    /// or non-finite `dt`; a negative or non-finite `sigma` or `initial_variance`.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: String, need: &str| {
            Err(Error::Invalid(format!(
                "GF-SDE config: {field} is {value}, {need}"
            )))
        };
        if self.n_particles == 0 {
            return bad("n_particles", "0".into(), "need at least 1");
        }
        if self.n_snapshots == 0 {
            return bad("n_snapshots", "0".into(), "need at least 1");
        }
        if self.substeps == 0 {
            return bad("substeps", "0".into(), "need at least 1");
        }
        if self.dim < self.potential.min_dim() {
            return bad(
                "dim",
                self.dim.to_string(),
                &format!(
                    "the {} potential needs at least {}",
                    self.potential,
                    self.potential.min_dim()
                ),
            );
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return bad("dt", self.dt.to_string(), "need a finite positive step");
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return bad(
                "sigma",
                self.sigma.to_string(),
                "need a finite non-negative value",
            );
        }
        if !(self.initial_variance.is_finite() && self.initial_variance >= 0.0) {
            return bad(
                "initial_variance",
                self.initial_variance.to_string(),
                "need a finite non-negative value",
            );
        }
        Ok(())
    }

    /// Simulates the data set: snapshot `k` at time `k · dt`, `N` points each.
    ///
    /// Euler–Maruyama with step `h = dt / substeps`:
    /// `x ← x − ∇ψ(x) h + σ √h ξ`, `ξ ~ N(0, I)`. Start `x0 ~ N(0, initial_variance · I)`.
    /// Velocities (see [`VelocitySnapshots`]) are [`probability_flow_velocity`] of each
    /// snapshot's cloud. One `SeedRng` stream seeded with `seed` draws everything in a fixed
    /// order, so a seed gives bitwise identical data.
    ///
    /// Cost: `O(N · d · substeps · (T − 1))` steps for paired data (`T²/2` for unpaired) plus
    /// `O(N² · d)` per snapshot with velocities (the kernel score).
    ///
    /// # Errors
    /// The errors of [`GfSdeConfig::validate`]; [`Error::Invalid`] when the data would not fit
    /// in memory ([`Snapshots::check_fits`]); [`Error::InvalidSnapshot`] if the simulation
    /// diverges to infinity or NaN (e.g. a huge `dt` with the quartic Styblinski–Tang).
    pub fn generate(&self) -> Result<Snapshots> {
        self.validate()?;
        self.check_fits()?;
        let mut rng = SeedRng::seed_from(self.seed);
        let x0 = self.draw_start(&mut rng);
        self.simulate(x0, rng, true)
    }

    /// As [`GfSdeConfig::generate`], but from the given start `x0` (`(n, dim)` row-major;
    /// `n_particles` and `initial_variance` are ignored). Both unpaired modes resample the given
    /// start (with replacement) for each snapshot, as there is no distribution to draw fresh
    /// starts from.
    ///
    /// # Errors
    /// The errors of [`GfSdeConfig::validate`]; [`Error::Invalid`] if `x0` is empty, not a
    /// multiple of `dim` long, or not finite; [`Error::InvalidSnapshot`] on divergence.
    pub fn generate_from(&self, x0: &[f64]) -> Result<Snapshots> {
        self.validate()?;
        if x0.is_empty() || !x0.len().is_multiple_of(self.dim) {
            return Err(Error::Invalid(format!(
                "GF-SDE start: {} values is not a positive multiple of dim {}",
                x0.len(),
                self.dim
            )));
        }
        if let Some(i) = x0.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "GF-SDE start: point {}, coordinate {} is not finite ({})",
                i / self.dim,
                i % self.dim,
                x0[i]
            )));
        }
        let config = Self {
            n_particles: x0.len() / self.dim,
            ..self.clone()
        };
        config.check_fits()?;
        config.simulate(x0.to_vec(), SeedRng::seed_from(self.seed), false)
    }

    /// [`Snapshots::check_fits`] for the data this config generates, naming the fields.
    fn check_fits(&self) -> Result<()> {
        Snapshots::check_fits(self.n_snapshots, self.n_particles, self.dim, false).map_err(|e| {
            Error::Invalid(format!(
                "GF-SDE config: n_snapshots is {}, n_particles is {}: {e}",
                self.n_snapshots, self.n_particles
            ))
        })
    }

    /// `x0 ~ N(0, initial_variance · I)`, `(n_particles, dim)`.
    fn draw_start(&self, rng: &mut SeedRng) -> Vec<f64> {
        let std0 = self.initial_variance.sqrt();
        (0..self.n_particles * self.dim)
            .map(|_| std0 * rng.normal())
            .collect()
    }

    /// Simulates from `x0`; `fresh_starts` lets [`Pairing::Unpaired`] draw new starts.
    fn simulate(&self, x0: Vec<f64>, mut rng: SeedRng, fresh_starts: bool) -> Result<Snapshots> {
        let (n, d, t) = (self.n_particles, self.dim, self.n_snapshots);
        let mut positions = Vec::with_capacity(t);
        positions.push(x0.clone());
        match self.pairing {
            Pairing::Paired => {
                let mut x = x0;
                for _ in 1..t {
                    self.euler_maruyama(&mut x, self.substeps, &mut rng);
                    positions.push(x.clone());
                }
            }
            Pairing::Unpaired | Pairing::UnpairedBootstrap => {
                for k in 1..t {
                    let mut x = if self.pairing == Pairing::Unpaired && fresh_starts {
                        self.draw_start(&mut rng)
                    } else {
                        let mut x = Vec::with_capacity(n * d);
                        for _ in 0..n {
                            let i = rng.below(n as u64) as usize;
                            x.extend_from_slice(&x0[i * d..(i + 1) * d]);
                        }
                        x
                    };
                    self.euler_maruyama(&mut x, k * self.substeps, &mut rng);
                    positions.push(x);
                }
            }
        }
        let velocities = (0..t)
            .map(|k| {
                let wanted = match self.velocities {
                    VelocitySnapshots::All => true,
                    VelocitySnapshots::First => k == 0,
                    VelocitySnapshots::None => false,
                };
                wanted.then(|| {
                    probability_flow_velocity(
                        &positions[k],
                        d,
                        self.potential,
                        self.sigma,
                        self.score_sign,
                    )
                })
            })
            .collect();
        let times = (0..t).map(|k| k as f64 * self.dt).collect();
        Snapshots::new(times, d, positions, Some(velocities))
    }

    /// `steps` Euler–Maruyama steps of `h = dt / substeps` on every point of `x`.
    fn euler_maruyama(&self, x: &mut [f64], steps: usize, rng: &mut SeedRng) {
        let d = self.dim;
        let h = self.dt / self.substeps as f64;
        let noise = self.sigma * h.sqrt();
        let mut grad = vec![0.0; d];
        for _ in 0..steps {
            for point in x.chunks_exact_mut(d) {
                self.potential.gradient(point, &mut grad);
                for (xi, g) in point.iter_mut().zip(&grad) {
                    *xi += -g * h + noise * rng.normal();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> GfSdeConfig {
        GfSdeConfig {
            n_particles: 50,
            n_snapshots: 4,
            ..GfSdeConfig::default()
        }
    }

    #[test]
    fn snapshots_have_the_configured_shape_and_times() {
        for pairing in [
            Pairing::Paired,
            Pairing::Unpaired,
            Pairing::UnpairedBootstrap,
        ] {
            let s = GfSdeConfig { pairing, ..small() }.generate().unwrap();
            assert_eq!(s.len(), 4);
            assert_eq!(s.dim(), 2);
            assert_eq!(s.n_particles(3), 50);
            assert!((s.times()[3] - 0.03).abs() < 1e-15);
            assert!(s.has_all_velocities());
        }
    }

    #[test]
    fn velocity_option_controls_which_snapshots_have_them() {
        let first = GfSdeConfig {
            velocities: VelocitySnapshots::First,
            ..small()
        }
        .generate()
        .unwrap();
        assert!(first.velocities(0).is_some() && first.velocities(1).is_none());
        let none = GfSdeConfig {
            velocities: VelocitySnapshots::None,
            ..small()
        }
        .generate()
        .unwrap();
        assert!((0..4).all(|k| none.velocities(k).is_none()));
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (
                GfSdeConfig {
                    n_particles: 0,
                    ..small()
                },
                "n_particles is 0",
            ),
            (
                GfSdeConfig {
                    n_snapshots: 0,
                    ..small()
                },
                "n_snapshots is 0",
            ),
            (
                GfSdeConfig {
                    substeps: 0,
                    ..small()
                },
                "substeps is 0",
            ),
            (
                GfSdeConfig {
                    dt: -0.1,
                    ..small()
                },
                "dt is -0.1",
            ),
            (
                GfSdeConfig {
                    sigma: f64::NAN,
                    ..small()
                },
                "sigma is NaN",
            ),
            (
                GfSdeConfig {
                    initial_variance: -1.0,
                    ..small()
                },
                "initial_variance is -1",
            ),
            (
                GfSdeConfig {
                    potential: Potential::Bohachevsky,
                    dim: 1,
                    ..small()
                },
                "bohachevsky potential needs at least 2",
            ),
        ];
        for (config, expected) in cases {
            let msg = config.generate().unwrap_err().to_string();
            assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
        }
    }

    #[test]
    fn a_given_start_is_snapshot_zero_and_is_checked() {
        let x0 = [0.5, -0.5, 1.0, 2.0, 0.0, 0.0];
        let s = small().generate_from(&x0).unwrap();
        assert_eq!((s.n_particles(0), s.positions(0)), (3, &x0[..]));
        let unpaired = GfSdeConfig {
            pairing: Pairing::Unpaired,
            ..small()
        };
        assert_eq!(unpaired.generate_from(&x0).unwrap().n_particles(3), 3);
        let msg = small().generate_from(&x0[..5]).unwrap_err().to_string();
        assert!(
            msg.contains("5 values is not a positive multiple of dim 2"),
            "{msg}"
        );
        let msg = small()
            .generate_from(&[0.0, f64::NAN])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("point 0, coordinate 1 is not finite"), "{msg}");
    }

    #[test]
    fn divergence_is_an_error_not_a_panic() {
        let config = GfSdeConfig {
            potential: Potential::StyblinskiTang,
            dt: 100.0,
            velocities: VelocitySnapshots::None,
            ..small()
        };
        let msg = config.generate().unwrap_err().to_string();
        assert!(msg.contains("not finite"), "{msg}");
    }

    #[test]
    fn sizes_that_cannot_fit_in_memory_are_errors_naming_the_fields() {
        for (n_snapshots, n_particles) in [(usize::MAX / 2, 10), (1 << 40, 1 << 20)] {
            let config = GfSdeConfig {
                n_snapshots,
                n_particles,
                ..GfSdeConfig::default()
            };
            let msg = config.generate().unwrap_err().to_string();
            assert!(
                msg.contains(&format!("n_snapshots is {n_snapshots}")) && msg.contains("bytes"),
                "{msg}"
            );
        }
    }
}
